"""The evidence behind one tool-or-none decision: what retrieval, lexical matching and the selector each say.

The router gathers a :class:`RouteEvidence` for every query; the decision model (``decision.py``) turns it into
calibrated probabilities. Keeping the evidence as plain numbers (saved in benchmark caches and shown by
``route --explain``) lets the decision be refit for a catalogue without running the selector again.

Raw cosine similarities differ from one catalogue to the next, so each candidate's similarity is also given
against the query's nearest ``STATS_DEPTH`` tools of this catalogue (a z-score), and the lexical score against
the best lexical score of the whole catalogue.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

__all__ = ["CandidateEvidence", "RouteEvidence", "CANDIDATE_FEATURES", "NONE_FEATURES", "STATS_DEPTH",
           "candidate_features", "none_features", "worth_scoring"]

#: Nearest tools whose similarities normalise a query's scores against its catalogue.
STATS_DEPTH = 50
#: The scale used instead when a catalogue has fewer tools than STATS_DEPTH: the mean and standard deviation of a
#: query's 50 nearest similarities, averaged over the large real catalogues of the suite (MetaTool, API-Bank, the
#: bundled one). Ten tools say little about a scale, and a z-score over them made small catalogues look like
#: "no tool fits" (BENCHMARKS.md, "Real catalogues").
REFERENCE_MEAN, REFERENCE_STD = 0.17, 0.065
#: Selector logit gaps are clipped to this magnitude (a gap of 30 says nothing more than one of 12).
GAP_CLIP = 12.0

#: Features of each candidate (one utility per candidate in the decision model).
CANDIDATE_FEATURES = ("cosine", "cosine_gap", "cosine_z", "retrieval_top", "lexical", "lexical_log", "lexical_top",
                      "lexical_top_strength", "selector_gap", "selector_gap_rel", "selector_top", "two_agree",
                      "all_agree")
#: Features of answering without a tool (the utility of ``generate_response``).
NONE_FEATURES = ("bias", "top_cosine", "top_cosine_z", "cosine_margin", "top_selector_gap", "lexical_best",
                 "query_words", "needs_tool")


@dataclass(frozen=True)
class CandidateEvidence:
    """One retrieved candidate: its retrieval rank and cosine, its BM25 score, the selector's yes/no logit gap."""

    name: str
    rank: int
    cosine: float
    lexical: float
    selector_gap: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RouteEvidence:
    """Everything the decision model sees for one query.

    Attributes:
        candidates: The retrieved candidates, in retrieval order.
        similarity_mean: Mean cosine of the query's nearest ``STATS_DEPTH`` tools (or all, in a smaller catalogue).
        similarity_std: Their standard deviation.
        similarity_count: How many similarities those are (fewer than ``STATS_DEPTH`` in a small catalogue, where
            the features use the reference scale instead).
        lexical_best: The highest BM25 score of any tool of the catalogue for this query.
        lexical_best_name: The tool with that score (lexical top-1), or None when no word matches.
        query_words: Words in the routed query.
        needs_tool: Log-odds that the query asks for a tool at all, from its embedding alone, whatever the
            catalogue (the decision model's query classifier; 0 when there is none): chit-chat, thanks and
            questions a model answers itself score low.
    """

    candidates: tuple[CandidateEvidence, ...]
    similarity_mean: float
    similarity_std: float
    lexical_best: float
    lexical_best_name: str | None
    query_words: int
    needs_tool: float = 0.0
    similarity_count: int = STATS_DEPTH

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": [c.to_dict() for c in self.candidates], "similarity_mean": self.similarity_mean,
                "similarity_std": self.similarity_std, "lexical_best": self.lexical_best,
                "lexical_best_name": self.lexical_best_name, "query_words": self.query_words,
                "needs_tool": self.needs_tool, "similarity_count": self.similarity_count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RouteEvidence":
        return cls(candidates=tuple(CandidateEvidence(**c) for c in data["candidates"]),
                   similarity_mean=float(data["similarity_mean"]), similarity_std=float(data["similarity_std"]),
                   lexical_best=float(data["lexical_best"]), lexical_best_name=data.get("lexical_best_name"),
                   query_words=int(data["query_words"]), needs_tool=float(data.get("needs_tool", 0.0)),
                   similarity_count=int(data.get("similarity_count", STATS_DEPTH)))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.candidates]


