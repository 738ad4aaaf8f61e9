"""Reading a GGUF file's key–value metadata without the training stack (the ``gguf`` package is an extra).

The runtime needs a few keys before llama.cpp loads a file: the prompt and tool-text versions our exporter
stores in a trained adapter or merged model, so a model trained for another prompt format fails with a clear
message instead of silently routing badly (docs/ARCHITECTURE.md, contracts 1 and 2).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelLoadError

__all__ = ["read_gguf_metadata"]

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_KEYS = 1 << 16


def read_gguf_metadata(path: Path, wanted_prefix: str = "") -> dict[str, Any]:
    """Scalar and string metadata whose key starts with ``wanted_prefix`` (arrays are skipped)."""
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelLoadError(f"{path} is not a GGUF file")
            version = _unpack(handle, "<I")
            if version < 2:
                raise ModelLoadError(f"{path}: GGUF version {version} is too old")
            _unpack(handle, "<Q")  # tensor count
            n_keys = _unpack(handle, "<Q")
            if n_keys > _MAX_KEYS:
                raise ModelLoadError(f"{path}: implausible metadata ({n_keys} keys); the file is corrupt")
            found: dict[str, Any] = {}
            for _ in range(n_keys):
                key = _string(handle)
                value_type = _unpack(handle, "<I")
                value = _value(handle, value_type, keep=key.startswith(wanted_prefix))
                if key.startswith(wanted_prefix) and value is not None:
                    found[key] = value
            return found
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: corrupt GGUF metadata ({exc})") from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _unpack(handle: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("file ends inside the metadata")
    return struct.unpack(fmt, data)[0]


def _string(handle: BinaryIO) -> str:
    length = _unpack(handle, "<Q")
    if length > 1 << 24:
        raise ValueError(f"string of {length} bytes")
    data = handle.read(length)
    if len(data) != length:
        raise ValueError("file ends inside a string")
    return data.decode("utf-8")


def _value(handle: BinaryIO, value_type: int, keep: bool) -> Any:
    if value_type in _SCALARS:
        return _unpack(handle, _SCALARS[value_type])
    if value_type == _STRING:
        return _string(handle)
    if value_type == _ARRAY:
        item_type = _unpack(handle, "<I")
        count = _unpack(handle, "<Q")
        if item_type in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        else:
            for _ in range(count):
                _value(handle, item_type, keep=False)
        return None
    raise ValueError(f"unknown metadata type {value_type}")
