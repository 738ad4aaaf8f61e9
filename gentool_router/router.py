"""The router: retrieve candidate tools, let the GenTool selector pick one or none.

The path of one query: :meth:`ToolRouter.route` → :meth:`ToolIndex.search_vectors` (embed + FAISS top-k,
``index.py``; or any other :class:`~gentool_router.index_base.BaseToolIndex`, such as a vector database through
``vectorstore.py``) → :meth:`LlamaSelector.select` (one llama.cpp forward pass, ``selector.py``) → :class:`Route`
(``results.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Iterable, NamedTuple, Sequence, Union

from .catalog import ToolCatalog
from .decision import DecisionModel, default_decision, selector_identity
from .embedder import Embedder
from .errors import CatalogError, ConfigError, GentoolError, IndexFormatError, QueryError, SelectorError
from .evidence import STATS_DEPTH, CandidateEvidence, RouteEvidence, similarity_stats, worth_scoring
from .index import ScoredTool, ToolIndex
from .index_base import BaseToolIndex, check_k
from .lexical import LexicalMatch
from .models import base_selector_gguf, default_adapter
from .poison import DEFAULT_POLICY, SuspiciousPolicy
from .prompt import MAX_CANDIDATES
from .results import Candidate, Choice, Route, Selection, StageTimings
from .selector import LlamaSelector, RetrievalSelector, Selector
from .settings import (
    DEFAULT_CONFIRM_MARGIN,
    DEFAULT_K,
    DEFAULT_N_GPU_LAYERS,
    DEFAULT_ON_SELECTOR_ERROR,
    DEFAULT_PRUNE_MARGIN,
    DEFAULT_SMALL_PRUNE_MARGIN,
    DEFAULTS,
    PACKAGED,
    Fallback,
    Packaged,
)
from .tools import NO_TOOL

if TYPE_CHECKING:
    from langchain_core.vectorstores import VectorStore

__all__ = ["ToolRouter", "ROUTER_FILE", "DEFAULT_K"]

logger = logging.getLogger(__name__)

ROUTER_FILE = "router.json"
#: Queries are cut to this many characters before anything else: the embedder reads 256 word pieces and the
#: selector 2,000 characters, so more text only costs time (a 10 MB query is routed on its start).
MAX_ROUTED_QUERY_CHARS = 20_000

#: ``decision=`` default: the decision model shipped for the packaged selector (see :attr:`ToolRouter.decision`).
DEFAULT_DECISION: Final[Packaged] = PACKAGED
DECISION_FILE = "decision.json"
DecisionSetting = Union[DecisionModel, Packaged, str, os.PathLike, None]


class ToolRouter:
    """Routes a query to the best tool of a catalogue, or to none.

    Args:
        index: The tool index (catalogue + embeddings): a :class:`ToolIndex` (FAISS, the default) or any
            :class:`~gentool_router.index_base.BaseToolIndex`, such as a
            :class:`~gentool_router.vectorstore.VectorStoreIndex` over a vector database.
        selector: Picks among retrieved candidates; defaults to :class:`LlamaSelector` with the default
            model, created on first use.
        k: Candidates retrieved per query (default :data:`~gentool_router.settings.DEFAULT_K`, 5).
        on_selector_error: ``"retrieval"`` (default) returns the nearest candidate with ``fallback=True`` and
            logs why; ``"raise"`` raises :class:`SelectorError`.
        decision: Who decides between the candidates and no tool (see :attr:`decision`): ``"default"``, a
            decision model file or :class:`DecisionModel`, or None for the selector's own threshold.
        hybrid: When BM25's best tool of the catalogue is not among the k nearest, it takes the k-th place.
        prune_margin: Candidates more than this below the nearest tool's cosine are not scored by the llama.cpp
            selector (default :data:`~gentool_router.settings.DEFAULT_PRUNE_MARGIN`; the nearest and BM25's best
            always are): they stay in the route's candidates and come last in its ranking with probability 0, and
            the explanation names them (``not_scored``). None scores all ``k``.
        small_prune_margin: ``prune_margin`` for catalogues under 50 tools, where the decision model's small part
            decides (default :data:`~gentool_router.settings.DEFAULT_SMALL_PRUNE_MARGIN`).
        confirm_margin: A route whose decision leads its runner-up by less than this (probability) is scored again
            with the selector's exact arithmetic, which then decides (default
            :data:`~gentool_router.settings.DEFAULT_CONFIRM_MARGIN`): the llama.cpp selector's fast arithmetic
            (merged file, flash attention, one decode) moves logit gaps a little, and close decisions are the ones
            that flip.
            About one route in ten is scored twice; the explanation says so (``scored_twice``). None never does.

    Example:
        >>> router = ToolRouter.from_tools([get_weather, send_email])    # LangChain tools, functions or dicts
        >>> route = router.route("Will it rain in Oslo tomorrow?")
        >>> route.name, [c.name for c in route.ranking]
    """

    def __init__(
        self,
        index: BaseToolIndex,
        selector: Selector | None = None,
        *,
        k: int = DEFAULT_K,
        on_selector_error: Fallback = DEFAULT_ON_SELECTOR_ERROR,
        selector_options: dict[str, Any] | None = None,
        decision: DecisionSetting = DEFAULT_DECISION,
        hybrid: bool = DEFAULTS.hybrid,
        prune_margin: float | None = DEFAULT_PRUNE_MARGIN,
        confirm_margin: float | None = DEFAULT_CONFIRM_MARGIN,
        small_prune_margin: float | None = DEFAULT_SMALL_PRUNE_MARGIN,
    ) -> None:
        _check_k(k, selector)
        self.prune_margin = _check_prune_margin(prune_margin)
        self.small_prune_margin = _check_margin("small_prune_margin", small_prune_margin, 2, "a cosine difference")
        self.confirm_margin = _check_confirm_margin(confirm_margin)
        if on_selector_error not in ("retrieval", "raise"):
            raise ConfigError(f"on_selector_error must be 'retrieval' or 'raise', got {on_selector_error!r}")
        self.index = index
        self.k = k
        self.hybrid = bool(hybrid)
        self.on_selector_error = on_selector_error
        self._selector = selector
        self._selector_options = dict(selector_options or {})
        self._selector_lock = threading.Lock()
        self._decision_setting = _check_decision_setting(decision)
        self._decision: DecisionModel | None = None
        self._decision_ready = False

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
        n_gpu_layers: int = DEFAULT_N_GPU_LAYERS,
        k: int = DEFAULT_K,
        on_selector_error: Fallback = DEFAULT_ON_SELECTOR_ERROR,
        show_progress: bool | None = None,
        suspicious: SuspiciousPolicy | None = None,
        decision: DecisionSetting = DEFAULT_DECISION,
        hybrid: bool = DEFAULTS.hybrid,
        prune_margin: float | None = DEFAULT_PRUNE_MARGIN,
        confirm_margin: float | None = DEFAULT_CONFIRM_MARGIN,
        small_prune_margin: float | None = DEFAULT_SMALL_PRUNE_MARGIN,
    ) -> "ToolRouter":
        """Build a router over ``tools`` (LangChain tools, functions, OpenAI dicts, :class:`Tool` s).

        ``model_path``/``adapter_path``/``n_threads``/``n_gpu_layers`` configure the default
        :class:`LlamaSelector`; pass ``selector`` to use another one. ``suspicious`` is the policy for
        instruction-like text in descriptions (default ``"exclude"``; see :class:`ToolCatalog`). ``decision``,
        ``hybrid``, ``prune_margin``, ``confirm_margin``, ``small_prune_margin``: see the class.
        """
        index = ToolIndex.build(tools, embedder, show_progress=show_progress, suspicious=suspicious)
        options = _selector_options(model_path, adapter_path, n_threads, n_gpu_layers)
        return cls(index, selector, k=k, on_selector_error=on_selector_error, selector_options=options,
                   decision=decision, hybrid=hybrid, prune_margin=prune_margin, confirm_margin=confirm_margin,
                   small_prune_margin=small_prune_margin)

    @classmethod
    def from_vectorstore(
        cls,
        store: "VectorStore",
        tools: Iterable[Any] | ToolCatalog | None = None,
        *,
        reader: Any = None,
        selector: Selector | None = None,
        model_path: str | os.PathLike[str] | None = None,
        adapter_path: str | os.PathLike[str] | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int = DEFAULT_N_GPU_LAYERS,
        k: int = DEFAULT_K,
        on_selector_error: Fallback = DEFAULT_ON_SELECTOR_ERROR,
        show_progress: bool | None = None,
        suspicious: SuspiciousPolicy | None = None,
        decision: DecisionSetting = DEFAULT_DECISION,
        hybrid: bool = DEFAULTS.hybrid,
        prune_margin: float | None = DEFAULT_PRUNE_MARGIN,
        confirm_margin: float | None = DEFAULT_CONFIRM_MARGIN,
        small_prune_margin: float | None = DEFAULT_SMALL_PRUNE_MARGIN,
    ) -> "ToolRouter":
        """A router over the tools in a LangChain vector store (``vectorstore.py``; e.g.
        :func:`~gentool_router.vectorstore.qdrant_store`), adding ``tools`` to it first when given.

        Without ``tools`` the store must hold a catalogue already (a replica opening a store another process built);
        an empty one is a :class:`CatalogError` (a wrong collection name, most often). The other arguments are
        those of :meth:`from_tools`; ``reader``: see :class:`~gentool_router.vectorstore.VectorStoreIndex`.
        """
        from .vectorstore import VectorStoreIndex

        if tools is not None:
            index = VectorStoreIndex.build(tools, store, show_progress=show_progress, suspicious=suspicious,
                                           reader=reader)
        else:
            index = VectorStoreIndex(store, suspicious=suspicious or DEFAULT_POLICY, reader=reader,
                                     show_progress=show_progress)
            if len(index) == 0:
                raise CatalogError(f"{index!r} holds no tools: give tools= to add a catalogue (or check the "
                                   "collection name)")
        options = _selector_options(model_path, adapter_path, n_threads, n_gpu_layers)
        return cls(index, selector, k=k, on_selector_error=on_selector_error, selector_options=options,
                   decision=decision, hybrid=hybrid, prune_margin=prune_margin, confirm_margin=confirm_margin,
                   small_prune_margin=small_prune_margin)

    @property
    def selector(self) -> Selector:
        """The selector, loaded on first use (building an index does not need the language model)."""
        if self._selector is None:
            with self._selector_lock:
                if self._selector is None:
                    self._selector = LlamaSelector(**self._selector_options)
        return self._selector

    # ------------------------------------------------------------- routing
    def route(self, query: str, *, exclude: Iterable[str] = (), k: int | None = None) -> Route:
        """Route one query: the chosen tool (or None), the full ranking, the candidates and timings.

        ``exclude``: tools of the catalogue to leave out for this query only (ones the agent cannot call now).
        ``k``: candidates for this query only (default: the router's :attr:`k`), so threads sharing one router
        (an HTTP service) need not change it.
        """
        return self.route_batch([query], exclude=exclude, k=k)[0]

    def route_batch(self, queries: Sequence[str], *, exclude: Iterable[str] = (), k: int | None = None) -> list[Route]:
        """Route several queries; their embeddings are computed in one call."""
        if isinstance(queries, (str, bytes)):
            raise QueryError("route_batch takes a list of queries, got a single string: use route()")
        k = self.k if k is None else _check_k(k, self._selector)
        queries = [_clean_query(q) for q in queries]
        if not queries:
            return []
        start = time.perf_counter()
        vectors = self.index.embedder.embed_queries(queries)
        embed_each = (time.perf_counter() - start) / len(queries)
        excluded = frozenset(exclude) if not isinstance(exclude, str) else frozenset([exclude])
        routes = []
        for query, vector in zip(queries, vectors):
            start = time.perf_counter()
            # the nearest STATS_DEPTH tools set this catalogue's scale for the query (evidence.py)
            nearest = self.index.search_vectors(vector[None, :], max(k, STATS_DEPTH) + len(excluded))[0]
            nearest = [s for s in nearest if s.tool.name not in excluded][: max(k, STATS_DEPTH)]
            if not nearest:
                raise CatalogError("every tool of the catalogue is excluded for this query")
            lexical = self.index.lexical().match(query) if self.hybrid else None  # read again by the evidence
            found = self._candidates(vector, nearest, excluded, lexical, k)
            search_seconds = time.perf_counter() - start
            routes.append(self._select(query, found, embed_each, search_seconds, [s.score for s in nearest], excluded,
                                       vector, lexical))
        return routes

    def _candidates(self, vector: Any, nearest: list[ScoredTool], excluded: frozenset[str],
                    lexical: LexicalMatch | None, k: int) -> list[ScoredTool]:
        """The dense top k; with ``hybrid``, BM25's top tool takes the last place when the embedding missed it
        (words an embedding blurs: an ID format, a product name; BENCHMARKS.md, "Real catalogues")."""
        found = nearest[:k]
        lexical_name = lexical.best(excluded)[0] if lexical is not None else None
        if lexical_name is not None and k >= 2 and not any(s.tool.name == lexical_name for s in found):
            extra = self.index.scored(lexical_name, vector)
            if extra is not None:
                found = [*found[: k - 1], extra]
        return found

    async def aroute(self, query: str, *, exclude: Iterable[str] = (), k: int | None = None) -> Route:
        """:meth:`route` in a worker thread, so an event loop is never blocked by the model."""
        return await asyncio.to_thread(self.route, query, exclude=exclude, k=k)

    async def aroute_batch(self, queries: Sequence[str], *, exclude: Iterable[str] = (),
                           k: int | None = None) -> list[Route]:
        return await asyncio.to_thread(self.route_batch, queries, exclude=exclude, k=k)

    def _select(self, query: str, found: list[ScoredTool], embed_s: float, search_s: float,
                similarities: Sequence[float], excluded: frozenset[str] = frozenset(), vector: Any = None,
                lexical: LexicalMatch | None = None) -> Route:
        candidates = tuple(Candidate(s.tool, rank, s.score) for rank, s in enumerate(found))
        margin_used = self._prune_margin_for(len(similarities))
        keep = self._worth_scoring(candidates, lexical, excluded, margin_used)
        scored = [c for c, kept in zip(candidates, keep) if kept]
        names = [c.name for c in scored]
        texts = [s.text for s, kept in zip(found, keep) if kept]  # read under the index lock (a remove may follow)
        scores = [c.retrieval_score for c in scored]
        pruned = tuple(Choice(c.name, 0.0) for c, kept in zip(candidates, keep) if not kept)
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
        select_seconds = time.perf_counter() - start
        start = time.perf_counter()
        decided = self._decide(query, scored, selection, similarities, excluded, vector, lexical,
                               usable=fallback_reason is None)
        margin = _margin(decided.ranking)
        if fallback_reason is None and self._worth_confirming(margin):
            decide_seconds = time.perf_counter() - start
            exact = self._exact_selection(query, names, texts, scores)
            start = time.perf_counter() - decide_seconds  # the decide stage's clock leaves out the second scoring
            if exact is not None:
                select_seconds += exact.seconds
                selection = exact
                decided = self._decide(query, scored, exact, similarities, excluded, vector, lexical, usable=True)
                decided.explanation["scored_twice"] = {
                    "fast_margin": margin,
                    "why": f"decided by less than {self.confirm_margin:g} (probability) with the fast arithmetic: "
                           "scored again with the exact one (adapter at run time, no flash attention, one decode "
                           "per candidate), which decided"}
        ranking, explanation = decided.ranking, decided.explanation
        if pruned:  # listed last, never chosen: the selector did not score them
            ranking = (*ranking, *pruned)
            explanation = {**explanation, "not_scored": [c.name for c in pruned],
                           "not_scored_why": f"more than {margin_used:g} below the nearest tool's cosine"}
        timings = StageTimings(embed=embed_s, search=search_s, select=select_seconds,
                               decide=time.perf_counter() - start)
        best = ranking[0].name
        # the searched tool, not a new catalogue look-up: a concurrent remove_tools may have taken it out since
        tool = None if best == NO_TOOL else next(c.tool for c in candidates if c.name == best)
        return Route(
            query=query,
            tool=tool,
            ranking=ranking,
            candidates=candidates,
            timings=timings,
            prompt_tokens=selection.prompt_tokens,
            fallback=fallback_reason is not None,
            fallback_reason=fallback_reason,
            decided_by=decided.decided_by,
            explanation=explanation,
            evidence=decided.evidence,
        )

    def _decide(self, query: str, scored: Sequence[Candidate], selection: Selection, similarities: Sequence[float],
                excluded: frozenset[str], vector: Any, lexical: LexicalMatch | None, *, usable: bool) -> _Decided:
        """Tool or none from one selection of the scored candidates: the decision model over all the evidence
        where it applies, else the selector's own threshold (or retrieval's order when the selector failed)."""
        names = [c.name for c in scored]
        ranking, decided_by, explanation, evidence = selection.ranking, "selector", None, None
        if selection.logit_gaps is not None and usable:
            evidence = self.evidence(query, scored, selection.logit_gaps, similarities, excluded, lexical=lexical)
        # the shipped decision model's main part was fitted on catalogues of 50 tools and more, its small part on
        # ten-tool ones; a model without a small part leaves smaller catalogues to the selector's threshold
        decision = self.decision if evidence is not None else None
        if decision is not None and evidence is not None and not decision.applies_to(evidence):
            decision = None
        if decision is not None and evidence is not None:
            if vector is not None:
                evidence = decision.with_query(evidence, vector)
            probabilities = decision.probabilities(evidence)
            ranking = tuple(sorted((Choice(n, p) for n, p in zip([*names, NO_TOOL], probabilities)),
                                   key=lambda c: -c.score))
            decided_by, explanation = "decision", decision.explain(evidence)
        elif selection.logit_gaps is None:
            decided_by = "retrieval"
        if explanation is None:
            explanation = {"options": [{"name": c.name, "probability": c.score} for c in ranking],
                           "note": ("the selector's own no-tool threshold"
                                    + (f" (the decision model applies from {self.decision.min_catalogue_tools} tools)"
                                       if self.decision is not None else ""))
                           if decided_by == "selector" else "retrieval order: the nearest tool"}
        return _Decided(ranking, decided_by, dict(explanation), evidence)

    def _worth_confirming(self, margin: float) -> bool:
        """Whether a route decided by ``margin`` is scored again with the exact arithmetic (:attr:`confirm_margin`):
        only the llama.cpp selector running a faster one has another arithmetic to ask."""
        if self.confirm_margin is None or margin >= self.confirm_margin:
            return False
        selector = self.selector
        return isinstance(selector, LlamaSelector) and selector.exact_differs

    def _exact_selection(self, query: str, names: list[str], texts: list[str], scores: list[float]) -> Selection | None:
        """The exact arithmetic's selection, or None (the fast decision stands, with a warning) if it fails."""
        selector = self.selector
        assert isinstance(selector, LlamaSelector)
        try:
            return selector.select(query, names, texts, scores, exact=True)
        except SelectorError as exc:
            logger.warning("the exact arithmetic failed, the fast decision stands: %s", exc)
            return None

    def _prune_margin_for(self, similarities: int) -> float | None:
        """The pruning margin of a route whose query was compared with ``similarities`` tools (at most
        ``STATS_DEPTH``, 50): :attr:`small_prune_margin` under 50, as the decision model's small part counts."""
        return self.small_prune_margin if similarities < STATS_DEPTH else self.prune_margin

    def _worth_scoring(self, candidates: Sequence[Candidate], lexical: LexicalMatch | None,
                       excluded: frozenset[str], margin: float | None) -> list[bool]:
        """Which candidates the llama.cpp selector scores (``margin``: :meth:`_prune_margin_for`,
        ``evidence.worth_scoring``); any other selector (retrieval order, your own) gets them all."""
        if margin is None or not candidates or not isinstance(self.selector, LlamaSelector):
            return [True] * len(candidates)
        lexical_name = lexical.best(excluded)[0] if lexical is not None else None
        top = candidates[0].retrieval_score
        return [worth_scoring(c.retrieval_rank, c.retrieval_score, top, c.name == lexical_name, margin)
                for c in candidates]

    def evidence(self, query: str, candidates: Sequence[Candidate], logit_gaps: Sequence[float],
                 similarities: Sequence[float], excluded: Iterable[str] = (), *,
                 lexical: LexicalMatch | None = None) -> RouteEvidence:
        """The evidence the decision model weighs for one query (``evidence.py``); ``lexical``: the query's BM25
        scores when the route computed them already."""
        names = [c.name for c in candidates]
        match = lexical if lexical is not None else self.index.lexical().match(query)
        best_name, best = match.best(excluded)
        mean, std = similarity_stats(similarities)
        return RouteEvidence(
            candidates=tuple(CandidateEvidence(c.name, c.retrieval_rank, c.retrieval_score, lex, gap)
                             for c, lex, gap in zip(candidates, match.of(names), logit_gaps)),
            similarity_mean=mean, similarity_std=std, lexical_best=best, lexical_best_name=best_name,
            query_words=len(query.split()), similarity_count=len(similarities))

    # ------------------------------------------------------------ decision
    @property
    def decision(self) -> DecisionModel | None:
        """The decision model over all the evidence, resolved on first use (it must match the selector).

        ``"default"``: the one shipped for the packaged selector when the router uses it with the packaged
        embedder, else none (the selector's own threshold decides). A path or a :class:`DecisionModel`: that one, checked against the
        selector. ``None``: the selector's own threshold.
        """
        if not self._decision_ready:
            selector = self.selector
            with self._selector_lock:
                if not self._decision_ready:
                    self._decision = self._resolve_decision(selector)
                    self._decision_ready = True
        return self._decision

    def set_decision(self, decision: DecisionSetting) -> None:
        """Use another decision model (a :class:`DecisionModel`, a file, ``"default"`` or None) from the next route."""
        setting = _check_decision_setting(decision)
        with self._selector_lock:
            self._decision_setting, self._decision_ready, self._decision = setting, False, None

    def _resolve_decision(self, selector: Selector) -> DecisionModel | None:
        setting = self._decision_setting
        if setting is None or not isinstance(selector, LlamaSelector):
            return None
        identity = selector_identity(selector.model_path, selector.adapter_path, self.index.embedder.model_id)
        if isinstance(setting, str) and setting == DEFAULT_DECISION:
            if not _is_packaged_selector(selector):
                logger.info("no decision model for this selector: its own no-tool threshold decides "
                            "(fit one with `gentool-router calibrate`)")
                return None
            model = default_decision()
            if model is not None and any(model.identity.get(k, v) != v for k, v in identity.items()):
                # the packaged selector with another embedder (or a replaced packaged file): the shipped model
                # does not apply; no error
                differs = sorted(k for k, v in identity.items() if model.identity.get(k, v) != v)
                logger.warning("the shipped decision model was fitted for another %s: the selector's own threshold "
                               "decides (fit one with `gentool-router calibrate`)", " and ".join(differs))
                return None
            where = " shipped with gentool-router"
        elif isinstance(setting, DecisionModel):
            model, where = setting, ""
        else:
            model, where = DecisionModel.load(setting), f" {setting}"
        if model is not None:
            model.check_matches(identity, where)
        return model

    # (LangChain: gentool_router.langchain's as_retriever(router) and as_runnable(router); this module does not
    # import that one, which imports it.)

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
        extra: dict[str, Any] = {}
        setting = self._decision_setting
        decision: str | None
        if isinstance(setting, DecisionModel):  # kept inside the folder, next to the catalogue it was fitted on
            extra[DECISION_FILE], decision = setting.to_json(), DECISION_FILE
        else:
            decision = str(Path(setting).absolute()) if isinstance(setting, os.PathLike) else setting
        settings = {
            "k": self.k,
            "on_selector_error": self.on_selector_error,
            "selector": self._selector_settings(),
            "decision": decision,
            "hybrid": self.hybrid,
            "prune_margin": self.prune_margin,
            "small_prune_margin": self.small_prune_margin,
            "confirm_margin": self.confirm_margin,
        }
        return self.index.save(path, extra_files={ROUTER_FILE: settings, **extra})

    def _selector_settings(self) -> dict[str, Any]:
        """The default selector's configuration (model files as absolute paths; threads are per machine)."""
        options = self._selector_options
        return {
            "model_path": _absolute_or_none(options.get("model_path")),
            "adapter_path": _absolute_or_none(options.get("adapter_path")),
            "n_gpu_layers": options.get("n_gpu_layers", DEFAULT_N_GPU_LAYERS),
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
        on_selector_error: Fallback | None = None,
        decision: DecisionSetting = DEFAULT_DECISION,
    ) -> "ToolRouter":
        """Load a folder written by :meth:`save` (or by ``gentool-router index``).

        Arguments given here override the saved settings; ``decision`` overrides a saved decision model unless
        left at ``"default"``.
        """
        index = ToolIndex.load(path, embedder)
        settings = _read_router_settings(Path(path))
        saved = settings.get("selector", {})
        options = _selector_options(
            model_path if model_path is not None else saved.get("model_path"),
            adapter_path if adapter_path is not None else saved.get("adapter_path"),
            n_threads,
            n_gpu_layers if n_gpu_layers is not None else int(saved.get("n_gpu_layers", DEFAULT_N_GPU_LAYERS)),
        )
        return cls(
            index,
            selector,
            k=k if k is not None else int(settings.get("k", DEFAULT_K)),
            on_selector_error=(on_selector_error if on_selector_error is not None
                               else settings.get("on_selector_error", DEFAULT_ON_SELECTOR_ERROR)),
            selector_options=options,
            decision=decision if decision != DEFAULT_DECISION else _saved_decision(Path(path), settings),
            hybrid=bool(settings.get("hybrid", DEFAULTS.hybrid)),
            prune_margin=settings.get("prune_margin", DEFAULT_PRUNE_MARGIN),
            confirm_margin=settings.get("confirm_margin", DEFAULT_CONFIRM_MARGIN),
            small_prune_margin=settings.get("small_prune_margin", DEFAULT_SMALL_PRUNE_MARGIN),
        )

    def __repr__(self) -> str:
        return f"ToolRouter({len(self.index)} tools, k={self.k})"


