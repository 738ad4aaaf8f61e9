"""Training examples: generated records → token ids of the selector prompt plus the answer of one stage.

Everything textual comes from the runtime's own modules (contract 1 and 2): :func:`render_tool` for the tool
text and :mod:`gentool_router.prompt` for the prompt and the answers, tokenized piece by piece through
:func:`encode_parts` exactly as :class:`~gentool_router.selector.LlamaSelector` does.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from gentool_router.errors import GentoolError
from gentool_router.prompt import (
    NO_TOOL_LABEL,
    PromptPart,
    build_prompt,
    encode_parts,
    prefix_parts,
    ranking_target,
    selection_target,
)
from gentool_router.tool_text import render_tool
from gentool_router.tools import NO_TOOL, Tool

__all__ = ["Example", "Stage", "load_records", "encode_record", "sample_balanced", "hf_tokenize"]

Stage = str  # "ranking" (stage 1) or "selection" (stage 2)
STAGES = ("ranking", "selection")


@dataclass(frozen=True)
class Example:
    """One training or evaluation example.

    Attributes:
        prompt_ids: The whole prompt (static prefix included), ending where the answer starts.
        answer_ids: The answer tokens the loss is computed on (empty for evaluation-only examples).
        label_ids: Token ids of the answer labels that are valid for this prompt (candidates + no-tool).
        gold_label_id: Token id of the correct first answer token.
        case_type: The record's case type, for per-type accuracy.
    """

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    label_ids: tuple[int, ...]
    gold_label_id: int
    case_type: str


def hf_tokenize(tokenizer: Any) -> Callable[[str, bool], list[int]]:
    """``tokenize(text, parse_special)`` over a transformers tokenizer, matching llama.cpp's tokenization."""

    def tokenize(text: str, parse_special: bool) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False, split_special_tokens=not parse_special)

    return tokenize


def load_records(path: Path) -> list[dict[str, Any]]:
    """Records of a generated split (``train.jsonl`` / ``dev.jsonl`` / ``test.jsonl``)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                record["tools"], record["query"]  # noqa: B018 - required keys
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise GentoolError(f"{path}, line {number}: not a generated training record ({exc})") from exc
            records.append(record)
    if not records:
        raise GentoolError(f"{path} holds no records")
    return records


def encode_record(record: dict[str, Any], stage: Stage, tokenize: Callable[[str, bool], list[int]],
                  bos_id: int | None = None) -> Example:
    """The prompt and the stage's answer for one record (tools shown in the record's order)."""
    tools = [Tool.from_dict(t) for t in record["tools"]]
    names = [t.name for t in tools]
    prompt = build_prompt(record["query"], names, [render_tool(t) for t in tools])
    label_of = {name: label for label, name in zip(prompt.labels, names)}
    label_of[NO_TOOL] = NO_TOOL_LABEL
    expected = record.get("expected") or NO_TOOL
    if stage == "ranking":
        ranking = record.get("ranking") or [expected]
        answer = ranking_target([label_of[name] for name in ranking])
    elif stage == "selection":
        answer = selection_target(label_of[expected])
    else:
        raise ValueError(f"unknown stage {stage!r}; use one of {STAGES}")
    prompt_ids = encode_parts([*prefix_parts(), *prompt.parts], tokenize)
    if bos_id is not None:
        prompt_ids = [bos_id, *prompt_ids]
    answer_ids = encode_parts([PromptPart(answer, template=True)], tokenize)
    label_ids = [_single(tokenize, label) for label in (*prompt.labels, NO_TOOL_LABEL)]
    return Example(tuple(prompt_ids), tuple(answer_ids), tuple(label_ids),
                   _single(tokenize, label_of[expected]), record.get("case_type") or "")


def _single(tokenize: Callable[[str, bool], list[int]], label: str) -> int:
    ids = tokenize(label, False)
    if len(ids) != 1:
        raise GentoolError(f"label {label!r} is not one token for this tokenizer")
    return ids[0]


def sample_balanced(records: Sequence[dict[str, Any]], count: int, seed: int,
                    exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``count`` records with the case types as equal as the data allows, in a seeded random order.

    The rare, hard case types (no tool fits; a weak and a strong version side by side) are what the selector
    must learn; an equal share of each teaches more per step than the raw mix.
    """
    excluded = set(exclude)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get("id") not in excluded:
            by_type[record.get("case_type") or ""].append(record)
    rng = random.Random(seed)
    for group in by_type.values():
        rng.shuffle(group)
    chosen: list[dict[str, Any]] = []
    types = sorted(by_type)
    while len(chosen) < count and any(by_type[t] for t in types):
        for case_type in types:
            if by_type[case_type] and len(chosen) < count:
                chosen.append(by_type[case_type].pop())
    rng.shuffle(chosen)
    return chosen
