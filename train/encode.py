"""Training examples: generated records → token ids of the selector's per-candidate prompts and the answer.

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
from gentool_router.prompt import ANSWER_NO, ANSWER_YES, build_prompt, encode_parts, encode_prompt, prefix_parts
from gentool_router.tool_text import render_tool
from gentool_router.tools import NO_TOOL, Tool

__all__ = ["Example", "STAGES", "load_records", "encode_record", "sample_balanced", "hf_tokenize", "answer_ids"]

STAGES = ("ranking", "selection")


@dataclass(frozen=True)
class Example:
    """One record, ready for the model: a prompt per candidate and the GenTool answer over them.

    Choices are numbered ``0..k-1`` for the candidates (in the record's order) and ``k`` for
    ``generate_response``, whose score is the fixed :data:`~gentool_router.prompt.NO_TOOL_SCORE`.

    Attributes:
        head: The tokens every candidate's prompt starts with (static prefix and query).
        tails: For each candidate, the tokens after ``head``, ending where the runtime reads the yes/no logits.
        ranking: Every choice, best first (stage 1's target).
        target: The one right choice (stage 2's target).
        case_type: The record's case type, for per-type accuracy.
    """

    head: tuple[int, ...]
    tails: tuple[tuple[int, ...], ...]
    ranking: tuple[int, ...]
    target: int
    case_type: str

    @property
    def rows(self) -> tuple[tuple[int, ...], ...]:
        """Each candidate's whole prompt (``head + tail``), as the runtime evaluates it."""
        return tuple(self.head + tail for tail in self.tails)

    @property
    def tokens(self) -> int:
        """Tokens of the packed form the trainer evaluates: the head once, then every tail."""
        return len(self.head) + sum(len(t) for t in self.tails)


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


def encode_record(record: dict[str, Any], tokenize: Callable[[str, bool], list[int]],
                  bos_id: int | None = None) -> Example:
    """The per-candidate prompts and the GenTool answer of one record (tools in the record's order)."""
    tools = [Tool.from_dict(t) for t in record["tools"]]
    names = [t.name for t in tools]
    prompt = build_prompt(record["query"], names, [render_tool(t) for t in tools])
    query_ids, candidate_ids = encode_prompt(prompt, tokenize)
    head = encode_parts(prefix_parts(), tokenize) + query_ids
    if bos_id is not None:
        head = [bos_id, *head]
    index = {name: i for i, name in enumerate(names)}
    index[NO_TOOL] = len(names)
    expected = record.get("expected") or NO_TOOL
    if expected not in index:
        raise GentoolError(f"record {record.get('id')}: expected tool {expected!r} is not among its tools")
    ranking = [index[name] for name in record.get("ranking") or [] if name in index]
    ranking += [i for i in range(len(names) + 1) if i not in ranking]  # records without a ranking: target first
    if ranking[0] != index[expected]:
        ranking.remove(index[expected])
        ranking.insert(0, index[expected])
    return Example(tuple(head), tuple(tuple(ids) for ids in candidate_ids), tuple(ranking), index[expected],
                   record.get("case_type") or "")


def answer_ids(tokenize: Callable[[str, bool], list[int]]) -> tuple[int, int]:
    """Token ids of the yes and no answers (each must be one token)."""
    return _single(tokenize, ANSWER_YES), _single(tokenize, ANSWER_NO)


def _single(tokenize: Callable[[str, bool], list[int]], word: str) -> int:
    ids = tokenize(word, False)
    if len(ids) != 1:
        raise GentoolError(f"answer {word!r} is not one token for this tokenizer")
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
