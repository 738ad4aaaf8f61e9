"""Exceptions raised by gentool-router.

Every error a user can cause (bad tool schema, corrupt index, missing model) is raised as a subclass of
:class:`GentoolError`, so callers can catch one type and the CLI can print a one-line message instead of a
traceback from deep inside a dependency.
"""

from __future__ import annotations

__all__ = [
    "GentoolError",
    "ToolValidationError",
    "CatalogError",
    "IndexFormatError",
    "IndexMismatchError",
    "ModelNotFoundError",
    "ModelLoadError",
    "QueryError",
    "SelectorError",
    "ConfigError",
    "OverwriteRefusedError",
    "VectorStoreError",
    "WriteError",
]


class GentoolError(Exception):
    """Base class of every error gentool-router raises on purpose."""


class ToolValidationError(GentoolError, ValueError):
    """A tool definition is malformed (name, description or parameter schema)."""


class CatalogError(GentoolError, ValueError):
    """A catalogue-level problem: duplicate names, empty catalogue, unknown tool."""


class IndexFormatError(GentoolError):
    """An index folder is missing files, has a corrupt file, or fails its checksums."""


class IndexMismatchError(GentoolError):
    """An index folder was built with another embedder or another tool-text version."""


class ModelNotFoundError(GentoolError, FileNotFoundError):
    """A model file (GGUF, adapter, embedder folder) could not be found."""


class ModelLoadError(GentoolError):
    """A model file exists but could not be loaded (corrupt, wrong format or architecture)."""


class QueryError(GentoolError, ValueError):
    """A query cannot be routed (empty, not text)."""


class SelectorError(GentoolError):
    """The selector model failed while ranking candidates."""


class ConfigError(GentoolError, ValueError):
    """A setting is out of range or unknown (``k``, ``on_selector_error``, ``suspicious``)."""


class OverwriteRefusedError(GentoolError, FileExistsError):
    """A save would replace a folder that holds something other than an earlier artefact of the same kind."""


class VectorStoreError(GentoolError):
    """A vector database behind :class:`~gentool_router.vectorstore.VectorStoreIndex` failed (unreachable, locked,
    refused a write): the store's own error, in one line naming the store and the operation."""


class WriteError(GentoolError):
    """A file could not be written (unwritable folder, disk full, ...); nothing was written."""
