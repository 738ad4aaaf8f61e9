"""The real-catalogue suite: every held-out set, the methods side by side, in one run.

    .venv/bin/python benchmarks/real_suite.py                 # route what is not cached yet, then report
    .venv/bin/python benchmarks/real_suite.py --fit           # also refit the shipped decision model first

Each case is routed once through the real router (FAISS retrieval, BM25, the llama.cpp selector) and its
evidence cached in ``data/real-suite-merged/evidence/SET.jsonl`` (one cache per selector identity), so the methods are
compared on the same routes and a later run only routes what is missing. ``--arithmetic confirmed`` routes exactly as
``ToolRouter`` does by default (pruned, decided, close routes scored again with the exact arithmetic) into
``data/real-suite-confirmed/``: the figures a user gets. Methods:

* ``router``: the decision model over all the evidence (what ``ToolRouter`` does by default);
* ``decision_best``: the decision model's likeliest tool, never abstaining (its ranking apart from tool or none:
  what the router would answer on a tool set if it never abstained);
* ``selector_fixed``: the selector alone with its calibrated no-tool threshold (the router before the decision);
* ``selector_best``: the selector's best-ranked tool, never abstaining (how well it ranks, apart from no tool);
* ``retrieval``: plain embedding top-1 (the stock all-MiniLM-L6-v2, what a user has without the router), never
  abstains; ``tuned_retrieval``: the router's own retriever's top-1 (the fine-tuned embedder; in a cache gathered
  with ``--retriever stock`` the same as ``retrieval``); ``lexical``: BM25 top-1 over the whole catalogue;
* ``oracle``: right when the router's retriever's top-1 or the selector's choice is right (their union's ceiling).

Writes ``benchmarks/results/real-suite.json`` (the format of BENCHMARKS.md, "Real catalogues") and prints the
table. The held-out sets are checked to be disjoint from training and fitting before anything runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gentool_router.decision import expected_calibration_error

ROOT = Path(__file__).resolve().parents[1]
#: LlamaSelector options of each arithmetic the suite can measure.
ARITHMETIC: dict[str, dict[str, bool]] = {"merged": {"merge_adapter": True, "flash_attn": True},
                                          # the exact arithmetic: the selector's scores before batching, bit for bit
                                          "lora": {"merge_adapter": False, "flash_attn": False, "batched": False},
                                          "confirmed": {"merge_adapter": True, "flash_attn": True}}
#: The arithmetic whose routes are decided in the router (the shipped decision model, its close routes scored again
#: exactly: ``ToolRouter(confirm_margin=...)``) and pruned there: what the cache holds is what the router did.
DECIDED_IN_ROUTER = "confirmed"
METHODS = ("router", "decision_best", "selector_fixed", "selector_best", "retrieval", "tuned_retrieval", "lexical",
           "oracle")


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if total == 0:
        return (float("nan"), float("nan"))
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


# ------------------------------------------------------------------------------------------------ routing


class Routers:
    """One router per catalogue (indexes cached on disk), one selector shared by all."""

    def __init__(self, cache: Path, n_threads: int | None = None, adapter: Path | None = None,
                 model: Path | None = None, arithmetic: str = "merged", prune_margin: float | None = None,
                 small_prune_margin: float | None = None, tuned: bool = True) -> None:
        from gentool_router import ToolIndex, ToolRouter
        from gentool_router.embedder import MiniLMEmbedder
        from gentool_router.selector import LlamaSelector

        self.cache = cache
        self.embedder = MiniLMEmbedder(tuned=tuned)
        options = ARITHMETIC[arithmetic]
        if model is not None:  # a merged selector file: no adapter over it
            self.selector = LlamaSelector(model, adapter_path=None, n_threads=n_threads, **options)
        elif adapter is not None:
            self.selector = LlamaSelector(adapter_path=adapter, n_threads=n_threads, **options)
        else:
            self.selector = LlamaSelector(n_threads=n_threads, **options)
        self.arithmetic = arithmetic
        # every candidate scored, no decision: the methods and the decision are replayed on the cache; except for
        # the arithmetic decided in the router, which routes as ToolRouter does by default
        self._router_options: dict[str, Any] = {"decision": None, "prune_margin": None, "small_prune_margin": None,
                                                "confirm_margin": None}
        if arithmetic == DECIDED_IN_ROUTER:
            self._router_options = {"prune_margin": prune_margin, "small_prune_margin": small_prune_margin}
        self._routers: dict[str, Any] = {}
        self._ToolIndex, self._ToolRouter = ToolIndex, ToolRouter

    def identity(self) -> dict[str, Any]:
        from gentool_router.decision import selector_identity

        # the candidates (dense top 5, BM25's best in the last place when missing) are part of what was cached
        identity = {**selector_identity(self.selector.model_path, self.selector.adapter_path, self.embedder.model_id),
                    "candidates": "hybrid-1"}
        if self.arithmetic != "lora":  # other arithmetic, other scores: a cache of its own (caches of the run-time
            identity["arithmetic"] = self.arithmetic  # LoRA, the only arithmetic before, carry no such key)
        if self.arithmetic == DECIDED_IN_ROUTER:
            from gentool_router.settings import DEFAULT_CONFIRM_MARGIN

            identity["prune_margin"] = self._router_options["prune_margin"]
            identity["small_prune_margin"] = self._router_options["small_prune_margin"]
            identity["confirm_margin"] = DEFAULT_CONFIRM_MARGIN
        return identity

    def for_case(self, case: dict[str, Any]) -> Any:
        from gentool_router_train.real_sets import catalogue

        if case["tools"] is not None:
            index = self._ToolIndex.build(case["tools"], self.embedder, show_progress=False)
            return self._ToolRouter(index, self.selector, on_selector_error="raise", **self._router_options)
        name = case["catalogue"]
        if name not in self._routers:
            folder = self.cache / "indexes" / name
            try:
                index = self._ToolIndex.load(folder, self.embedder)
            except Exception:  # not built yet, or built by another version: build it again
                index = self._ToolIndex.build(catalogue(name), self.embedder, show_progress=True)
                index.save(folder)
            self._routers[name] = self._ToolRouter(index, self.selector, on_selector_error="raise",
                                                   **self._router_options)
        return self._routers[name]


def gather(sets: dict[str, list[dict[str, Any]]], cache: Path, n_threads: int | None = None, adapter: Path | None = None,
           model: Path | None = None, arithmetic: str = "merged", prune_margin: float | None = None,
           small_prune_margin: float | None = None, tuned: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Each case's evidence, from the cache or by routing it now (appended to the cache as it goes)."""
    routers = Routers(cache, n_threads, adapter, model, arithmetic, prune_margin, small_prune_margin, tuned)
    identity = routers.identity()
    out: dict[str, list[dict[str, Any]]] = {}
    for name, cases in sets.items():
        path = cache / "evidence" / f"{name}.jsonl"
        done: dict[str, dict[str, Any]] = {}
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            cached = json.loads(lines[0]).get("identity") if lines else None
            if cached is not None and cached != identity:  # never mix two selectors' evidence, never delete it
                differs = sorted(k for k in {*cached, *identity} if cached.get(k) != identity.get(k))
                raise SystemExit(f"{path} was gathered with another selector ({', '.join(differs)} differ): "
                                 "give this one a --cache of its own, or move that folder away")
            done = {r["id"]: r for r in map(json.loads, lines[1:]) if r.get("id")}
        queries = {c["id"]: c["query"] for c in cases}
        done = {i: r for i, r in done.items() if r.get("query") == queries.get(i)}  # a set whose cases changed
        todo = [c for c in cases if c["id"] not in done]
        if todo:
            path.parent.mkdir(parents=True, exist_ok=True)
            new_file = not path.is_file() or path.stat().st_size == 0
            with path.open("a", encoding="utf-8") as handle:
                if new_file:
                    handle.write(json.dumps({"identity": identity}) + "\n")
                for case in tqdm(todo, desc=name, unit="case"):
                    router = routers.for_case(case)
                    route = router.route(case["query"], exclude=case["exclude"])
                    record = {"id": case["id"], "query": case["query"], "evidence": route.evidence.to_dict(),
                              "select_ms": route.timings.select * 1000, "decide_ms": route.timings.decide * 1000,
                              "prompt_tokens": route.prompt_tokens,
                              "scored_twice": "scored_twice" in (route.explanation or {})}
                    handle.write(json.dumps(record) + "\n")
                    handle.flush()
                    done[case["id"]] = record
        out[name] = [{**case, **done[case["id"]]} for case in cases]
    out["_identity"] = identity  # type: ignore[assignment]
    out["_no_tool_score"] = routers.selector.no_tool_score  # type: ignore[assignment]
    return out


