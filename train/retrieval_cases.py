"""Toolsets as the router meets them: the production retriever's real top k over the whole source catalogue.

``generate-data --candidates retrieval`` draws each case's tools from here instead of the target's nearest
neighbours. The retriever is the router's own (``ToolRouter`` with ``hybrid=True``, the default): the k tools
nearest to the *query* by the index's embedding of the tool text, with BM25's best tool of the catalogue taking
the k-th place when the embedding missed it. So the distractors are the hard negatives a user's catalogue
produces, in the order they occur, and a no-tool case made by leaving the target out is a real near miss.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from gentool_router.lexical import LexicalIndex
from gentool_router.tool_text import render_tool
from gentool_router.tools import Tool

__all__ = ["CatalogueRetriever", "DEPTH"]

#: How deep the dense ranking of a query is kept: enough for k after the exclusions a case can make.
DEPTH = 60


class CatalogueRetriever:
    """Dense + BM25 candidates of many queries over one fixed catalogue, computed once, read per case."""

    def __init__(self, tools: dict[str, Tool], queries: Sequence[str], embed: Callable[[list[str]], np.ndarray],
                 near_duplicate: float) -> None:
        import faiss

        self._names = list(tools)
        self._row = {n: i for i, n in enumerate(self._names)}
        self._vectors = np.asarray(embed([render_tool(tools[n]) for n in self._names]), dtype=np.float32)
        self._near_duplicate = near_duplicate
        index = faiss.IndexFlatIP(self._vectors.shape[1])
        index.add(self._vectors)
        self._queries = list(dict.fromkeys(queries))
        self._query_row = {q: i for i, q in enumerate(self._queries)}
        query_vectors = np.asarray(embed(self._queries), dtype=np.float32)
        _, ids = index.search(query_vectors, min(DEPTH, len(self._names)))
        self._dense = [[self._names[i] for i in row if i >= 0] for row in ids]
        self._lexical = LexicalIndex(tools.values())

    def near_duplicates(self, name: str, others: Iterable[str]) -> set[str]:
        """The tools of ``others`` whose text embedding is at least ``near_duplicate`` close to ``name``'s: shown
        beside it they would make the label ambiguous."""
        others = [o for o in others if o in self._row and o != name]
        if name not in self._row or not others:
            return set()
        similarity = self._vectors[[self._row[o] for o in others]] @ self._vectors[self._row[name]]
        return {o for o, s in zip(others, similarity) if s >= self._near_duplicate}

    def top(self, query: str, count: int, exclude: Iterable[str] = (), avoid_near: str | None = None) -> list[str]:
        """The router's ``count`` candidates for ``query`` with ``exclude`` left out of the catalogue, best first.

        ``avoid_near`` (a target tool) also leaves out its near duplicates, which the simulation never shows.
        """
        if count <= 0:
            return []
        excluded = set(exclude)
        dense = [n for n in self._dense[self._query_row[query]] if n not in excluded]
        if avoid_near is not None:
            excluded |= self.near_duplicates(avoid_near, dense[: count * 3])
            dense = [n for n in dense if n not in excluded]
        found = dense[:count]
        if count >= 2:
            best, _ = self._lexical.best(query, excluded)
            if best is not None and best not in found and len(found) == count:
                found = [*found[: count - 1], best]
        return found
