"""The router's settings and their defaults, in one place.

Every default that the Python API (:class:`~gentool_router.router.ToolRouter`,
:class:`~gentool_router.selector.LlamaSelector`, the embedders, :func:`~gentool_router.evaluation.evaluate`), the
command line, the HTTP service, the MCP gateway and the LangChain classes share is a field of
:class:`RouterSettings`. Its instance :data:`DEFAULTS` holds them, and the module constants below
(:data:`DEFAULT_K`, :data:`MAX_K`, ...) are its values under the names the code imports: a signature's default, a
CLI option's default, range and help text all read them, so they cannot disagree. Change a default here and every
front end follows (the tests in ``tests/test_settings.py`` check that they do).

What is not here: constants of the trained artefact (``prompt.NO_TOOL_SCORE``, the prompt's token budgets, the
decision model's ``min_catalogue_tools``, stored in its file), internal tuning of one module (``evidence.STATS_DEPTH``,
``index.PROGRESS_THRESHOLD``, ``embedder.TORCH_BATCH_THRESHOLD``), the HTTP service's request limits
(``serve.MAX_BATCH``, ``serve.MAX_BODY_BYTES``) and the training run's settings (``gentool_router_train.config``).

This module imports nothing of the package, so any module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Optional

__all__ = [
    "RouterSettings",
    "DEFAULTS",
    "Packaged",
    "PACKAGED",
    "Fallback",
    "DEFAULT_K",
    "MAX_K",
    "DEFAULT_N_CTX",
    "DEFAULT_N_GPU_LAYERS",
    "DEFAULT_MERGE_ADAPTER",
    "DEFAULT_PRUNE_MARGIN",
    "DEFAULT_SMALL_PRUNE_MARGIN",
    "DEFAULT_CONFIRM_MARGIN",
    "DEFAULT_FLASH_ATTN",
    "DEFAULT_EMBED_BATCH_SIZE",
    "DEFAULT_ON_SELECTOR_ERROR",
    "DEFAULT_CONTEXT_TURNS",
    "DEFAULT_MAX_TOOLS",
    "DEFAULT_HOST",
    "DEFAULT_SERVE_PORT",
    "DEFAULT_GATEWAY_PORT",
    "DEFAULT_CONNECT_TIMEOUT",
]

#: The type of the ``"default"`` sentinel of ``adapter_path=`` (:class:`~gentool_router.selector.LlamaSelector`)
#: and ``decision=`` (:class:`~gentool_router.router.ToolRouter`): "the one shipped for the packaged selector"
#: (the packaged GenTool adapter when the model is the packaged base; the packaged decision model). A plain string,
#: not an object of its own, because it travels as text: ``router.json`` saves ``"decision": "default"``, and
#: callers already pass the string.
Packaged = Literal["default"]
#: The sentinel's value.
PACKAGED: Final[Packaged] = "default"

#: ``on_selector_error=``: ``"retrieval"`` falls back to the nearest candidate (the route is flagged), ``"raise"``
#: raises :class:`~gentool_router.errors.SelectorError`.
Fallback = Literal["retrieval", "raise"]


@dataclass(frozen=True)
class RouterSettings:
    """The router's settings with their defaults (each front end's default for the same knob).

    Attributes:
        k: Candidates retrieved per query and scored by the selector: toolsets of five, as in the GenTool paper
            (the selector was trained on them; ``generate-data`` simulates toolsets of this size by default).
            More candidates find more right tools but cost selector time (about 50 prompt tokens each).
        max_k: The most candidates the llama.cpp selector scores per query (``prompt.MAX_CANDIDATES``): each is
            its own llama.cpp sequence, and a route's prompt must stay within the context. The CLI's ``--k``
            range, the HTTP service's and the MCP gateway's ``k`` checks and ``generate-data``'s toolset size
            stop here; a larger ``k`` with the llama.cpp selector is a ``ConfigError``.
        n_threads: CPU threads for the selector; None: the cores this process may use
            (``selector.default_threads``: llama.cpp's threads collapse when oversubscribed).
        n_gpu_layers: Selector layers offloaded to a GPU; 0 runs on the CPU (the wheel ``make`` builds has no GPU
            support).
        merge_adapter: Run a selector adapter merged into its base as one q8_0 file (built once into the cache,
            ``gentool_router.merged``) rather than as a LoRA applied at run time: about half the select time, the
            same answers within float rounding (BENCHMARKS.md, "Route in half the time").
        flash_attn: llama.cpp's flash attention in the selector: faster attention, scores within float rounding.
        n_ctx: The selector's context in tokens, shared by a route's candidates: the cached prefix, the query and
            all candidates of a k = 5 route fit many times over; a longer route is scored in several decodes.
        embed_batch_size: Texts embedded per batch (tool texts when indexing; queries of ``route_batch``).
        hybrid: BM25's best tool of the catalogue takes the k-th place when the embedding missed it.
        prune_margin: Candidates whose retrieval cosine is more than this below the nearest tool's are not scored
            (the nearest and BM25's best always are): about a quarter fewer selector tokens at the same accuracy
            on the real-catalogue suite, the margin chosen on its fitting sets (BENCHMARKS.md, "Route in half the
            time"); None scores all k.
        small_prune_margin: ``prune_margin`` for catalogues under 50 tools (the decision model's small part): there
            the nearest tool is right more often than the selector's best, and the selector's scores of farther
            candidates add noise rather than answers, so fewer are scored (BENCHMARKS.md, "Fewer candidates in
            small catalogues"); None scores all k.
        confirm_margin: A route decided by less than this (the probability of its answer minus the runner-up's)
            with the fast arithmetic (``merge_adapter``, ``flash_attn``) is scored again with the exact one (run-time
            LoRA, no flash attention), which decides: about 10% of routes on the real-catalogue suite, keeping
            99.5% of decisions as the exact arithmetic makes them (BENCHMARKS.md, "Route in half the time"); None
            never scores twice.
        on_selector_error: What a route does when the selector fails (:data:`Fallback`).
        context_turns: User messages routed together for a conversation, latest last
            (``conversation.routing_text``; the LangChain middleware and graph node, the HTTP ``messages`` field):
            1 routes the latest alone.
        max_tools: Routed tools the LangChain middleware and graph node offer the model per call.
        host: Address ``serve`` and the MCP gateway listen on: this machine only (``0.0.0.0``: every interface).
        serve_port: Port of the HTTP service (``gentool-router serve``).
        gateway_port: Port of the MCP gateway over streamable HTTP.
        connect_timeout: Seconds each MCP server the gateway fronts has to start and list its tools.
    """

    k: int = 5
    max_k: int = 64
    n_threads: Optional[int] = None
    n_gpu_layers: int = 0
    merge_adapter: bool = True
    flash_attn: bool = True
    n_ctx: int = 4096
    embed_batch_size: int = 64
    hybrid: bool = True
    prune_margin: Optional[float] = 0.15
    small_prune_margin: Optional[float] = 0.06
    confirm_margin: Optional[float] = 0.10
    on_selector_error: Fallback = "retrieval"
    context_turns: int = 1
    max_tools: int = 1
    host: str = "127.0.0.1"
    serve_port: int = 8080
    gateway_port: int = 8000
    connect_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.max_k:
            raise ValueError(f"k must be from 1 to max_k = {self.max_k}, got {self.k}")
        if self.on_selector_error not in ("retrieval", "raise"):
            raise ValueError(f"on_selector_error must be 'retrieval' or 'raise', got {self.on_selector_error!r}")
        for name in ("prune_margin", "small_prune_margin"):
            margin = getattr(self, name)
            if margin is not None and not 0 <= margin <= 2:
                raise ValueError(f"{name} must be from 0 to 2 (a cosine difference) or None, got {margin}")
        if self.confirm_margin is not None and not 0 <= self.confirm_margin <= 1:
            raise ValueError(f"confirm_margin must be from 0 to 1 (a probability margin) or None, got "
                             f"{self.confirm_margin}")
        for name in ("n_ctx", "embed_batch_size", "context_turns", "max_tools"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


#: The defaults every front end uses.
DEFAULTS: Final = RouterSettings()

DEFAULT_K: Final = DEFAULTS.k
MAX_K: Final = DEFAULTS.max_k
DEFAULT_N_CTX: Final = DEFAULTS.n_ctx
DEFAULT_N_GPU_LAYERS: Final = DEFAULTS.n_gpu_layers
DEFAULT_MERGE_ADAPTER: Final = DEFAULTS.merge_adapter
DEFAULT_PRUNE_MARGIN: Final = DEFAULTS.prune_margin
DEFAULT_SMALL_PRUNE_MARGIN: Final = DEFAULTS.small_prune_margin
DEFAULT_CONFIRM_MARGIN: Final = DEFAULTS.confirm_margin
DEFAULT_FLASH_ATTN: Final = DEFAULTS.flash_attn
DEFAULT_EMBED_BATCH_SIZE: Final = DEFAULTS.embed_batch_size
DEFAULT_ON_SELECTOR_ERROR: Final[Fallback] = DEFAULTS.on_selector_error
DEFAULT_CONTEXT_TURNS: Final = DEFAULTS.context_turns
DEFAULT_MAX_TOOLS: Final = DEFAULTS.max_tools
DEFAULT_HOST: Final = DEFAULTS.host
DEFAULT_SERVE_PORT: Final = DEFAULTS.serve_port
DEFAULT_GATEWAY_PORT: Final = DEFAULTS.gateway_port
DEFAULT_CONNECT_TIMEOUT: Final = DEFAULTS.connect_timeout