# ------------------------------------------------------------------------------------------------ methods


def prune(routed: dict[str, list[dict[str, Any]]], margin: float | None,
          small_margin: float | None) -> dict[str, list[dict[str, Any]]]:
    """The cached routes (every candidate scored) as the router prunes them (``ToolRouter(prune_margin=...,
    small_prune_margin=...)``, the same rule): what the methods and the decision model's fit see. Select times stay
    those of all k."""
    from gentool_router.evidence import STATS_DEPTH, worth_scoring

    out = {}
    for name, records in routed.items():
        pruned = []
        for record in records:
            evidence = record["evidence"]
            margin_here = small_margin if _evidence(record, None).similarity_count < STATS_DEPTH else margin
            top = evidence["candidates"][0]["cosine"]
            kept = [c for c in evidence["candidates"] if worth_scoring(
                c["rank"], c["cosine"], top, c["name"] == evidence.get("lexical_best_name"), margin_here)]
            pruned.append({**record, "evidence": {**evidence, "candidates": kept}})
        out[name] = pruned
    return out


def _evidence(record: dict[str, Any], decision: Any) -> Any:
    """A cached route's evidence, with the query classifier's log-odds when the decision model has one."""
    from gentool_router.evidence import RouteEvidence

    evidence = RouteEvidence.from_dict(record["evidence"])
    if "similarity_count" not in record["evidence"] and record.get("tools"):  # cached before the field existed
        evidence = replace(evidence, similarity_count=len(record["tools"]) - len(record.get("exclude") or ()))
    return decision.with_query(evidence, record["vector"]) if decision is not None and "vector" in record else evidence


