"""Reading a trained LoRA adapter (peft folder) and the base GGUF it belongs to, with clear errors.

Everything the exporters need is here: the adapter's LoRA pairs keyed by GGUF tensor name, its scale, and the
base model's shape metadata. Tensor names come from the ``gguf`` package's own name map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gentool_router.artefact import read_training
from gentool_router.errors import ModelLoadError, ModelNotFoundError

__all__ = ["LoraPair", "LoraAdapter", "BaseInfo", "read_adapter", "read_base", "permute_rotary_rows", "check_match"]

_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class LoraPair:
    """One adapted weight: ``delta = scale * B @ A`` (PyTorch layout, rows are outputs)."""

    hf_name: str
    gguf_name: str
    a: np.ndarray  # (r, in)
    b: np.ndarray  # (out, r)


@dataclass(frozen=True)
class LoraAdapter:
    folder: Path
    r: int
    alpha: float
    pairs: tuple[LoraPair, ...]
    training: dict[str, Any]

    @property
    def scale(self) -> float:
        return self.alpha / self.r


@dataclass(frozen=True)
class BaseInfo:
    path: Path
    arch: str
    n_blocks: int
    n_head: int
    n_head_kv: int
    tensor_shapes: dict[str, tuple[int, ...]]  # GGUF name → PyTorch-order shape (out, in)


def read_base(path: Path) -> BaseInfo:
    """Shape metadata of a base GGUF (must be a llama-architecture model)."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"base model not found: {path}")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # the reader raises ValueError, struct errors, IndexError... on corrupt files
        raise ModelLoadError(f"{path} is not a readable GGUF file ({exc})") from exc
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ModelLoadError(f"{path}: architecture {arch!r}; the exporter handles llama-architecture models")
    shapes = {t.name: tuple(int(n) for n in reversed(list(t.shape))) for t in reader.tensors}
    return BaseInfo(path, arch, int(_field(reader, "llama.block_count")), int(_field(reader, "llama.attention.head_count")),
                    int(_field(reader, "llama.attention.head_count_kv")), shapes)


def read_adapter(folder: Path, n_blocks: int) -> LoraAdapter:
    """The LoRA pairs of a peft adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    import gguf
    from safetensors.numpy import load_file

    folder = Path(folder)
    config_path, weights_path = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not folder.is_dir() or not config_path.is_file() or not weights_path.is_file():
        raise ModelNotFoundError(
            f"no trained adapter in {folder}: expected adapter_config.json and adapter_model.safetensors "
            "(the adapter/ folder that `gentool-router train` writes)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        weights = load_file(weights_path)
    except Exception as exc:
        raise ModelLoadError(f"corrupt adapter in {folder}: {exc}") from exc
    if config.get("peft_type") != "LORA" or config.get("use_dora") or config.get("use_rslora"):
        raise ModelLoadError(f"{folder}: only plain LoRA adapters can be exported (got {config.get('peft_type')})")
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_blocks)
    pairs = []
    for key in sorted(weights):
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[: -len(".lora_A.weight")]
        hf_name = module[len(_PEFT_PREFIX):] if module.startswith(_PEFT_PREFIX) else module
        b_key = f"{module}.lora_B.weight"
        if b_key not in weights:
            raise ModelLoadError(f"{folder}: {key} has no matching lora_B")
        gguf_name = names.get_name(hf_name)
        if gguf_name is None:
            raise ModelLoadError(f"{folder}: no GGUF tensor for {hf_name} in a {n_blocks}-block llama model")
        pairs.append(LoraPair(hf_name, gguf_name + ".weight", weights[key].astype(np.float32),
                              weights[b_key].astype(np.float32)))
    if not pairs:
        raise ModelLoadError(f"{folder}: the adapter holds no LoRA weights")
    training = read_training(folder.parent)
    return LoraAdapter(folder, int(config["r"]), float(config["lora_alpha"]), tuple(pairs), training)


def check_match(adapter: LoraAdapter, base: BaseInfo, base_sha256: str | None = None) -> None:
    """Raise a clear error when the adapter was trained on another base model."""
    trained_on = adapter.training.get("base_gguf_sha256")
    if base_sha256 and trained_on and trained_on != base_sha256:
        raise ModelLoadError(
            f"the adapter in {adapter.folder} was trained on another base model (sha256 {trained_on[:12]}…) "
            f"than {base.path.name} ({base_sha256[:12]}…): export it with the base it was trained on (--base)"
        )
    for pair in adapter.pairs:
        shape = base.tensor_shapes.get(pair.gguf_name)
        wanted = (pair.b.shape[0], pair.a.shape[1])
        if shape != wanted:
            raise ModelLoadError(
                f"the adapter in {adapter.folder} does not fit {base.path.name}: {pair.gguf_name} is {shape} "
                f"there, the adapter expects {wanted} (trained on another base model?)"
            )


def permute_rotary_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder the output rows of a q/k projection from the transformers layout to llama.cpp's.

    transformers rotates the two halves of each head's dimensions; llama.cpp rotates interleaved pairs. Within
    each head, row ``half * d + i`` (``half`` in {0, 1}, ``i`` < d) moves to row ``2 * i + half``. Applied to a
    weight's rows — or to a LoRA B matrix's rows, since ``P (B A) = (P B) A``.
    """
    out_features = rows.shape[0]
    head_dim = out_features // n_head
    if head_dim * n_head != out_features or head_dim % 2:
        raise ModelLoadError(f"cannot split {out_features} rows into {n_head} rotary heads")
    half = head_dim // 2
    order = np.arange(out_features).reshape(n_head, 2, half).transpose(0, 2, 1).reshape(-1)
    return rows[order]


def rotary_heads(gguf_name: str, base: BaseInfo) -> int | None:
    """Heads to permute for a q or k tensor; None for every other tensor."""
    if gguf_name.endswith("attn_q.weight"):
        return base.n_head
    if gguf_name.endswith("attn_k.weight"):
        return base.n_head_kv
    return None


def _field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    if field is None:
        raise ModelLoadError(f"{reader.data.filename if hasattr(reader.data, 'filename') else 'GGUF'}: missing {key}")
    return field.contents()
