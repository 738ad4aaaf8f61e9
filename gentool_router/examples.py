"""The example catalogue and queries bundled with the package (used by ``gentool-router demo`` and examples/).

294 tools: 280 from Seal-Tools (Apache-2.0, see ``data/NOTICE``) across many domains, and 14 hand-written tools
in which a stronger version sits next to a weaker one. Rebuilt by ``scripts/build_example_catalog.py``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .catalog import ToolCatalog

__all__ = ["example_tools", "example_queries", "example_cases"]


def _data_lines(name: str) -> list[str]:
    text = resources.files("gentool_router").joinpath("data", name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def example_tools() -> ToolCatalog:
    """The bundled example catalogue."""
    return ToolCatalog.from_tools(json.loads(line) for line in _data_lines("example_tools.jsonl"))


def example_cases() -> list[dict[str, Any]]:
    """Example queries with the tool each expects (``None``: no tool applies)."""
    return [json.loads(line) for line in _data_lines("example_queries.jsonl")]


def example_queries() -> list[str]:
    return [case["query"] for case in example_cases()]
