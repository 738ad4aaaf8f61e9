"""How much does the selector say "yes" to a tool whatever the query? Its logit gap for a content-free query.

    .venv/bin/python benchmarks/tool_prior.py            # about 9 minutes the first time (2,589 tools), then cached

For every tool that is a candidate of a cached real-suite route (``data/real-suite``, the exact arithmetic, every
candidate scored), the shipped selector scores the query "N/A" against the tool (base + run-time LoRA, no flash
attention, candidates batched). A selector that judged the request would say "no" to every tool alike; the spread
of these gaps, and which tools top them, is the per-tool prior the selector learnt from its training data
(TRAINING.md, "Tool text alone gives the answer away"). Then, on the cached routes, how often the selector's
best-ranked tool is right when each gap is first reduced by ``alpha`` times the tool's prior ("contextual
calibration"; alpha 0 is the selector as shipped).

Writes ``benchmarks/results/tool-prior.json``; the gaps are cached per adapter in
``data/tool-prior/gaps-FINGERPRINT.json``. The per-set rows need the cached routes to be the same selector's (the
cache's identity names its adapter); for another selector only the gaps are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT_FREE = "N/A"
ALPHAS = (0.0, 0.5, 1.0)


def candidate_names(cache: Path) -> set[str]:
    names: set[str] = set()
    for path in (cache / "evidence").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            names.update(c["name"] for c in json.loads(line)["evidence"]["candidates"])
    return names


def content_free_gaps(cache: Path, out: Path, adapter: Path | None = None,
                      catalogues: list[str] | None = None) -> dict[str, dict[str, float]]:
    """{catalogue: {tool: gap}} for every suite candidate of each catalogue index, computed once and cached."""
    from gentool_router import ToolIndex
    from gentool_router.prompt import MAX_CANDIDATES
    from gentool_router.selector import LlamaSelector

    gaps: dict[str, dict[str, float]] = json.loads(out.read_text()) if out.is_file() else {}
    wanted = candidate_names(cache)
    selector = None
    start = time.time()
    for folder in sorted((cache / "indexes").iterdir()):
        if catalogues and folder.name not in catalogues:
            continue
        index = ToolIndex.load(folder)
        done = gaps.setdefault(folder.name, {})
        todo = [n for n in index.catalog.names() if n in wanted and n not in done]
        if todo and selector is None:
            options: dict[str, Any] = {"adapter_path": adapter} if adapter is not None else {}
            selector = LlamaSelector(merge_adapter=False, flash_attn=False, batched=True, **options)
        for i in range(0, len(todo), MAX_CANDIDATES):
            chunk = todo[i:i + MAX_CANDIDATES]
            selection = selector.select(CONTENT_FREE, chunk, [index.tool_text(n) for n in chunk],  # type: ignore
                                        [0.0] * len(chunk))
            done.update(zip(chunk, selection.logit_gaps))
        print(f"{folder.name}: {len(done)} tools ({time.time() - start:.0f} s)", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(gaps))
    return gaps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "real-suite")
    parser.add_argument("--gaps", type=Path, help="Cache of the gaps (default: one file per adapter fingerprint).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tool-prior.json")
    parser.add_argument("--adapter", type=Path, help="Another selector adapter (GGUF LoRA) than the packaged one.")
    parser.add_argument("--catalogues", nargs="*", help="Only these catalogues (index folder names).")
    args = parser.parse_args(argv)

    from gentool_router import ToolIndex
    from gentool_router.decision import file_fingerprint
    from gentool_router.models import ADAPTER_FILE
    from gentool_router_train.real_sets import SUITE_SETS, build_set

    adapter = args.adapter or ADAPTER_FILE
    fingerprint = file_fingerprint(adapter)
    gaps_file = args.gaps or ROOT / "data" / "tool-prior" / f"gaps-{fingerprint[:16]}.json"
    gaps = content_free_gaps(args.cache, gaps_file, args.adapter, args.catalogues)
    cached_identity = json.loads((args.cache / "evidence" / "seal_in_domain.jsonl").read_text(
        encoding="utf-8").splitlines()[0])["identity"]
    same_selector = cached_identity.get("selector_adapter") == fingerprint
    result: dict[str, Any] = {"content_free_query": CONTENT_FREE, "adapter": adapter.name, "adapter_fingerprint":
                              fingerprint, "catalogues": {}, "sets": {},
                              "command": "benchmarks/tool_prior.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    for catalogue, by_tool in gaps.items():
        index = ToolIndex.load(args.cache / "indexes" / catalogue)
        names = sorted(by_tool)
        values = np.array([by_tool[n] for n in names])
        words = np.array([len(index.tool_text(n).split()) for n in names])
        top = np.argsort(-values)[:5]
        result["catalogues"][catalogue] = {
            "tools": len(names), "mean": float(values.mean()), "std": float(values.std()),
            "correlation_with_words": float(np.corrcoef(values, words)[0, 1]),
            "highest": [{"tool": names[i], "gap": float(values[i])} for i in top]}
        print(f"{catalogue}: {len(names)} tools, gap for {CONTENT_FREE!r} mean {values.mean():.2f} sd {values.std():.2f}; "
              "highest " + ", ".join(f"{names[i]} {values[i]:+.1f}" for i in top))
    for name, (kind, *_rest) in SUITE_SETS.items():
        if kind != "tool" or not same_selector:  # the cached routes' gaps must be this selector's
            continue
        path = args.cache / "evidence" / f"{name}.jsonl"
        cached = {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()[1:])}
        cases = [c for c in build_set(name, 200) if c["id"] in cached and c["expected"]]
        catalogue = next(c for c, by_tool in gaps.items()
                         if all(x["name"] in by_tool for x in cached[cases[0]["id"]]["evidence"]["candidates"]))
        prior = gaps[catalogue]
        row: dict[str, Any] = {"cases": len(cases), "catalogue": catalogue}
        for alpha in ALPHAS:
            right = 0
            for case in cases:
                candidates = cached[case["id"]]["evidence"]["candidates"]
                best = max(candidates, key=lambda c: c["selector_gap"] - alpha * prior[c["name"]])
                right += best["name"] == case["expected"]
            row[f"selector_best_alpha_{alpha:g}"] = right / len(cases)
        row["retrieval"] = sum(min(cached[c["id"]]["evidence"]["candidates"], key=lambda x: x["rank"])["name"]
                               == c["expected"] for c in cases) / len(cases)
        result["sets"][name] = row
        print(f"{name}: {len(cases)} cases, retrieval {row['retrieval']:.1%}, selector's best "
              + ", ".join(f"alpha {a:g} {row[f'selector_best_alpha_{a:g}']:.1%}" for a in ALPHAS))
    if not same_selector:
        print(f"the routes in {args.cache} are another selector's: per-set figures left out")
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
