"""Convert public tool corpora (the user's copies, e.g. ../shared/data) into evaluation case files.

* ``seal-tools``: the single-call (``easy``) test queries; no per-case tools: the catalogue is the whole
  Seal-Tools tool set (written next to the cases as ``<out>.tools.jsonl``, to index), so retrieval matters.
* ``metatool-reliability``: MetaTool Task 2, subtask 3: ten candidates of which none is correct
  (``expected: null``).
* ``metatool-single``: MetaTool's single-tool queries (``all_clean_data.csv``), each with its tool and nine
  seeded random other MetaTool tools as the case's catalogue.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path
from typing import Any, Iterator

from gentool_router.persistence import atomic_file
from gentool_router.tools import Tool, ToolValidationError, valid_tool_name

__all__ = ["convert", "CONVERTERS"]


def _seal_tools(source: Path, out: Path, seed: int, limit: int | None) -> Iterator[dict[str, Any]]:
    tools_out = out.with_suffix(".tools.jsonl")
    with (source / "tool.jsonl").open() as src, tools_out.open("w", encoding="utf-8") as dst:
        for line in src:
            record = json.loads(line)
            record["api_name"] = valid_tool_name(record["api_name"])
            dst.write(json.dumps(Tool.from_dict(record).to_dict(), ensure_ascii=False) + "\n")
    for file, scenario in (("test_in_domain.jsonl", "in_domain"), ("test_out_domain.jsonl", "out_domain")):
        for line in (source / file).open():
            record = json.loads(line)
            if "easy" in record["id"] and len(record["calling"]) == 1:
                yield {"id": record["id"], "query": record["query"], "expected": valid_tool_name(record["calling"][0]["api"]),
                       "scenario": scenario}


def parse_tool_lines(prompt: str) -> list[dict[str, str]]:
    """The ten candidate tools listed in a MetaTool Task 2 prompt, as tool dicts."""
    tools = []
    for match in re.finditer(r"^\d+\. tool name: (.+?), tool description: (.*)$", prompt, flags=re.M):
        description = match.group(2).strip()
        if description.startswith("['") and description.endswith("']"):
            description = description[2:-2]
        tools.append({"name": valid_tool_name(match.group(1).strip()), "description": description or match.group(1)})
    return tools


def _metatool_reliability(source: Path, out: Path, seed: int, limit: int | None) -> Iterator[dict[str, Any]]:
    for number, item in enumerate(json.loads((source / "Task2-Subtask3.json").read_text())):
        prompt = item["action_prompt"]
        query = prompt.split("[User's Query Start]\n", 1)[1].split("\n[User's Query End]", 1)[0].strip()
        tools = parse_tool_lines(prompt)
        try:
            [Tool.from_dict(t) for t in tools]
        except ToolValidationError:
            continue
        if query and len({t["name"] for t in tools}) == len(tools) == 10:
            yield {"id": f"metatool-reliability-{number}", "query": query, "tools": tools, "expected": None,
                   "scenario": "reliability"}


def _metatool_single(source: Path, out: Path, seed: int, limit: int | None) -> Iterator[dict[str, Any]]:
    descriptions = {valid_tool_name(k): v for k, v in json.loads((source / "plugin_des.json").read_text()).items()}
    names = sorted(descriptions)
    rng = random.Random(seed)
    rows = list(csv.DictReader((source / "all_clean_data.csv").open(encoding="utf-8")))
    rng.shuffle(rows)
    for number, row in enumerate(rows[: limit or len(rows)]):
        target = valid_tool_name(row["Tool"])
        others = rng.sample([n for n in names if n != target], 9)
        tools = [{"name": n, "description": descriptions[n]} for n in sorted([target, *others])]
        yield {"id": f"metatool-single-{number}", "query": row["Query"], "tools": tools, "expected": target,
               "scenario": "single_tool"}


CONVERTERS = {"seal-tools": _seal_tools, "metatool-reliability": _metatool_reliability,
              "metatool-single": _metatool_single}


def convert(kind: str, source: str | Path, out: str | Path, *, seed: int = 0, limit: int | None = None) -> int:
    """Write the case file ``out`` from the corpus folder ``source``; returns the number of cases."""
    out = Path(out)
    count = 0
    with atomic_file(out) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for case in CONVERTERS[kind](Path(source), out, seed, limit):
            if limit is not None and count >= limit:
                break
            handle.write(json.dumps(case, ensure_ascii=False) + "\n")
            count += 1
    return count
