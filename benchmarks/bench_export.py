"""Exported selectors side by side: file size, test accuracy and selection latency, in one run.

Evaluates, on the same cases and through the same code as ``gentool-router eval``:

* ``base + LoRA``: the packaged Q4_1 base with the run's GGUF LoRA adapter (``--adapter``; default the shipped one);
* every merged GGUF in ``--export-dir`` (``gentool-<type>.gguf`` from ``gentool-router export --merged
  --quantize ...``), e.g. f16, q8_0, q4_k_m, q4_1, q4_1-q8_0;
* any other GGUF named with ``--gguf LABEL=PATH``.

Besides accuracy it prints how many answers differ from the f16 model's (the unquantized merge is the reference:
a quantization that changes answers loses what the training bought). Run it on a quiet machine:

    .venv/bin/gentool-router export data/runs/RUN --out bench-out/export --quantize q8_0 --quantize q4_k_m
    .venv/bin/gentool-router export data/runs/RUN --out bench-out/plain --no-lora --quantize q4_k_m --no-keep-adapted
    .venv/bin/python benchmarks/bench_export.py --cases bench-out/gentool-test-sample.jsonl \\
        --export-dir bench-out/export --adapter bench-out/export/gentool-lora.gguf \\
        --gguf "merged q4_k_m, llama.cpp recipe=bench-out/plain/gentool-q4_k_m.gguf" --limit 200 --json bench-out/export.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from gentool_router.embedder import MiniLMEmbedder
from gentool_router.evaluation import evaluate, load_cases, summarize
from gentool_router.models import base_selector_gguf, default_adapter
from gentool_router.selector import LlamaSelector

#: Order of the merged variants in the table (others follow by name).
ORDER = ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_1-q8_0", "q4_1", "q4_0")


def variants(export_dir: Path, adapter: Path | None = None,
             extra: dict[str, Path] | None = None) -> list[tuple[str, dict[str, Any], int]]:
    """(label, LlamaSelector options, bytes on disk) for base + LoRA, each merged GGUF found, and ``extra``.

    ``adapter`` is the GGUF LoRA of the run the merged files come from (default: the shipped one).
    """
    found = {p.stem.removeprefix("gentool-"): p for p in sorted(export_dir.glob("gentool-*.gguf"))
             if p.stem != "gentool-lora"}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    adapter = adapter or default_adapter()
    rows = [("base Q4_1 + LoRA", {"adapter_path": adapter}, base_selector_gguf().stat().st_size + adapter.stat().st_size)]
    rows += [(f"merged {n}", {"model_path": found[n]}, found[n].stat().st_size) for n in names]
    rows += [(label, {"model_path": path}, path.stat().st_size) for label, path in (extra or {}).items()]
    return rows


def _label_and_path(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH to a GGUF file, got {text!r}")
    return label, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, required=True, help="Case file (JSONL) with each case's tools.")
    parser.add_argument("--export-dir", type=Path, required=True, help="Folder with gentool-<type>.gguf files.")
    parser.add_argument("--adapter", type=Path,
                        help="GGUF LoRA of the run the merged files come from, for the base + LoRA row "
                             "(default: the shipped adapter).")
    parser.add_argument("--gguf", type=_label_and_path, action="append", default=[], metavar="LABEL=PATH",
                        help="Another GGUF to evaluate under this label (e.g. a q4_k_m from `export --no-keep-adapted`).")
    parser.add_argument("--limit", type=int, help="Only the first N cases.")
    parser.add_argument("--threads", type=int, help="Selector threads (default: the free cores).")
    parser.add_argument("--json", type=Path, help="Write the figures and each variant's predictions here.")
    parser.add_argument("--only", nargs="+", metavar="LABEL",
                        help="Evaluate only these variants (labels as printed, e.g. 'merged q8_0').")
    parser.add_argument("--reference", type=Path,
                        help="A --json file of an earlier run whose 'merged f16' predictions are the reference.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    cases = load_cases(args.cases)[: args.limit]
    embedder = MiniLMEmbedder()
    results: dict[str, Any] = {}
    predictions: dict[str, list[Any]] = {}
    for label, options, size in variants(args.export_dir, args.adapter, dict(args.gguf)):
        if args.only and label not in args.only:
            continue
        selector = LlamaSelector(n_threads=args.threads, **options)
        try:
            records = evaluate(cases, selector, embedder=embedder)
        finally:
            selector.close()
        summary = summarize(records)
        predictions[label] = [r["predicted"] for r in records]
        results[label] = {"bytes": size, "accuracy": summary["accuracy"], "latency": summary["latency"]["select"],
                          "no_tool_score": selector.no_tool_score}
        print(f"{label}: accuracy {summary['accuracy']:.1%}, select p50 {summary['latency']['select']['p50_ms']:.0f} ms",
              flush=True)

    reference = predictions.get("merged f16")
    if reference is None and args.reference:
        reference = json.loads(args.reference.read_text())["predictions"]["merged f16"]
    print(f"\n{len(cases)} cases from {args.cases}\n")
    print("| selector | file size | accuracy | answers differing from f16 | select p50 / p95 |")
    print("|---|---|---|---|---|")
    for label, row in results.items():
        differ = (sum(a != b for a, b in zip(predictions[label], reference)) if reference else None)
        row["differ_from_f16"] = differ
        print(f"| {label} | {row['bytes'] / 1e6:.1f} MB | {row['accuracy']:.1%} | "
              f"{'-' if differ is None else differ} | {row['latency']['p50_ms']:.0f} / {row['latency']['p95_ms']:.0f} ms |")
    if args.json:
        args.json.write_text(json.dumps({"cases": str(args.cases), "n": len(cases), "results": results,
                                         "predictions": predictions}, indent=1) + "\n")


if __name__ == "__main__":
    main()
