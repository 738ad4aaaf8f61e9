"""Read the vendored corpora into tools and single-tool queries."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path

from gentool_router.examples import example_queries
from gentool_router.tools import Tool, valid_tool_name

__all__ = ["SourceQuery", "DATA_DIR", "PUBLIC_EVAL_QUERIES", "load_sources", "load_multi_call_queries",
           "public_eval_queries", "example_eval_queries", "query_key", "load_no_tool_queries", "NO_TOOL_QUERIES"]

DATA_DIR = Path(__file__).resolve().parent / "data"
#: The queries of the public evaluation sets (BENCHMARKS.md), kept out of the generated data.
PUBLIC_EVAL_QUERIES = DATA_DIR / "public-eval-queries.jsonl.gz"


@dataclass(frozen=True)
class SourceQuery:
    """A query whose answer is exactly one tool; ``arguments`` are the gold call's arguments when known."""

    query_id: str
    query: str
    tool: str
    source: str
    arguments: tuple[str, ...] = ()
    #: Other tools the query also calls (Seal-Tools multi-call queries): never shown beside it.
    others: tuple[str, ...] = ()


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def _metatool_name(name: str) -> str:
    return valid_tool_name(name)


def public_eval_queries(path: Path = PUBLIC_EVAL_QUERIES) -> set[str]:
    """Lower-cased, whitespace-collapsed query texts of the public evaluation sets.

    The file holds the queries of the three case files that ``benchmarks/run_eval.sh`` converts from
    ``../shared/data`` (Seal-Tools single-call tests, 200 MetaTool reliability and 1,000 MetaTool single-tool
    cases); train/data/README.md says how it was made.
    """
    return {query_key(json.loads(line)["query"]) for line in _lines(path)}


def example_eval_queries() -> set[str]:
    """The bundled example queries (``gentool-router demo``, evaluated in BENCHMARKS.md), keyed like the others.

    Twelve of them are Seal-Tools queries, so without this they can land in the training data.
    """
    return set(map(query_key, example_queries()))


def query_key(text: str) -> str:
    """How queries are compared across sources: whitespace collapsed, lower case."""
    return " ".join(text.split()).lower()


def load_multi_call_queries(tools: dict[str, Tool], data_dir: Path = DATA_DIR) -> list[SourceQuery]:
    """One query per call of Seal-Tools' multi-call queries (2-4 calls each, about 1,500 queries).

    Asked "get the weather in Paris and book a hotel there", a router shown ``getWeather`` but not
    ``bookHotel`` should pick ``getWeather``: each call's tool is a right answer when the query's other tools
    are not shown, which :attr:`SourceQuery.others` records. These are the corpus's Seal-Tools-style targets
    (its single-call queries number 494).
    """
    queries = []
    for file in ("dev", "test_in_domain", "test_out_domain"):
        for line in _lines(data_dir / "seal-tools" / f"{file}.jsonl.gz"):
            record = json.loads(line)
            calls = record.get("calling") or []
            names = [valid_tool_name(c["api"]) for c in calls]
            if len(set(names)) < 2 or any(n not in tools for n in names):
                continue
            for number, (name, call) in enumerate(zip(names, calls)):
                if name in names[:number]:
                    continue
                queries.append(SourceQuery(f"seal:{record['id']}:{number}", record["query"].strip(), name,
                                           "seal-tools-multi", tuple(call.get("parameters") or {}),
                                           tuple(sorted(set(names) - {name}))))
    return queries


def _metatool_descriptions(data_dir: Path) -> dict[str, str]:
    """MetaTool's tools: its own name of each, and its description."""
    return json.loads(gzip.open(data_dir / "metatool" / "plugin_des.json.gz", "rt", encoding="utf-8").read())


def metatool_tool_names(data_dir: Path = DATA_DIR) -> set[str]:
    """The names :func:`load_sources` gives MetaTool's tools (its other tools are Seal-Tools')."""
    return {_metatool_name(name) for name in _metatool_descriptions(data_dir)}


def load_sources(data_dir: Path = DATA_DIR, exclude: set[str] | None = None
                 ) -> tuple[dict[str, Tool], list[SourceQuery]]:
    """All tools (Seal-Tools, MetaTool) by name, and the single-tool queries, in a fixed order.

    Seal-Tools: every tool; queries are the single-call (``easy``) ones of dev and both test files.
    MetaTool: its 199 tools (names made valid: ``PDF&URLTool`` → ``PDF_URLTool``, no parameters), and its
    ``Query,Tool`` rows; a query text that names two different tools is dropped as ambiguous.
    Queries whose text is in ``exclude`` (see :func:`public_eval_queries`) are left out.
    """
    tools: dict[str, Tool] = {}
    for line in _lines(data_dir / "seal-tools" / "tool.jsonl.gz"):
        record = json.loads(line)
        # two names have a space or a dot ("getPM2.5Level"): every name gets the same strict form the queries'
        # calls get below, whatever the runtime accepts, so the generated data never depends on that rule
        tool = Tool.from_dict({**record, "api_name": valid_tool_name(record["api_name"])})
        tools[tool.name] = tool
    queries: list[SourceQuery] = []
    for file in ("dev", "test_in_domain", "test_out_domain"):
        for line in _lines(data_dir / "seal-tools" / f"{file}.jsonl.gz"):
            record = json.loads(line)
            calls = record.get("calling") or []
            if "easy" not in record["id"] or len(calls) != 1:
                continue
            name = valid_tool_name(calls[0]["api"])
            if name in tools:  # only Seal-Tools tools are loaded at this point
                queries.append(SourceQuery(f"seal:{record['id']}", record["query"].strip(), name, "seal-tools",
                                           tuple(calls[0].get("parameters") or {})))
    descriptions = _metatool_descriptions(data_dir)
    for name in sorted(descriptions):
        tool = Tool(_metatool_name(name), descriptions[name])
        if tool.name in tools:
            raise ValueError(f"MetaTool tool {tool.name} clashes with a Seal-Tools tool")
        tools[tool.name] = tool
    rows = list(csv.DictReader(io.StringIO(gzip.open(data_dir / "metatool" / "all_clean_data.csv.gz", "rt",
                                                     encoding="utf-8").read())))
    targets: dict[str, set[str]] = {}
    for row in rows:
        targets.setdefault(row["Query"].strip(), set()).add(row["Tool"])
    seen: set[str] = set()
    for number, row in enumerate(rows):
        text = row["Query"].strip()
        if len(targets[text]) != 1 or text in seen or not text:
            continue
        seen.add(text)
        queries.append(SourceQuery(f"metatool:{number}", text, _metatool_name(row["Tool"]), "metatool"))
    # a query text may also repeat across sources; keep its first occurrence only
    unique, texts = [], set(exclude or ())
    for q in queries:
        if query_key(q.query) not in texts:
            texts.add(query_key(q.query))
            unique.append(q)
    return tools, unique


#: Requests that need no tool, written for this project (train/data/README.md).
NO_TOOL_QUERIES = DATA_DIR / "no-tool-queries.jsonl"


def load_no_tool_queries(path: Path = NO_TOOL_QUERIES) -> list[dict[str, str]]:
    """The project's requests that need no tool (``id``, ``query``, ``category``), in file order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
