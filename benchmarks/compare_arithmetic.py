"""Two arithmetics of the same selector, decision by decision, on the real-catalogue suite's cached routes.

    .venv/bin/python benchmarks/compare_arithmetic.py data/real-suite data/real-suite-merged \\
        --json benchmarks/results/arithmetic.json

Both caches are gathered by ``benchmarks/real_suite.py`` (``--arithmetic lora`` and the default ``merged``) over
the same cases. For every case in both, the router's answer (the shipped decision model over each cache's evidence)
and the selector's best-ranked candidate are compared; per set and pooled it prints the share of decisions
unchanged, each arithmetic's router accuracy with its 95% interval, and the largest logit-gap difference. Issue
"Route in half the time" asks for at least 99.5% of 1,000 decisions unchanged by arithmetic changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_suite import ROOT, embed_queries, predictions, synthetic_sets, wilson  # noqa: E402


def read_cache(folder: Path, name: str) -> dict[str, dict[str, Any]]:
    path = folder / "evidence" / f"{name}.jsonl"
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return {r["id"]: r for r in map(json.loads, lines[1:]) if r.get("id")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path, help="Cache of the reference arithmetic (real_suite.py --cache).")
    parser.add_argument("candidate", type=Path, help="Cache of the arithmetic compared against it.")
    parser.add_argument("--limit", type=int, default=200, help="Cases per set at most (as real_suite.py).")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args(argv)

    from gentool_router.artefact import ArtefactMetadata
    from gentool_router.decision import default_decision
    from gentool_router.models import ADAPTER_FILE
    from gentool_router_train.real_sets import SUITE_SETS, build_set

    decision = default_decision()
    threshold = float(ArtefactMetadata.from_gguf(ADAPTER_FILE).no_tool_score or 0.0)  # where the decision does not apply
    sets = {n: build_set(n, args.limit) for n in SUITE_SETS}
    sets["synthetic_test"] = synthetic_sets(ROOT / "data" / "gentool-v2", args.limit)[0]
    paired: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for name, cases in sets.items():
        ref, cand = read_cache(args.reference, name), read_cache(args.candidate, name)
        both = [c for c in cases if c["id"] in ref and c["id"] in cand
                and ref[c["id"]]["query"] == cand[c["id"]]["query"] == c["query"]]
        if both:
            paired[name] = [({**c, **ref[c["id"]]}, {**c, **cand[c["id"]]}) for c in both]
    embed_queries({"all": [r for pairs in paired.values() for pair in pairs for r in pair]}, decision.identity["embedder"])

    rows: dict[str, Any] = {}
    pooled = {"cases": 0, "router_same": 0, "best_same": 0, "ref_right": 0, "cand_right": 0}
    worst_gap = 0.0
    for name, pairs in paired.items():
        same = best_same = ref_right = cand_right = 0
        for ref, cand in pairs:
            a, b = predictions(ref, decision, threshold), predictions(cand, decision, threshold)
            same += a["router"] == b["router"]
            best_same += a["selector_best"] == b["selector_best"]
            ref_right += a["router"] == ref["expected"]
            cand_right += b["router"] == cand["expected"]
            gaps = {c["name"]: c["selector_gap"] for c in ref["evidence"]["candidates"]}
            for c in cand["evidence"]["candidates"]:
                if c["name"] in gaps:
                    worst_gap = max(worst_gap, abs(gaps[c["name"]] - c["selector_gap"]))
        n = len(pairs)
        rows[name] = {"cases": n, "router_unchanged": same / n, "selector_best_unchanged": best_same / n,
                      "router_accuracy": {"reference": ref_right / n, "candidate": cand_right / n},
                      "interval95": {"reference": wilson(ref_right, n), "candidate": wilson(cand_right, n)}}
        for key, value in (("cases", n), ("router_same", same), ("best_same", best_same), ("ref_right", ref_right),
                           ("cand_right", cand_right)):
            pooled[key] += value
        print(f"{name:24} {n:4d} cases: decisions unchanged {same / n:6.1%}, best-ranked unchanged "
              f"{best_same / n:6.1%}; router {ref_right / n:6.1%} -> {cand_right / n:6.1%}")
    n = pooled["cases"]
    summary: dict[str, Any] = {"cases": n, "router_unchanged": pooled["router_same"] / n,
               "selector_best_unchanged": pooled["best_same"] / n,
               "router_accuracy": {"reference": pooled["ref_right"] / n, "candidate": pooled["cand_right"] / n},
               "interval95": {"reference": wilson(pooled["ref_right"], n), "candidate": wilson(pooled["cand_right"], n)},
               "max_gap_difference": worst_gap}
    print(f"{'pooled':24} {n:4d} cases: decisions unchanged {summary['router_unchanged']:6.1%} "
          f"({n - pooled['router_same']} changed), best-ranked unchanged {summary['selector_best_unchanged']:6.1%}; "
          f"router {summary['router_accuracy']['reference']:6.1%} -> {summary['router_accuracy']['candidate']:6.1%}; "
          f"max |gap difference| {worst_gap:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"reference": str(args.reference), "candidate": str(args.candidate),
                                         "sets": rows, "pooled": summary, "date": date.today().isoformat(),
                                         "command": "benchmarks/compare_arithmetic.py " + " ".join(
                                             argv if argv is not None else sys.argv[1:])}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
