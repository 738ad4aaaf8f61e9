"""Embedding top-1 of the stock and the fine-tuned retriever on the real-catalogue suite's tool sets.

    .venv/bin/python benchmarks/retriever_top1.py                       # the shipped delta
    .venv/bin/python benchmarks/retriever_top1.py --delta other.safetensors --out /tmp/top1.json

Each held-out case of kind ``tool`` is searched in its catalogue (its own tools for the ten-tool sets), its excluded
tools left out, by the stock all-MiniLM-L6-v2 and by the same model with a retriever delta added (``retrieval`` and
``tuned_retrieval`` of ``benchmarks/real_suite.py``, without routing anything). About a minute on 2 cores.
Writes ``benchmarks/results/retriever/top1.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from real_suite import embedding_top1  # noqa: E402


def top1_accuracy(embedder: Any, cases: list[dict[str, Any]]) -> float:
    """The share of cases whose nearest tool (excluded ones left out) is the expected one."""
    return sum(name == case["expected"] for name, case in zip(embedding_top1(cases, embedder), cases)) / len(cases)


def main(argv: list[str] | None = None) -> int:
    from gentool_router import retriever_delta
    from gentool_router.embedder import CachingEmbedder, MiniLMEmbedder
    from gentool_router_train.real_sets import SUITE_SETS, build_set

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delta", type=Path, default=retriever_delta.DEFAULT_DELTA_PATH,
                        help="The retriever delta to measure (default: the shipped one).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "retriever" / "top1.json")
    args = parser.parse_args(argv)
    stock = CachingEmbedder(MiniLMEmbedder(tuned=False))
    tuned = CachingEmbedder(MiniLMEmbedder(delta_path=args.delta))
    sets = {}
    for name, (kind, _) in SUITE_SETS.items():
        if kind != "tool":
            continue
        cases = build_set(name)
        sets[name] = {"cases": len(cases), "stock": top1_accuracy(stock, cases), "tuned": top1_accuracy(tuned, cases)}
        print(f"{name} ({len(cases)}): stock {sets[name]['stock'] * 100:.1f}, tuned {sets[name]['tuned'] * 100:.1f}",
              flush=True)
    result = {"sets": sets, "delta": str(args.delta.relative_to(ROOT) if args.delta.is_relative_to(ROOT) else args.delta),
              "command": "benchmarks/retriever_top1.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": date.today().isoformat()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
