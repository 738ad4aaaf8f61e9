"""The router end to end: real embedder, real FAISS, real llama.cpp selector."""

from __future__ import annotations

import asyncio

import pytest

from gentool_router import QueryError, RetrievalSelector, SelectorError, Tool, ToolRouter
from gentool_router.results import Selection

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def router(small_tools, embedder, selector):
    return ToolRouter.from_tools(small_tools, embedder=embedder, selector=selector, k=4)


def test_route_returns_a_full_decision(router, small_tools):
    route = router.route("Will it rain in Lisbon this weekend?")
    names = {t.name for t in small_tools}
    assert len(route.candidates) == 4
    assert route.candidates[0].name == "get_weather_forecast"
    assert {c.name for c in route.ranking} == {*(c.name for c in route.candidates), "generate_response"}
    assert route.name == route.ranking[0].name
    assert route.tool is None or route.tool.name in names
    assert route.timings.embed > 0 and route.timings.select > 0 and route.prompt_tokens > 0
    assert not route.fallback
    data = route.to_dict()
    assert data["ranking"][0]["name"] == route.name and "total" in data["timings"]


def test_route_batch_matches_single_routes(router):
    queries = ["email Bob the invoice", "translate 'good night' to Italian", "recipes with leeks"]
    batch = router.route_batch(queries)
    for query, route in zip(queries, batch):
        single = router.route(query)
        assert [c.name for c in single.ranking] == [c.name for c in route.ranking]
        assert [c.name for c in single.candidates] == [c.name for c in route.candidates]


def test_aroute_runs_in_a_thread(router):
    """The event loop keeps running while routes are computed (they run in worker threads, not on the loop)."""
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # let the ticker start
        routes = await asyncio.gather(router.aroute("stock price of MSFT"), router.aroute("meeting tomorrow 9am"))
        task.cancel()
        return routes, ticks

    (a, b), ticks = asyncio.run(main())
    assert a.candidates[0].name == "get_stock_price"
    assert b.candidates[0].name == "create_calendar_event"
    # a route takes tens of milliseconds or more; run on the loop, it would leave the ticker a tick or two
    assert ticks >= 5, ticks


def test_save_load_gives_identical_routes(tmp_path, router, embedder, selector):
    router.save(tmp_path / "r")
    loaded = ToolRouter.load(tmp_path / "r", embedder=embedder, selector=selector)
    assert loaded.k == router.k
    for query in ["is it sunny in Nice", "send a note to HR", "cook pasta"]:
        a, b = router.route(query), loaded.route(query)
        assert [(c.name, round(c.score, 4)) for c in a.ranking] == [(c.name, round(c.score, 4)) for c in b.ranking]


def test_tools_added_at_run_time_are_routable(small_tools, embedder, selector):
    router = ToolRouter.from_tools(small_tools, embedder=embedder, selector=selector, k=3)
    router.add_tools([Tool("book_taxi", "Book a taxi ride to an address", {"type": "object",
                                                                              "properties": {"address": {}}})])
    route = router.route("get me a cab to the station")
    assert route.candidates[0].name == "book_taxi"
    router.remove_tools(["book_taxi"])
    assert all(c.name != "book_taxi" for c in router.route("get me a cab").candidates)


@pytest.mark.parametrize("query, message", [("", "empty"), ("  \n\t ", "empty"), ("\x00\x01", "empty"), (None, "string"),
                                             (b"bytes", "string")])
def test_bad_queries_get_clear_errors(router, query, message):
    with pytest.raises(QueryError, match=message):
        router.route(query)


def test_odd_but_valid_queries_are_routed(router):
    huge = "weather " * 1_300_000  # ~10 MB
    assert router.route(huge).candidates[0].name == "get_weather_forecast"
    assert router.route("r\udcffain tomorrow? \x1b[31m").ranking  # lone surrogate, control characters


class _BrokenSelector:
    def select(self, query, names, texts, scores) -> Selection:
        raise SelectorError("model crashed")


def test_selector_failure_falls_back_to_retrieval(small_tools, embedder, caplog):
    router = ToolRouter.from_tools(small_tools, embedder=embedder, selector=_BrokenSelector())
    route = router.route("forecast for Berlin")
    assert route.fallback and "model crashed" in route.fallback_reason
    assert route.tool.name == "get_weather_forecast" == route.candidates[0].name
    assert "falling back" in caplog.text
    strict = ToolRouter.from_tools(small_tools, embedder=embedder, selector=_BrokenSelector(), on_selector_error="raise")
    with pytest.raises(SelectorError):
        strict.route("forecast for Berlin")


def test_retrieval_selector_never_abstains(small_tools, embedder):
    router = ToolRouter.from_tools(small_tools, embedder=embedder, selector=RetrievalSelector())
    route = router.route("tell me a joke")
    assert route.tool is not None and route.tool.name == route.candidates[0].name
