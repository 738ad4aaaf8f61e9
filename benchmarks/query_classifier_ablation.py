"""Ablation: the decision model's query classifier ("does this query ask for a tool at all") fitted on more queries.

    .venv/bin/python benchmarks/query_classifier_ablation.py --cache data/rs-merged-v7 \\
        --synthetic data/gentool-v7 --json benchmarks/results/query-classifier-ablation.json

The shipped decision model fits its query classifier on the fitting routes' queries alone (about 1,000), so its
log-odds on those routes are in-sample. Two changes are measured here, each with the whole decision model refitted
as ``benchmarks/real_suite.py --fit`` and ``--fit-small`` do (main part on every candidate, small part on routes
pruned at the router's small margin), then replayed on the held-out suite's routes as the router prunes them:

* more queries: the project's 600 hand-written no-tool messages (``train/data/no-tool-queries.jsonl``, none a
  suite query) and training queries of the selector's ``generate-data`` folder (all ask for a tool);
* cross-fitted log-odds: the decision model learns how far to trust the classifier from five-fold out-of-fold
  log-odds, as it meets new queries in use.

Needs the fitting, small-fitting and suite sets in ``--cache`` (``real_suite.py --gather-only --sets ...``). Router
accuracy per suite set and pooled; the results in BENCHMARKS.md ("Real catalogues": "Where the router loses").
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_arithmetic import read_cache  # noqa: E402
from real_suite import (  # noqa: E402
    ROOT,
    _evidence,
    _held_out_group,
    cache_embedder,
    embed_queries,
    embedder_for,
    predictions,
    prune,
)

FOLDS = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "rs-merged-v7",
                        help="Merged-arithmetic cache of real_suite.py with every candidate scored.")
    parser.add_argument("--synthetic", type=Path, default=ROOT / "data" / "gentool-v7",
                        help="The selector's generate-data folder: its training queries ask for a tool.")
    parser.add_argument("--tool-queries", type=int, default=1500, help="Training queries added (ask for a tool).")
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    args = parser.parse_args(argv)

    from sklearn.model_selection import StratifiedKFold

    from gentool_router.artefact import ArtefactMetadata
    from gentool_router.decision import (
        DecisionModel,
        LabelledEvidence,
        _fit_query_classifier,
        default_decision,
        expected_calibration_error,
    )
    from gentool_router.evidence import STATS_DEPTH
    from gentool_router.models import ADAPTER_FILE
    from gentool_router.settings import DEFAULT_PRUNE_MARGIN, DEFAULT_SMALL_PRUNE_MARGIN
    from gentool_router_train.real_sets import FIT_SETS, SMALL_FIT_SETS, SUITE_SETS, build_set
    from gentool_router_train.sources import query_key

    def load(names: Any) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for name in names:
            cached = read_cache(args.cache, name)
            cases = [{**c, **cached[c["id"]]} for c in build_set(name) if c["id"] in cached]
            if not cases:
                raise SystemExit(f"{name} is not in {args.cache}: gather it first (real_suite.py --gather-only)")
            out[name] = cases
        return out

    fit = prune(load(FIT_SETS), None, DEFAULT_SMALL_PRUNE_MARGIN)
    small = prune(load(SMALL_FIT_SETS), None, DEFAULT_SMALL_PRUNE_MARGIN)
    suite = prune(load(SUITE_SETS), DEFAULT_PRUNE_MARGIN, DEFAULT_SMALL_PRUNE_MARGIN)
    embedder_id = cache_embedder(args.cache)  # the routes' embedder (stock in the caches this was measured on)
    for routed in (fit, small, suite):
        embed_queries(routed, embedder_id)
    identity = {**default_decision().identity, "embedder": embedder_id}
    threshold = float(ArtefactMetadata.from_gguf(ADAPTER_FILE).no_tool_score or 0.0)

    suite_keys = {query_key(r["query"]) for records in suite.values() for r in records}
    no_tool = [json.loads(line)["query"] for line in
               (ROOT / "train" / "data" / "no-tool-queries.jsonl").read_text(encoding="utf-8").splitlines()]
    if any(query_key(q) in suite_keys for q in no_tool):
        raise SystemExit("a no-tool message is a suite query")
    trained = list(dict.fromkeys(json.loads(line)["query"] for line in
                                 (args.synthetic / "train.jsonl").read_text(encoding="utf-8").splitlines()))
    random.Random(0).shuffle(trained)
    tool_queries = [q for q in trained if query_key(q) not in suite_keys][: args.tool_queries]
    extra_vectors = np.asarray(embedder_for(embedder_id).embed_queries(no_tool + tool_queries))
    extra_labels = [False] * len(no_tool) + [True] * len(tool_queries)

    fitted = [r for name in fit for r in fit[name]]
    examples = [LabelledEvidence(_evidence(r, None), r["expected"], r["kind"]) for r in fitted]
    vectors = np.asarray([r["vector"] for r in fitted])
    labels = [e.kind != "out_of_scope" for e in examples]
    groups = [_held_out_group(name, fit) for name in fit for _ in fit[name]]

    def measure(label: str, more_queries: bool, c: float, crossfit: bool) -> dict[str, Any]:
        x = np.vstack([vectors, extra_vectors]) if more_queries else vectors
        y = np.asarray(labels + (extra_labels if more_queries else []))
        classifier = _fit_query_classifier(x, y, c=c)
        if crossfit:  # each fitting route's log-odds from a classifier fitted without it
            out_of_fold = np.zeros(len(vectors))
            for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y):
                weights, bias = _fit_query_classifier(x[train], y[train], c=c)
                own = test[test < len(vectors)]
                out_of_fold[own] = vectors[own] @ weights + bias
            crossed = [replace(e, evidence=replace(e.evidence, needs_tool=float(v)))
                       for e, v in zip(examples, out_of_fold)]
            decision = DecisionModel.fit(crossed, identity=identity, kind_weights={"out_of_scope": 0.5}, groups=groups)
            decision.query_weights, decision.query_bias = np.asarray(classifier[0]), float(classifier[1])
        else:  # the shipped recipe (None) refits the classifier for each group the temperature holds out
            shipped = not more_queries and c == 1.0
            decision = DecisionModel.fit(examples, identity=identity, query_vectors=vectors, groups=groups,
                                         kind_weights={"out_of_scope": 0.5},
                                         query_classifier=None if shipped else classifier)
        decision.min_catalogue_tools = STATS_DEPTH
        small_routes = [r for name in small for r in small[name]]
        decision.fit_small([LabelledEvidence(_evidence(r, decision), r["expected"], r["kind"]) for r in small_routes])
        accuracy, right, total, calibration = {}, 0, 0, []
        for name, records in suite.items():
            correct = sum(predictions(r, decision, threshold)["router"] == r["expected"] for r in records)
            accuracy[name] = round(correct / len(records), 4)
            right, total = right + correct, total + len(records)
            for r in records:
                evidence = _evidence(r, decision)
                probabilities = decision.probabilities(evidence)
                best = int(np.argmax(probabilities))
                chosen = None if best == len(evidence.candidates) else evidence.candidates[best].name
                calibration.append((probabilities[best], chosen == r["expected"]))
        row = {"variant": label, "more_queries": more_queries, "c": c, "crossfit": crossfit, "router": accuracy,
               "pooled": round(right / total, 4), "routes": total,
               "expected_calibration_error": round(expected_calibration_error(calibration), 4)}
        print(f"{label}: pooled {row['pooled']:.1%}, ECE {row['expected_calibration_error']:.3f}; "
              + ", ".join(f"{n} {a:.1%}" for n, a in accuracy.items()), flush=True)
        return row

    rows = [measure("shipped recipe (fitting queries, in-sample)", False, 1.0, False)]
    for more in (False, True):
        for c in (1.0, 4.0):
            for crossfit in (False, True):
                if (more, c, crossfit) != (False, 1.0, False):
                    rows.append(measure(f"{'more queries' if more else 'fitting queries'}, C={c:g}"
                                        f"{', cross-fitted' if crossfit else ''}", more, c, crossfit))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "command": " ".join([".venv/bin/python benchmarks/query_classifier_ablation.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "date": date.today().isoformat(), "no_tool_queries": len(no_tool), "tool_queries": len(tool_queries),
            "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
