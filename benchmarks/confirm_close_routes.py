"""What-if, on cached routes: the fast selector arithmetic first, the exact one again only where its decision is close.

    .venv/bin/python benchmarks/confirm_close_routes.py data/real-suite data/real-suite-merged

Both caches come from ``benchmarks/real_suite.py`` (``--arithmetic lora`` and the default ``merged``) over the same
suite cases. A route whose fast decision leads its runner-up by less than ``tau`` (probability) would be scored again
with base + run-time LoRA and decided on those scores. Per ``tau`` it prints the share of routes scored twice, the
decisions unchanged against the exact arithmetic and the router's accuracy: the design for issue "Route in half the
time"'s last criterion (BENCHMARKS.md), measured here before it was built as ``ToolRouter(confirm_margin=...)``. The
built router's own figure comes from routing the suite through it (``real_suite.py --arithmetic confirmed
--prune-margin none``) and ``compare_arithmetic.py`` against the exact cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_arithmetic import read_cache  # noqa: E402
from real_suite import ROOT, _evidence, embed_queries, predictions, prune, synthetic_sets  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exact", type=Path, help="Cache of the exact arithmetic (base + run-time LoRA).")
    parser.add_argument("fast", type=Path, help="Cache of the fast arithmetic (merged q8_0, flash attention).")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--sets", nargs="*", help="Only these suite sets (default: all, and the synthetic sample of "
                                                  "--synthetic).")
    parser.add_argument("--synthetic", type=Path, default=ROOT / "data" / "gentool-v2",
                        help="The generate-data folder of the synthetic sample (left out when missing).")
    parser.add_argument("--prune-margin", type=lambda v: None if v == "none" else float(v), default=None,
                        help="Replay the router's candidate pruning on both caches (default: every candidate).")
    parser.add_argument("--small-prune-margin", type=lambda v: None if v == "none" else float(v), default=None,
                        help="The same for catalogues under 50 tools (default: every candidate).")
    parser.add_argument("--decision", type=Path, help="A decision model file (default: the shipped one).")
    parser.add_argument("--json", type=Path, help="Also write the rows (one per tau) and the command here.")
    args = parser.parse_args(argv)

    from gentool_router.artefact import ArtefactMetadata
    from gentool_router.decision import DecisionModel, default_decision
    from gentool_router.models import ADAPTER_FILE
    from gentool_router.prompt import choice_probabilities
    from gentool_router_train.real_sets import SUITE_SETS, build_set

    decision = DecisionModel.load(args.decision) if args.decision is not None else default_decision()
    threshold = float(ArtefactMetadata.from_gguf(ADAPTER_FILE).no_tool_score or 0.0)
    sets = {n: build_set(n, args.limit) for n in args.sets or SUITE_SETS}
    if not args.sets and (args.synthetic / "test.jsonl").is_file():
        sets["synthetic_test"] = synthetic_sets(args.synthetic, args.limit)[0]
    exact: dict[str, list[dict[str, Any]]] = {}
    fast: dict[str, list[dict[str, Any]]] = {}
    for name, cases in sets.items():
        a, b = read_cache(args.exact, name), read_cache(args.fast, name)
        both = [c for c in cases if c["id"] in a and c["id"] in b]
        exact[name] = [{**c, **a[c["id"]]} for c in both]
        fast[name] = [{**c, **b[c["id"]]} for c in both]
    if args.prune_margin is not None or args.small_prune_margin is not None:
        exact = prune(exact, args.prune_margin, args.small_prune_margin)
        fast = prune(fast, args.prune_margin, args.small_prune_margin)
    embed_queries(exact, decision.identity["embedder"])
    embed_queries(fast, decision.identity["embedder"])

    def margin(record: dict[str, Any]) -> float:
        evidence = _evidence(record, decision)
        if decision is not None and decision.applies_to(evidence):
            options = sorted(decision.probabilities(evidence), reverse=True)
        else:
            options = sorted(choice_probabilities([c.selector_gap for c in evidence.candidates], threshold),
                             reverse=True)
        return options[0] - (options[1] if len(options) > 1 else 0.0)

    rows = [(margin(f), predictions(e, decision, threshold)["router"], predictions(f, decision, threshold)["router"],
             e["expected"]) for name in exact for e, f in zip(exact[name], fast[name])]
    n = len(rows)
    table = []
    for tau in (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5):
        again = sum(m < tau for m, *_ in rows)
        same = sum((a if m < tau else b) == a for m, a, b, _ in rows)
        right = sum((a if m < tau else b) == e for m, a, b, e in rows)
        print(f"tau {tau:.2f}: scored twice {again / n:5.1%}, decisions unchanged {same / n:6.2%} "
              f"({n - same} of {n} changed), router accuracy {right / n:.3f}")
        table.append({"tau": tau, "scored_twice": round(again / n, 4), "decisions_unchanged": round(same / n, 4),
                      "changed": n - same, "routes": n, "router_accuracy": round(right / n, 4)})
    if args.json is not None:
        routes = {name: len(cases) for name, cases in exact.items()}
        args.json.write_text(json.dumps({"command": " ".join([".venv/bin/python benchmarks/confirm_close_routes.py",
                                                               *(argv if argv is not None else sys.argv[1:])]),
                                         "date": date.today().isoformat(), "routes": routes, "rows": table},
                                        indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
