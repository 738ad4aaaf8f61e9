"""Stateless router replicas over one vector store (Qdrant), offline.

    .venv/bin/python examples/vectorstore_replicas.py              # the default selector (llama.cpp)
    .venv/bin/python examples/vectorstore_replicas.py --retrieval  # nearest tool only: no language model loaded

Needs the ``vectorstore`` extra (``pip install 'gentool-router[vectorstore]'``).

1. A build step writes the bundled catalogue into a Qdrant collection: each tool's vector, canonical text and JSON.
2. A replica opens the collection knowing only its address, reads the catalogue back (BM25 and the selector stay in
   process) and routes.
3. An edit through one replica is written to the store; the next replica to open it sees it (a running replica:
   ``router.index.refresh()``).

Qdrant runs here in local mode, in a temporary folder: the same client code as against a Qdrant server, where
``qdrant_store("tools", url="http://qdrant:6333")`` replaces ``path=``. Local mode lets one client at a time open
a folder, so each step closes its store before the next opens it; a server serves any number of replicas at once.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gentool_router import RetrievalSelector, Tool, ToolRouter
from gentool_router.examples import example_tools
from gentool_router.vectorstore import qdrant_store

QUERIES = ["Will it rain in Lisbon over the next three days?", "Convert 250 US dollars to euros",
           "Write a haiku about autumn leaves"]


def replica(folder: Path, retrieval: bool) -> ToolRouter:
    """What each replica runs at start: open the store by its address, nothing else."""
    store = qdrant_store("tools", path=folder)
    return ToolRouter.from_vectorstore(store, selector=RetrievalSelector() if retrieval else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrieval", action="store_true", help="route to the nearest tool (no language model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "qdrant"

        start = time.perf_counter()
        built = ToolRouter.from_vectorstore(qdrant_store("tools", path=folder), example_tools(), show_progress=False)
        print(f"build: {len(built.index)} tools written to {built.index!r} in {time.perf_counter() - start:.1f} s")
        built.index.close()  # local mode: one client per folder

        first = replica(folder, args.retrieval)
        print(f"replica 1 opened the store: {len(first.index)} tools")
        for query in QUERIES:
            route = first.route(query)
            print(f"  {query!r} -> {route.name}  (candidates: {', '.join(c.name for c in route.candidates)})")
        first.add_tools([Tool(
            "get_air_quality_v2",
            "Air quality index, pollutants (PM2.5, ozone, NO2) and health advice for any city, now and for 3 days.",
            {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
             "required": ["city"]},
            version="2",
        )])
        print("replica 1 added get_air_quality_v2 (written to the store)")
        first.index.close()

        second = replica(folder, args.retrieval)
        route = second.route("Is the air in Delhi safe for running tomorrow?")
        print(f"replica 2 opened the store: {len(second.index)} tools; 'Is the air in Delhi safe for running "
              f"tomorrow?' -> {route.name}")
        second.index.close()


if __name__ == "__main__":
    main()
