"""GGUF export of the trained GenTool selector (installed as ``gentool_router_quantize``; the ``train`` extra).

``lora``: the trained LoRA as a GGUF adapter applied over the packaged base GGUF (what ships by default).
Files are written with ``gguf.GGUFWriter`` (llama.cpp's own GGUF package) by our own code, atomically.

Python API: ``export(run / "adapter", run / "gentool-lora.gguf")`` is ``lora.export_lora_gguf`` (what
``gentool-router export --lora`` runs); it loads on first use, so importing the package does not import gguf.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["export"]


def __getattr__(name: str) -> Any:
    if name != "export":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return import_module(".lora", __name__).export_lora_gguf
