"""Editing a router while it routes: the real index and embedder, threads adding, removing and routing at once.

Routes during edits return a tool that was in the index when they searched, or none, never a bare KeyError;
``add_tools`` embeds outside the index lock, so routes go on while a large batch is embedded.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import numpy as np
import pytest

from gentool_router import CatalogError, RetrievalSelector, ToolIndex, ToolRouter

from conftest import SMALL_TOOLS

QUERIES = ["Will it rain in Oslo tomorrow?", "Email Bob the report", "AAPL share price", "Translate hello to French",
           "A recipe with leeks", "Book a meeting at 3pm", "What is 2+2?"]


def _extra(round_: int, size: int = 4) -> list[dict[str, str]]:
    return [{"name": f"tmp.tool/{round_}-{i}", "description": f"Temporary tool {i} for weather, email and stocks."}
            for i in range(size)]


class GatedEmbedder:
    """The real embedder; ``embed_documents`` waits for ``release`` while ``gate`` is set (queries never wait)."""

    def __init__(self, embedder: Any) -> None:
        self.inner = embedder
        self.model_id, self.dimension = embedder.model_id, embedder.dimension
        self.gate, self.entered, self.release = threading.Event(), threading.Semaphore(0), threading.Event()

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if self.gate.is_set():
            self.entered.release()
            assert self.release.wait(60), "never released"
        return self.inner.embed_documents(texts, show_progress=show_progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


@pytest.mark.slow
def test_threads_editing_and_routing_at_once(embedder):
    router = ToolRouter.from_tools(SMALL_TOOLS, embedder=embedder, selector=RetrievalSelector(), k=8)
    ever = {t.name for t in SMALL_TOOLS} | {t["name"] for r in range(40) for t in _extra(r)}
    errors: list[BaseException] = []
    routes: list[Any] = []
    stop = threading.Event()

    def edit(first: int) -> None:
        try:
            for round_ in range(first, 40, 2):
                router.add_tools(_extra(round_))
                router.remove_tools([t["name"] for t in _extra(round_)])
                router.remove_tools(["send_email"]) if round_ % 4 == 0 else None
                router.add_tools([SMALL_TOOLS[1]]) if round_ % 4 == 0 else None
        except BaseException as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    def route() -> None:
        try:
            while not stop.is_set():
                for query in QUERIES:
                    routes.append(router.route(query))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    editors = [threading.Thread(target=edit, args=(first,)) for first in (0, 1)]
    routers = [threading.Thread(target=route) for _ in range(3)]
    for thread in [*routers, *editors]:
        thread.start()
    for thread in editors:
        thread.join(timeout=300)
    stop.set()
    for thread in routers:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in [*editors, *routers]), "deadlock"
    assert not errors, errors
    assert len(routes) > 20
    for route in routes:
        assert route.tool is None or route.tool.name in ever
        assert {c.name for c in route.candidates} <= ever
    assert sorted(router.catalog.names()) == sorted(t.name for t in SMALL_TOOLS)
    assert router.route("Will it rain in Oslo tomorrow?").name == "get_weather_forecast"


@pytest.mark.slow
def test_add_embeds_outside_the_lock_and_rechecks_names_under_it(embedder):
    gated = GatedEmbedder(embedder)
    router = ToolRouter.from_tools(SMALL_TOOLS, embedder=gated, selector=RetrievalSelector())
    gated.gate.set()
    outcomes: list[Any] = []

    def add() -> None:
        try:
            outcomes.append(router.add_tools([{"name": "forecast.hourly", "description": "Hourly weather forecast."}]))
        except CatalogError as exc:
            outcomes.append(exc)

    adders = [threading.Thread(target=add) for _ in range(2)]
    for thread in adders:
        thread.start()
    for _ in adders:  # both are embedding the same name, past the early check
        assert gated.entered.acquire(timeout=60)
    start = time.perf_counter()
    route = router.route("Will it rain in Oslo tomorrow?")  # would wait for the adders if they held the lock
    assert route.name == "get_weather_forecast" and time.perf_counter() - start < 30
    gated.release.set()
    for thread in adders:
        thread.join(timeout=60)
    assert sum(isinstance(o, CatalogError) for o in outcomes) == 1, outcomes  # the re-check under the lock
    assert "forecast.hourly" in router.index and len(router.index) == len(SMALL_TOOLS) + 1


class FlatEmbedder:
    model_id, dimension = "test:flat", 8

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return np.full((len(texts), self.dimension), 8 ** -0.5, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


def test_duplicate_names_are_found_in_linear_time():
    """200,000 names: a quadratic check (``list.count``) would take hours; one pass takes well under a second."""
    index = ToolIndex.build([{"name": "seed", "description": "A seed tool."}], FlatEmbedder())
    names = [f"tool.{i}" for i in range(200_000)]
    start = time.perf_counter()
    index._check_new_names(names)
    assert time.perf_counter() - start < 5
    with pytest.raises(CatalogError, match=r"given twice: seed, tool\.7$"):
        index._check_new_names([*names, "tool.7", "seed"])
    added = index.add([{"name": f"bulk/{i}", "description": "Bulk tool."} for i in range(5_000)])
    assert len(added) == 5_000 and len(index) == 5_001
