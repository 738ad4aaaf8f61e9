"""How far a tool-or-none decision over a selector's evidence could go: fitted in sample, measured, never shipped.

Fits the decision model (both parts, as ``real_suite.py --fit --fit-small`` does) on the real-catalogue suite's
own held-out routes, which no shipped model may do, then sweeps each part's operating point and reports, per
point, every set's router accuracy against the decision issue's acceptance lines (BENCHMARKS.md, "How far any
decision could go": tool sets ≥ plain embedding top-1 + 3 points, out of scope ≥ 95% abstained, near misses
≥ 75%). The same model fitted honestly on other routes is not expected to do better than one fitted on the answers
themselves, so where no operating point here meets a line, refitting the decision will not meet it either: the
evidence (the selector's scores, retrieval, BM25) has to improve.

A second check leaves the linear model aside: a gradient-boosted classifier over the same evidence (the best
candidate's and the nearest tool's features, and the no-tool features), and a logistic regression over that
evidence plus the query's embedding, each fitted on every big-catalogue suite set but one and scored on that one,
tell "a tool fits" from "none fits". It reports their ROC AUC and, at the threshold that keeps 95% of the no-tool
routes abstained, the share of each set answered with a tool. Reads a cache gathered by ``real_suite.py`` (no model
runs when every route is cached); the routes are scored without pruning in the big catalogues, as the measured
selectors' suites were.

    .venv/bin/python benchmarks/decision_ceiling.py --cache data/rs-merged-v10 \\
        --adapter data/runs/gentool-v10/gentool-lora.gguf --out benchmarks/results/decision-ceiling-v10.json
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_suite  # noqa: E402  (the suite's own loading, pruning and scoring)

#: The decision issue's acceptance lines: a tool set must beat plain embedding top-1 by this much; the other kinds
#: must reach a floor.
TOOL_MARGIN = 0.03
FLOORS = {"out_of_scope": 0.95, "near_miss": 0.75}
OFFSETS = np.round(np.arange(-4.0, 4.0001, 0.25), 2)


def acceptance_rows(sets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each set's router accuracy, what it must reach and by how much it misses (negative slack)."""
    rows = {}
    for name, result in sets.items():
        accuracy = result["accuracy"]
        needed = accuracy["retrieval"] + TOOL_MARGIN if result["kind"] == "tool" else FLOORS[result["kind"]]
        rows[name] = {"kind": result["kind"], "cases": result["cases"], "router": round(accuracy["router"], 4),
                      "needed": round(needed, 4), "slack": round(accuracy["router"] - needed, 4)}
    return rows


def pooled(rows: dict[str, dict[str, Any]]) -> float:
    """Router accuracy over every case of these sets."""
    return round(sum(r["router"] * r["cases"] for r in rows.values()) / sum(r["cases"] for r in rows.values()), 4)


def sweep(routed: dict[str, list[dict[str, Any]]], kinds: dict[str, str], decision: Any, no_tool_score: float,
          attribute: str, names: list[str]) -> list[dict[str, Any]]:
    """Router accuracy of ``names`` (the sets one part decides) at every operating point of that part."""
    saved, points = getattr(decision, attribute), []
    try:
        for offset in OFFSETS:
            setattr(decision, attribute, float(offset))
            sets = real_suite.report({n: routed[n] for n in names}, {n: kinds[n] for n in names}, decision,
                                     no_tool_score)["sets"]
            rows = acceptance_rows(sets)
            points.append({"offset": float(offset), "pooled_router": pooled(rows),
                           "lines_met": sum(r["slack"] >= 0 for r in rows.values()), "lines": len(rows),
                           "worst_slack": min(r["slack"] for r in rows.values()), "sets": rows})
    finally:
        setattr(decision, attribute, saved)
    return points