def _held_out_group(name: str, fit: dict[str, list[dict[str, Any]]]) -> str | None:
    """Which routes the decision model's temperature is fitted on as predicted by a model fitted without them: each
    fitting set with tools, one at a time (a catalogue the model was not fitted on, as a user's is); the no-tool
    messages are always fitted on (they look alike over any catalogue, and without them a model cannot abstain)."""
    return None if fit[name] and fit[name][0]["kind"] == "out_of_scope" else name


def predictions(record: dict[str, Any], decision: Any, no_tool_score: float) -> dict[str, str | None]:
    """What each method answers for one cached route (a tool name, or None for no tool)."""
    evidence = _evidence(record, decision)
    candidates = evidence.candidates
    by_gap = max(candidates, key=lambda c: c.selector_gap)
    fixed = by_gap.name if by_gap.selector_gap > no_tool_score else None
    retrieval = candidates[0].name
    plain = record.get("plain_top1", retrieval)
    decided = decision is not None and decision.applies_to(evidence)
    router = decision.decide(evidence) if decided else fixed
    # the decision's likeliest tool, never abstaining: its ranking apart from its tool-or-none step
    best = by_gap.name
    if decided:
        probabilities = decision.probabilities(evidence)[: len(candidates)]
        best = candidates[max(range(len(candidates)), key=probabilities.__getitem__)].name
    oracle = record["expected"] if record["expected"] in (retrieval, fixed) else router
    return {"router": router, "decision_best": best, "selector_fixed": fixed, "selector_best": by_gap.name,
            "retrieval": plain, "tuned_retrieval": retrieval, "lexical": evidence.lexical_best_name, "oracle": oracle}


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


