"""A base model and its GGUF LoRA adapter merged into one q8_0 GGUF, built once and cached.

Why: llama.cpp runs the packaged Q4_1 base with a run-time LoRA at about 240 tokens/s on 2 cores; the same
weights merged and stored at q8_0 run at about 400 (530 with flash attention), so a route costs half
(BENCHMARKS.md, "Route in half the time"). The merged file is 145 MB, too large to ship inside the wheel, and
building it takes about 8 s of NumPy, so :func:`merged_selector_gguf` writes it on first use into the cache
(``$GENTOOL_ROUTER_CACHE`` or ``~/.cache/gentool-router``, folder ``selectors/``) and reuses it after that.

How: every tensor of the base is dequantized with ``gguf.quants``; an adapted one gets ``alpha / rank * B @ A``
added (the adapter's B rows are already in llama.cpp's order, so no permutation is needed here); every 2-D weight
is written at q8_0, whose rounding step is far below both the Q4_1 grid and the LoRA's change, and 1-D tensors
(norms) stay f32. The base's metadata and tokenizer are copied field by field, and the adapter's ``gentool.*``
keys (prompt and tool-text versions, base checksum, no-tool threshold) travel into the merged file, so
:class:`~gentool_router.selector.LlamaSelector` reads it like the adapter. The answers stay those of base + LoRA
within a stated tolerance (``tests/test_merged.py``, ``tests/test_llama_backend.py``; 1,000 decisions side by side in BENCHMARKS.md).

The file name carries a fingerprint of both sources and of :data:`MERGE_VERSION`: another base, another adapter or
another merge recipe is another file; a file is written under a temporary name and renamed, so a crash or a second
process never leaves a half-written selector behind. The cache keeps the :data:`MAX_CACHED` most recently used
merged files and deletes older ones when it writes a new one (files of this module's own naming only).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .artefact import GGUF_PREFIX
from .errors import ModelLoadError, WriteError
from .persistence import atomic_file

__all__ = ["cache_root", "merged_selector_gguf", "merge_adapter", "MERGE_VERSION", "MERGED_TYPE", "MAX_CACHED"]

logger = logging.getLogger(__name__)

#: Bump when the recipe changes: cached files of an older recipe are then rebuilt, not reused.
MERGE_VERSION = 1
#: The type every merged 2-D weight is stored in.
MERGED_TYPE = "q8_0"
#: Keys the writer sets itself (the rest of the base's metadata is copied as it is).
_OWN_FIELDS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture", "general.file_type",
               "general.quantization_version"}
#: Merged files kept in the cache folder (145 MB each for the packaged selector): the least recently used beyond
#: this many are deleted when a new one is written (each new trained adapter makes one).
MAX_CACHED = 4
#: q8_0 stores blocks of 32 values along a row.
_Q8_BLOCK = 32


def cache_root() -> Path:
    """``$GENTOOL_ROUTER_CACHE`` or ``~/.cache/gentool-router``: where built models are kept."""
    return Path(os.environ.get("GENTOOL_ROUTER_CACHE", Path.home() / ".cache" / "gentool-router"))


def merged_selector_gguf(model_path: Path, adapter_path: Path, *, cache_dir: Path | None = None,
                         progress: Callable[[int, int], None] | None = None) -> Path:
    """The cached merged q8_0 file of ``model_path`` + ``adapter_path``, built now if it is not there yet.

    Raises:
        ModelLoadError: a file that is not a GGUF model or LoRA adapter, or an adapter that does not fit the model.
        WriteError: the cache folder cannot be written (one line naming it).
    """
    from .decision import file_fingerprint

    model_path, adapter_path = Path(model_path), Path(adapter_path)
    key = hashlib.sha256(f"{file_fingerprint(model_path)}:{file_fingerprint(adapter_path)}:{MERGE_VERSION}"
                         .encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "selectors"
    target = folder / f"{adapter_path.stem}-{MERGED_TYPE}-{key}.gguf"
    if target.is_file() and _readable(target):
        _touch(target)
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot write the merged selector into {folder}: {exc.strerror or exc} "
                         "(set GENTOOL_ROUTER_CACHE to a writable folder)") from None
    logger.info("merging %s into %s as one q8_0 file, once: %s", adapter_path.name, model_path.name, target)
    merge_adapter(model_path, adapter_path, target, progress=progress)
    _evict(folder, keep=target)
    return target


def merge_adapter(model_path: Path, adapter_path: Path, out: Path, *,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``out``: the base of ``model_path`` with the LoRA of ``adapter_path`` merged in, 2-D weights at q8_0."""
    import gguf
    from gguf.quants import dequantize, quantize

    base = _open(gguf.GGUFReader, Path(model_path), "selector model")
    lora = _open(gguf.GGUFReader, Path(adapter_path), "adapter")
    deltas = _lora_deltas(lora, Path(adapter_path))
    q8 = gguf.GGMLQuantizationType.Q8_0
    with atomic_file(Path(out)) as tmp:
        writer = gguf.GGUFWriter(tmp, str(base.fields["general.architecture"].contents()))
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for key, field in base.fields.items():
            if key not in _OWN_FIELDS and not key.startswith(GGUF_PREFIX):
                _copy_field(writer, key, field, gguf)
        for key, field in lora.fields.items():  # the trained artefact's metadata: the adapter's, not the base's
            if key.startswith(GGUF_PREFIX):
                _copy_field(writer, key, field, gguf)
        for number, tensor in enumerate(base.tensors, start=1):
            shape = tuple(int(n) for n in reversed(list(tensor.shape)))  # rows first, as NumPy reads them
            delta = deltas.pop(tensor.name, None)
            keep_as_is = delta is None and (len(shape) < 2 or tensor.tensor_type == q8)
            if keep_as_is:
                writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=tensor.tensor_type)
            else:
                values = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float64)
                if delta is not None:
                    if delta.shape != values.shape:
                        raise ModelLoadError(f"adapter {adapter_path} does not fit {model_path}: {tensor.name} is "
                                             f"{values.shape} in the model, {delta.shape} in the adapter")
                    values = values + delta
                values32 = values.astype(np.float32)
                if len(shape) == 2 and shape[-1] % _Q8_BLOCK == 0:
                    writer.add_tensor(tensor.name, quantize(values32, q8), raw_dtype=q8)
                else:
                    dtype = np.float16 if values32.ndim == 2 else np.float32
                    writer.add_tensor(tensor.name, np.ascontiguousarray(values32.astype(dtype)))
            if progress is not None:
                progress(number, len(base.tensors))
        if deltas:
            raise ModelLoadError(f"adapter {adapter_path} changes tensors {model_path} does not have: "
                                 f"{', '.join(sorted(deltas)[:3])}")
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return Path(out)


