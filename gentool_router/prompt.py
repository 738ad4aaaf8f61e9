"""The one prompt format of the GenTool selector (docs/ARCHITECTURE.md, contract 2).

The trainer, the runtime selector and the exporter's parity check all build prompts here, so training and
inference cannot drift apart. :data:`PROMPT_VERSION` is stored with every trained model.

The selector scores each candidate against the query (SmolLM2's ChatML template)::

    <|im_start|>system\\n{SYSTEM}<|im_end|>\\n<|im_start|>user\\n   <- static prefix: evaluated once, cached
    Query: {query}\\n                                             <- once per route, cached for its candidates
    Tool: {tool text}<|im_end|>\\n<|im_start|>assistant\\n          <- once per candidate, after the query

and reads the logits of :data:`ANSWER_YES` and :data:`ANSWER_NO` at the end: a candidate's score is their
difference. ``generate_response`` (no tool fits) has the fixed score :data:`NO_TOOL_SCORE`, so a tool must score
above it to be chosen. The softmax over the candidates' scores and the no-tool score is the ranking
(:func:`choice_probabilities`); the answer can only ever be one of the candidates or no tool.

Why per candidate and not one prompt listing every candidate with letter labels (prompt version 1): the 135M
selector could not learn to bind letters to tools — dev accuracy stayed at chance after 1,600 training examples,
with the query last or first (BENCHMARKS.md, "Training"). Judging one tool at a time is what a small model
learns quickly, and it costs the same tokens: each candidate reuses the query's KV cache.

Training (``gentool_router_train``) uses the same scores: stage 1 (ranking) fits their order to the GenTool
ranking (target, weak variant, no tool, distractors) with a Plackett–Luce loss; stage 2 (selection) fits the
softmax to the one right choice.

Prompts are built as :class:`PromptPart` pieces: template text may contain special tokens; query and tool
text are tokenized with special-token parsing off, so a query or tool description containing ``<|im_end|>``
cannot forge the template.

Token budget (prompt version 3): on a CPU the prompt length is the latency, so one route costs at most
:func:`route_token_budget` uncached tokens (250 at k <= 5). :func:`encode_prompt` cuts the query at
:data:`MAX_QUERY_TOKENS` and, only when the route is still over budget, trims the longest tool texts first
(their ends: the name and arguments come first and are kept). Training encodes through the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .settings import MAX_K

__all__ = [
    "PROMPT_VERSION",
    "ANSWER_YES",
    "ANSWER_NO",
    "NO_TOOL_SCORE",
    "MAX_CANDIDATES",
    "MAX_QUERY_CHARS",
    "SYSTEM_TEXT",
    "END_OF_TURN",
    "PromptPart",
    "SelectorPrompt",
    "build_prompt",
    "prefix_parts",
    "encode_parts",
    "encode_prompt",
    "route_token_budget",
    "MAX_QUERY_TOKENS",
    "choice_probabilities",
]

#: Bump whenever the text or the tokenization of a prompt changes.
PROMPT_VERSION = "3"

ANSWER_YES = "yes"
ANSWER_NO = "no"
#: The score of ``generate_response``: a candidate is chosen only if it scores above this.
NO_TOOL_SCORE = 0.0
END_OF_TURN = "<|im_end|>"
#: At most this many candidates are scored for one query (each costs its own tokens): ``settings.MAX_K``.
MAX_CANDIDATES = MAX_K
#: Longer queries are cut for the selector (the embedder has its own, shorter, limit).
MAX_QUERY_CHARS = 2000
#: The selector reads at most this many query tokens (p95 of the training queries is 48).
MAX_QUERY_TOKENS = 64
#: Uncached tokens one route may cost at k <= 5 (query, candidates' tool texts and template) ...
ROUTE_TOKEN_BUDGET = 250
#: ... and per candidate for larger k.
CANDIDATE_TOKEN_BUDGET = 50
#: A trimmed tool text keeps at least this many tokens, whatever the budget.
MIN_TOOL_TOKENS = 12

SYSTEM_TEXT = "Does the tool do what the query asks, with the arguments and results it needs? Reply yes or no."


@dataclass(frozen=True)
class PromptPart:
    """A piece of prompt text.

    Attributes:
        text: The text.
        template: True for our own template text (special tokens such as ``<|im_end|>`` are parsed);
            False for user or tool text (tokenized as plain text, whatever it contains).
    """

    text: str
    template: bool


@dataclass(frozen=True)
class SelectorPrompt:
    """The per-route parts of a prompt.

    Attributes:
        query: Pieces following :func:`prefix_parts`: the query, shared by every candidate.
        candidates: For each candidate, the pieces following ``query``.
        tool_names: Candidate tool names, in the same order as ``candidates``.
    """

    query: tuple[PromptPart, ...]
    candidates: tuple[tuple[PromptPart, ...], ...]
    tool_names: tuple[str, ...]

    def text(self, index: int) -> str:
        """The full per-route text of one candidate (for display and debugging)."""
        return "".join(p.text for p in (*self.query, *self.candidates[index]))


def prefix_parts() -> tuple[PromptPart, ...]:
    """The static start of every prompt: identical for all routes, so llama.cpp evaluates it once."""
    return (PromptPart(f"<|im_start|>system\n{SYSTEM_TEXT}{END_OF_TURN}\n<|im_start|>user\n", template=True),)


def build_prompt(query: str, tool_names: Sequence[str], tool_texts: Sequence[str]) -> SelectorPrompt:
    """The per-route prompt parts for ``query`` and its candidates.

    Args:
        query: The user's query (whitespace collapsed, cut at :data:`MAX_QUERY_CHARS` characters).
        tool_names: Candidate names.
        tool_texts: Their canonical texts (:func:`gentool_router.tool_text.render_tool`).
    """
    if len(tool_names) != len(tool_texts):
        raise ValueError("tool_names and tool_texts differ in length")
    if len(tool_names) > MAX_CANDIDATES:
        raise ValueError(f"at most {MAX_CANDIDATES} candidates per query, got {len(tool_names)}")
    query_parts = (
        PromptPart("Query: ", template=True),
        PromptPart(" ".join(query.split())[:MAX_QUERY_CHARS], template=False),
        PromptPart("\n", template=True),
    )
    candidates = tuple(
        (
            PromptPart("Tool: ", template=True),
            PromptPart(text, template=False),
            PromptPart(f"{END_OF_TURN}\n<|im_start|>assistant\n", template=True),
        )
        for text in tool_texts
    )
    return SelectorPrompt(query_parts, candidates, tuple(tool_names))


def encode_parts(parts: Sequence[PromptPart], tokenize: Callable[[str, bool], list[int]]) -> list[int]:
    """Token ids of ``parts``, each tokenized on its own.

    ``tokenize(text, parse_special)`` is the model's tokenizer without a BOS token. Tokenizing piece by piece
    (not the joined string) is part of the format: the trainer and the runtime both go through here.
    """
    ids: list[int] = []
    for part in parts:
        if part.text:
            ids.extend(tokenize(part.text, part.template))
    return ids


def route_token_budget(candidates: int) -> int:
    """The most uncached tokens a route over ``candidates`` tools may cost."""
    return max(ROUTE_TOKEN_BUDGET, CANDIDATE_TOKEN_BUDGET * candidates)


def _trim_cap(lengths: Sequence[int], room: int) -> int | None:
    """The largest per-text cap keeping ``sum(min(length, cap))`` within ``room``; None when all fit."""
    if sum(lengths) <= room:
        return None
    low, high = 0, max(lengths)
    while low < high:  # largest cap that fits
        middle = (low + high + 1) // 2
        if sum(min(n, middle) for n in lengths) <= room:
            low = middle
        else:
            high = middle - 1
    return max(low, MIN_TOOL_TOKENS)


def encode_prompt(prompt: SelectorPrompt, tokenize: Callable[[str, bool], list[int]]
                  ) -> tuple[list[int], list[list[int]]]:
    """Token ids of the query part and of each candidate part, within :func:`route_token_budget`.

    The user text pieces (query, tool text) are cut at token level; template pieces are never cut.
    """
    query_ids: list[int] = []
    for part in prompt.query:
        ids = tokenize(part.text, part.template) if part.text else []
        query_ids.extend(ids if part.template else ids[:MAX_QUERY_TOKENS])
    pieces = [[tokenize(p.text, p.template) if p.text else [] for p in parts] for parts in prompt.candidates]
    text_lengths = [sum(len(ids) for ids, p in zip(row, parts) if not p.template)
                    for row, parts in zip(pieces, prompt.candidates)]
    fixed = len(query_ids) + sum(len(ids) for row, parts in zip(pieces, prompt.candidates)
                                 for ids, p in zip(row, parts) if p.template)
    cap = _trim_cap(text_lengths, route_token_budget(len(pieces)) - fixed)
    candidates = []
    for row, parts in zip(pieces, prompt.candidates):
        row_ids: list[int] = []
        for piece, part in zip(row, parts):
            row_ids.extend(piece if part.template or cap is None else piece[:cap])
        candidates.append(row_ids)
    return query_ids, candidates


def choice_probabilities(scores: Sequence[float], no_tool_score: float = NO_TOOL_SCORE) -> list[float]:
    """Softmax over the candidates' scores followed by the no-tool score (the last entry: no tool).

    A trained model may carry its own no-tool score, calibrated on held-out dev data (``gentool.no_tool_score``
    in its GGUF); :data:`NO_TOOL_SCORE` is what training uses.
    """
    values = [*scores, no_tool_score]
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]