def report(routed: dict[str, list[dict[str, Any]]], kinds: dict[str, str], decision: Any,
           no_tool_score: float) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    calibration: list[tuple[float, bool]] = []
    for name, records in routed.items():
        answers = [predictions(r, decision, no_tool_score) for r in records]
        accuracy, interval = {}, {}
        for method in METHODS:
            correct = sum(a[method] == r["expected"] for a, r in zip(answers, records))
            accuracy[method] = correct / len(records)
            interval[method] = wilson(correct, len(records))
        if decision is not None:
            for r in records:
                evidence = _evidence(r, decision)
                if not decision.applies_to(evidence):
                    continue  # decided by the selector: no calibrated probability
                probabilities = decision.probabilities(evidence)
                best = max(range(len(probabilities)), key=probabilities.__getitem__)
                chosen = None if best == len(evidence.candidates) else evidence.candidates[best].name
                calibration.append((probabilities[best], chosen == r["expected"]))
        with_tool = [r for r in records if r["expected"] is not None]
        sets[name] = {
            "kind": kinds[name], "cases": len(records), "accuracy": accuracy,
            "interval95": {m: [round(lo, 4), round(hi, 4)] for m, (lo, hi) in interval.items()},
            "recall_at_k": (sum(r["expected"] in [c["name"] for c in r["evidence"]["candidates"]] for r in with_tool)
                            / len(with_tool)) if with_tool else None,
            "select_ms": {"p50": percentile([r["select_ms"] for r in records], 50),
                          "p95": percentile([r["select_ms"] for r in records], 95)},
            "decide_ms": {"p50": percentile([r["decide_ms"] for r in records], 50),
                          "p95": percentile([r["decide_ms"] for r in records], 95)},
        }
    pooled = [r for records in routed.values() for r in records]
    return {"sets": sets, "pooled_cases": len(pooled),
            "expected_calibration_error": expected_calibration_error(calibration) if calibration else None}


def by_case_type(records: list[dict[str, Any]], decision: Any, no_tool_score: float) -> dict[str, Any]:
    """Accuracy of each method on each case type of a synthetic test sample (no-tool, weak-to-strong, ...)."""
    out: dict[str, Any] = {}
    for case_type in sorted({r.get("case_type") or "" for r in records}):
        chosen = [r for r in records if (r.get("case_type") or "") == case_type]
        answers = [predictions(r, decision, no_tool_score) for r in chosen]
        out[case_type] = {"cases": len(chosen), **{m: sum(a[m] == r["expected"] for a, r in zip(answers, chosen))
                                                  / len(chosen) for m in METHODS}}
    return out


def decide_timing(routed: dict[str, list[dict[str, Any]]], decision: Any, cache: Path) -> dict[str, float]:
    """Milliseconds the decision adds to a route, measured alone on the Seal-Tools catalogue (4,076 tools): BM25's
    best tool (the hybrid candidate), BM25 of the candidates, the model's probabilities and its explanation."""
    from gentool_router.evidence import RouteEvidence
    from gentool_router.lexical import LexicalIndex
    from gentool_router_train.real_sets import catalogue

    lexical = LexicalIndex(catalogue("seal-tools"))
    records = [r for name in ("seal_in_domain", "seal_out_domain") for r in routed.get(name, [])]
    times = []
    for r in records:
        evidence = RouteEvidence.from_dict(r["evidence"])
        start = time.perf_counter()
        if decision is not None:
            evidence = decision.with_query(evidence, r["vector"])
        match = lexical.match(r["query"])  # once a route, as ToolRouter does
        match.best()  # the hybrid candidate
        match.of(evidence.names)
        if decision is not None:
            decision.probabilities(evidence)
            decision.explain(evidence)
        times.append((time.perf_counter() - start) * 1000)
    return {"catalogue_tools": len(lexical), "routes": len(times), "p50_ms": percentile(times, 50),
            "p95_ms": percentile(times, 95)}


