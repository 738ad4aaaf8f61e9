"""Selectors: pick the strongest applicable candidate, or ``generate_response``.

:class:`LlamaSelector` runs the GenTool selector (any GGUF, optionally with a GGUF LoRA adapter) in
llama.cpp. Following :mod:`gentool_router.prompt`, it scores each candidate after the cached static prefix and the
query: the ``yes``/``no`` logit difference at the end of the candidate's text. All candidates of a route are
evaluated in one llama.cpp decode, each its own sequence sharing the query's KV entries; every llama.cpp specific
is in :mod:`gentool_router._llama_backend`. Those scores and the fixed no-tool score give the full ranking; the
answer can only ever be a candidate or ``generate_response``.

:class:`RetrievalSelector` keeps the retrieval order (embedding top-1, never abstains): the baseline.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Final, Protocol, Sequence

from ._llama_backend import LlamaBackend
from .artefact import ArtefactMetadata
from .errors import ModelLoadError, ModelNotFoundError, SelectorError, WriteError
from .models import base_selector_gguf, default_adapter
from .prompt import (
    ANSWER_NO,
    ANSWER_YES,
    MAX_CANDIDATES,
    NO_TOOL_SCORE,
    build_prompt,
    choice_probabilities,
    encode_parts,
    encode_prompt,
    prefix_parts,
)
from .results import Choice, Selection
from .settings import (
    DEFAULT_FLASH_ATTN,
    DEFAULT_MERGE_ADAPTER,
    DEFAULT_N_CTX,
    DEFAULT_N_GPU_LAYERS,
    PACKAGED,
    Packaged,
)
from .tools import NO_TOOL

__all__ = ["Selector", "LlamaSelector", "RetrievalSelector", "default_threads", "DEFAULT_ADAPTER"]

#: ``adapter_path`` default: the packaged GenTool adapter when the model is the packaged base, else none (the
#: sentinel of :mod:`gentool_router.settings`, typed :data:`~gentool_router.settings.Packaged`).
DEFAULT_ADAPTER: Final[Packaged] = PACKAGED

logger = logging.getLogger(__name__)


class Selector(Protocol):
    """Ranks a query's candidates (names and canonical texts, in retrieval order)."""

    def select(self, query: str, names: Sequence[str], texts: Sequence[str], scores: Sequence[float]) -> Selection:
        ...