def _check_k(k: Any, selector: Selector | None) -> int:
    """``k`` if it is a positive integer the selector can score that many candidates of, else a ConfigError."""
    check_k(k)
    limit = _candidate_limit(selector)
    if limit is not None and k > limit:
        raise ConfigError(f"k = {k} is more than the {limit} candidates the selector scores per query: "
                          f"use k <= {limit}")
    return k


def _candidate_limit(selector: Selector | None) -> int | None:
    """The most candidates ``selector`` scores per query: the llama.cpp selector's prompt limit (also for the
    default one, created later), a custom selector's ``max_candidates`` if it has one; retrieval has none."""
    if selector is None or isinstance(selector, LlamaSelector):
        return MAX_CANDIDATES
    if isinstance(selector, RetrievalSelector):
        return None
    limit = getattr(selector, "max_candidates", None)
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None


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
    if settings.get("on_selector_error", DEFAULT_ON_SELECTOR_ERROR) not in ("retrieval", "raise"):
        raise IndexFormatError(f"{path}: 'on_selector_error' must be 'retrieval' or 'raise'")
    selector = settings.get("selector", {})
    if (not isinstance(selector, dict) or not isinstance(selector.get("n_gpu_layers", 0), int)
            or not all(isinstance(selector.get(key), (str, type(None))) for key in ("model_path", "adapter_path"))):
        raise IndexFormatError(f"{path}: 'selector' must be an object with model_path, adapter_path and n_gpu_layers")
    return settings


