"""Route latency per stage, index build throughput, prompt length and cold start (issue: router runtime).

Run with the machine quiet (llama.cpp's threads collapse when a core is busy elsewhere):

    .venv/bin/python benchmarks/bench_route.py --seal-tools ../shared/data/seal-tools

Catalogues: the 4,074 Seal-Tools tools with valid names; the 10,000-tool catalogue adds renamed copies
(``name_2``, ``name_3``) of them: retrieval cost depends on the count, not on the texts being distinct.
Queries: Seal-Tools single-call test queries.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gentool_router import LlamaSelector, Tool, ToolIndex, ToolRouter, ToolValidationError, render_tool
from gentool_router.embedder import MiniLMEmbedder
from gentool_router.evaluation import percentile
from gentool_router.prompt import build_prompt, encode_prompt


def load_tools(seal: Path) -> list[Tool]:
    tools = []
    for line in (seal / "tool.jsonl").open():
        try:
            tools.append(Tool.from_dict(json.loads(line)))
        except ToolValidationError:
            pass  # two Seal-Tools names have spaces or dots
    return tools


def catalogue(tools: list[Tool], n: int) -> list[Tool]:
    out, copy = [], 1
    while len(out) < n:
        for t in tools:
            if len(out) == n:
                break
            out.append(t if copy == 1 else Tool.from_dict({**t.to_dict(), "name": f"{t.name}_{copy}"[:64]}))
        copy += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seal-tools", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/seal-tools")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()

    tools = load_tools(args.seal_tools)
    queries = [json.loads(l)["query"] for l in (args.seal_tools / "test_in_domain.jsonl").open()
               if "easy" in json.loads(l)["id"]][: args.queries]
    embedder = MiniLMEmbedder()
    selector = LlamaSelector()
    print(f"selector threads: {selector.n_threads}")

    token_counts = [len(selector.tokenize(render_tool(t), False)) for t in tools]
    print(f"tool text tokens over {len(tools)} Seal-Tools tools: mean {statistics.mean(token_counts):.1f}, "
          f"p50 {percentile(token_counts, 50)}, p95 {percentile(token_counts, 95)}, max {max(token_counts)}")

    for size in args.sizes:
        cat = catalogue(tools, size)
        start = time.perf_counter()
        index = ToolIndex.build(cat, embedder, show_progress=False)
        build = time.perf_counter() - start
        backend = "sentence-transformers" if "sentence_transformers" in sys.modules else "numpy"
        print(f"\n== {size} tools: index build {build:.1f} s = {size / build:.0f} tools/s ({backend})")
        router = ToolRouter(index, selector, k=5)
        router.route(queries[0])  # warm the prefix cache
        rows = []
        for query in queries:
            route = router.route(query)
            prompt = build_prompt(route.query, [c.name for c in route.candidates],
                                  [index.tool_text(c.name) for c in route.candidates])
            bare = selector.evaluate_tokens(*encode_prompt(prompt, selector.tokenize))
            rows.append((route.timings, route.prompt_tokens, bare))
        for stage in ("embed", "search", "select", "total"):
            values = [getattr(t, stage) * 1000 for t, _, _ in rows]
            print(f"  {stage:6s} p50 {percentile(values, 50):8.1f} ms   p95 {percentile(values, 95):8.1f} ms")
        share = [(t.embed + t.search) / t.total for t, _, _ in rows]
        tokens = [n for _, n, _ in rows]
        ratio = [t.select / bare for t, _, bare in rows]
        print(f"  retrieval share of route time: median {statistics.median(share):.1%}, max {max(share):.1%}")
        print(f"  uncached prompt tokens: mean {statistics.mean(tokens):.0f}, p95 {percentile(tokens, 95)}, "
              f"max {max(tokens)}; cached prefix {selector.prompt_token_count('x', [])[1]}")
        print(f"  select time / bare llama.cpp eval of the same tokens: median {statistics.median(ratio):.3f}, "
              f"p95 {percentile(ratio, 95):.3f}")
        if size == args.sizes[0]:
            with tempfile.TemporaryDirectory() as folder:
                router.save(Path(folder) / "idx")
                exe = Path(sys.executable).with_name("gentool-router")
                walls = []
                for _ in range(3):
                    start = time.perf_counter()
                    subprocess.run([str(exe), "route", "--index", str(Path(folder) / "idx"), queries[1]],
                                   check=True, capture_output=True)
                    walls.append(time.perf_counter() - start)
                print(f"  cold start `gentool-router route` over the saved index: "
                      + ", ".join(f"{w:.2f} s" for w in walls))


if __name__ == "__main__":
    main()