def table(result: dict[str, Any]) -> str:
    head = ["set", "kind", "cases", *METHODS, "recall@5", "select p50/p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in result["sets"].items():
        cells = [f"{s['accuracy'][m] * 100:.1f} [{s['interval95'][m][0] * 100:.0f}–{s['interval95'][m][1] * 100:.0f}]"
                 for m in METHODS]
        recall = "-" if s["recall_at_k"] is None else f"{s['recall_at_k'] * 100:.1f}"
        lines.append(f"| {name} | {s['kind']} | {s['cases']} | " + " | ".join(cells) +
                     f" | {recall} | {s['select_ms']['p50']:.0f} / {s['select_ms']['p95']:.0f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main


def cache_embedder(cache: Path) -> str:
    """The embedder a cache's routes were gathered with (its evidence files' identity header)."""
    for path in sorted((cache / "evidence").glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            header = json.loads(handle.readline() or "{}").get("identity")
        if header:
            return str(header["embedder"])
    raise SystemExit(f"{cache} holds no gathered routes")


def embedding_top1(records: list[dict[str, Any]], embedder: Any, *, progress: bool = False) -> list[str]:
    """Each case's nearest tool by ``embedder`` over its catalogue (or its own tools), excluded tools left out: the
    one embedding top-1 of the suite (``plain_embedding_top1`` here, ``benchmarks/retriever_top1.py``)."""
    from gentool_router import ToolIndex
    from gentool_router_train.real_sets import catalogue

    indexes: dict[str, Any] = {}
    names = []
    for record in tqdm(records, desc="embedding top-1", unit="case", disable=not progress):
        if record.get("tools") is not None:
            index = ToolIndex.build(record["tools"], embedder, show_progress=False)
        else:
            name = record["catalogue"]
            if name not in indexes:
                indexes[name] = ToolIndex.build(catalogue(name), embedder, show_progress=progress)
            index = indexes[name]
        excluded = set(record.get("exclude") or ())
        names.append([s.tool.name for s in index.search(record["query"], 1 + len(excluded))
                      if s.tool.name not in excluded][0])
    return names


def plain_embedding_top1(routed: dict[str, list[dict[str, Any]]], cache: Path) -> None:
    """Each record's plain embedding top-1 (``plain_top1``): the stock all-MiniLM-L6-v2 over the case's catalogue,
    the baseline the router must beat; kept in ``CACHE/plain-embedding.json`` (by case id and query)."""
    from gentool_router.embedder import CachingEmbedder, MiniLMEmbedder

    path = cache / "plain-embedding.json"
    known: dict[str, list[str]] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    records = [r for rs in routed.values() for r in rs]
    todo = [r for r in records if known.get(r["id"], [None])[0] != r["query"]]
    if todo:
        found = embedding_top1(todo, CachingEmbedder(MiniLMEmbedder(tuned=False)), progress=True)
        known.update({r["id"]: [r["query"], name] for r, name in zip(todo, found)})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known), encoding="utf-8")
    for record in records:
        record["plain_top1"] = known[record["id"]][1]


def embedder_for(embedder_id: str) -> Any:
    """The embedder an identity names: the shipped fine-tuned retriever or the stock all-MiniLM-L6-v2."""
    from gentool_router.embedder import MiniLMEmbedder
    from gentool_router.retriever_delta import TUNED_MODEL_ID

    return MiniLMEmbedder(tuned=embedder_id == TUNED_MODEL_ID)


def embed_queries(routed: dict[str, list[dict[str, Any]]], embedder_id: str) -> None:
    """Each record's query embedding (``vector``), for the decision model's query classifier: with the embedder the
    routes were gathered with and the decision model was fitted with (``embedder_id``, from either's identity)."""
    records = [r for rs in routed.values() for r in rs]
    vectors = embedder_for(embedder_id).embed_queries([r["query"] for r in records])
    for record, vector in zip(records, vectors):
        record["vector"] = vector


def synthetic_sets(folder: Path, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The GenTool-simulated held-out test sample (every 9th case of test.jsonl, as benchmarks/run_eval.sh takes it)
    and up to ``limit`` dev cases, from a ``generate-data`` folder: our own synthetic data, reported apart."""
    def load(split: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]

    def case(set_name: str, number: int, record: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"{set_name}-{number:04d}", "set": set_name, "query": record["query"],
                "expected": record["expected"], "kind": "tool" if record["expected"] else "near_miss",
                "catalogue": None, "tools": record["tools"], "exclude": [], "case_type": record.get("case_type")}

    test = [case("synthetic_test", i, r) for i, r in enumerate(load("test")[::9])]
    dev = [case("fit_synthetic_dev", i, r) for i, r in enumerate(load("dev")[:limit])]
    return test, dev


def main(argv: list[str] | None = None) -> int:
    from gentool_router.settings import DEFAULT_PRUNE_MARGIN, DEFAULT_SMALL_PRUNE_MARGIN

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="Evidence cache (default: data/real-suite-merged for the default "
                        "arithmetic, data/real-suite for --arithmetic lora).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real-suite.json")
    parser.add_argument("--limit", type=int, default=200, help="Cases per set at most.")
    parser.add_argument("--sets", nargs="*", help="Only these suite sets.")
    parser.add_argument("--fit", action="store_true", help="Refit the shipped decision model on the fitting sets.")
    parser.add_argument("--fit-small", action="store_true",
                        help="Refit the decision model's small-catalogue part (under 50 tools) on SMALL_FIT_SETS, "
                             "keeping the rest of the model.")
    parser.add_argument("--fit-extra", nargs="*", default=[], help="Also fit on these ablation sets (measuring).")
    parser.add_argument("--fit-small-extra", nargs="*", default=[],
                        help="With --fit-small: also fit the small part on these ablation sets (measuring).")
    parser.add_argument("--out-of-scope-weight", type=float, default=0.5,
                        help="Weight of each out-of-scope fitting route (0.5 measured best: BENCHMARKS.md).")
    parser.add_argument("--decision-out", type=Path, help="With --fit: write the model here, not into the package.")
    parser.add_argument("--adapter", type=Path, help="Selector adapter (GGUF LoRA) to measure instead of the shipped "
                        "one; give it a --cache of its own.")
    parser.add_argument("--model", type=Path, help="A merged selector GGUF (no adapter over it) to measure instead of "
                        "the shipped base + adapter; give it a --cache of its own.")
    parser.add_argument("--arithmetic", choices=sorted(ARITHMETIC), default="merged",
                        help="How llama.cpp runs the selector: 'merged' (the default: the adapter merged at q8_0, flash "
                             "attention), 'lora' (base + run-time LoRA, no flash attention, one decode per candidate: the "
                             "exact arithmetic, the selector before 2026-12-03, that data/real-suite was gathered with) "
                             "or 'confirmed' (merged, close routes "
                             "scored again exactly, decided and pruned in the router as it does by default: its cache "
                             "holds one --prune-margin); each needs a --cache of its own.")
    parser.add_argument("--prune-margin", type=lambda v: None if v == "none" else float(v),
                        default=DEFAULT_PRUNE_MARGIN, help="The router's candidate pruning replayed on the cached "
                        "routes (default: the router's; 'none': every candidate).")
    parser.add_argument("--small-prune-margin", type=lambda v: None if v == "none" else float(v),
                        default=DEFAULT_SMALL_PRUNE_MARGIN, help="The same for catalogues under 50 tools (default: "
                        "the router's; the small-catalogue part is fitted on routes pruned by it).")
    parser.add_argument("--decision", type=Path, help="Evaluate this decision model (default: the shipped one).")
    parser.add_argument("--retriever", choices=("tuned", "stock"), default="tuned",
                        help="The router's embedder when routing: the shipped fine-tuned one (default) or the stock "
                             "all-MiniLM-L6-v2 (the router before 2026-12-04; caches gathered before then).")
    parser.add_argument("--gather-only", action="store_true",
                        help="Route and cache, report nothing (with --sets: suite or fitting sets by name).")
    parser.add_argument("--threads", type=int, help="Selector threads (two 1-thread runs on disjoint --sets share "
                                                    "2 cores better than one 2-thread run beside other work).")
    parser.add_argument("--synthetic", type=Path,
                        help="A generate-data folder (data/gentool-v2 for the shipped selector): also report its "
                             "held-out test sample, apart from the real sets.")
    parser.add_argument("--fit-synthetic", action="store_true",
                        help="With --fit and --synthetic: fit on the synthetic dev cases too.")
    args = parser.parse_args(argv)
    if args.cache is None:
        args.cache = ROOT / "data" / {"lora": "real-suite", "merged": "real-suite-merged",
                                      "confirmed": "real-suite-confirmed"}[args.arithmetic]
    if args.arithmetic == DECIDED_IN_ROUTER and (args.fit or args.fit_small):
        print("--fit needs every candidate scored without a decision: --arithmetic merged or lora", file=sys.stderr)
        return 2

    from gentool_router.decision import DEFAULT_DECISION_FILE, DecisionModel, LabelledEvidence
    from gentool_router.evidence import STATS_DEPTH
    from gentool_router_train.real_sets import (
        ABLATION_SETS,
        FIT_SETS,
        SMALL_FIT_SETS,
        SUITE_SETS,
        build_set,
        check_disjoint,
    )

    suite_names = [n for n in args.sets or SUITE_SETS if n in SUITE_SETS]
    suite = {n: build_set(n, args.limit) for n in suite_names}
    fit = {n: build_set(n, args.limit) for n in [*FIT_SETS, *args.fit_extra]}
    small_fit = {n: build_set(n, args.limit) for n in [*SMALL_FIT_SETS, *args.fit_small_extra]}
    if args.gather_only and args.sets:
        fit.update({n: build_set(n, args.limit) for n in args.sets if n in ABLATION_SETS or n in SMALL_FIT_SETS})
    problems = check_disjoint(suite, {**fit, **small_fit})
    if problems:
        print("held-out sets leak:\n" + "\n".join(problems[:20]), file=sys.stderr)
        return 1
    synthetic_test: list[dict[str, Any]] = []
    if args.synthetic is not None:
        synthetic_test, synthetic_dev = synthetic_sets(args.synthetic, args.limit)
        if args.fit_synthetic:
            fit["fit_synthetic_dev"] = synthetic_dev
    wanted = {**(fit if args.fit or args.gather_only else {}), **(small_fit if args.fit_small else {}), **suite}
    if args.gather_only and args.sets:
        wanted = {n: c for n, c in wanted.items() if n in args.sets}
    if synthetic_test:
        wanted["synthetic_test"] = synthetic_test
    if args.gather_only and args.sets:
        wanted = {n: c for n, c in wanted.items() if n in args.sets}
    routed = gather(wanted, args.cache, args.threads, args.adapter, args.model, args.arithmetic, args.prune_margin,
                    args.small_prune_margin, tuned=args.retriever == "tuned")
    identity, no_tool_score = routed.pop("_identity"), routed.pop("_no_tool_score")  # type: ignore[arg-type]
    identity = {k: v for k, v in identity.items()  # type: ignore[union-attr]
                if k not in ("candidates", "prune_margin", "small_prune_margin", "confirm_margin", "arithmetic")}
    if args.gather_only:
        return 0
    routed = prune(routed, args.prune_margin, args.small_prune_margin)
    embed_queries(routed, identity["embedder"])
    plain_embedding_top1(routed, args.cache)
    extra: dict[str, Any] = {}
    decision_file = args.decision_out or DEFAULT_DECISION_FILE
    if args.fit:
        fitted = [r for n in fit for r in routed[n]]
        examples = [LabelledEvidence(_evidence(r, None), r["expected"], r["kind"]) for r in fitted]
        vectors = [r["vector"] for r in fitted]
        decision = DecisionModel.fit(examples, identity=identity, query_vectors=vectors,
                                     kind_weights={"out_of_scope": args.out_of_scope_weight},
                                     groups=[_held_out_group(n, fit) for n in fit for _ in routed[n]])
        decision.report["fitted_on"] = {n: len(routed[n]) for n in fit}
        decision.report["selector_arithmetic"] = args.arithmetic  # the scores it was fitted on, and the pruning
        decision.report["prune_margin"] = args.prune_margin
        decision.min_catalogue_tools = STATS_DEPTH  # fitted on catalogues of 50+ tools: smaller ones stay the selector's
        decision.save(decision_file)
        print(f"decision model fitted on {len(examples)} routes, written to {decision_file}")
        # the same fit without any out-of-scope examples: what the out-of-scope handling costs tool cases
        kept = [i for i, e in enumerate(examples) if e.kind != "out_of_scope"]
        without = DecisionModel.fit([examples[i] for i in kept], identity=identity)
        without.min_catalogue_tools = STATS_DEPTH
        extra["without_out_of_scope"] = report({n: routed[n] for n in suite_names}, {n: SUITE_SETS[n][0] for n in suite_names},
                                               without, no_tool_score)["sets"]
    if args.fit_small:  # onto the model just fitted, or the one given, or the shipped one
        decision = DecisionModel.load(decision_file if args.fit else args.decision or DEFAULT_DECISION_FILE)
        decision.check_matches(identity)
        fitted = [r for n in small_fit for r in routed[n]]
        decision.fit_small([LabelledEvidence(_evidence(r, decision), r["expected"], r["kind"]) for r in fitted])
        decision.report["small_catalogue"].update({"fitted_on": {n: len(routed[n]) for n in small_fit},
                                                   "selector_arithmetic": args.arithmetic,
                                                   "prune_margin": args.small_prune_margin})
        decision.save(decision_file)
        print(f"small-catalogue part fitted on {len(fitted)} routes, written to {decision_file}")
    decision = DecisionModel.load(decision_file if args.fit or args.fit_small else args.decision or decision_file)
    decision.check_matches(identity)
    result = report({n: routed[n] for n in suite_names}, {n: SUITE_SETS[n][0] for n in suite_names}, decision,
                    no_tool_score)
    result["decide_timing"] = decide_timing(routed, decision, args.cache)
    used = (args.decision or decision_file).absolute()
    result["decision"] = {"file": str(used.relative_to(ROOT) if used.is_relative_to(ROOT) else used),
                          "report": {k: v for k, v in decision.report.items() if k != "risk_coverage"}}
    result.update(extra)
    if synthetic_test:
        synthetic = report({"synthetic_test": routed["synthetic_test"]}, {"synthetic_test": "synthetic"}, decision,
                           no_tool_score)["sets"]["synthetic_test"]
        synthetic["source"] = str(args.synthetic)
        synthetic["by_case_type"] = by_case_type(routed["synthetic_test"], decision, no_tool_score)
        result["synthetic"] = synthetic
    result["arithmetic"], result["prune_margin"] = args.arithmetic, args.prune_margin
    result["small_prune_margin"] = args.small_prune_margin
    result["command"] = "benchmarks/real_suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result["date"] = date.today().isoformat()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(result))
    if result["expected_calibration_error"] is not None:
        print(f"expected calibration error (pooled, router): {result['expected_calibration_error']:.3f}")
    if synthetic_test:
        print("synthetic held-out test: " + ", ".join(f"{m} {result['synthetic']['accuracy'][m] * 100:.1f}"
                                                     for m in METHODS))
        for case_type, row in result["synthetic"]["by_case_type"].items():
            print(f"  {case_type} ({row['cases']}): " + ", ".join(f"{m} {row[m] * 100:.1f}" for m in METHODS))
    print(f"decision adds p50 {result['decide_timing']['p50_ms']:.2f} ms / p95 {result['decide_timing']['p95_ms']:.2f} ms "
          f"over {result['decide_timing']['catalogue_tools']} tools")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
