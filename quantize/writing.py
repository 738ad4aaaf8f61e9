"""Writing GGUF files atomically: a temporary file beside the target, renamed into place when complete.

A failure (disk full, unwritable folder, interrupted export) leaves no half-written GGUF behind and never
touches an existing file of the same name. The mechanism is the project's one atomic file write
(``gentool_router.persistence.atomic_file``); exports raise :class:`ExportError`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from gentool_router.errors import WriteError
from gentool_router.persistence import atomic_file

__all__ = ["ExportError", "atomic_output"]


class ExportError(WriteError):
    """An export could not be written (unwritable folder, disk full, ...)."""


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on failure it is removed."""
    with atomic_file(target, error=ExportError) as tmp:
        yield tmp
