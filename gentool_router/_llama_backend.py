"""The llama.cpp specifics of the selector, over llama-cpp-python's low-level bindings (``llama_cpp.llama_cpp``).

:class:`LlamaBackend` owns one model, its LoRA adapter and one context, and scores candidates as the selector's
prompt format asks (:mod:`gentool_router.prompt`): the static prefix is evaluated once and kept in the KV cache
(sequence 0); a route's query and its candidates are then evaluated after it, and each candidate's score is
``logit(a) - logit(b)`` at its last token. Nothing outside this module touches llama.cpp.

Two ways to score a route, giving the same scores within float rounding:

- **batched** (the default): one ``llama_decode`` for the whole route. Each candidate is its own sequence
  (ids 1..k), starting as a copy of the cached prefix (``llama_memory_seq_cp``: no tokens are recomputed, the
  unified KV cache only tags the prefix cells with the new sequence ids). The query's tokens are in the batch once,
  tagged with every candidate's sequence id, so their KV entries are computed once and shared; each candidate's
  tokens follow with their own sequence id, positions continuing after the query, logits requested only at each
  candidate's last token. Afterwards ``llama_memory_seq_keep(0)`` drops everything but the prefix.
  Several routes (queries) can share one decode the same way (:meth:`LlamaBackend.score_routes`).
- **sequential** (the reference, and the path before batching): the query evaluated after the prefix in
  sequence 0, then each candidate evaluated on its own after it, the KV cache rewound to the end of the query
  between candidates: one decode per candidate.

How equal: llama.cpp's sums run in an order that depends on where a candidate's entries sit in the KV cache, and
this Q4_1 model's logit gaps are sensitive to it (probably because activations are re-quantised to 8 bits before
each matrix product, where a rounding difference can flip a step). Batched against sequential: max |gap
difference| 0.38, mean 0.05 over 24 routes at k = 5 without flash attention (the selector's default), 0.76 / 0.11
with it; the sequential path alone moves by up to 0.19 when its candidate's cells are shifted by one cell.
Decisions with flash attention: 1 of 40 Seal-Tools routes and 0 of 40 bundled example routes changed against the
selector before batching; without it 0 of 24 (tests/test_llama_backend.py states the bounds). Without flash
attention the sequential path reproduces the selector before batching (``llama_cpp.Llama``) exactly.

Why only a little faster: on a CPU llama.cpp's throughput on this model does not grow with the batch (2 AVX2
cores: one sequence of 128, 256, 512 tokens at 306, 284, 248 tokens/s; the sequential path's ~35-token decodes
already reach ~280), so one decode per route saves only the per-decode overhead: 8-13% of a k = 5 route, little
at k = 64 (``benchmarks/bench_route.py --compare``).

Why the context is made here and not through ``llama_cpp.Llama``: ``Llama`` makes a one-sequence context
(no ``n_seq_max`` or ``kv_unified`` argument), and its ``eval`` decodes a single sequence only.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ModelLoadError
from .settings import DEFAULT_N_CTX, MAX_K

__all__ = ["LlamaBackend", "BackendError"]

#: Architectures llama.cpp loads that are encoders, not language models the selector can run.
ENCODER_ARCHITECTURES = frozenset({"bert", "nomic-bert", "jina-bert-v2", "t5encoder"})

_backend_lock = threading.Lock()
_backend_ready = False


class BackendError(RuntimeError):
    """llama.cpp refused or failed an operation (the selector reports it as a ``SelectorError``)."""


def _bindings() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - it is a runtime dependency
        raise ModelLoadError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
    return llama_cpp


def _init_backend(llama_cpp: Any, verbose: bool) -> None:
    global _backend_ready
    # llama-cpp-python routes llama.cpp's log through this logger; llama_cpp.Llama sets its level the same way
    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if verbose else logging.ERROR)
    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True


class LlamaBackend:
    """One llama.cpp model (with an optional LoRA adapter) and a context that scores many sequences at once.

    Not thread-safe: the caller serialises use (``LlamaSelector`` holds a lock).

    Args:
        model_path: GGUF model.
        adapter_path: GGUF LoRA adapter applied to every evaluation, or None.
        n_threads: CPU threads (for single tokens and batches alike).
        n_gpu_layers: Layers to offload to a GPU (negative: all).
        n_ctx: KV cache cells, shared by all sequences: the prefix, a route's query and all of its candidates
            fit when ``n_ctx`` allows, else a route is scored in several decodes.
        max_sequences: Most candidate sequences (and logit rows) one decode holds.
        n_ubatch: Tokens llama.cpp computes per step of a decode.
        flash_attn: llama.cpp's flash attention; it skips the masked-out cells of the other sequences, which a
            batch of many sequences has many of (without it, attention runs over every cell of the decode).
        decode_tokens: Most tokens one batched decode holds; default: the whole context with flash attention,
            512 without (a k = 64 route in one decode without flash attention took 14 s against 8.5 s
            sequentially).
        verbose: llama.cpp's log on stderr.
    """

    def __init__(
        self,
        model_path: Path,
        adapter_path: Path | None,
        *,
        n_threads: int,
        n_gpu_layers: int = 0,
        n_ctx: int = DEFAULT_N_CTX,
        max_sequences: int = MAX_K,
        n_ubatch: int = 512,
        flash_attn: bool = True,
        decode_tokens: int | None = None,
        verbose: bool = False,
    ) -> None:
        llama_cpp = _bindings()
        self._api = llama_cpp
        self.model_path = Path(model_path)
        self.adapter_path = Path(adapter_path) if adapter_path is not None else None
        # llama.cpp handles (ctypes pointers from the untyped bindings), set by _load
        self._model: Any = None
        self._ctx: Any = None
        self._adapter: Any = None
        self._vocab: Any = None
        _init_backend(llama_cpp, verbose)
        target = f"{model_path} with adapter {adapter_path}" if adapter_path else str(model_path)
        try:
            self._load(model_path, adapter_path, n_threads, n_gpu_layers, n_ctx, max_sequences, n_ubatch,
                       flash_attn, target)
        except BaseException:
            self.close()
            raise
        self.n_ctx = int(llama_cpp.llama_n_ctx(self._ctx))
        self.n_batch = int(llama_cpp.llama_n_batch(self._ctx))
        self.max_sequences = max_sequences
        if decode_tokens is None:  # without flash attention every token computes over every cell of the decode
            decode_tokens = self.n_batch if flash_attn else 512
        self.decode_tokens = min(decode_tokens, self.n_batch)
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        # one batch's buffers, reused: tokens, positions, sequence-id count and pointer per token, output flags.
        # A token's sequence ids are a run of self._seq_table (ids 0..max_sequences), so a query token shared by
        # candidates 1..k points at table[1] with count k: no per-token id lists to write.
        capacity = self.n_batch
        self._tokens = np.zeros(capacity, dtype=np.int32)
        self._pos = np.zeros(capacity, dtype=np.int32)
        self._n_seq = np.ones(capacity, dtype=np.int32)
        self._seq_ptr = np.zeros(capacity + 1, dtype=np.uintp)  # NULL-terminated, as llama_batch_init makes it
        self._outputs = np.zeros(capacity, dtype=np.int8)
        self._seq_table = np.arange(max_sequences + 1, dtype=np.int32)
        self._seq_base = self._seq_table.ctypes.data
        self.prefix_ids: list[int] = []
        self._prefix_ready = False
        #: How many times the prefix was evaluated (1 while the cache holds it; tests read it).
        self.prefix_evaluations = 0

    # ------------------------------------------------------------ loading
    def _load(self, model_path: Path, adapter_path: Path | None, n_threads: int, n_gpu_layers: int, n_ctx: int,
              max_sequences: int, n_ubatch: int, flash_attn: bool, target: str) -> None:
        L = self._api
        if not 1 <= max_sequences < L.llama_max_parallel_sequences():
            raise ValueError(f"max_sequences must be 1..{L.llama_max_parallel_sequences() - 1}, got {max_sequences}")
        model_params = L.llama_model_default_params()
        model_params.n_gpu_layers = n_gpu_layers
        model_params.load_mode = L.LLAMA_LOAD_MODE_MMAP
        self._model = L.llama_model_load_from_file(str(model_path).encode("utf-8"), model_params)
        if not self._model:
            raise ModelLoadError(f"llama.cpp could not load {target}: it failed to read the model (a truncated file, "
                                 "an architecture this llama.cpp does not know, or too little memory)")
        architecture = self.metadata("general.architecture") or ""
        if architecture in ENCODER_ARCHITECTURES:
            raise ModelLoadError(f"{model_path} is a {architecture} encoder, not a language model the selector can run")
        self._vocab = L.llama_model_get_vocab(self._model)
        if not self._vocab:
            raise ModelLoadError(f"llama.cpp could not load {target}: the model has no vocabulary")
        params = L.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_ctx  # one decode may fill the whole cache; llama.cpp computes it n_ubatch at a time
        params.n_ubatch = min(n_ubatch, n_ctx)
        params.n_seq_max = max_sequences + 1  # sequence 0 (the prefix) and one per candidate
        # logit rows one decode returns (n_vocab floats each); llama.cpp asserts it is at least n_seq_max
        params.n_outputs_max = max_sequences + 1
        params.n_outputs_max_per_seq = 1
        params.kv_unified = True  # one cache shared by all sequences: a copied prefix costs no cells
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.embeddings = False
        params.no_perf = True
        self._ctx = L.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise ModelLoadError(f"llama.cpp could not make a context for {target} (n_ctx={n_ctx}, "
                                 f"{max_sequences + 1} sequences): too little memory?")
        if adapter_path is not None:
            self._adapter = L.llama_adapter_lora_init(self._model, str(adapter_path).encode("utf-8"))
            if not self._adapter:
                raise ModelLoadError(f"llama.cpp could not load {target}: the adapter does not fit this model "
                                     "(another base model or architecture?)")
            adapters = (L.llama_adapter_lora_p_ctypes * 1)(self._adapter)
            scales = (ctypes.c_float * 1)(1.0)
            if L.llama_set_adapters_lora(self._ctx, adapters, 1, scales) != 0:
                raise ModelLoadError(f"llama.cpp could not apply the adapter of {target}")

    def metadata(self, key: str) -> str | None:
        """A GGUF metadata value of the model, as text (None when absent)."""
        size = 256
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = self._api.llama_model_meta_val_str(self._model, key.encode("utf-8"), buffer, size)
            if n < 0:
                return None
            if n < size:
                return buffer.value.decode("utf-8", errors="replace")
            size = n + 1

    # ---------------------------------------------------------- tokenizing
    @property
    def add_bos(self) -> bool:
        """Whether the model expects a BOS token at the start of a prompt."""
        return bool(self._api.llama_vocab_get_add_bos(self._vocab))

    @property
    def bos_token(self) -> int:
        return int(self._api.llama_vocab_bos(self._vocab))

    def tokenize(self, text: str, parse_special: bool) -> list[int]:
        """Token ids of ``text`` without BOS; invalid UTF-8 surrogates are replaced, never raised."""
        self._check_open()
        data = text.encode("utf-8", errors="replace")
        size = len(data) + 8
        for _ in range(2):
            buffer = (ctypes.c_int32 * size)()
            n = self._api.llama_tokenize(self._vocab, data, len(data), buffer, size, False, parse_special)
            if n >= 0:
                return list(buffer[:n])
            size = -n
        raise BackendError(f"llama.cpp could not tokenize a text of {len(data)} bytes")

    def set_prefix(self, ids: Sequence[int]) -> None:
        """The static prompt start every route follows (with BOS when the model wants one): evaluated once."""
        self.prefix_ids = [self.bos_token, *ids] if self.add_bos else list(ids)
        self._prefix_ready = False

    # -------------------------------------------------------------- scoring
    def score(self, query_ids: Sequence[int], candidate_ids: Sequence[Sequence[int]], readout: tuple[int, int],
              *, batched: bool = True) -> list[float]:
        """``logit(readout[0]) - logit(readout[1])`` after each candidate, which follows the prefix and the query."""
        if batched:
            return self.score_routes([(query_ids, candidate_ids)], readout)[0]
        return self._guarded(self._score_sequential, query_ids, candidate_ids, readout)

    def score_routes(self, routes: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
                     readout: tuple[int, int]) -> list[list[float]]:
        """:meth:`score` for several routes (query ids, candidates' ids), batched: as few decodes as fit."""
        return self._guarded(self._score_batched, routes, readout)

    def _check_open(self) -> None:
        if self._ctx is None:
            raise BackendError("the llama.cpp model was closed")

    def _guarded(self, method: Any, *args: Any) -> Any:
        self._check_open()
        try:
            return method(*args)
        except BaseException:
            self._prefix_ready = False  # the cache may hold anything now: start again from an empty one
            raise

    def _ensure_prefix(self) -> None:
        if self._prefix_ready:
            return
        self._api.llama_memory_clear(self._mem, True)
        for start in range(0, len(self.prefix_ids), self.n_batch):
            chunk = self.prefix_ids[start:start + self.n_batch]
            self._decode([(chunk, 0, 1, start, False)])
        self.prefix_evaluations += 1
        self._prefix_ready = True

    def _score_sequential(self, query_ids: Sequence[int], candidate_ids: Sequence[Sequence[int]],
                          readout: tuple[int, int]) -> list[float]:
        """One decode per candidate, in sequence 0, the cache rewound to the end of the query between them."""
        L = self._api
        self._ensure_prefix()
        after_prefix = len(self.prefix_ids)
        after_query = after_prefix + len(query_ids)
        gaps = []
        try:
            if query_ids:
                self._decode([(query_ids, 0, 1, after_prefix, False)])
            for ids in candidate_ids:
                L.llama_memory_seq_rm(self._mem, 0, after_query, -1)
                rows = self._decode([(ids, 0, 1, after_query, True)])
                gaps.append(self._gap(rows[0], readout))
        finally:
            L.llama_memory_seq_rm(self._mem, 0, after_prefix, -1)
        return gaps

    def _score_batched(self, routes: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
                       readout: tuple[int, int]) -> list[list[float]]:
        L = self._api
        self._ensure_prefix()
        after_prefix = len(self.prefix_ids)
        results: list[list[float]] = [[0.0] * len(candidates) for _, candidates in routes]
        for group in self._plan(routes, after_prefix):
            # group: [(route index, [candidate indices])]; sequences 1..n in the order listed
            pieces = []
            outputs = []  # (route, candidate) per output row, in batch order
            seq = 1
            for r, indices in group:
                query_ids, candidates = routes[r]
                first = seq
                for _ in indices:
                    L.llama_memory_seq_cp(self._mem, 0, seq, -1, -1)
                    seq += 1
                after_query = after_prefix + len(query_ids)
                if query_ids:
                    pieces.append((query_ids, first, len(indices), after_prefix, False))
                for offset, c in enumerate(indices):
                    pieces.append((candidates[c], first + offset, 1, after_query, True))
                    outputs.append((r, c))
            try:
                rows = self._decode(pieces)
            finally:
                L.llama_memory_seq_keep(self._mem, 0)  # back to the prefix alone
            for (r, c), row in zip(outputs, rows):
                results[r][c] = self._gap(row, readout)
        return results

    def _plan(self, routes: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
              after_prefix: int) -> list[list[tuple[int, list[int]]]]:
        """Routes' candidates packed into decodes that fit the batch, the cache and the sequence limit.

        A route split over decodes repeats its query in each (its tokens must precede its candidates' in the
        cache)."""
        room = min(self.decode_tokens, self.n_ctx - after_prefix)
        groups: list[list[tuple[int, list[int]]]] = []
        current: list[tuple[int, list[int]]] = []
        used_tokens = used_seqs = 0
        for r, (query_ids, candidates) in enumerate(routes):
            part: list[int] = []
            for c, ids in enumerate(candidates):
                if not ids:
                    raise BackendError("a candidate has no tokens")
                need = len(ids) + (0 if part else len(query_ids))
                if used_tokens + need > room or used_seqs + 1 > self.max_sequences:
                    if part:
                        current.append((r, part))
                    if current:
                        groups.append(current)
                    current, part, used_tokens, used_seqs = [], [], 0, 0
                    need = len(ids) + len(query_ids)
                    if need > room:
                        raise BackendError(f"a query and one candidate need {need} tokens after the prefix, "
                                           f"more than the {room} the context has room for")
                part.append(c)
                used_tokens += need
                used_seqs += 1
            if part:
                current.append((r, part))
        if current:
            groups.append(current)
        return groups

    def _decode(self, pieces: Sequence[tuple[Sequence[int], int, int, int, bool]]) -> list[Any]:
        """One ``llama_decode`` of ``pieces``: (token ids, first sequence id, number of sequence ids, first
        position, logits at the last token). Returns the logit rows asked for, in order."""
        L = self._api
        n = sum(len(ids) for ids, *_ in pieces)
        if n == 0:
            return []
        if n > self.n_batch:
            raise BackendError(f"{n} tokens in one decode, more than n_batch={self.n_batch}")
        at = 0
        output_index = []
        for ids, first_seq, n_seqs, start, want in pieces:
            m = len(ids)
            end = at + m
            self._tokens[at:end] = ids
            self._pos[at:end] = np.arange(start, start + m, dtype=np.int32)
            self._n_seq[at:end] = n_seqs
            self._seq_ptr[at:end] = self._seq_base + 4 * first_seq
            self._outputs[at:end] = 0
            if want:
                self._outputs[end - 1] = 1
                output_index.append(end - 1)
            at = end
        batch = L.llama_batch(
            n_tokens=n,
            token=self._tokens.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            embd=None,
            pos=self._pos.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            n_seq_id=self._n_seq.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            seq_id=self._seq_ptr.ctypes.data_as(ctypes.POINTER(ctypes.POINTER(ctypes.c_int32))),
            logits=self._outputs.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )
        code = L.llama_decode(self._ctx, batch)
        if code != 0:
            meaning = {1: "no room in the KV cache", 2: "aborted", -1: "invalid batch"}.get(code, "fatal error")
            raise BackendError(f"llama_decode returned {code} ({meaning}) for {n} tokens in {len(pieces)} pieces")
        rows = []
        for i in output_index:
            row = L.llama_get_logits_ith(self._ctx, i)
            if not row:
                raise BackendError(f"llama.cpp returned no logits for batch position {i}")
            rows.append(row)
        return rows

    @staticmethod
    def _gap(row: Any, readout: tuple[int, int]) -> float:
        return float(row[readout[0]]) - float(row[readout[1]])

    # ------------------------------------------------------------ measuring
    def time_route(self, query_ids: Sequence[int], candidate_ids: Sequence[Sequence[int]], *,
                   batched: bool = True) -> float:
        """Seconds to evaluate one route's tokens as :meth:`score` does, the prefix already cached (benchmarks)."""
        import time

        self._guarded(self._ensure_prefix)
        start = time.perf_counter()
        self.score(query_ids, candidate_ids, (0, 0), batched=batched)
        return time.perf_counter() - start

    def time_one_batch(self, n_tokens: int, token: int | None = None) -> float:
        """Seconds llama.cpp takes for ``n_tokens`` tokens of one sequence in one decode, after the prefix:
        its best case for this model, adapter and thread count (benchmarks)."""
        import time

        L = self._api
        self._guarded(self._ensure_prefix)
        ids = [self.bos_token if token is None else token] * n_tokens
        after_prefix = len(self.prefix_ids)
        start = time.perf_counter()
        try:
            self._guarded(self._decode, [(ids, 0, 1, after_prefix, True)])
        finally:
            L.llama_memory_seq_rm(self._mem, 0, after_prefix, -1)
        return time.perf_counter() - start

    def cache_state(self) -> dict[int, tuple[int, int]]:
        """Positions (first, last) each non-empty sequence holds in the KV cache (tests)."""
        state = {}
        for seq in range(self.max_sequences + 1):
            last = int(self._api.llama_memory_seq_pos_max(self._mem, seq))
            if last >= 0:
                state[seq] = (int(self._api.llama_memory_seq_pos_min(self._mem, seq)), last)
        return state

    # ------------------------------------------------------------- closing
    def close(self) -> None:
        """Free the context, the adapter and the model (in that order); safe to call twice."""
        L = self._api
        ctx, self._ctx = self._ctx, None
        adapter, self._adapter = self._adapter, None
        model, self._model = self._model, None
        self._prefix_ready = False
        if ctx:
            L.llama_free(ctx)
        if adapter:
            L.llama_adapter_lora_free(adapter)
        if model:
            L.llama_model_free(model)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