def default_threads() -> int:
    """The cores this process may use (llama.cpp's OpenMP threads collapse when oversubscribed)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class RetrievalSelector:
    """Keeps the retrieval order: the nearest tool wins, and it never answers ``generate_response``."""

    def select(self, query: str, names: Sequence[str], texts: Sequence[str], scores: Sequence[float]) -> Selection:
        start = time.perf_counter()
        ranking = tuple(Choice(n, float(s)) for n, s in sorted(zip(names, scores), key=lambda p: -p[1]))
        return Selection(ranking, seconds=time.perf_counter() - start)


class LlamaSelector:
    """The GenTool selector in llama.cpp.

    Args:
        model_path: A GGUF file; defaults to the packaged SmolLM2-135M-Instruct.
        adapter_path: GGUF LoRA adapter applied over ``model_path``. By default (``"default"``,
            :data:`DEFAULT_ADAPTER`) the packaged GenTool adapter when ``model_path`` is the packaged base (a merged
            export needs none); ``None`` for no adapter (the un-tuned base model).
        no_tool_score: Score a candidate must beat to be chosen over ``generate_response``; default: the value
            calibrated on dev data stored in the adapter or model, else :data:`~gentool_router.prompt.NO_TOOL_SCORE`.
        n_threads: CPU threads; defaults to the cores available to this process.
        n_gpu_layers: Layers to offload to a GPU (needs a GPU build of llama-cpp-python).
        n_ctx: Context size in tokens (default :data:`~gentool_router.settings.DEFAULT_N_CTX`), shared by a route's
            candidates: the prefix, a query and one candidate must fit; a route longer than the context is scored
            in several decodes.
        batched: Score all candidates of a route in one llama.cpp decode (default), or each in its own decode
            after the query (the reference path; the scores agree within float rounding, see
            :mod:`gentool_router._llama_backend`).
        merge_adapter: Run ``adapter_path`` merged into ``model_path`` as one q8_0 GGUF (default; built once
            into the cache by :func:`gentool_router.merged.merged_selector_gguf`, about 8 s) instead of applying
            the LoRA at run time: about half the select time (BENCHMARKS.md, "Route in half the time"). Scores
            move by float rounding only; where the cache cannot be written the run-time LoRA is used, with a
            warning. :attr:`runtime_path` is the file llama.cpp runs.
        flash_attn: llama.cpp's flash attention (on by default): faster at every k and much faster for routes of
            many candidates (a batch then costs no attention over the other candidates' KV cells); scores move by
            float rounding. Off, the sequential path reproduces the selector's scores before batching bit for bit.

    ``select(..., exact=True)`` scores with the exact arithmetic instead (``model_path`` + ``adapter_path`` as a
    run-time LoRA, no flash attention, one decode per candidate: the selector's scores before batching, bit for bit,
    which the decision model was fitted on), in a second llama.cpp context opened on first use when the fast one
    runs a merged file or flash attention; :class:`~gentool_router.router.ToolRouter` does so for routes decided by a
    narrow margin (``confirm_margin``). :attr:`exact_differs` says whether that arithmetic is another than
    :meth:`select`'s.

    One instance is safe to share between threads: a lock serialises use of the llama.cpp context.

    Example:
        >>> selector = LlamaSelector()
        >>> selection = selector.select("What's the weather in Oslo?", ["get_weather", "send_email"],
        ...     ["get_weather(city): Current weather", "send_email(to, body): Send an email"], [0.6, 0.1])
        >>> {c.name for c in selection.ranking} == {"get_weather", "send_email", "generate_response"}
        True
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        adapter_path: Packaged | str | os.PathLike[str] | None = DEFAULT_ADAPTER,
        n_threads: int | None = None,
        n_gpu_layers: int = DEFAULT_N_GPU_LAYERS,
        n_ctx: int = DEFAULT_N_CTX,
        no_tool_score: float | None = None,
        verbose: bool = False,
        batched: bool = True,
        merge_adapter: bool = DEFAULT_MERGE_ADAPTER,
        flash_attn: bool = DEFAULT_FLASH_ATTN,
    ) -> None:
        if isinstance(adapter_path, str) and adapter_path == DEFAULT_ADAPTER:
            adapter_path = default_adapter() if model_path is None else None
        self.model_path = Path(model_path) if model_path is not None else base_selector_gguf()
        self.adapter_path = Path(adapter_path) if adapter_path is not None else None
        _check_gguf(self.model_path, "model")
        model_meta = ArtefactMetadata.from_gguf(self.model_path)
        model_meta.check_runtime(self.model_path.name)
        calibrated = model_meta.no_tool_score
        if self.adapter_path is not None:
            _check_gguf(self.adapter_path, "adapter")
            adapter_meta = ArtefactMetadata.from_gguf(self.adapter_path)
            adapter_meta.check_runtime(self.adapter_path.name)
            _check_adapter_base(adapter_meta, self.adapter_path, self.model_path, model_meta)
            calibrated = adapter_meta.no_tool_score
        self.no_tool_score = float(no_tool_score if no_tool_score is not None else
                                   calibrated if calibrated is not None else NO_TOOL_SCORE)
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = n_gpu_layers
        self.batched = batched
        self.flash_attn = flash_attn
        self._lock = threading.Lock()
        self._exact_backend: LlamaBackend | None = None  # opened by the first select(..., exact=True)
        self._verbose = verbose
        self.runtime_path = self.model_path
        if merge_adapter and self.adapter_path is not None:
            self.runtime_path = _merged_or_none(self.model_path, self.adapter_path) or self.model_path
        runtime_adapter = self.adapter_path if self.runtime_path == self.model_path else None
        self._backend: LlamaBackend | None = LlamaBackend(
            self.runtime_path, runtime_adapter, n_threads=self.n_threads, n_gpu_layers=n_gpu_layers, n_ctx=n_ctx,
            max_sequences=MAX_CANDIDATES, flash_attn=flash_attn, verbose=verbose)
        self.n_ctx = self._backend.n_ctx
        answer_ids = self._single_token_ids([ANSWER_YES, ANSWER_NO])
        self._readout = (answer_ids[ANSWER_YES], answer_ids[ANSWER_NO])
        self._backend.set_prefix(encode_parts(prefix_parts(), self.tokenize))
        self._prefix_ids = self._backend.prefix_ids

    # ------------------------------------------------------------ tokenizing
    def tokenize(self, text: str, parse_special: bool) -> list[int]:
        """The model's tokenizer, without BOS; invalid UTF-8 surrogates are replaced, never raised."""
        return self._open_backend().tokenize(text, parse_special)

    def _single_token_ids(self, words: Sequence[str]) -> dict[str, int]:
        ids = {}
        for word in words:
            tokens = self.tokenize(word, False)
            if len(tokens) != 1:
                raise ModelLoadError(
                    f"{self.model_path.name}: the answer {word!r} is {len(tokens)} tokens in this model's vocabulary; "
                    "the selector needs one token per answer"
                )
            ids[word] = tokens[0]
        return ids

    def prompt_token_count(self, query: str, texts: Sequence[str]) -> tuple[int, int]:
        """(uncached, cached) prompt tokens for a query over candidates with these texts."""
        query_ids, candidate_ids = self._encode(query, [f"t{i}" for i in range(len(texts))], texts)
        return len(query_ids) + sum(len(c) for c in candidate_ids), len(self._prefix_ids)

    def _encode(self, query: str, names: Sequence[str], texts: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        return encode_prompt(build_prompt(query, list(names), list(texts)), self.tokenize)

    def _open_backend(self) -> LlamaBackend:
        if self._backend is None:
            raise SelectorError("the selector is closed")
        return self._backend

    @property
    def exact_differs(self) -> bool:
        """Whether :meth:`select` runs a faster arithmetic than the exact one (the merged file, flash attention,
        one decode for all candidates), so that ``select(..., exact=True)`` can give other scores."""
        return self.runtime_path != self.model_path or self.flash_attn or self.batched

    # -------------------------------------------------------------- ranking
    def select(self, query: str, names: Sequence[str], texts: Sequence[str], scores: Sequence[float], *,
               batched: bool | None = None, exact: bool = False) -> Selection:
        """Score each of ``names`` against ``query``; rank them and ``generate_response``.

        ``batched``: this call only, one decode for all candidates or one per candidate (default:
        :attr:`batched`). ``exact``: score with the exact arithmetic (base + run-time LoRA, no flash attention,
        one decode per candidate; about twice the time) rather than the fast one (``batched`` is then ignored).
        """
        start = time.perf_counter()
        query_ids, candidate_ids = self._checked_encoding(query, names, texts)
        with self._lock:
            backend = self._exact() if exact else self._open_backend()
            sequential = exact or not (self.batched if batched is None else batched)
            logit_gaps = self._score_candidates(backend, query_ids, candidate_ids, not sequential)
        return self._selection(names, logit_gaps, query_ids, candidate_ids, time.perf_counter() - start)

    def _exact(self) -> LlamaBackend:
        """The exact arithmetic's context (run-time LoRA, no flash attention): this selector's own when it runs
        that already, else a second one opened on first use; under the lock."""
        own = self._open_backend()  # a closed selector stays closed
        if self.runtime_path == self.model_path and not self.flash_attn:
            return own
        if self._exact_backend is None:
            try:
                backend = LlamaBackend(self.model_path, self.adapter_path, n_threads=self.n_threads,
                                       n_gpu_layers=self.n_gpu_layers, n_ctx=self.n_ctx, max_sequences=MAX_CANDIDATES,
                                       flash_attn=False, verbose=self._verbose)
            except Exception as exc:
                raise SelectorError(f"cannot open the exact arithmetic's llama.cpp context: {exc}") from exc
            backend.set_prefix(self._prefix_ids)  # the merged file carries the base's tokenizer: the same ids
            self._exact_backend = backend
        return self._exact_backend

    def select_batch(self, requests: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[float]]]
                     ) -> list[Selection]:
        """:meth:`select` for several queries (query, names, texts, scores), their candidates scored together
        in as few decodes as the context holds. A selection's ``seconds`` is its share of the whole call.

        On a CPU this is no faster than one query at a time (measured: 5 queries a call, 632 against 634 ms a
        query), so :meth:`ToolRouter.route_batch` selects query by query; a GPU build may gain from it.
        """
        start = time.perf_counter()
        encoded = [self._checked_encoding(query, names, texts) for query, names, texts, _ in requests]
        with self._lock:
            backend = self._open_backend()
            try:
                all_gaps = backend.score_routes(encoded, self._readout)
            except Exception as exc:
                raise SelectorError(f"llama.cpp failed while scoring candidates: {exc}") from exc
        for gaps in all_gaps:
            _check_finite(gaps)
        share = (time.perf_counter() - start) / max(1, len(requests))
        return [self._selection(names, gaps, query_ids, candidate_ids, share)
                for (_, names, _, _), gaps, (query_ids, candidate_ids) in zip(requests, all_gaps, encoded)]

    def _checked_encoding(self, query: str, names: Sequence[str], texts: Sequence[str]
                          ) -> tuple[list[int], list[list[int]]]:
        if len(names) > MAX_CANDIDATES:
            raise SelectorError(f"at most {MAX_CANDIDATES} candidates are scored per query, got {len(names)}")
        query_ids, candidate_ids = self._encode(query, names, texts)
        longest = len(self._prefix_ids) + len(query_ids) + max((len(c) for c in candidate_ids), default=0)
        if longest > self.n_ctx:
            raise SelectorError(
                f"the selector prompt needs {longest} tokens, more than the context of {self.n_ctx}: "
                "use a larger n_ctx or shorter tool texts"
            )
        return query_ids, candidate_ids

    def _selection(self, names: Sequence[str], logit_gaps: Sequence[float], query_ids: list[int],
                   candidate_ids: list[list[int]], seconds: float) -> Selection:
        probabilities = choice_probabilities(logit_gaps, self.no_tool_score)
        ranking = tuple(sorted((Choice(name, p) for name, p in zip([*names, NO_TOOL], probabilities)),
                               key=lambda c: -c.score))
        return Selection(
            ranking,
            prompt_tokens=len(query_ids) + sum(len(c) for c in candidate_ids),
            cached_tokens=len(self._prefix_ids),
            seconds=seconds,
            logit_gaps=tuple(logit_gaps),
        )

    def _score_candidates(self, backend: LlamaBackend, query_ids: list[int], candidate_ids: list[list[int]],
                          batched: bool) -> list[float]:
        """logit(yes) - logit(no) after each candidate, following the cached prefix and the query."""
        if not candidate_ids:
            return []
        try:
            gaps = backend.score(query_ids, candidate_ids, self._readout, batched=batched)
        except Exception as exc:
            raise SelectorError(f"llama.cpp failed while scoring candidates: {exc}") from exc
        _check_finite(gaps)
        return gaps

    # ------------------------------------------------------------ measuring
    def evaluate_tokens(self, query_ids: Sequence[int], candidate_ids: Sequence[Sequence[int]], *,
                        batched: bool | None = None) -> float:
        """Evaluate these tokens as :meth:`select` does and return the seconds it took (for benchmarks: the bare
        llama.cpp cost that :meth:`select` is compared against)."""
        with self._lock:
            return self._open_backend().time_route(list(query_ids), [list(c) for c in candidate_ids],
                                                   batched=self.batched if batched is None else batched)

    def one_batch_seconds(self, n_tokens: int) -> float:
        """Seconds llama.cpp takes for ``n_tokens`` tokens of one sequence in one decode after the cached prefix:
        its throughput ceiling for this model, adapter and thread count (for benchmarks)."""
        with self._lock:
            return self._open_backend().time_one_batch(n_tokens)

    def close(self) -> None:
        """Free the llama.cpp model now instead of at garbage collection."""
        with self._lock:
            backends = (self._backend, self._exact_backend)
            self._backend = self._exact_backend = None
            for backend in backends:
                if backend is not None:
                    backend.close()


