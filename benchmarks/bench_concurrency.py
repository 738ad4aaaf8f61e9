"""One router shared by many threads and by asyncio: same answers as sequential calls, no crash, no deadlock.

8 threads x 200 ``route`` calls on one shared :class:`ToolRouter` (real embedder, real llama.cpp selector, a
small catalogue and k = 2 so it finishes in minutes), then the same number of ``aroute`` calls at once through
``asyncio.gather``. Every decision (chosen tool, ranking order, scores within 1e-4) is compared with the
sequential decision for the same query. Prints mismatches, errors by type, timeouts (a deadlock shows as one)
and wall times; exits 1 if anything went wrong.

    .venv/bin/python benchmarks/bench_concurrency.py                 # 8 x 200
    .venv/bin/python benchmarks/bench_concurrency.py --calls 3       # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from gentool_router import LlamaSelector, Route, Tool, ToolRouter

TOOLS = [
    Tool("get_weather_forecast", "Weather forecast for a city: temperature, rain and wind for the next days.",
         {"type": "object", "properties": {"city": {}, "days": {}}, "required": ["city"]}),
    Tool("send_email", "Send an email with a subject and body to a recipient.",
         {"type": "object", "properties": {"to": {}, "subject": {}, "body": {}}, "required": ["to", "body"]}),
    Tool("create_calendar_event", "Create a calendar event with a title, start time and duration.",
         {"type": "object", "properties": {"title": {}, "start": {}, "minutes": {}}, "required": ["title", "start"]}),
    Tool("get_stock_price", "Latest stock price of a company by ticker symbol.",
         {"type": "object", "properties": {"symbol": {}}, "required": ["symbol"]}),
    Tool("translate_text", "Translate text from one language into another.",
         {"type": "object", "properties": {"text": {}, "target_language": {}}, "required": ["text", "target_language"]}),
    Tool("search_recipes", "Find cooking recipes by ingredient or dish name.",
         {"type": "object", "properties": {"ingredients": {}}, "required": ["ingredients"]}),
]
QUERIES = ["Will it rain in Oslo tomorrow?", "email Bob the invoice", "price of AAPL", "tell me a joke",
           "meeting with Ana at 9am", "say thank you in Japanese", "recipes with leeks", "what is 2+2?"]


def decision(route: Route) -> tuple[str, list[tuple[str, float]], bool]:
    return route.name, [(c.name, c.score) for c in route.ranking], route.fallback


def same(a: tuple[str, list[tuple[str, float]], bool], b: tuple[str, list[tuple[str, float]], bool]) -> bool:
    """Same tool, same ranking order, same fallback flag, scores within 1e-4."""
    return (a[0] == b[0] and a[2] == b[2] and [n for n, _ in a[1]] == [n for n, _ in b[1]]
            and all(abs(x - y) <= 1e-4 for (_, x), (_, y) in zip(a[1], b[1])))


def jobs(threads: int, calls: int) -> list[list[str]]:
    """The queries each worker routes, in turn, starting at a different query per worker."""
    return [[QUERIES[(t + i) % len(QUERIES)] for i in range(calls)] for t in range(threads)]


def report(label: str, results: list[tuple[str, Any]], expected: dict[str, Any], seconds: float, timed_out: int) -> bool:
    errors = Counter(type(r).__name__ for _, r in results if isinstance(r, BaseException))
    mismatches = sum(1 for q, r in results if not isinstance(r, BaseException) and not same(expected[q], decision(r)))
    print(f"{label}: {len(results)} calls in {seconds:.1f} s ({len(results) / seconds:.1f} routes/s); "
          f"mismatches {mismatches}, errors {dict(errors) or 0}, timed out {timed_out}")
    return not errors and not mismatches and not timed_out


def run_threads(router: ToolRouter, work: list[list[str]], timeout: float) -> tuple[list[tuple[str, Any]], float, int]:
    def worker(queries: list[str]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for q in queries:
            try:
                out.append((q, router.route(q)))
            except Exception as exc:  # reported as an error, never hidden
                out.append((q, exc))
        return out

    pool = ThreadPoolExecutor(max_workers=len(work))
    start = time.perf_counter()
    futures = [pool.submit(worker, queries) for queries in work]
    done, pending = wait(futures, timeout=timeout)
    seconds = time.perf_counter() - start
    pool.shutdown(wait=not pending, cancel_futures=True)
    return [item for f in done for item in f.result()], seconds, len(pending)


def run_asyncio(router: ToolRouter, work: list[list[str]], timeout: float) -> tuple[list[tuple[str, Any]], float, int]:
    queries = [q for queries in work for q in queries]

    async def main() -> list[Any]:
        return await asyncio.wait_for(asyncio.gather(*(router.aroute(q) for q in queries), return_exceptions=True),
                                      timeout=timeout)

    # not asyncio.run(): after a timeout it would wait for the stuck worker threads; close() does not
    loop = asyncio.new_event_loop()
    start = time.perf_counter()
    try:
        routes = loop.run_until_complete(main())
    except asyncio.TimeoutError:
        return [], time.perf_counter() - start, len(queries)
    finally:
        loop.close()
    return list(zip(queries, routes)), time.perf_counter() - start, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8, help="concurrent callers (default 8)")
    parser.add_argument("--calls", type=int, default=200, help="route calls per caller (default 200)")
    parser.add_argument("-k", type=int, default=2, help="candidates per query (default 2)")
    parser.add_argument("--llama-threads", type=int, default=None, help="llama.cpp threads (default: available cores)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a run counts as deadlocked")
    args = parser.parse_args()

    router = ToolRouter.from_tools(TOOLS, selector=LlamaSelector(n_threads=args.llama_threads), k=args.k)
    start = time.perf_counter()
    expected = {q: decision(router.route(q)) for q in QUERIES}
    sequential = (time.perf_counter() - start) / len(QUERIES)
    print(f"{len(TOOLS)} tools, k = {args.k}, {args.threads} callers x {args.calls} calls; "
          f"sequential: {sequential * 1000:.0f} ms per route ({1 / sequential:.1f} routes/s)")

    work = jobs(args.threads, args.calls)
    results, seconds, pending = run_threads(router, work, args.timeout)
    ok = report("threads", results, expected, seconds, pending * args.calls)
    if pending:  # the selector's lock would hold up the asyncio run too
        print("threads still running after the timeout: a deadlock; exiting without waiting for them")
        os._exit(1)
    results, seconds, timed_out = run_asyncio(router, work, args.timeout)
    ok = report("asyncio.gather(aroute)", results, expected, seconds, timed_out) and ok
    if timed_out:
        os._exit(1)  # worker threads may still hold the router: do not wait for them
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
