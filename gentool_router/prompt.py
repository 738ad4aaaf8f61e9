"""The one prompt format of the GenTool selector (DESIGN.md, contract 2).

The data generator, the trainer, the runtime selector and the exporter's parity check all build prompts here,
so training and inference cannot drift apart. :data:`PROMPT_VERSION` is stored with every trained model.

Layout (SmolLM2's ChatML template)::

    <|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nTools:\n     <- static prefix, evaluated once, cached
    A. {tool text}\nB. {tool text}\n...\nQuery: {query}<|im_end|>\n         <- per route
    <|im_start|>assistant\n                                              <- answer follows: one label

Candidates get one-letter labels ``A``, ``B``, ...; the pseudo-tool ``generate_response`` always has the label
:data:`NO_TOOL_LABEL` and is described once in the cached system text, so it costs no per-route tokens. The
selector reads the next-token logits of these labels only, so it can never name a tool outside the candidates.

Training targets share the same prompt: stage 1 (ranking) answers with every label, best first, joined by
:data:`RANK_SEPARATOR`; stage 2 (selection) answers with the best label alone. Either way the first answer
token is the selection, which is what the runtime reads.

Prompts are built as :class:`PromptPart` pieces: template text may contain special tokens; query and tool
text are tokenized with special-token parsing off, so a query or tool description containing ``<|im_end|>``
cannot forge the template.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Callable, Sequence

from .tools import NO_TOOL

__all__ = [
    "PROMPT_VERSION",
    "NO_TOOL_LABEL",
    "RANK_SEPARATOR",
    "MAX_CANDIDATES",
    "MAX_QUERY_CHARS",
    "SYSTEM_TEXT",
    "PromptPart",
    "SelectorPrompt",
    "candidate_labels",
    "build_prompt",
    "prefix_parts",
    "encode_parts",
    "ranking_target",
    "selection_target",
    "END_OF_TURN",
]

#: Bump whenever the text or the tokenization of a prompt changes.
PROMPT_VERSION = "1"

NO_TOOL_LABEL = "0"
RANK_SEPARATOR = ">"
END_OF_TURN = "<|im_end|>"
#: Letters used as candidate labels; at most this many candidates fit one prompt.
_LABELS = string.ascii_uppercase
MAX_CANDIDATES = len(_LABELS)
#: Longer queries are cut for the selector (the embedder has its own, shorter, limit).
MAX_QUERY_CHARS = 2000

SYSTEM_TEXT = (
    "Pick the tool that best does what the query asks. "
    "Prefer the tool whose name, description, arguments and results match the query most fully. "
    f"Reply with its letter. If no listed tool fits, reply {NO_TOOL_LABEL} ({NO_TOOL}: answer directly)."
)


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
    """The per-route part of a prompt and what its labels mean.

    Attributes:
        parts: Pieces following :func:`prefix_parts` (candidates, query, start of the answer turn).
        labels: Candidate labels in prompt order; ``labels[i]`` names ``tool_names[i]``.
        tool_names: Candidate tool names in prompt order.
    """

    parts: tuple[PromptPart, ...]
    labels: tuple[str, ...]
    tool_names: tuple[str, ...]

    def label_to_tool(self) -> dict[str, str]:
        """Label → tool name, including :data:`NO_TOOL_LABEL` → ``generate_response``."""
        mapping = dict(zip(self.labels, self.tool_names))
        mapping[NO_TOOL_LABEL] = NO_TOOL
        return mapping

    def text(self) -> str:
        return "".join(p.text for p in self.parts)


def candidate_labels(k: int) -> tuple[str, ...]:
    """The labels of ``k`` candidates, in prompt order."""
    if not 0 <= k <= MAX_CANDIDATES:
        raise ValueError(f"between 0 and {MAX_CANDIDATES} candidates fit one prompt, got {k}")
    return tuple(_LABELS[:k])


def prefix_parts() -> tuple[PromptPart, ...]:
    """The static start of every prompt: identical for all routes, so llama.cpp evaluates it once."""
    return (
        PromptPart(f"<|im_start|>system\n{SYSTEM_TEXT}{END_OF_TURN}\n<|im_start|>user\nTools:\n", template=True),
    )


def build_prompt(query: str, tool_names: Sequence[str], tool_texts: Sequence[str]) -> SelectorPrompt:
    """The per-route prompt: candidates in the given order, then the query, then the answer turn.

    Args:
        query: The user's query (cut at :data:`MAX_QUERY_CHARS` characters).
        tool_names: Candidate names, in the order to show them.
        tool_texts: Their canonical texts (:func:`gentool_router.tool_text.render_tool`).
    """
    if len(tool_names) != len(tool_texts):
        raise ValueError("tool_names and tool_texts differ in length")
    labels = candidate_labels(len(tool_names))
    parts: list[PromptPart] = []
    for label, text in zip(labels, tool_texts):
        parts.append(PromptPart(f"{label}. ", template=True))
        parts.append(PromptPart(text, template=False))
        parts.append(PromptPart("\n", template=True))
    parts.append(PromptPart("Query: ", template=True))
    parts.append(PromptPart(" ".join(query.split())[:MAX_QUERY_CHARS], template=False))
    parts.append(PromptPart(f"{END_OF_TURN}\n<|im_start|>assistant\n", template=True))
    return SelectorPrompt(tuple(parts), labels, tuple(tool_names))


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


def selection_target(best_label: str) -> str:
    """Stage 2 answer: the chosen label, then the end of the turn."""
    return f"{best_label}{END_OF_TURN}"


def ranking_target(ranked_labels: Sequence[str]) -> str:
    """Stage 1 answer: every label (candidates and :data:`NO_TOOL_LABEL`), best first."""
    return f"{RANK_SEPARATOR.join(ranked_labels)}{END_OF_TURN}"