def _merged_or_none(model_path: Path, adapter_path: Path) -> Path | None:
    """The cached merged file of model + adapter; None (run-time LoRA, with a warning) where it cannot be written."""
    from .merged import merged_selector_gguf

    try:
        return merged_selector_gguf(model_path, adapter_path)
    except WriteError as exc:
        logger.warning("%s; the adapter is applied at run time instead (slower)", exc)
        return None


def _check_finite(gaps: Sequence[float]) -> None:
    if not all(math.isfinite(v) for v in gaps):
        raise SelectorError("the selector model produced non-finite logits")


def _check_gguf(path: Path, what: str) -> None:
    """Fail clearly before llama.cpp sees a missing or non-GGUF file (it would only say 'failed to load')."""
    if not path.is_file():
        raise ModelNotFoundError(f"{what} file not found: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise ModelLoadError(f"{what} file {path} is not a GGUF file (bad magic bytes {magic!r})")
    if what == "adapter":
        # llama.cpp accepts a GGUF without tensors as an adapter and silently routes with the bare base model
        from .gguf_meta import read_gguf_metadata

        kind = read_gguf_metadata(path, "general.type").get("general.type")
        if kind != "adapter":
            raise ModelLoadError(f"adapter file {path} is not a LoRA adapter (its GGUF general.type is {kind!r}, "
                                 "not 'adapter'): export one with `gentool-router export`")


def _check_adapter_base(adapter: ArtefactMetadata, adapter_path: Path, model_path: Path,
                        model: ArtefactMetadata) -> None:
    """Refuse an adapter trained on another base model than ``model_path`` (its recorded base checksum).

    A base re-encoded by ``export --base-f16`` records the checksum of the base it came from, which stands for it;
    the packaged adapter over the packaged base is known to match and skips the hash.
    """
    if adapter.base_sha256 is None:
        return
    if model_path == base_selector_gguf() and adapter_path == default_adapter():
        return
    if model.base_sha256 is not None and model.base_sha256 == adapter.base_sha256:
        return
    adapter.check_base(adapter_path.name, model_path)
