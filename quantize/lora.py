"""A trained LoRA adapter → a GGUF LoRA adapter that llama.cpp applies over the base GGUF.

Layout llama.cpp expects (``general.type = adapter``, ``adapter.type = lora``): for every adapted weight
``blk.N.<tensor>.weight`` two tensors ``….weight.lora_a`` (r × in) and ``….weight.lora_b`` (out × r), and the
scale as ``adapter.lora.alpha`` (llama.cpp applies ``alpha / r``). The rows of B for q and k are put in
llama.cpp's rotary order (:func:`permute_rotary_rows`). We also store what the runtime checks: the prompt and
tool-text versions and the base model's checksum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gentool_router.artefact import GGUF_KEYS, ArtefactMetadata
from gentool_router.models import base_selector_gguf

from .adapter import check_match, permute_rotary_rows, read_adapter, read_base, rotary_heads
from .writing import atomic_output

__all__ = ["export_lora_gguf", "GENTOOL_KEYS"]

#: Our own metadata keys in exported files (owned by ``gentool_router.artefact``).
GENTOOL_KEYS = GGUF_KEYS

_DTYPES = {"f32": np.float32, "f16": np.float16}


def export_lora_gguf(adapter_dir: Path, out: Path, *, base_gguf: Path | None = None, dtype: str = "f32") -> Path:
    """Write ``out`` (a GGUF LoRA adapter) from the peft adapter in ``adapter_dir``; returns ``out``."""
    import gguf

    from gentool_router_train.base_model import gguf_sha256

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    base_path = Path(base_gguf) if base_gguf else base_selector_gguf()
    base = read_base(base_path)
    adapter = read_adapter(Path(adapter_dir), base.n_blocks)
    base_sha = gguf_sha256(base_path)
    check_match(adapter, base, base_sha)
    out = Path(out)
    with atomic_output(out) as tmp:
        writer = gguf.GGUFWriter(tmp, base.arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, adapter.alpha)
        writer.add_string("general.name", "GenTool selector LoRA")
        _add_provenance(writer, adapter.training, base_sha)
        for pair in adapter.pairs:
            b = pair.b
            heads = rotary_heads(pair.gguf_name, base)
            if heads is not None:
                b = permute_rotary_rows(b, heads)
            writer.add_tensor(f"{pair.gguf_name}.lora_a", np.ascontiguousarray(pair.a, dtype=_DTYPES[dtype]))
            writer.add_tensor(f"{pair.gguf_name}.lora_b", np.ascontiguousarray(b, dtype=_DTYPES[dtype]))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out


def _add_provenance(writer: object, training: dict, base_sha: str) -> None:
    """The ``gentool.*`` keys of a run trained on the base of checksum ``base_sha`` (``gentool_router.artefact``)."""
    for key, value in ArtefactMetadata.from_training(training, base_sha).gguf_items():
        if isinstance(value, float):
            writer.add_float32(key, value)  # type: ignore[attr-defined]
        else:
            writer.add_string(key, value)  # type: ignore[attr-defined]
