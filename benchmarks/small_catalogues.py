"""The decision model's small-catalogue part, measured from cached routes: what its out-of-scope handling costs
tool cases (the part refitted without the out-of-scope fitting set), and calibration apart for large and small
catalogues (the pooled figure lets the two parts' errors cancel), and the part's accuracy per set at each
operating point (``operating_points``: what moving the point would trade).

    .venv/bin/python benchmarks/small_catalogues.py --fit-cache data/rs-merged-v7t \\
        --suite-cache data/rs-confirmed-s18 --out benchmarks/results/small-catalogues.json

``--fit-cache``: a ``real_suite.py --arithmetic merged`` cache holding ``SMALL_FIT_SETS`` (what ``--fit-small``
fitted on); ``--suite-cache``: a ``--arithmetic confirmed`` cache of the whole suite (the router's own routes).
Nothing is routed here; the figures are replayed with ``real_suite.predictions`` as the suite's table is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_suite  # noqa: E402

SMALL_SUITE_SETS = ("metatool_single_ten", "metatool_near_miss", "out_of_scope_chat_ten")


def load(cache: Path, name: str) -> list[dict[str, Any]]:
    """A set's cases joined with their cached routes."""
    from gentool_router_train.real_sets import build_set

    cases = {c["id"]: c for c in build_set(name)}
    lines = (cache / "evidence" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    return [{**cases[r["id"]], **r} for r in map(json.loads, lines) if r.get("id") in cases]


def operating_points(model: Any, fit: dict[str, list[dict[str, Any]]], suite: dict[str, list[dict[str, Any]]],
                     no_tool_score: float) -> list[dict[str, Any]]:
    """The small part's accuracy on each small fitting set and each held-out ten-tool set at every operating point
    (offset on the no-tool utility) from -3 to +1: how much the choice of point can trade one kind for another."""
    saved, points = model.small_offset, []
    try:
        for step in range(17):
            model.small_offset = -3.0 + 0.25 * step
            row: dict[str, Any] = {"offset": model.small_offset}
            for label, sets in (("fit", fit), ("held_out", {n: suite[n] for n in SMALL_SUITE_SETS})):
                row[label] = {n: sum(real_suite.predictions(r, model, no_tool_score)["router"] == r["expected"]
                                     for r in records) / len(records) for n, records in sets.items()}
            points.append(row)
    finally:
        model.small_offset = saved
    return points


def main(argv: list[str] | None = None) -> int:
    from gentool_router.decision import DEFAULT_DECISION_FILE, DecisionModel, LabelledEvidence
    from gentool_router.evidence import STATS_DEPTH
    from gentool_router_train.real_sets import SMALL_FIT_SETS, SUITE_SETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit-cache", type=Path, required=True)
    parser.add_argument("--suite-cache", type=Path, required=True)
    parser.add_argument("--decision", type=Path, default=DEFAULT_DECISION_FILE)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    shipped = DecisionModel.load(args.decision)
    margin = shipped.report["small_catalogue"]["prune_margin"]  # what the small part was fitted on
    fit = real_suite.prune({n: load(args.fit_cache, n) for n in SMALL_FIT_SETS}, margin, margin)
    suite = {n: load(args.suite_cache, n) for n in SUITE_SETS}
    real_suite.embed_queries(fit, shipped.identity["embedder"])
    real_suite.embed_queries(suite, shipped.identity["embedder"])
    without = DecisionModel.load(args.decision)
    without.fit_small([LabelledEvidence(real_suite._evidence(r, shipped), r["expected"], r["kind"])
                       for name, kind in ((n, SMALL_FIT_SETS[n][0]) for n in SMALL_FIT_SETS)
                       if kind != "out_of_scope" for r in fit[name]])
    no_tool_score = 0.0  # unused by the router's answer wherever a decision model decides (every route here)
    result: dict[str, Any] = {}
    for label, model in (("shipped", shipped), ("without_out_of_scope", without)):
        result[label] = {"small_offset": model.small_offset, "accuracy": {
            n: sum(real_suite.predictions(r, model, no_tool_score)["router"] == r["expected"] for r in suite[n])
            / len(suite[n]) for n in SMALL_SUITE_SETS}}
    result["operating_points"] = operating_points(shipped, fit, suite, no_tool_score)
    pairs: dict[str, list[tuple[float, bool]]] = {"large": [], "small": []}
    for records in suite.values():
        for r in records:
            evidence = real_suite._evidence(r, shipped)
            probabilities = shipped.probabilities(evidence)
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            chosen = None if best == len(evidence.candidates) else evidence.candidates[best].name
            part = "small" if evidence.similarity_count < min(shipped.min_catalogue_tools, STATS_DEPTH) else "large"
            pairs[part].append((probabilities[best], chosen == r["expected"]))
    pairs["all"] = pairs["large"] + pairs["small"]
    result["expected_calibration_error"] = {part: {"routes": len(p), "ece": real_suite.expected_calibration_error(p)}
                                            for part, p in pairs.items()}
    result["command"] = "benchmarks/small_catalogues.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