def _scale(evidence: RouteEvidence) -> tuple[float, float]:
    """The mean and standard deviation that z-scores use: the catalogue's own, or the reference in a small one."""
    if evidence.similarity_count < STATS_DEPTH:
        return REFERENCE_MEAN, REFERENCE_STD
    return evidence.similarity_mean, max(evidence.similarity_std, 1e-3)


def _gap(value: float) -> float:
    return max(-GAP_CLIP, min(GAP_CLIP, value))


def worth_scoring(rank: int, cosine: float, top_cosine: float, lexical_best: bool, margin: float | None) -> bool:
    """Whether the selector scores a retrieved candidate (the router's pruning, ``ToolRouter(prune_margin=...)``):
    the nearest tool and BM25's best always, any other only within ``margin`` of the nearest's cosine (None: all).

    One rule for the router and for the benchmarks that replay cached routes, so both prune alike."""
    return margin is None or rank == 0 or lexical_best or cosine >= top_cosine - margin


def candidate_features(evidence: RouteEvidence) -> list[list[float]]:
    """One row of :data:`CANDIDATE_FEATURES` per candidate."""
    cands = evidence.candidates
    if not cands:
        return []
    top_cosine = max(c.cosine for c in cands)
    top_gap = max(_gap(c.selector_gap) for c in cands)
    mean, std = _scale(evidence)
    best_lexical = max(evidence.lexical_best, 1e-9)
    rows = []
    for c in cands:
        gap = _gap(c.selector_gap)
        # BM25's best tool of the catalogue, and how strongly it matched: a near-copy of a description's words
        # (common in self-instructed corpora) is strong evidence, a single shared word is not
        lexical_top = 1.0 if evidence.lexical_best > 0 and c.name == evidence.lexical_best_name else 0.0
        rows.append([
            c.cosine,
            c.cosine - top_cosine,
            (c.cosine - mean) / std,
            1.0 if c.rank == 0 else 0.0,
            c.lexical / best_lexical if evidence.lexical_best > 0 else 0.0,
            math.log1p(max(c.lexical, 0.0)),
            lexical_top,
            lexical_top * math.log1p(max(evidence.lexical_best, 0.0)),
            gap,
            gap - top_gap,
            1.0 if gap == top_gap else 0.0,
        ])
        # retrieval, BM25 and the selector each name a best tool: where they agree, each is more often right
        votes = rows[-1][CANDIDATE_FEATURES.index("retrieval_top")] + lexical_top + rows[-1][-1]
        rows[-1].extend([1.0 if votes >= 2 else 0.0, 1.0 if votes == 3 else 0.0])
    return rows


def none_features(evidence: RouteEvidence) -> list[float]:
    """The row of :data:`NONE_FEATURES` for answering without a tool."""
    cosines = sorted((c.cosine for c in evidence.candidates), reverse=True) or [0.0]
    mean, std = _scale(evidence)
    return [
        1.0,
        cosines[0],
        (cosines[0] - mean) / std,
        cosines[0] - cosines[1] if len(cosines) > 1 else 0.0,
        max((_gap(c.selector_gap) for c in evidence.candidates), default=0.0),
        math.log1p(max(evidence.lexical_best, 0.0)),
        math.log1p(evidence.query_words),
        max(-GAP_CLIP, min(GAP_CLIP, evidence.needs_tool)),
    ]


def similarity_stats(similarities: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation of a query's nearest similarities (the catalogue's scale for this query)."""
    values = list(similarities)
    if not values:
        return 0.0, 1.0
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    return mean, math.sqrt(variance)
