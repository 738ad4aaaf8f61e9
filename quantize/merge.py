"""A standalone selector GGUF: the LoRA merged into the base weights, written as f16, then quantized.

The merge works in GGUF space: every base tensor is dequantized with ``gguf.quants``, the adapted ones get
``scale * B @ A`` added (B's rows in llama.cpp's rotary order for q and k), and the result is written with
``gguf.GGUFWriter`` with the base's metadata and tokenizer copied field by field. Quantizing further (q8_0,
q4_k_m) goes through llama.cpp's own quantizer via llama-cpp-python.

Why merge from the dequantized packaged base rather than from the original full-precision weights: the adapter
was trained over exactly these weights (see ``gentool_router_train.base_model``), so the merged f16 model is
the trained model. Quantizing it again rounds every tensor a second time, and at 4-5 bits the rounding step is
larger than most of the LoRA's change (measured in BENCHMARKS.md, "Export": q4_1 keeps the 167 unadapted tensors
bit-exact yet loses most of the fine-tuning). SmolLM2's 576-wide rows are not a multiple of 256, so llama.cpp's
k-quants (``q4_k_m``, ...) fall back to q5_0/q8_0 for most tensors. Two fixes: :func:`quantize_gguf` can keep
the adapted tensors at q8_0 while llama.cpp's recipe quantizes the rest (``export --keep-adapted``, the
default), and :data:`MIXED_TYPE` copies the unadapted tensors from the base GGUF byte for byte and merges only
the adapted ones, at q8_0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from gentool_router.artefact import GGUF_KEYS
from gentool_router.models import base_selector_gguf

from .adapter import check_match, permute_rotary_rows, read_adapter, read_base, rotary_heads
from .lora import _add_provenance
from .writing import ExportError, atomic_output

__all__ = ["export_merged_gguf", "quantize_gguf", "adapted_tensor_names", "QUANT_TYPES", "MIXED_TYPE"]

#: Our own compact variant: the base's Q4_1 tensors as they are, the LoRA-adapted ones merged at q8_0.
MIXED_TYPE = "q4_1-q8_0"
#: Quantization types offered by ``gentool-router export --quantize`` (all but MIXED_TYPE by llama.cpp).
QUANT_TYPES = ("q8_0", "q4_k_m", "q4_1", "q4_0", "q5_k_m", "q6_k", MIXED_TYPE)

_SKIP_FIELDS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture", "general.file_type",
                "general.quantization_version", "general.type"}


def export_merged_gguf(adapter_dir: Path | None, out: Path, *, base_gguf: Path | None = None,
                       adapted_type: str | None = None,
                       progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``out``: base (dequantized) + merged LoRA, 2-D weights in f16 and norms in f32.

    With ``adapted_type="q8_0"`` it writes the compact variant instead: every tensor the LoRA does not touch is
    copied byte for byte from the base GGUF (what the adapter was trained over), and only the adapted ones are
    merged and quantized, to q8_0. With ``adapter_dir=None`` it writes the base alone (the reference for
    measuring quantization losses).
    """
    import gguf
    from gguf.quants import dequantize, quantize

    from gentool_router_train.base_model import gguf_sha256

    if adapted_type not in (None, "q8_0"):
        raise ValueError(f"adapted tensors can be kept at q8_0 only, got {adapted_type!r}")
    base_path = Path(base_gguf) if base_gguf else base_selector_gguf()
    base = read_base(base_path)
    base_sha = gguf_sha256(base_path)
    deltas: dict[str, np.ndarray] = {}
    training: dict[str, Any] = {}
    if adapter_dir is not None:
        adapter = read_adapter(Path(adapter_dir), base.n_blocks)
        check_match(adapter, base, base_sha)
        training = adapter.training
        for pair in adapter.pairs:
            b = pair.b
            heads = rotary_heads(pair.gguf_name, base)
            if heads is not None:
                b = permute_rotary_rows(b, heads)
            deltas[pair.gguf_name] = (adapter.scale * (b.astype(np.float64) @ pair.a.astype(np.float64)))
    reader = gguf.GGUFReader(base_path)
    with atomic_output(Path(out)) as tmp:
        writer = gguf.GGUFWriter(tmp, base.arch)
        writer.add_type(gguf.GGUFType.MODEL)
        if adapted_type is None:
            writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        else:
            writer.add_file_type(int(reader.fields["general.file_type"].contents()))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for key, field in reader.fields.items():
            if key in _SKIP_FIELDS:
                continue
            value_type = field.types[0]
            sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), value_type, sub_type)
        if deltas:
            _add_provenance(writer, training, base_sha)
        else:  # the base alone, re-encoded: it stands for the base it came from when an adapter is loaded over it
            writer.add_string(GGUF_KEYS["base_sha256"], base_sha)
        for index, tensor in enumerate(reader.tensors):
            shape = tuple(int(n) for n in reversed(list(tensor.shape)))  # PyTorch order (out, in)
            if adapted_type is not None and tensor.name not in deltas:
                writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=tensor.tensor_type)
            else:
                values = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float32)
                if tensor.name in deltas:
                    values = (values.astype(np.float64) + deltas.pop(tensor.name)).astype(np.float32)
                if adapted_type is not None and values.ndim == 2:
                    q8 = gguf.GGMLQuantizationType.Q8_0
                    writer.add_tensor(tensor.name, quantize(values, q8), raw_dtype=q8)
                else:
                    dtype = np.float16 if values.ndim == 2 else np.float32
                    writer.add_tensor(tensor.name, np.ascontiguousarray(values.astype(dtype)))
            if progress:
                progress(index + 1, len(reader.tensors))
        if deltas:
            raise ExportError(f"adapter tensors with no base tensor: {sorted(deltas)[:3]}")
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return Path(out)


