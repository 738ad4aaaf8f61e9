"""The HTTP service under load: N concurrent clients for D seconds on loopback, next to the same router in process.

Starts ``gentool_router.serve.create_app`` under uvicorn on 127.0.0.1 (a free port, in this process), then N client
threads each POST ``/v1/route`` in a loop over the bundled example queries for D seconds (httpx, one connection per
client). Then N threads call ``router.route`` on the same router for D seconds. Prints requests/s, p50/p95 latency
and errors of each, and writes them to a JSON file. The selector runs one query at a time (RELIABILITY.md,
"Concurrency"), so throughput is the selector's and latency grows with the queue; what the service adds is the
difference between the two rows.

    .venv/bin/python benchmarks/bench_serve.py                                  # 8 clients x 60 s
    .venv/bin/python benchmarks/bench_serve.py --clients 2 --seconds 5          # smoke run
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, clients: int, seconds: float, call: Callable[[str], None], queries: list[str]) -> dict[str, Any]:
    """``clients`` threads calling ``call`` back to back for ``seconds``; latencies of the calls that finished."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            query = queries[i % len(queries)]
            i += 1
            start = time.perf_counter()
            try:
                call(query)
            except Exception as exc:  # counted, not raised: the figure is how many fail
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c * 7,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    row = {"name": name, "clients": clients, "seconds": round(wall, 1), "requests": len(latencies),
           "requests_per_s": round(len(latencies) / wall, 2),
           "p50_ms": round(statistics.median(ms), 1) if ms else None,
           "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1) if ms else None,
           "errors": dict(errors)}
    print(f"{name}: {row['requests']} routes in {row['seconds']} s ({row['requests_per_s']}/s), "
          f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, errors {sum(errors.values())}")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, help="Selector threads (default: the cores available).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve.json")
    args = parser.parse_args(argv)

    import httpx
    import uvicorn

    from gentool_router import ToolRouter
    from gentool_router.examples import example_queries, example_tools
    from gentool_router.serve import create_app

    router = ToolRouter.from_tools(example_tools(), show_progress=False, n_threads=args.threads)
    router.route("warm-up")
    queries = example_queries()

    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(router), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    local = threading.local()

    def over_http(query: str) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=600)
        response = local.client.post("/v1/route", json={"query": query})
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")

    try:
        rows = [load("http", args.clients, args.seconds, over_http, queries)]
    finally:
        server.should_exit = True
        thread.join()
    rows.append(load("in-process", args.clients, args.seconds, lambda q: router.route(q), queries))
    result = {"catalogue": f"bundled examples ({len(router.index)} tools)", "k": router.k, "rows": rows,
              "command": "benchmarks/bench_serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": date.today().isoformat()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if not any(r["errors"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
