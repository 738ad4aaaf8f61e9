"""The router: retrieve candidate tools, let the GenTool selector pick one or none.

The path of one query: :meth:`ToolRouter.route` → :meth:`ToolIndex.search_vectors` (embed + FAISS top-k,
``index.py``) → :meth:`LlamaSelector.select` (one llama.cpp forward pass, ``selector.py``) → :class:`Route`
(``results.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

from .catalog import ToolCatalog
from .embedder import Embedder
from .errors import ConfigError, IndexFormatError, QueryError, SelectorError
from .index import ScoredTool, ToolIndex
from .poison import SuspiciousPolicy
from .results import Candidate, Route, StageTimings
from .selector import LlamaSelector, RetrievalSelector, Selector
from .tools import NO_TOOL

if TYPE_CHECKING:
    from .langchain import ToolRouterRetriever, ToolRouterRunnable

__all__ = ["ToolRouter", "ROUTER_FILE", "DEFAULT_K"]

logger = logging.getLogger(__name__)

ROUTER_FILE = "router.json"
#: Candidates per query, as in the GenTool paper (toolsets of five).
DEFAULT_K = 5
#: Queries are cut to this many characters before anything else: the embedder reads 256 word pieces and the
#: selector 2,000 characters, so more text only costs time (a 10 MB query is routed on its start).
MAX_ROUTED_QUERY_CHARS = 20_000

Fallback = Literal["retrieval", "raise"]


class ToolRouter:
    """Routes a query to the best tool of a catalogue, or to none.

    Args:
        index: The tool index (catalogue + embeddings).
        selector: Picks among retrieved candidates; defaults to :class:`LlamaSelector` with the default
            model, created on first use.
        k: Candidates retrieved per query (default 5).
        on_selector_error: ``"retrieval"`` (default) returns the nearest candidate with ``fallback=True`` and
            logs why; ``"raise"`` raises :class:`SelectorError`.

    Example:
        >>> router = ToolRouter.from_tools([get_weather, send_email])    # LangChain tools, functions or dicts
        >>> route = router.route("Will it rain in Oslo tomorrow?")
        >>> route.name, [c.name for c in route.ranking]
    """

    def __init__(
        self,
        index: ToolIndex,
        selector: Selector | None = None,
        *,
        k: int = DEFAULT_K,
        on_selector_error: Fallback = "retrieval",
        selector_options: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        if on_selector_error not in ("retrieval", "raise"):
            raise ConfigError(f"on_selector_error must be 'retrieval' or 'raise', got {on_selector_error!r}")
        self.index = index
        self.k = k
        self.on_selector_error = on_selector_error
        self._selector = selector
        self._selector_options = dict(selector_options or {})
        self._selector_lock = threading.Lock()

    # ------------------------------------------------------------ building
    @classmethod
    def from_tools(
        cls,
        tools: Iterable[Any] | ToolCatalog,
        *,
        embedder: Embedder | None = None,
        selector: Selector | None = None,
        model_path: str | os.PathLike[str] | None = None,
        adapter_path: str | os.PathLike[str] | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        k: int = DEFAULT_K,
        on_selector_error: Fallback = "retrieval",
        show_progress: bool | None = None,
        suspicious: SuspiciousPolicy | None = None,
    ) -> "ToolRouter":
        """Build a router over ``tools`` (LangChain tools, functions, OpenAI dicts, :class:`Tool` s).

        ``model_path``/``adapter_path``/``n_threads``/``n_gpu_layers`` configure the default
        :class:`LlamaSelector`; pass ``selector`` to use another one. ``suspicious`` is the policy for
        instruction-like text in descriptions (default ``"exclude"``; see :class:`ToolCatalog`).
        """
        index = ToolIndex.build(tools, embedder, show_progress=show_progress, suspicious=suspicious)
        options = _selector_options(model_path, adapter_path, n_threads, n_gpu_layers)
        return cls(index, selector, k=k, on_selector_error=on_selector_error, selector_options=options)

    @property
    def selector(self) -> Selector:
        """The selector, loaded on first use (building an index does not need the language model)."""
        if self._selector is None:
            with self._selector_lock:
                if self._selector is None:
                    self._selector = LlamaSelector(**self._selector_options)
        return self._selector

    # ------------------------------------------------------------- routing
    def route(self, query: str) -> Route:
        """Route one query: the chosen tool (or None), the full ranking, the candidates and timings."""
        return self.route_batch([query])[0]

    def route_batch(self, queries: Sequence[str]) -> list[Route]:
        """Route several queries; their embeddings are computed in one call."""
        if isinstance(queries, (str, bytes)):
            raise QueryError("route_batch takes a list of queries, got a single string: use route()")
        queries = [_clean_query(q) for q in queries]
        if not queries:
            return []
        start = time.perf_counter()
        vectors = self.index.embedder.embed_queries(queries)
        embed_each = (time.perf_counter() - start) / len(queries)
        routes = []
        for query, vector in zip(queries, vectors):
            start = time.perf_counter()
            found = self.index.search_vectors(vector[None, :], self.k)[0]
            search_seconds = time.perf_counter() - start
            routes.append(self._select(query, found, embed_each, search_seconds))
        return routes

    async def aroute(self, query: str) -> Route:
        """:meth:`route` in a worker thread, so an event loop is never blocked by the model."""
        return await asyncio.to_thread(self.route, query)

    async def aroute_batch(self, queries: Sequence[str]) -> list[Route]:
        return await asyncio.to_thread(self.route_batch, queries)

    def _select(self, query: str, found: list[ScoredTool], embed_s: float, search_s: float) -> Route:
        candidates = tuple(Candidate(s.tool, rank, s.score) for rank, s in enumerate(found))
        names = [c.name for c in candidates]
        texts = [self.index.tool_text(n) for n in names]
        scores = [c.retrieval_score for c in candidates]
        start = time.perf_counter()
        fallback_reason = None
        try:
            selection = self.selector.select(query, names, texts, scores)
        except SelectorError as exc:
            if self.on_selector_error == "raise":
                raise
            logger.warning("selector failed, falling back to retrieval's top candidate: %s", exc)
            fallback_reason = str(exc)
            selection = RetrievalSelector().select(query, names, texts, scores)
        timings = StageTimings(embed=embed_s, search=search_s, select=time.perf_counter() - start)
        best = selection.best
        tool = None if best == NO_TOOL else self.index.catalog.get(best)
        return Route(
            query=query,
            tool=tool,
            ranking=selection.ranking,
            candidates=candidates,
            timings=timings,
            prompt_tokens=selection.prompt_tokens,
            fallback=fallback_reason is not None,
            fallback_reason=fallback_reason,
        )

    # ----------------------------------------------------------- LangChain
    def as_retriever(self, k: int | None = None) -> "ToolRouterRetriever":
        """A LangChain retriever returning the ranked tools as ``Document`` s (needs the ``langchain`` extra).

        ``k`` defaults to this router's ``k`` (more than that is never returned).
        """
        from .langchain import ToolRouterRetriever  # LangChain is imported only by those who use it

        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        return ToolRouterRetriever(router=self, k=self.k if k is None else k)

    def as_runnable(self) -> "ToolRouterRunnable":
        """This router as a LangChain ``Runnable[str, Route]``; ``batch`` routes with one embedding call."""
        from .langchain import ToolRouterRunnable

        return ToolRouterRunnable(self)

    # ------------------------------------------------------------- editing
    def add_tools(self, tools: Iterable[Any]) -> None:
        """Add tools to the catalogue and index (they are routable at once)."""
        self.index.add(tools)

    def remove_tools(self, names: Iterable[str]) -> None:
        self.index.remove(names)

    @property
    def catalog(self) -> ToolCatalog:
        return self.index.catalog

    # --------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the index and the router settings into one folder (atomic, no pickle)."""
        settings = {
            "k": self.k,
            "on_selector_error": self.on_selector_error,
            "selector": self._selector_settings(),
        }
        return self.index.save(path, extra_files={ROUTER_FILE: settings})

    def _selector_settings(self) -> dict[str, Any]:
        """The default selector's configuration (model files as absolute paths; threads are per machine)."""
        options = self._selector_options
        return {
            "model_path": _absolute_or_none(options.get("model_path")),
            "adapter_path": _absolute_or_none(options.get("adapter_path")),
            "n_gpu_layers": options.get("n_gpu_layers", 0),
        }

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        selector: Selector | None = None,
        model_path: str | os.PathLike[str] | None = None,
        adapter_path: str | os.PathLike[str] | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        k: int | None = None,
    ) -> "ToolRouter":
        """Load a folder written by :meth:`save` (or by ``gentool-router index``).

        Arguments given here override the saved settings.
        """
        index = ToolIndex.load(path, embedder)
        settings = _read_router_settings(Path(path))
        saved = settings.get("selector", {})
        options = _selector_options(
            model_path if model_path is not None else saved.get("model_path"),
            adapter_path if adapter_path is not None else saved.get("adapter_path"),
            n_threads,
            n_gpu_layers if n_gpu_layers is not None else int(saved.get("n_gpu_layers", 0)),
        )
        return cls(
            index,
            selector,
            k=k if k is not None else int(settings.get("k", DEFAULT_K)),
            on_selector_error=settings.get("on_selector_error", "retrieval"),
            selector_options=options,
        )

    def __repr__(self) -> str:
        return f"ToolRouter({len(self.index)} tools, k={self.k})"


