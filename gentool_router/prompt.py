"""The one prompt format of the GenTool selector (DESIGN.md, contract 2).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

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
    "choice_probabilities",
]

#: Bump whenever the text or the tokenization of a prompt changes.
PROMPT_VERSION = "2"

ANSWER_YES = "yes"
ANSWER_NO = "no"
#: The score of ``generate_response``: a candidate is chosen only if it scores above this.
NO_TOOL_SCORE = 0.0
END_OF_TURN = "<|im_end|>"
#: At most this many candidates are scored for one query (each costs its own tokens).
MAX_CANDIDATES = 64
#: Longer queries are cut for the selector (the embedder has its own, shorter, limit).
MAX_QUERY_CHARS = 2000

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