def separability(routed: dict[str, list[dict[str, Any]]], names: list[str]) -> dict[str, Any]:
    """Leave-one-set-out tool-or-none classifiers over the evidence (see the module docstring)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from gentool_router.evidence import CANDIDATE_FEATURES, candidate_features, none_features

    gap = CANDIDATE_FEATURES.index("selector_gap")
    rows, labels, groups, vectors = [], [], [], []
    for name in names:
        for record in routed[name]:
            evidence = real_suite._evidence(record, None)
            if record["expected"] is not None and record["expected"] not in evidence.names:
                continue  # the right tool was not retrieved: no decision can answer it
            features = np.asarray(candidate_features(evidence))
            best = int(np.argmax(features[:, gap]))
            rows.append(np.concatenate([features[best], features[0], none_features(evidence)]))
            labels.append(record["expected"] is not None)
            groups.append(name)
            vectors.append(record["vector"])
    x, y, group = np.asarray(rows), np.asarray(labels), np.asarray(groups)
    variants = {"boosted trees over the evidence": (x, lambda: HistGradientBoostingClassifier(max_iter=200,
                                                                                               learning_rate=0.05)),
                "logistic regression over the evidence and the query embedding":
                    (np.hstack([x, np.asarray(vectors)]), lambda: LogisticRegression(C=1.0, max_iter=2000))}
    out = {}
    for label, (features, make) in variants.items():
        scores = np.zeros(len(y))
        for name in names:
            held = group == name
            scores[held] = make().fit(features[~held], y[~held]).decision_function(features[held])
        threshold = float(np.quantile(scores[~y], 0.95))
        out[label] = {"auc": round(float(roc_auc_score(y, scores)), 4),
                      "answered_with_a_tool_at_95pct_abstention": {
                          n: round(float(np.mean(scores[group == n] > threshold)), 4) for n in names}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="A real_suite.py cache (every route gathered).")
    parser.add_argument("--adapter", type=Path, help="The selector adapter the cache was gathered with (default: the "
                                                     "shipped one).")
    parser.add_argument("--arithmetic", default="merged", choices=("merged", "lora"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from gentool_router.decision import DecisionModel, LabelledEvidence
    from gentool_router.evidence import STATS_DEPTH
    from gentool_router.settings import DEFAULT_SMALL_PRUNE_MARGIN
    from gentool_router_train.real_sets import SUITE_SETS, build_set

    names = list(SUITE_SETS)
    kinds = {n: SUITE_SETS[n][0] for n in names}
    routed = real_suite.gather({n: build_set(n, 200) for n in names}, args.cache, None, args.adapter, None,
                               args.arithmetic, None, DEFAULT_SMALL_PRUNE_MARGIN, tuned=True)
    identity, no_tool_score = routed.pop("_identity"), routed.pop("_no_tool_score")
    routed = real_suite.prune(routed, None, DEFAULT_SMALL_PRUNE_MARGIN)
    real_suite.embed_queries(routed, identity["embedder"])
    real_suite.plain_embedding_top1(routed, args.cache)
    big = [n for n in names if real_suite._evidence(routed[n][0], None).similarity_count >= STATS_DEPTH]
    small = [n for n in names if n not in big]

    fitted = [r for n in big for r in routed[n]]
    decision = DecisionModel.fit([LabelledEvidence(real_suite._evidence(r, None), r["expected"], r["kind"])
                                  for r in fitted], query_vectors=[r["vector"] for r in fitted],
                                 kind_weights={"out_of_scope": 0.5})
    decision.min_catalogue_tools = STATS_DEPTH
    fitted_small = [r for n in small for r in routed[n]]
    decision.fit_small([LabelledEvidence(real_suite._evidence(r, decision), r["expected"], r["kind"])
                        for r in fitted_small])
    chosen = real_suite.report(routed, kinds, decision, no_tool_score)
    chosen_rows = acceptance_rows(chosen["sets"])
    result = {
        "what": "the decision model fitted in sample on the suite itself (not a held-out figure)",
        "adapter": str(args.adapter) if args.adapter else "shipped", "cache": str(args.cache),
        "at_fitted_operating_points": {
            "pooled_router": pooled(chosen_rows),
            "expected_calibration_error": chosen["expected_calibration_error"], "sets": chosen_rows},
        "big_catalogues": sweep(routed, kinds, decision, no_tool_score, "none_offset", big),
        "small_catalogues": sweep(routed, kinds, decision, no_tool_score, "small_offset", small),
        "separability": separability(routed, big),
        "command": "benchmarks/decision_ceiling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": date.today().isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    print(f"in-sample fit at its own operating points: pooled router "
          f"{result['at_fitted_operating_points']['pooled_router'] * 100:.1f}")
    for name, row in chosen_rows.items():
        print(f"  {name:26s} {row['kind']:12s} router {row['router'] * 100:5.1f}  needs {row['needed'] * 100:5.1f}"
              f"  {'met' if row['slack'] >= 0 else 'short by %.1f' % (-row['slack'] * 100)}")
    for part in ("big_catalogues", "small_catalogues"):
        best = max(result[part], key=lambda p: (p["lines_met"], p["worst_slack"]))
        print(f"{part}: at best {best['lines_met']} of {best['lines']} lines met (offset {best['offset']}, worst "
              f"slack {best['worst_slack'] * 100:+.1f} points); best pooled over its sets "
              f"{max(p['pooled_router'] for p in result[part]) * 100:.1f}")
    for label, found in result["separability"].items():
        print(f"{label}: held-out-set AUC {found['auc']:.3f}; answered with a tool at 95% abstention on no-tool "
              "routes: " + ", ".join(f"{n} {v * 100:.0f}%" for n, v in
                                     found["answered_with_a_tool_at_95pct_abstention"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