def _lora_deltas(lora: Any, adapter_path: Path) -> dict[str, np.ndarray]:
    """``alpha / rank * B @ A`` per adapted base tensor (llama.cpp's own scaling of a GGUF LoRA)."""
    from gguf.quants import dequantize

    kind = lora.fields.get("general.type")
    if kind is None or str(kind.contents()) != "adapter":
        raise ModelLoadError(f"{adapter_path} is not a LoRA adapter (no general.type 'adapter')")
    alpha_field = lora.fields.get("adapter.lora.alpha")
    alpha = float(alpha_field.contents()) if alpha_field is not None else 0.0
    tensors = {t.name: t for t in lora.tensors}

    def matrix(name: str) -> np.ndarray:
        tensor = tensors[name]
        shape = tuple(int(n) for n in reversed(list(tensor.shape)))
        return dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float64)

    deltas: dict[str, np.ndarray] = {}
    for name in tensors:
        if not name.endswith(".lora_a"):
            continue
        target = name[: -len(".lora_a")]
        if f"{target}.lora_b" not in tensors:
            raise ModelLoadError(f"adapter {adapter_path} has {name} without its lora_b")
        a, b = matrix(name), matrix(f"{target}.lora_b")
        rank = a.shape[0]
        scale = alpha / rank if alpha else 1.0  # llama.cpp: no alpha stored means scale 1
        deltas[target] = scale * (b @ a)
    if not deltas:
        raise ModelLoadError(f"adapter {adapter_path} has no LoRA tensors")
    return deltas


def _copy_field(writer: Any, key: str, field: Any, gguf: Any) -> None:
    value_type = field.types[0]
    sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
    writer.add_key_value(key, field.contents(), value_type, sub_type)


def _open(reader: Callable[[Path], Any], path: Path, what: str) -> Any:
    try:
        return reader(path)
    except FileNotFoundError:
        raise ModelLoadError(f"{what} not found: {path}") from None
    except Exception as exc:  # gguf raises ValueError, struct errors, ... for a file that is not GGUF
        raise ModelLoadError(f"{what} {path} is not a readable GGUF file: {exc}") from None


def _touch(path: Path) -> None:
    """Mark a cached file as used now (eviction keeps the most recently used)."""
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves its files
        pass


def _evict(folder: Path, keep: Path) -> None:
    """Delete the least recently used merged files beyond :data:`MAX_CACHED` (only this module's own files)."""
    files = sorted((p for p in folder.glob(f"*-{MERGED_TYPE}-*.gguf") if p != keep),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[MAX_CACHED - 1:]:
        try:
            old.unlink()
            logger.info("removed the least recently used merged selector %s", old)
        except OSError:
            pass


def _readable(path: Path) -> bool:
    """A cached file whose GGUF header reads (it was renamed into place whole; a damaged one is rebuilt)."""
    from .gguf_meta import read_gguf_metadata

    try:
        read_gguf_metadata(path, GGUF_PREFIX)
    except Exception:
        return False
    return True