def _check_decision_setting(decision: Any) -> DecisionSetting:
    if decision is None or isinstance(decision, DecisionModel):
        return decision
    if isinstance(decision, (str, os.PathLike)):
        return decision if decision == DEFAULT_DECISION else Path(decision)
    raise ConfigError(f"decision must be 'default', None, a file path or a DecisionModel, got {type(decision).__name__}")


def _is_packaged_selector(selector: LlamaSelector) -> bool:
    """The packaged base with the packaged GenTool adapter: the selector the shipped decision model was fitted for."""
    try:
        return selector.model_path == base_selector_gguf() and selector.adapter_path == default_adapter()
    except GentoolError:
        return False


class _Decided(NamedTuple):
    """What :meth:`ToolRouter._decide` settles for one selection."""

    ranking: tuple[Choice, ...]
    decided_by: str
    explanation: dict[str, Any]
    evidence: RouteEvidence | None


def _margin(ranking: Sequence[Choice]) -> float:
    """How far the decision's answer leads the runner-up (probability; 1 when there is none)."""
    return ranking[0].score - ranking[1].score if len(ranking) > 1 else 1.0


def _check_margin(name: str, margin: Any, most: float, what: str) -> float | None:
    """None, or a number from 0 to ``most`` (a saved router.json may hold anything); else a ConfigError."""
    if margin is None:
        return None
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= most:
        raise ConfigError(f"{name} must be {what} from 0 to {most:g}, or None; got {margin!r}")
    return float(margin)


def _check_confirm_margin(margin: Any) -> float | None:
    return _check_margin("confirm_margin", margin, 1, "a probability margin")


def _check_prune_margin(margin: Any) -> float | None:
    return _check_margin("prune_margin", margin, 2, "a cosine difference")


def _saved_decision(folder: Path, settings: dict[str, Any]) -> DecisionSetting:
    saved = settings.get("decision", DEFAULT_DECISION)
    if saved == DECISION_FILE:
        return DecisionModel.load(folder / DECISION_FILE)
    if saved is not None and not isinstance(saved, str):
        raise IndexFormatError(f"{folder / ROUTER_FILE}: 'decision' must be 'default', a path or null")
    return saved
