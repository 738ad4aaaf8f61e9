"""The example catalogue and queries bundled with the package (used by ``gentool-router demo`` and examples/).

294 tools: 280 from Seal-Tools (Apache-2.0, see ``data/NOTICE``) across many domains, and 14 hand-written tools
in which a stronger version sits next to a weaker one. Rebuilt by ``scripts/build_example_catalog.py``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .catalog import ToolCatalog

__all__ = ["example_tools", "example_queries", "example_cases", "out_of_scope_queries"]


def _data_lines(name: str) -> list[str]:
    text = resources.files("gentool_router").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def example_tools() -> ToolCatalog:
    """The bundled example catalogue."""
    return ToolCatalog.from_tools(json.loads(line) for line in _data_lines("example_tools.jsonl"))


def example_cases() -> list[dict[str, Any]]:
    """Example queries with the tool each expects (``None``: no tool applies)."""
    return [json.loads(line) for line in _data_lines("example_queries.jsonl")]


def example_queries() -> list[str]:
    return [case["query"] for case in example_cases()]


def out_of_scope_queries(half: str | None = None) -> list[dict[str, Any]]:
    """Hand-written messages that need no tool (greetings, thanks, chit-chat, general knowledge, writing, advice,
    reasoning, questions about the assistant), ``{"id", "query", "category"}``.

    ``half="fit"``: the odd ids, which decision models are fitted on (``gentool-router calibrate`` adds them so a
    user's router keeps abstaining on chit-chat); ``half="held_out"``: the even ids, kept for evaluation only.
    """
    rows = [json.loads(line) for line in _data_lines("out_of_scope_queries.jsonl")]
    if half is None:
        return rows
    if half not in ("fit", "held_out"):
        raise ValueError(f"half must be 'fit', 'held_out' or None, got {half!r}")
    parity = 1 if half == "fit" else 0
    return [r for r in rows if int(r["id"].split("-")[1]) % 2 == parity]
