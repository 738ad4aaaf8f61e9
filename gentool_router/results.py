"""Small frozen result types returned by the selector and the router."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .tools import NO_TOOL, Tool

__all__ = ["Choice", "Selection", "Candidate", "StageTimings", "Route"]


@dataclass(frozen=True)
class Choice:
    """One entry of a ranking: a tool name (or ``generate_response``) and its score (a probability for the
    GenTool selector, a cosine similarity for retrieval-only selection)."""

    name: str
    score: float


@dataclass(frozen=True)
class Selection:
    """What a selector returns for one query.

    Attributes:
        ranking: Every candidate plus ``generate_response`` (if the selector can abstain), best first.
        prompt_tokens: Tokens evaluated for this query (the cached static prefix not counted).
        cached_tokens: Tokens of the static prefix served from the cache.
        seconds: Wall time of the selection.
        logit_gaps: The selector's yes/no logit gap of each candidate, in the order given (None for selectors
            without one): the evidence the decision model weighs.
    """

    ranking: tuple[Choice, ...]
    prompt_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    logit_gaps: tuple[float, ...] | None = None

    @property
    def best(self) -> str:
        return self.ranking[0].name


@dataclass(frozen=True)
class Candidate:
    """A tool retrieved for a query, with its retrieval rank (0 = nearest) and cosine similarity."""

    tool: Tool
    retrieval_rank: int
    retrieval_score: float

    @property
    def name(self) -> str:
        return self.tool.name


@dataclass(frozen=True)
class StageTimings:
    """Seconds spent in each stage of one route (``embed`` is shared evenly in batch routing)."""

    embed: float
    search: float
    select: float
    decide: float = 0.0  # lexical scoring and the decision model

    @property
    def total(self) -> float:
        return self.embed + self.search + self.select + self.decide


@dataclass(frozen=True)
class Route:
    """The router's decision for one query.

    Attributes:
        query: The query as routed: control characters dropped, whitespace collapsed, cut at 20,000 characters.
        tool: The chosen tool, or None when no tool applies (the selector chose ``generate_response``).
        ranking: The selector's ranking of the candidates and ``generate_response``, best first.
        candidates: The retrieved candidates, in retrieval order.
        timings: Seconds per stage.
        prompt_tokens: Selector prompt tokens evaluated for this query (uncached).
        fallback: True when the selector failed and the top retrieval candidate was returned instead.
        fallback_reason: Why the selector failed, when ``fallback`` is True.
        decided_by: ``"decision"`` when the decision model over all the evidence chose (the default with the
            packaged selector), ``"selector"`` when the selector's own threshold did, ``"retrieval"`` otherwise.
        evidence: The :class:`~gentool_router.evidence.RouteEvidence` weighed (None for retrieval-only selection).
        explanation: Each option's evidence, weighted contributions and probability (``decided_by ==
            "decision"``), or the selector's ranking: why a tool won or why the router abstained.
    """

    query: str
    tool: Tool | None
    ranking: tuple[Choice, ...]
    candidates: tuple[Candidate, ...]
    timings: StageTimings
    prompt_tokens: int = 0
    fallback: bool = False
    fallback_reason: str | None = None
    decided_by: str = "selector"
    explanation: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    evidence: Any = field(default=None, compare=False, repr=False)  # RouteEvidence, when the selector gave gaps

    @property
    def name(self) -> str:
        """The chosen tool's name, or ``generate_response``."""
        return self.tool.name if self.tool is not None else NO_TOOL

    def to_dict(self, *, explanation: bool = False) -> dict[str, Any]:
        """JSON-ready form (what ``route --json`` prints and ``serve`` returns); ``explanation`` adds
        :attr:`explanation` (``--explain``), left out by default because it is most of the size."""
        data: dict[str, Any] = {
            "query": self.query,
            "tool": self.tool.name if self.tool is not None else None,
            "ranking": [asdict(c) for c in self.ranking],
            "candidates": [
                {"name": c.name, "retrieval_rank": c.retrieval_rank, "retrieval_score": c.retrieval_score}
                for c in self.candidates
            ],
            "timings": {**asdict(self.timings), "total": self.timings.total},
            "prompt_tokens": self.prompt_tokens,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
            "decided_by": self.decided_by,
        }
        if explanation:
            data["explanation"] = self.explanation
        return data
