"""How sure the selector is of right tools against near misses, per suite set: where the decision has nothing to go on.

    .venv/bin/python benchmarks/selector_gaps.py --cache data/rs-merged-v7t \\
        --out benchmarks/results/selector-gaps.json

For each suite set, from a ``real_suite.py`` cache (nothing is routed here): the quartiles of the selector's yes/no
gap and of the cosine on the right tool (tool sets, where it was retrieved; with the best gap among the other
candidates, what the right tool competes with) or on the best-scored candidate (sets whose answer is no tool).
Where the right tools' gaps sit no higher than the near misses' best, no tool-or-none rule over the selector can
abstain on the near misses without abstaining on right tools too (BENCHMARKS.md, "Real catalogues"): a retrained
selector should move these figures apart. ``separation`` puts one number on it for each catalogue with both kinds of
set: the chance that a right tool's gap is above a near miss's best gap (ROC AUC; a right tool not retrieved counts
as below every near miss), 0.5 where the selector cannot tell them apart. ``gap_cosine_correlation`` says how much
of the gap retrieval already knew: the Pearson correlation of the selector's gap with the candidate's cosine over
every retrieved candidate of every set, and of each route's best gap with its best cosine. The decision weighs both,
so a gap that only repeats the cosine gives it nothing new (BENCHMARKS.md, "How far any decision could go").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from small_catalogues import load  # noqa: E402


def quartiles(values: list[float]) -> list[float]:
    """Lower quartile, median and upper quartile (rounded; all three the value when there is one)."""
    if len(values) < 2:
        return [round(values[0], 3)] * 3 if values else []
    return [round(q, 3) for q in statistics.quantiles(values, n=4)]


def right_candidate(record: dict[str, Any]) -> dict[str, Any] | None:
    """The candidate that is the case's right tool, or None when retrieval missed it."""
    return next((c for c in record["evidence"]["candidates"] if c["name"] == record["expected"]), None)


def set_gaps(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The quartiles of one set's selector gaps and cosines: the right tool's, or the best-scored candidate's."""
    gaps, cosines, others, missing = [], [], [], 0
    for record in records:
        candidates = record["evidence"]["candidates"]
        if record["expected"] is None:
            chosen = max(candidates, key=lambda c: c["selector_gap"])
        else:
            right = right_candidate(record)
            if right is None:
                missing += 1
                continue
            chosen = right
            wrong = [c["selector_gap"] for c in candidates if c["name"] != record["expected"]]
            if wrong:
                others.append(max(wrong))
        gaps.append(chosen["selector_gap"])
        cosines.append(chosen["cosine"])
    row = {"routes": len(gaps), "right_tool_not_retrieved": missing,
           "selector_gap_quartiles": quartiles(gaps), "cosine_quartiles": quartiles(cosines)}
    if others:  # a tool set: what the right tool competes with
        row["best_wrong_candidate_gap_quartiles"] = quartiles(others)
    return row


#: (tool set, near-miss set) over the same catalogue: the pairs ``separation`` compares.
SEPARATION_PAIRS = (("examples_tool", "examples_near_miss"), ("metatool_single", "metatool_near_miss"))


def separation(tool_records: list[dict[str, Any]], near_miss_records: list[dict[str, Any]]) -> float:
    """ROC AUC of the right tool's gap (tool cases) against the best candidate's gap (near misses); ties count half."""
    right = [c["selector_gap"] if (c := right_candidate(r)) is not None else float("-inf") for r in tool_records]
    near = [max(c["selector_gap"] for c in r["evidence"]["candidates"]) for r in near_miss_records]
    wins = sum((a > b) + 0.5 * (a == b) for a in right for b in near)
    return round(wins / (len(right) * len(near)), 3)


def gap_cosine_correlation(records: list[dict[str, Any]]) -> dict[str, float | int]:
    """Pearson correlation of gap and cosine: over all candidates, and over each route's best gap and best cosine."""
    import numpy as np

    candidates = [c for r in records for c in r["evidence"]["candidates"]]
    routes = [r["evidence"]["candidates"] for r in records if r["evidence"]["candidates"]]

    def pearson(xs: list[float], ys: list[float]) -> float:
        return round(float(np.corrcoef(xs, ys)[0, 1]), 3)

    return {"candidates": pearson([c["selector_gap"] for c in candidates], [c["cosine"] for c in candidates]),
            "route_best": pearson([max(c["selector_gap"] for c in cs) for cs in routes],
                                  [max(c["cosine"] for c in cs) for cs in routes]),
            "candidate_count": len(candidates)}


def main(argv: list[str] | None = None) -> int:
    from gentool_router_train.real_sets import SUITE_SETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="A real_suite.py cache holding the suite sets.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    records = {name: load(args.cache, name) for name in SUITE_SETS}  # each set read once, used three times
    result: dict[str, Any] = {"sets": {}}
    for name, (kind, _) in SUITE_SETS.items():
        result["sets"][name] = {"kind": kind, "measured_on": "right tool" if kind == "tool" else "best-scored tool",
                                **set_gaps(records[name])}
    result["separation"] = {f"{tool} vs {near}": separation(records[tool], records[near])
                            for tool, near in SEPARATION_PAIRS}
    result["gap_cosine_correlation"] = gap_cosine_correlation([r for rows in records.values() for r in rows])
    result["command"] = "benchmarks/selector_gaps.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name, row in result["sets"].items():
        print(f"{name:24s} {row['kind']:13s} {row['measured_on']:17s} gap {row['selector_gap_quartiles']}  "
              f"cosine {row['cosine_quartiles']}  best wrong gap {row.get('best_wrong_candidate_gap_quartiles', '-')}")
    for pair, auc in result["separation"].items():
        print(f"separation {pair}: {auc}")
    correlation = result["gap_cosine_correlation"]
    print(f"gap ~ cosine (Pearson): candidates {correlation['candidates']}, each route's best "
          f"{correlation['route_best']} ({correlation['candidate_count']} candidates)")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
