"""The ``gentool-router`` command line, by product: ``routing``, ``evaluation``, ``training``, ``export``.

The package is the one place that knows every product (docs/ARCHITECTURE.md, "Import rules"). Heavy modules
(faiss, llama.cpp, the embedder, torch) are imported inside the commands, so ``--help`` is quick and ``route`` over
a saved index never imports torch.
"""

from __future__ import annotations

from . import evaluation, export, routing, training  # noqa: F401  (each registers its commands on main)
from ._common import DEMO_QUERIES, main
from .export import export_command

__all__ = ["main", "DEMO_QUERIES", "export_command"]
