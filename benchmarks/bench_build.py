"""Index build at large catalogue sizes: embedding, the duplicate check, FAISS, the BM25 index, and a save.

    .venv/bin/python benchmarks/bench_build.py --sizes 100000

The catalogue is the Seal-Tools tools (vendored in train/data) plus renamed copies (building costs depend on the count
and text lengths, not on what the texts say), as in bench_route.py. Prints one line per size; BENCHMARKS.md records it.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from bench_route import catalogue

from gentool_router import ToolIndex
from gentool_router_train.real_sets import catalogue as named_catalogue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    seal = named_catalogue("seal-tools")
    results = []
    for size in args.sizes:
        tools = catalogue(seal, size)
        start = time.perf_counter()
        index = ToolIndex.build(tools, show_progress=True)
        build = time.perf_counter() - start
        start = time.perf_counter()
        index.add([{"name": "one_more_tool", "description": "A tool added to a large index"}])
        add_one = time.perf_counter() - start
        start = time.perf_counter()
        index.lexical()
        lexical = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            index.save(Path(folder) / "idx")
            save = time.perf_counter() - start
        row = {"tools": size, "build_s": round(build, 1), "tools_per_s": round(size / build, 1),
               "add_one_s": round(add_one, 3), "bm25_build_s": round(lexical, 2), "save_s": round(save, 2),
               "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