def quantize_gguf(source: Path, out: Path, quant_type: str, *, threads: int | None = None,
                  keep_q8_0: Iterable[str] = ()) -> Path:
    """Quantize a GGUF with llama.cpp's quantizer (``llama_model_quantize``), atomically.

    ``keep_q8_0`` names tensors to write at q8_0 whatever the type's own recipe says (llama.cpp's per-tensor
    overrides). Passing the LoRA-adapted tensors keeps the fine-tuning through a 4-bit export: re-quantized at
    4-5 bits, most of a LoRA's change to a weight is smaller than the rounding step (BENCHMARKS.md, "Export").
    """
    import ctypes
    import re

    import llama_cpp

    from gentool_router.selector import default_threads

    ftypes = {
        "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
        "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
        "q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1,
        "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
        "q5_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M,
        "q6_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K,
    }
    if quant_type not in ftypes:
        raise ValueError(f"quantization type must be one of {', '.join(ftypes)}, got {quant_type!r}")
    source = Path(source)
    if not source.is_file():
        raise ExportError(f"nothing to quantize: {source} does not exist")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[quant_type]
    params.nthread = threads or default_threads()
    # llama.cpp reads the overrides up to an entry with a NULL pattern; each pattern is a regex searched in the name
    patterns = [f"^{re.escape(name)}$".encode() for name in sorted(set(keep_q8_0))]
    overrides = (llama_cpp.llama_model_tensor_override * (len(patterns) + 1))()
    for entry, pattern in zip(overrides, patterns):
        entry.pattern, entry.type = pattern, llama_cpp.GGML_TYPE_Q8_0
    if patterns:
        params.tt_overrides = ctypes.cast(overrides, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    with atomic_output(Path(out)) as tmp:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if status != 0:
            raise ExportError(f"llama.cpp could not quantize {source} to {quant_type} (status {status})")
    return Path(out)


def adapted_tensor_names(adapter_dir: Path, *, base_gguf: Path | None = None) -> list[str]:
    """GGUF names of the base tensors a trained LoRA changes (what ``quantize_gguf(keep_q8_0=...)`` keeps)."""
    base = read_base(Path(base_gguf) if base_gguf else base_selector_gguf())
    return [pair.gguf_name for pair in read_adapter(Path(adapter_dir), base.n_blocks).pairs]
