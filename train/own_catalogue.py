"""A user's own catalogue and labelled queries, read for ``generate-data --tools TOOLS.jsonl [--queries Q.jsonl]``.

The simulation builds cases around these tools the way it builds them around the bundled corpora (plain,
zero-to-one pairs, weak-to-strong, requests that need no tool), with candidates from the router's own retriever
over the user's catalogue, so the selector trains on the toolsets it will meet there. docs/OWN_CATALOGUE.md is
the guide.

Queries file: one JSON object a line, ``{"query": "...", "tool": "name"}``; ``"tool": null`` marks a request that
no tool of the catalogue serves (a no-tool case), and ``"about": "name"`` beside it the tool it comes close to (a
near miss: that tool's topic, an action or result it does not give). Every bad line is reported at once, before any
work starts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from gentool_router.catalog import load_tools_jsonl
from gentool_router.errors import CatalogError, QueryError
from gentool_router.jsonl import parse_object, problems_message, read_lines
from gentool_router.router import _clean_query
from gentool_router.tools import Tool

from .sources import SourceQuery, query_key

__all__ = ["OwnCatalogue", "load_own_catalogue", "SOURCE", "MAX_REPORTED"]

#: The ``source`` of every case built around the user's catalogue.
SOURCE = "own-catalogue"
#: Bad query lines listed in one error before "... and N more".
MAX_REPORTED = 20


@dataclass(frozen=True)
class OwnCatalogue:
    """The user's tools by name, their labelled queries, their no-tool requests (query, id) and, for the near misses
    among those, the tool each comes close to (by request id)."""

    tools: dict[str, Tool]
    queries: list[SourceQuery]
    no_tool: list[tuple[str, str]] = field(default_factory=list)
    near_miss_of: dict[str, str] = field(default_factory=dict)

    @property
    def tools_without_queries(self) -> list[str]:
        """Tools no labelled query names: the selector sees them only as other candidates."""
        named = {q.tool for q in self.queries}
        return sorted(n for n in self.tools if n not in named)

    def split_dev(self, seed: int, share: float = 0.1) -> tuple[list[SourceQuery], list[SourceQuery]]:
        """(train, dev) queries: a seeded ``share`` of the query texts (all labels of a text together) for the
        trainer's dev check and no-tool calibration, none when there are fewer than 10 texts."""
        texts = sorted({query_key(q.query) for q in self.queries})
        if len(texts) < 10:
            return list(self.queries), []
        random.Random(f"{seed}:own-dev").shuffle(texts)
        dev_texts = set(texts[: max(1, round(len(texts) * share))])
        return ([q for q in self.queries if query_key(q.query) not in dev_texts],
                [q for q in self.queries if query_key(q.query) in dev_texts])


def load_own_catalogue(tools_path: str | Path, queries_path: str | Path | None = None) -> OwnCatalogue:
    """Read and check the user's catalogue (JSONL, as ``gentool-router index`` reads it) and labelled queries.

    A query text labelled with several tools (a message that leads to two calls) is one query per label; each
    of its cases hides the other labels, so leaving one tool out never makes a wrong no-tool answer.
    Raises:
        CatalogError: the catalogue is empty or has a duplicate name, or any query line is bad (each listed).
    """
    listed = load_tools_jsonl(tools_path)
    if not listed:
        raise CatalogError(f"{tools_path}: no tools")
    tools: dict[str, Tool] = {}
    for tool in listed:
        if tool.name in tools:
            raise CatalogError(f"{tools_path}: tool name {tool.name!r} appears twice")
        tools[tool.name] = tool
    if queries_path is None:
        return OwnCatalogue(tools, [])
    labelled: list[tuple[int, str, str]] = []
    no_tool: list[tuple[str, str]] = []
    near_miss_of: dict[str, str] = {}
    problems: list[str] = []
    path = Path(queries_path)
    for number, line in read_lines(path, "query"):
        problem = _check_line(line, tools)
        if isinstance(problem, str):
            problems.append(f"{path}:{number}: {problem}")
            continue
        query, tool, about = problem
        if tool is None:
            no_tool.append((query, f"{SOURCE}:{number}"))
            if about is not None:
                near_miss_of[f"{SOURCE}:{number}"] = about
        else:
            labelled.append((number, query, tool))
    if problems:
        raise CatalogError(problems_message(problems, "query", MAX_REPORTED))
    labels: dict[str, set[str]] = {}
    for _, query, tool in labelled:
        labels.setdefault(query_key(query), set()).add(tool)
    queries, seen = [], set()
    for number, query, tool in labelled:
        if (query_key(query), tool) in seen:
            continue
        seen.add((query_key(query), tool))
        others = tuple(sorted(labels[query_key(query)] - {tool}))
        queries.append(SourceQuery(f"{SOURCE}:{number}", query, tool, SOURCE, (), others))
    return OwnCatalogue(tools, queries, no_tool, near_miss_of)


def _check_line(line: str, tools: dict[str, Tool]) -> str | tuple[str, str | None, str | None]:
    """(query, tool or None, the tool a no-tool request comes close to or None), or what is wrong with the line."""
    try:
        record = parse_object(line, "query line")
    except CatalogError as exc:
        return str(exc)
    query = record.get("query")
    try:
        _clean_query(query)  # the router's own check: a query it would refuse is a bad line here
    except QueryError as exc:
        return f"'query': {exc}"
    if "tool" not in record:
        return "no 'tool' (the tool's name, or null when no tool fits)"
    tool = record["tool"]
    if tool is not None and not isinstance(tool, str):
        return "'tool' must be a tool name or null"
    if tool is not None and tool not in tools:
        return f"tool {tool!r} is not in the catalogue"
    about = record.get("about")
    if about is not None:
        if tool is not None:
            return "'about' names the tool a no-tool request comes close to: only with \"tool\": null"
        if not isinstance(about, str) or about not in tools:
            return f"'about' {about!r} is not a tool of the catalogue"
    return " ".join(query.split()), tool, about
