"""The worked example of docs/OWN_CATALOGUE.md: API-Bank's tools as "a user's catalogue".

    .venv/bin/python benchmarks/own_catalogue.py prepare --out data/own-catalogue
    .venv/bin/python benchmarks/own_catalogue.py prepare --out data/own-100 --extra-tools 30   # 100 tools, timing
    .venv/bin/python benchmarks/own_catalogue.py report EVAL.json [EVAL2.json ...] --out benchmarks/results/own-catalogue.json

``prepare`` writes what a user would have: ``tools.jsonl`` (API-Bank's 70 tools), ``queries.jsonl`` (labelled
requests from a training split of its dialogues, for ``generate-data --queries``) and ``heldout.jsonl`` (eval
cases). Each query is what the conversation middleware routes: the last three user messages before the call.

The held-out split is query-disjoint from the training one (checked here and by tests/test_own_catalogue.py):
* ``tool_trained``: calls in a seeded 35% of the dialogue files, to tools that have training queries;
* ``tool_no_queries``: every call of six tools (seeded) that have no training query at all (what a tool without
  labelled queries costs);
* ``out_of_scope``: 100 of the project's held-out no-tool requests (``out_of_scope_queries("held_out")``),
  routed over the same catalogue.

``report`` turns ``eval --json`` files (their methods side by side) into the committed result: each method's
accuracy per group with its 95% Wilson interval, and how often it abstained where a tool was right.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_suite import wilson  # noqa: E402  (the suite's 95% Wilson interval, one definition)

SEED = 22
HELDOUT_FILE_SHARE = 0.35
TOOLS_WITHOUT_QUERIES = 6
OUT_OF_SCOPE_CASES = 100
CONTEXT_TURNS = 3


def _held_out_file(name: str) -> bool:
    digest = hashlib.sha256(f"{SEED}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_FILE_SHARE


def build() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(tools, training queries, held-out cases) of the worked example, the same on every run."""
    from gentool_router.examples import out_of_scope_queries
    from gentool_router_train.real_sets import api_bank_calls, catalogue
    from gentool_router_train.sources import query_key

    tools = [t.to_dict() for t in catalogue("api-bank")]
    calls = api_bank_calls(CONTEXT_TURNS)
    counts: dict[str, int] = {}
    for call in calls:
        counts[call["expected"]] = counts.get(call["expected"], 0) + 1
    eligible = sorted(t for t, n in counts.items() if n >= 3 and t != "GetUserToken")
    no_queries = set(random.Random(SEED).sample(eligible, TOOLS_WITHOUT_QUERIES))
    train = [c for c in calls if not _held_out_file(c["file"]) and c["expected"] not in no_queries]
    trained_keys = {query_key(c["query"]) for c in train}
    queries = [{"query": c["query"], "tool": c["expected"]} for c in train]
    heldout: list[dict[str, Any]] = []
    for call in calls:
        if query_key(call["query"]) in trained_keys:
            continue
        if call["expected"] in no_queries:
            heldout.append({"query": call["query"], "expected": call["expected"], "scenario": "tool_no_queries"})
        elif _held_out_file(call["file"]):
            heldout.append({"query": call["query"], "expected": call["expected"], "scenario": "tool_trained"})
    chat = random.Random(SEED).sample(out_of_scope_queries("held_out"), OUT_OF_SCOPE_CASES)
    heldout += [{"query": r["query"], "expected": None, "scenario": "out_of_scope"} for r in chat]
    heldout = [{"id": f"own-{n:04d}", **case} for n, case in enumerate(heldout)]
    return tools, queries, heldout


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def extra_tools(count: int, taken: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` tools of the bundled example catalogue (seeded, each with at least one example query) and their
    example queries as labels: a larger catalogue for timing the path (``prepare --extra-tools 30``: 100 tools).
    The held-out cases stay API-Bank's."""
    from gentool_router.examples import example_cases, example_tools

    asked: dict[str, list[str]] = {}
    for case in example_cases():
        if case.get("expected"):
            asked.setdefault(case["expected"], []).append(case["query"])
    names = sorted(n for n in asked if n not in taken)
    chosen = set(random.Random(SEED).sample(names, count))
    tools = [t.to_dict() for t in example_tools() if t.name in chosen]
    return tools, [{"query": q, "tool": t["name"]} for t in tools for q in asked[t["name"]]]


def prepare(out: Path, extra: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tools, queries, heldout = build()
    if extra:
        more_tools, more_queries = extra_tools(extra, {t["name"] for t in tools})
        tools, queries = tools + more_tools, queries + more_queries
    for name, rows in (("tools.jsonl", tools), ("queries.jsonl", queries), ("heldout.jsonl", heldout)):
        _write_jsonl(out / name, rows)
    groups: dict[str, int] = {}
    for case in heldout:
        groups[case["scenario"]] = groups.get(case["scenario"], 0) + 1
    print(f"{len(tools)} tools, {len(queries)} training queries ({len({q['tool'] for q in queries})} tools), "
          f"held out: {groups}; written to {out}")


def report(eval_jsons: list[Path], out: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"sources": [str(p) for p in eval_jsons], "methods": {}}
    by_method = {method: cases for eval_json in eval_jsons
                 for method, cases in json.loads(eval_json.read_text(encoding="utf-8"))["cases"].items()}
    for method, cases in by_method.items():
        groups: dict[str, list[bool]] = {}
        for case in cases:
            groups.setdefault(case["scenario"] or "", []).append(bool(case["correct"]))
            if case["scenario"] != "out_of_scope":
                groups.setdefault("with_tool", []).append(bool(case["correct"]))
        summary: dict[str, Any] = {
            group: {"cases": len(v), "accuracy": sum(v) / len(v), "ci95": wilson(sum(v), len(v))}
            for group, v in sorted(groups.items())}
        with_tool = [c for c in cases if c["expected"] is not None]
        summary["abstained_with_tool"] = sum(c["predicted"] is None for c in with_tool)
        summary["best_ranked_with_tool"] = sum(
            next((name for name, _ in c["ranking"] if name != "generate_response"), None) == c["expected"]
            for c in with_tool)
        result["methods"][method] = summary
    result["paired_with_tool"] = paired(by_method)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for method, groups in result["methods"].items():
        print(method + ": " + "; ".join(f"{g} {100 * s['accuracy']:.1f}% [{100 * s['ci95'][0]:.1f}-"
                                        f"{100 * s['ci95'][1]:.1f}] n={s['cases']}"
                                        for g, s in groups.items() if isinstance(s, dict))
              + f"; abstained on {groups['abstained_with_tool']} with a tool; best-ranked right "
                f"{groups['best_ranked_with_tool']}")
    for pair, counts in result["paired_with_tool"].items():
        print(f"{pair}: right only by the first {counts['first_only']}, only by the second {counts['second_only']}, "
              f"exact sign test p = {counts['p_two_sided']:.3f}")
    return result


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial (sign) test of ``wins`` against ``losses`` under p = 1/2."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(by_method: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """On the cases with a right tool, each method against every other: the cases only one of them gets right (the
    methods route the same cases, so these discordant pairs are what an interval per method cannot show)."""
    cases = {method: {r["id"]: bool(r["correct"]) for r in rows if r["expected"] is not None}
             for method, rows in by_method.items()}
    out = {}
    names = list(cases)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = cases[first].keys() & cases[second].keys()
            only_first = sum(cases[first][c] and not cases[second][c] for c in shared)
            only_second = sum(cases[second][c] and not cases[first][c] for c in shared)
            out[f"{first} vs {second}"] = {"first_only": only_first, "second_only": only_second,
                                           "p_two_sided": sign_test(only_first, only_second)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="write tools.jsonl, queries.jsonl, heldout.jsonl")
    p.add_argument("--out", type=Path, default=Path("data/own-catalogue"))
    p.add_argument("--extra-tools", type=int, default=0,
                   help="also this many bundled example tools with their example queries (30: a 100-tool catalogue)")
    r = commands.add_parser("report", help="per-group accuracy with 95%% intervals from an eval --json file")
    r.add_argument("eval_json", type=Path, nargs="+")
    r.add_argument("--out", type=Path, default=Path("benchmarks/results/own-catalogue.json"))
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.out, args.extra_tools)
    else:
        report(args.eval_json, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
