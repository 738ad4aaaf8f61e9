"""What the router needs from a tool index: the plug-in point for retrieval backends.

:class:`BaseToolIndex` is the interface :class:`~gentool_router.router.ToolRouter` routes through. Two backends
implement it:

* :class:`~gentool_router.index.ToolIndex` (the default): FAISS in process, saved as a folder;
* :class:`~gentool_router.vectorstore.VectorStoreIndex`: any LangChain ``VectorStore`` (Qdrant, pgvector, ...)
  holds the vectors and the tools, so several stateless router replicas can share one store.

Either way the query is embedded by the index's :attr:`~BaseToolIndex.embedder`, the selector and the decision
model stay the same, and BM25 (:meth:`~BaseToolIndex.lexical`) runs in process over the catalogue the index holds.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .catalog import ToolCatalog
from .embedder import Embedder
from .errors import CatalogError, ConfigError
from .lexical import LexicalIndex
from .poison import SuspiciousPolicy
from .settings import DEFAULT_K
from .tool_text import render_tool
from .tools import Tool

__all__ = ["BaseToolIndex", "ScoredTool", "check_k"]


@dataclass(frozen=True)
class ScoredTool:
    """A retrieved tool, its cosine similarity to the query and its canonical text.

    ``text`` is read under the index lock together with the tool, so a route never looks a tool up again
    after a concurrent ``remove`` (it defaults to :func:`render_tool` of ``tool``, for callers that build one).
    """

    tool: Tool
    score: float
    text: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", render_tool(self.tool))


def check_k(k: Any) -> int:
    """``k`` if it is a positive integer, else a :class:`ConfigError`."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return k


class BaseToolIndex(ABC):
    """A catalogue of tools with one unit vector each (the embedding of its canonical text), searchable by vector.

    Implementations must be safe to share between threads (a router is), keep :attr:`embedder`'s vectors for
    the tools' canonical texts (:func:`~gentool_router.tool_text.render_tool`) and score by inner product of unit
    vectors (cosine similarity), so routes, evidence and the decision model mean the same on every backend.
    """

    #: Embeds queries (the router calls it) and tool texts (the index does, when tools are added).
    embedder: Embedder

    # ------------------------------------------------------------- editing
    def _check_new_names(self, names: list[str]) -> None:
        """Refuse names already in the index or given twice (one pass: catalogues may hold 100,000 tools)."""
        seen: set[str] = set()
        clashes: set[str] = set()
        for name in names:
            if name in seen or name in self:
                clashes.add(name)
            seen.add(name)
        if clashes:
            raise CatalogError(f"tool names already in the index or given twice: {', '.join(sorted(clashes))}")

    @abstractmethod
    def add(self, tools: Iterable[Any], *, show_progress: bool | None = None) -> list[Any]:
        """Add tools (any supported form), screened by :attr:`suspicious`; a name already held is a
        :class:`~gentool_router.errors.CatalogError`. Returns the new tools' ids in the backend."""

    @abstractmethod
    def remove(self, names: Iterable[str]) -> None:
        """Remove tools by name; an unknown name is a :class:`~gentool_router.errors.CatalogError` and nothing is
        removed."""

    # -------------------------------------------------------------- search
    def search(self, query: str, k: int = DEFAULT_K) -> list[ScoredTool]:
        """The ``k`` tools nearest to ``query`` (fewer if the index holds fewer), best first."""
        return self.search_vectors(self.embedder.embed_queries([query]), k)[0]

    @abstractmethod
    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[ScoredTool]]:
        """The ``k`` nearest tools for each row of ``vectors`` (embedded queries), best first, with cosine scores."""

    @abstractmethod
    def scored(self, name: str, vector: np.ndarray) -> ScoredTool | None:
        """One tool scored against an embedded query (a candidate BM25 found), or None if it is no longer held."""

    @abstractmethod
    def lexical(self) -> LexicalIndex:
        """BM25 over the catalogue (``lexical.py``), current with the last add or remove."""

    # --------------------------------------------------------------- views
    @property
    @abstractmethod
    def catalog(self) -> ToolCatalog:
        """The tools held, in the order they were added (``catalog.excluded``: those the policy left out)."""

    @property
    def suspicious(self) -> SuspiciousPolicy:
        """The policy applied to instruction-like text in tools added to this index."""
        return self.catalog.suspicious

    @abstractmethod
    def tool_text(self, name: str) -> str:
        """The canonical text of a held tool (what was embedded and what the selector sees)."""

    def names(self) -> list[str]:
        """The names of the tools held."""
        return self.catalog.names()

    def tools(self) -> list[Tool]:
        """The tools held."""
        return list(self.catalog)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __contains__(self, name: object) -> bool: ...

    # --------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str], *, extra_files: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
        """Write the index to a folder; backends that persist elsewhere (a vector database) refuse."""
        raise ConfigError(f"{type(self).__name__} cannot be saved to a folder")
