"""The base selector model for training: the packaged GGUF, dequantized once into a plain transformers folder.

We train over exactly the weights llama.cpp runs (the packaged Q4_1 SmolLM2-135M-Instruct, dequantized to
fp32), so the LoRA adapter learns its corrections on top of the same base it is applied to at run time.

transformers loads a GGUF in 20–40 s and keeps a GGUF quantizer marker on the model that makes
``save_pretrained`` refuse; so the weights are copied once into a fresh model built from the same config and
saved as a plain folder in the cache (loads in about a second after that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gentool_router.artefact import base_checksum
from gentool_router.errors import ModelLoadError
from gentool_router.merged import cache_root  # the one cache folder of the project
from gentool_router.models import base_selector_gguf
from gentool_router.persistence import atomic_folder

__all__ = ["cache_root", "plain_base_folder", "load_base", "gguf_sha256"]


def gguf_sha256(path: Path) -> str:
    """Checksum of a base GGUF: names its cached folder and ties a trained adapter to its base (the runtime's
    own, ``gentool_router.artefact.base_checksum``, so training and loading compare the same thing)."""
    return base_checksum(Path(path))


def plain_base_folder(gguf_path: Path | None = None) -> Path:
    """A transformers folder holding the dequantized weights and tokenizer of ``gguf_path``; built on first use."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path) if gguf_path is not None else base_selector_gguf()
    if not gguf_path.is_file():
        raise ModelLoadError(f"base model not found: {gguf_path}")
    folder = cache_root() / "base-hf" / f"{gguf_path.stem}-{gguf_sha256(gguf_path)[:12]}"
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for an unreadable GGUF
        raise ModelLoadError(f"transformers cannot load {gguf_path}: {exc}") from exc
    config = loaded.config
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise ModelLoadError(f"dequantized weights do not fit the model: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()

    def write(staging: Path) -> None:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    return atomic_folder(folder, write, kind="converted base model")


def load_base(gguf_path: Path | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) of the base selector, in fp32 (CPU) or bf16/fp32 as the device suits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = plain_base_folder(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.to(device), tokenizer