def _clean_query(query: Any) -> str:
    if not isinstance(query, str):
        raise QueryError(f"a query must be a string, got {type(query).__name__}")
    # Lone surrogates (undecodable bytes) cannot reach a tokenizer; replace them.
    query = query[:MAX_ROUTED_QUERY_CHARS].encode("utf-8", errors="replace").decode("utf-8")
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in query).split())
    if not cleaned:
        raise QueryError("the query is empty")
    return cleaned


def _selector_options(
    model_path: Any, adapter_path: Any, n_threads: int | None, n_gpu_layers: int
) -> dict[str, Any]:
    options: dict[str, Any] = {"n_gpu_layers": n_gpu_layers}
    if model_path is not None:
        options["model_path"] = Path(model_path)
    if adapter_path is not None:
        options["adapter_path"] = Path(adapter_path)
    if n_threads is not None:
        options["n_threads"] = n_threads
    return options


def _absolute_or_none(value: Any) -> str | None:
    return str(Path(value).absolute()) if value else None


def _read_router_settings(folder: Path) -> dict[str, Any]:
    import json

    path = folder / ROUTER_FILE
    if not path.is_file():
        return {}  # an index written by ToolIndex.save alone: default settings
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise IndexFormatError(f"{path} is corrupt: {exc}") from None
    if not isinstance(settings, dict):
        raise IndexFormatError(f"{path} must hold a JSON object")
    k = settings.get("k", DEFAULT_K)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise IndexFormatError(f"{path}: 'k' must be a positive integer, got {k!r}")
    if settings.get("on_selector_error", "retrieval") not in ("retrieval", "raise"):
        raise IndexFormatError(f"{path}: 'on_selector_error' must be 'retrieval' or 'raise'")
    selector = settings.get("selector", {})
    if (not isinstance(selector, dict) or not isinstance(selector.get("n_gpu_layers", 0), int)
            or not all(isinstance(selector.get(key), (str, type(None))) for key in ("model_path", "adapter_path"))):
        raise IndexFormatError(f"{path}: 'selector' must be an object with model_path, adapter_path and n_gpu_layers")
    return settings
