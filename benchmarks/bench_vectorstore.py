"""Retrieval on a vector database (Qdrant through LangChain) next to the embedded FAISS index, at large catalogues.

    .venv/bin/python benchmarks/bench_vectorstore.py                      # 10,000 tools, Qdrant local mode
    .venv/bin/python benchmarks/bench_vectorstore.py --sizes 500          # a quick run
    .venv/bin/python benchmarks/bench_vectorstore.py --qdrant-url http://localhost:6333   # a Qdrant server

For each size and backend: the write of the catalogue (its vectors are computed once and shared by both backends,
so this is the backend's own cost), a replica's start (opening the store and reading the catalogue back, BM25
included), a top-k search by an embedded query (k = 5, and k = 50: the router's search, which sets the
catalogue's similarity scale) and a whole route with the retrieval-only selector (embedding, search, BM25, hybrid
candidate). p50/p95 over the queries, each query run once after a warm-up pass. The catalogue is the Seal-Tools
tools (vendored in train/data) plus renamed copies, as in bench_route.py; the queries are the bundled example
queries. Needs the ``vectorstore`` extra. Prints one JSON line per backend and size and writes them all to --json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from bench_route import catalogue

from gentool_router import RetrievalSelector, ToolIndex, ToolRouter, render_tool
from gentool_router.embedder import MiniLMEmbedder
from gentool_router.evaluation import percentile
from gentool_router.examples import example_queries
from gentool_router.vectorstore import VectorStoreIndex, qdrant_store
from gentool_router_train.real_sets import catalogue as named_catalogue

RESULTS = Path(__file__).resolve().parent / "results" / "vectorstore.json"


class SharedEmbedder:
    """The packaged MiniLM, each tool text embedded once for both backends (the same function, the same vectors)."""

    def __init__(self) -> None:
        self.inner = MiniLMEmbedder()
        self.model_id, self.dimension = self.inner.model_id, self.inner.dimension
        self.cache: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed_documents(missing, show_progress=show_progress)))
        return np.stack([self.cache[t] for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


def timed(calls: Sequence[Callable[[], Any]]) -> dict[str, float]:
    """p50/p95 in milliseconds of each call, after one warm-up pass."""
    for call in calls[:5]:
        call()
    times = []
    for call in calls:
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(percentile(times, 50), 3), "p95_ms": round(percentile(times, 95), 3)}


def measure(name: str, size: int, index: Any, build_s: float, open_s: float | None, queries: list[str],
            vectors: np.ndarray) -> dict[str, Any]:
    router = ToolRouter(index, RetrievalSelector(), k=5)
    row = {"backend": name, "tools": size, "queries": len(queries), "write_s": round(build_s, 2)}
    if open_s is not None:
        row["replica_open_s"] = round(open_s, 2)
    for k in (5, 50):
        row[f"search_k{k}"] = timed([lambda v=v, k=k: index.search_vectors(v[None, :], k) for v in vectors])
    row["route_retrieval_only"] = timed([lambda q=q: router.route(q) for q in queries])
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--qdrant-url", help="a Qdrant server instead of local mode (a fresh collection per size)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the figures (default {RESULTS})")
    args = parser.parse_args()
    seal = named_catalogue("seal-tools")
    queries = example_queries()[: args.queries]
    embedder = SharedEmbedder()
    vectors = embedder.embed_queries(queries)
    rows = []
    for size in args.sizes:
        tools = catalogue(seal, size)
        embedder.embed_documents([render_tool(t) for t in tools], show_progress=True)  # once, for both backends

        start = time.perf_counter()
        faiss_index = ToolIndex.build(tools, embedder, show_progress=False)
        rows.append(measure("faiss", size, faiss_index, time.perf_counter() - start, None, queries, vectors))

        with tempfile.TemporaryDirectory() as folder:
            collection = f"bench-{size}-{int(time.time())}"
            where = {"url": args.qdrant_url} if args.qdrant_url else {"path": Path(folder) / "qdrant"}
            start = time.perf_counter()
            built = VectorStoreIndex.build(tools, qdrant_store(collection, embedder=embedder, **where),
                                           show_progress=False)
            build_s = time.perf_counter() - start
            built.close()
            start = time.perf_counter()
            replica = VectorStoreIndex(qdrant_store(collection, embedder=embedder, create=False, **where))
            replica.lexical()
            open_s = time.perf_counter() - start
            backend = "qdrant-server" if args.qdrant_url else "qdrant-local"
            rows.append(measure(backend, size, replica, build_s, open_s, queries, vectors))
            if args.qdrant_url:
                replica.store.client.delete_collection(collection)
            replica.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": f"{platform.machine()}, {platform.python_version()}",
                                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                     "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
