"""Route latency per stage, index build throughput, prompt length and cold start (issue: router runtime).

Run with the machine quiet (llama.cpp's threads collapse when a core is busy elsewhere):

    .venv/bin/python benchmarks/bench_route.py --seal-tools ../shared/data/seal-tools
    # batched (all candidates of a route in one llama.cpp decode) against sequential (one decode per candidate),
    # the same routes, at k = 5 and 64, and 8 queries' candidates in one call against one by one:
    .venv/bin/python benchmarks/bench_route.py --sizes 1000 --queries 30 --k 5 64 --compare --query-batch 8
    # the default selector (adapter merged at q8_0, flash attention, one decode) against the route before issue
    # "Route in half the time" (base + run-time LoRA, no flash attention, one decode per candidate):
    .venv/bin/python benchmarks/bench_route.py --sizes 1000 --queries 40 --against-lora --no-cold-start

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
    parser.add_argument("--k", type=int, nargs="+", default=[5], help="candidates per route (one pass each)")
    parser.add_argument("--compare", action="store_true",
                        help="route every query twice, batched and sequential selector scoring (same routes)")
    parser.add_argument("--query-batch", type=int, default=0,
                        help="also time N queries' candidates scored in one call (select_batch) against one by one")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start runs")
    parser.add_argument("--no-flash-attn", action="store_true",
                        help="llama.cpp without flash attention (the sequential path then scores as before batching)")
    parser.add_argument("--no-merge", action="store_true", help="base + run-time LoRA instead of the merged q8_0 file")
    parser.add_argument("--against-lora", action="store_true",
                        help="also route every query as before 2026-12-03: base + run-time LoRA, no flash attention, "
                             "one decode per candidate, every candidate scored: time ratio and decisions changed")
    args = parser.parse_args()

    tools = load_tools(args.seal_tools)
    queries = [json.loads(line)["query"] for line in (args.seal_tools / "test_in_domain.jsonl").open()
               if "easy" in json.loads(line)["id"]][: args.queries]
    embedder = MiniLMEmbedder()
    selector = LlamaSelector(flash_attn=not args.no_flash_attn, merge_adapter=not args.no_merge)
    reference = LlamaSelector(flash_attn=False, merge_adapter=False, batched=False) if args.against_lora else None
    scoring = "batched and sequential" if args.compare else "batched"
    print(f"selector threads: {selector.n_threads}; scoring: {scoring}; "
          f"flash attention {'off' if args.no_flash_attn else 'on'}; runs {selector.runtime_path.name}"
          + (" + run-time LoRA" if selector.runtime_path == selector.model_path and selector.adapter_path else ""))
    gaps: dict[str, dict[str, float] | None] = {"last": None}  # each candidate's logit gap, by name

    def record(chosen: LlamaSelector) -> None:
        select = chosen.select

        def recording_select(*a, **kw):  # keeps each route's logit gaps for the comparison
            selection = select(*a, **kw)
            names = a[1] if len(a) > 1 else kw["names"]
            gaps["last"] = dict(zip(names, selection.logit_gaps)) if selection.logit_gaps is not None else None
            return selection

        chosen.select = recording_select  # type: ignore[method-assign]

    record(selector)
    if reference is not None:
        record(reference)

    token_counts = [len(selector.tokenize(render_tool(t), False)) for t in tools]
    print(f"tool text tokens over {len(tools)} Seal-Tools tools: mean {statistics.mean(token_counts):.1f}, "
          f"p50 {percentile(token_counts, 50)}, p95 {percentile(token_counts, 95)}, max {max(token_counts)}; "
          f"cached prefix {selector.prompt_token_count('x', [])[1]} tokens")
    for label, measured in (("", selector), (" (reference: base + run-time LoRA, no flash attention)", reference)):
        if measured is None:
            continue
        for n in (128, 256, 512):
            best = min(measured.one_batch_seconds(n) for _ in range(3))
            print(f"one-batch throughput of llama.cpp, {n} tokens (one sequence, after the cached prefix){label}: "
                  f"{best * 1000:.1f} ms = {n / best:.0f} tokens/s")

    paths = {"batched": True, "sequential": False} if args.compare else {"batched": True}
    if reference is not None:
        paths["reference"] = False
    for size in args.sizes:
        cat = catalogue(tools, size)
        start = time.perf_counter()
        index = ToolIndex.build(cat, embedder, show_progress=False)
        build = time.perf_counter() - start
        backend = "sentence-transformers" if "sentence_transformers" in sys.modules else "numpy"
        print(f"\n== {size} tools: index build {build:.1f} s = {size / build:.0f} tools/s ({backend})")
        for k in args.k:
            router = ToolRouter(index, selector, k=k)
            router.route(queries[0])  # warm the prefix cache
            # the route before the issue: every one of the k candidates scored (no pruning)
            reference_router = ToolRouter(index, reference, k=k, prune_margin=None) if reference is not None else None
            if reference_router is not None:
                reference_router.route(queries[0])
            rows: dict[str, list] = {name: [] for name in paths}
            differences, changed = [], 0
            reference_changed, reference_differences = 0, []
            scored_twice = 0  # routes the router confirmed with the exact arithmetic (ToolRouter.confirm_margin)
            for query in queries:
                chosen = {}
                for name, batched in paths.items():
                    used, used_router = ((reference, reference_router) if name == "reference"
                                         else (selector, router))
                    assert used is not None and used_router is not None
                    used.batched = batched
                    route = used_router.route(query)
                    prompt = build_prompt(route.query, [c.name for c in route.candidates],
                                          [index.tool_text(c.name) for c in route.candidates])
                    bare = used.evaluate_tokens(*encode_prompt(prompt, used.tokenize))
                    rows[name].append((route.timings, route.prompt_tokens, bare))
                    scored_twice += name == "batched" and "scored_twice" in (route.explanation or {})
                    chosen[name] = (route.tool.name if route.tool is not None else None, gaps["last"])
                selector.batched = True
                if reference is not None:
                    (a, gaps_a), (b, gaps_b) = chosen["batched"], chosen["reference"]
                    reference_changed += a != b
                    if gaps_a is not None and gaps_b is not None:
                        reference_differences.append(max((abs(gaps_a[n] - gaps_b[n]) for n in gaps_a if n in gaps_b),
                                                         default=0.0))
                if args.compare:
                    (a, gaps_a), (b, gaps_b) = chosen["batched"], chosen["sequential"]
                    changed += a != b
                    if gaps_a is not None and gaps_b is not None:
                        differences.append(max((abs(gaps_a[n] - gaps_b[n]) for n in gaps_a if n in gaps_b), default=0.0))
            print(f" -- k = {k}")
            for name, path_rows in rows.items():
                report(name, path_rows)
            print(f"  scored twice (decided by less than confirm_margin = {router.confirm_margin}): {scored_twice} of "
                  f"{len(queries)} routes")
            if args.compare:
                print(f"  batched vs sequential: {changed} of {len(queries)} routes change their decision "
                      f"(chosen tool or none); largest |logit gap difference| "
                      f"{max(differences, default=0.0):.4f} (median {statistics.median(differences or [0.0]):.4f})")
                b = percentile([t.select for t, _, _ in rows["batched"]], 50)
                s = percentile([t.select for t, _, _ in rows["sequential"]], 50)
                print(f"  select p50 sequential / batched: {s / b:.2f}x")
            if reference is not None:
                b = percentile([t.select for t, _, _ in rows["batched"]], 50)
                r = percentile([t.select for t, _, _ in rows["reference"]], 50)
                print(f"  against the reference: select p50 {b * 1000:.1f} / {r * 1000:.1f} ms = {b / r:.2f}x; "
                      f"{reference_changed} of {len(queries)} routes change their decision; largest |logit gap "
                      f"difference| {max(reference_differences, default=0.0):.3f} "
                      f"(median {statistics.median(reference_differences or [0.0]):.3f}; candidates both scored)")
            if args.query_batch > 1:
                compare_query_batches(router, queries, args.query_batch, selector)
        if size == args.sizes[0] and not args.no_cold_start:
            router = ToolRouter(index, selector, k=args.k[0])
            with tempfile.TemporaryDirectory() as folder:
                router.save(Path(folder) / "idx")
                exe = Path(sys.executable).with_name("gentool-router")
                walls = []
                for _ in range(3):
                    start = time.perf_counter()
                    subprocess.run([str(exe), "route", "--index", str(Path(folder) / "idx"), queries[1]],
                                   check=True, capture_output=True)
                    walls.append(time.perf_counter() - start)
                print("  cold start `gentool-router route` over the saved index: "
                      + ", ".join(f"{w:.2f} s" for w in walls))


def report(name: str, rows: list) -> None:
    print(f"  [{name}]")
    for stage in ("embed", "search", "select", "total"):
        values = [getattr(t, stage) * 1000 for t, _, _ in rows]
        print(f"  {stage:6s} p50 {percentile(values, 50):8.1f} ms   p95 {percentile(values, 95):8.1f} ms")
    share = [(t.embed + t.search) / t.total for t, _, _ in rows]
    tokens = [n for _, n, _ in rows]
    ratio = [t.select / bare for t, _, bare in rows]
    rate = [n / t.select for t, n, _ in rows]
    print(f"  retrieval share of route time: median {statistics.median(share):.1%}, max {max(share):.1%}")
    print(f"  uncached prompt tokens: mean {statistics.mean(tokens):.0f}, p95 {percentile(tokens, 95)}, "
          f"max {max(tokens)}")
    print(f"  effective routing throughput (uncached tokens / select time): median {statistics.median(rate):.0f} "
          f"tokens/s, overall {sum(tokens) / sum(t.select for t, _, _ in rows):.0f} tokens/s")
    print(f"  select time / bare llama.cpp eval of the same tokens: median {statistics.median(ratio):.3f}, "
          f"p95 {percentile(ratio, 95):.3f}")


def compare_query_batches(router: ToolRouter, queries: list[str], size: int, selector: LlamaSelector) -> None:
    """Select time per query: each query's candidates alone (batched within the route) or ``size`` queries'
    candidates scored in one select_batch call, over the same candidates."""
    requests = []
    for query in queries:
        route = router.route(query)
        names = [c.name for c in route.candidates]
        requests.append((route.query, names, [router.index.tool_text(n) for n in names],
                         [c.retrieval_score for c in route.candidates]))
    alone, together = [], []
    for start in range(0, len(requests) - size + 1, size):
        chunk = requests[start:start + size]
        t0 = time.perf_counter()
        for request in chunk:
            selector.select(*request)
        alone.append((time.perf_counter() - t0) / size)
        t0 = time.perf_counter()
        selector.select_batch(chunk)
        together.append((time.perf_counter() - t0) / size)
    print(f"  {size} queries a call, select time per query: one by one p50 {percentile(alone, 50) * 1000:.1f} ms, "
          f"select_batch p50 {percentile(together, 50) * 1000:.1f} ms ({len(alone)} chunks)")

if __name__ == "__main__":
    main()
