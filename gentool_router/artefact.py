"""The trained selector as an artefact: its run folder, its metadata, and how both are written and read.

One home for what training writes and the runtime checks, so the two cannot drift apart:

* a **run folder** (``gentool-router train --out RUN``): ``adapter/`` (peft), ``training.json`` (settings,
  provenance, dev history, calibrated no-tool score), ``train_log.jsonl``, ``gentool-lora.gguf`` (the adapter the
  runtime loads) and, while training, ``checkpoint/``;
* the **metadata** an exported GGUF carries under ``gentool.*`` keys (:class:`ArtefactMetadata`): the prompt and
  tool-text versions it was trained for, the checksum of the base GGUF it was trained on, and the calibrated
  no-tool score. The runtime refuses a file made for another prompt format, tool text or base model.

docs/ARCHITECTURE.md shows where this sits between training, export and routing.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import ModelLoadError
from .persistence import sha256_file, write_json

__all__ = ["ADAPTER_DIR", "TRAINING_JSON", "TRAIN_LOG", "CHECKPOINT_DIR", "LORA_GGUF", "GGUF_KEYS", "GGUF_PREFIX",
           "ArtefactMetadata", "read_training", "write_training", "base_checksum"]

ADAPTER_DIR = "adapter"
TRAINING_JSON = "training.json"
TRAIN_LOG = "train_log.jsonl"
CHECKPOINT_DIR = "checkpoint"
LORA_GGUF = "gentool-lora.gguf"

GGUF_PREFIX = "gentool."
#: Our own metadata keys in exported GGUF files, by :class:`ArtefactMetadata` field.
GGUF_KEYS = {
    "prompt_version": "gentool.prompt_version",
    "tool_text_version": "gentool.tool_text_version",
    "base_sha256": "gentool.base_sha256",
    "no_tool_score": "gentool.no_tool_score",
}


def read_training(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run folder's ``training.json``, or ``{}`` when it has none (a run still training, or a bare adapter)."""
    path = Path(run_dir) / TRAINING_JSON
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def write_training(run_dir: str | os.PathLike[str], summary: Mapping[str, Any]) -> Path:
    """Write a run folder's ``training.json`` atomically."""
    return write_json(Path(run_dir) / TRAINING_JSON, dict(summary))


_CHECKSUMS: dict[tuple[str, int, int], str] = {}


def base_checksum(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a base GGUF, remembered per (path, size, mtime): every selector load compares it."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKSUMS:
        _CHECKSUMS[key] = sha256_file(path)
    return _CHECKSUMS[key]


@dataclass(frozen=True)
class ArtefactMetadata:
    """What a trained selector records about itself; None where a file does not say (a plain GGUF)."""

    prompt_version: str | None = None
    tool_text_version: str | None = None
    base_sha256: str | None = None
    no_tool_score: float | None = None

    @classmethod
    def from_training(cls, training: Mapping[str, Any], base_sha256: str) -> "ArtefactMetadata":
        """The metadata an export writes for a run (``training.json``) trained on a base of ``base_sha256``."""
        from .prompt import PROMPT_VERSION
        from .tool_text import TOOL_TEXT_VERSION

        score = training.get("no_tool_score")
        return cls(str(training.get("prompt_version", PROMPT_VERSION)),
                   str(training.get("tool_text_version", TOOL_TEXT_VERSION)), base_sha256,
                   float(score) if isinstance(score, (int, float)) else None)

    @classmethod
    def from_gguf(cls, path: str | os.PathLike[str]) -> "ArtefactMetadata":
        """Read the ``gentool.*`` keys of a GGUF file (without the ``gguf`` package)."""
        from .gguf_meta import read_gguf_metadata

        meta = read_gguf_metadata(Path(path), GGUF_PREFIX)
        score = meta.get(GGUF_KEYS["no_tool_score"])
        strings = {field: (str(meta[key]) if key in meta else None) for field, key in GGUF_KEYS.items()
                   if field != "no_tool_score"}
        return cls(**strings, no_tool_score=float(score) if isinstance(score, (int, float)) and math.isfinite(score)
                   else None)

    def gguf_items(self) -> list[tuple[str, str | float]]:
        """(key, value) pairs to write into a GGUF, the ones this metadata knows."""
        return [(GGUF_KEYS[name], value) for name, value in (
            ("prompt_version", self.prompt_version), ("tool_text_version", self.tool_text_version),
            ("base_sha256", self.base_sha256), ("no_tool_score", self.no_tool_score)) if value is not None]

    def check_runtime(self, where: str) -> None:
        """Refuse a file trained for another prompt format or tool text than this runtime's.

        Raises:
            ModelLoadError: naming the file, the version it was trained for and this runtime's.
        """
        from .prompt import PROMPT_VERSION
        from .tool_text import TOOL_TEXT_VERSION

        for have, current, what in ((self.prompt_version, PROMPT_VERSION, "prompt format"),
                                    (self.tool_text_version, TOOL_TEXT_VERSION, "tool text")):
            if have is not None and have != current:
                raise ModelLoadError(
                    f"{where} was trained for {what} version {have}, this gentool-router uses version {current}: "
                    "retrain it (gentool-router train) or use the gentool-router version it was made with")

    def check_base(self, where: str, base_path: str | os.PathLike[str]) -> None:
        """Refuse an adapter trained on another base model than ``base_path`` (when the adapter records one).

        Raises:
            ModelLoadError: the checksums differ.
        """
        if self.base_sha256 is None:
            return
        actual = base_checksum(base_path)
        if actual != self.base_sha256:
            raise ModelLoadError(
                f"{where} was trained on another base model (sha256 {self.base_sha256[:12]}…) than "
                f"{Path(base_path).name} (sha256 {actual[:12]}…): load it over the base it was trained on (--model)")
