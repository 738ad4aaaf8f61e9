"""The LangChain / LangGraph integration: retriever, runnable, agent middleware and graph node.

Fast tests run a real :class:`ToolRouter` over a keyword stand-in for the index and the selector (no models);
the ``slow`` ones use the real embedder and llama.cpp selector.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import Field, ValidationError

from gentool_router import NO_TOOL, CatalogError, ConfigError, QueryError, Tool, ToolCatalog, ToolRouter, render_tool
from gentool_router.examples import example_tools
from gentool_router.index import ScoredTool
from gentool_router.langchain import (
    ToolRouterMiddleware,
    ToolRouterRetriever,
    as_retriever,
    as_runnable,
    route_tools_node,
    routed_tool_names,
)
from gentool_router.results import Choice, Selection

from conftest import SMALL_TOOLS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

KEYWORDS = {
    "get_weather_forecast": ("rain", "weather", "forecast", "sunny"),
    "send_email": ("email", "mail"),
    "create_calendar_event": ("meeting", "calendar"),
    "get_stock_price": ("stock", "share price"),
    "translate_text": ("translate",),
    "search_recipes": ("recipe", "cook"),
    "convert_currency": ("euro", "dollar", "currency"),
}


# ------------------------------------------------------------------------------------------ stand-ins
class KeywordIndex:
    """Stands in for ToolIndex: a query's "embedding" holds, per tool, 1 when it names one of its keywords."""

    def __init__(self, tools: list[Any]) -> None:
        self.catalog = ToolCatalog.from_tools(tools)
        self.embedder = self
        self.embed_calls: list[list[str]] = []

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        self.embed_calls.append(list(queries))
        names = self.catalog.names()
        return np.array([[_matches(q, n) - 0.01 * i for i, n in enumerate(names)] for q in queries])

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[ScoredTool]]:
        tools = list(self.catalog)
        return [[ScoredTool(tools[i], float(row[i])) for i in np.argsort(-row)[:k]] for row in vectors]

    def tool_text(self, name: str) -> str:
        return render_tool(self.catalog.get(name))

    def add(self, tools: list[Any]) -> None:
        for tool in tools:
            self.catalog.add(tool)

    def __len__(self) -> int:
        return len(self.catalog)


def _matches(query: str, name: str) -> float:
    return 1.0 if any(word in query.lower() for word in KEYWORDS.get(name, ())) else 0.0


class KeywordSelector:
    """Ranks the candidates that matched a keyword above generate_response, the others below it."""

    def select(self, query, names, texts, scores) -> Selection:
        above = [n for n, s in zip(names, scores) if s > 0.5]
        below = [n for n in names if n not in above]
        order = [*above, NO_TOOL, *below]
        return Selection(tuple(Choice(n, 0.5 ** (i + 1)) for i, n in enumerate(order)))


def keyword_router(tools: list[Any] = SMALL_TOOLS, k: int = 5) -> ToolRouter:
    # the stand-in has no BM25, and its scores are keyword counts, not cosines: no pruning
    return ToolRouter(KeywordIndex(tools), KeywordSelector(), k=k, hybrid=False, prune_margin=None)


def stub_tools(tools: list[Tool]) -> list[BaseTool]:
    """LangChain tools with the catalogue's names and schemas that return a canned result."""
    def stub(tool: Tool) -> BaseTool:
        return StructuredTool.from_function(func=lambda **kw: json.dumps({"tool": tool.name, "args": kw}),
                                            name=tool.name, description=tool.description,
                                            args_schema=dict(tool.parameters))

    return [stub(t) for t in tools]


class RecordingFakeModel(GenericFakeChatModel):
    """LangChain's scripted fake chat model, plus bind_tools; ``bound`` lists the tools of every call."""

    bound: list[list[str]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.bound.append([t["function"]["name"] for t in kwargs.get("tools") or []])
        return super()._generate(messages, stop=stop, run_manager=run_manager)


def weather_call(call_id: str = "call_1") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "get_weather_forecast", "args": {"city": "Oslo"}, "id": call_id}])


def names_of(tools: list[Any]) -> list[str]:
    return [t.get("name", t.get("type")) if isinstance(t, dict) else t.name for t in tools]


def through(middleware: ToolRouterMiddleware, messages: list[Any], tools: list[Any]) -> list[str]:
    """The tool names the middleware hands to the model for one call."""
    seen: list[list[str]] = []
    request = ModelRequest(model=GenericFakeChatModel(messages=iter([])), messages=messages, tools=tools)
    middleware.wrap_model_call(request, lambda r: seen.append(names_of(r.tools)) or AIMessage("ok"))
    return seen[0]


def test_importing_the_package_does_not_import_langchain():
    code = ("import sys, gentool_router; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain', 'langgraph')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -------------------------------------------------------------------------------- route → tool names
def test_routed_tool_names_stop_at_generate_response():
    router = keyword_router()
    assert routed_tool_names(router.route("will it rain in Oslo?")) == ["get_weather_forecast"]
    assert routed_tool_names(router.route("tell me a joke")) == []
    both = router.route("email me the weather")
    assert routed_tool_names(both, 1) == ["get_weather_forecast"]
    assert routed_tool_names(both, 3) == ["get_weather_forecast", "send_email"]


# ---------------------------------------------------------------------------------------- retriever
def test_retriever_returns_ranked_tools_as_documents():
    router = keyword_router()
    docs = as_retriever(router, k=3).invoke("email me the weather")
    default = as_retriever(router)
    assert default.router is router and default.k == router.k  # the router's own k unless told otherwise
    assert len(docs) == 3 and NO_TOOL not in [d.metadata["name"] for d in docs]
    assert {d.metadata["name"] for d in docs[:2]} == {"send_email", "get_weather_forecast"}
    assert [d.metadata["rank"] for d in docs] == [0, 1, 2]
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)
    for doc in docs:
        assert doc.page_content == router.index.tool_text(doc.metadata["name"]) and doc.id == doc.metadata["name"]


def test_retriever_k_per_call_async_and_bounds():
    router = keyword_router(k=4)
    retriever = as_retriever(router)
    assert retriever.k == 4 and len(retriever.invoke("cook a stew")) == 4  # never more than the router's k
    assert len(retriever.invoke("cook a stew", k=1)) == 1
    docs = asyncio.run(retriever.ainvoke("cook a stew", k=2))
    assert [d.metadata["name"] for d in docs][0] == "search_recipes" and len(docs) == 2
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        as_retriever(router, k=0)
    with pytest.raises(ValidationError):
        ToolRouterRetriever(router=router, k=-1)
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        retriever.invoke("cook", k=0)


class _StandardRetrieverTests(RetrieversIntegrationTests):
    """LangChain's standard retriever tests; subclasses give the router."""

    router: ToolRouter

    @property
    def retriever_constructor(self) -> type[ToolRouterRetriever]:
        return ToolRouterRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"router": self.router, "k": 5}

    @property
    def retriever_query_example(self) -> str:
        return "Will it rain in Lisbon this weekend?"


class TestStandardRetrieverOverKeywordRouter(_StandardRetrieverTests):
    @pytest.fixture(autouse=True)
    def _router(self) -> None:
        self.router = keyword_router()


# ----------------------------------------------------------------------------------------- runnable
def test_runnable_batch_embeds_all_queries_at_once():
    router = keyword_router()
    runnable = as_runnable(router)
    assert runnable.router is router and runnable.get_name() == "ToolRouter"
    assert runnable.invoke("stock price of ACME").name == "get_stock_price"
    queries = ["stock price of ACME", "translate hello", "a joke please"]
    router.index.embed_calls.clear()
    assert [r.name for r in runnable.batch(queries)] == ["get_stock_price", "translate_text", NO_TOOL]
    assert router.index.embed_calls == [queries]
    router.index.embed_calls.clear()
    assert [r.name for r in asyncio.run(runnable.abatch(queries))] == ["get_stock_price", "translate_text", NO_TOOL]
    assert router.index.embed_calls == [queries]
    assert asyncio.run(runnable.ainvoke("book a meeting")).name == "create_calendar_event"


def test_runnable_composes_and_reports_bad_queries():
    chain = as_runnable(keyword_router()) | RunnableLambda(lambda route: route.name)
    assert chain.invoke("cook pasta") == "search_recipes"
    router = keyword_router()
    runnable = as_runnable(router)
    # return_exceptions=True: each query gets its own route or its own error (LangChain's batch contract), the
    # valid ones still embedded in one call; without it the first bad query fails the batch before any routing
    router.index.embed_calls.clear()
    good, empty, wrong_type = runnable.batch(["cook pasta", "", None], return_exceptions=True)
    assert good.name == "search_recipes" and router.index.embed_calls == [["cook pasta"]]
    assert isinstance(empty, QueryError) and "empty" in str(empty)
    assert isinstance(wrong_type, QueryError) and "must be a string" in str(wrong_type)
    good, empty = asyncio.run(runnable.abatch(["cook pasta", " "], return_exceptions=True))
    assert good.name == "search_recipes" and isinstance(empty, QueryError)
    router.index.embed_calls.clear()
    with pytest.raises(QueryError, match="empty"):
        runnable.batch(["cook pasta", ""])
    assert router.index.embed_calls == []


# --------------------------------------------------------------------------------------- middleware
TOOLS = stub_tools(SMALL_TOOLS)


def test_middleware_binds_the_routed_tool_or_none():
    middleware = ToolRouterMiddleware(keyword_router(), TOOLS)
    assert through(middleware, [HumanMessage("Will it rain in Oslo?")], TOOLS) == ["get_weather_forecast"]
    assert through(middleware, [HumanMessage("Tell me a joke")], TOOLS) == []
    assert through(middleware, [AIMessage("hello")], TOOLS) == []  # no user message: nothing to route


def test_middleware_routes_the_latest_user_message_once():
    router = keyword_router()
    middleware = ToolRouterMiddleware(router, TOOLS, sticky=False)
    history = [HumanMessage("will it rain?"), AIMessage("yes"), HumanMessage("now email Bob")]
    router.index.embed_calls.clear()
    assert through(middleware, history, TOOLS) == ["send_email"]
    assert through(middleware, [*history, AIMessage("sending")], TOOLS) == ["send_email"]
    assert router.index.embed_calls == [["now email Bob"]]  # the second call reused the route


def test_middleware_max_tools_always_include_and_sticky():
    router = keyword_router()
    assert through(ToolRouterMiddleware(router, TOOLS, max_tools=2), [HumanMessage("email me the weather")],
                   TOOLS) == ["get_weather_forecast", "send_email"]
    conversation = [HumanMessage("will it rain?"), weather_call(),
                    ToolMessage("rainy", tool_call_id="call_1", name="get_weather_forecast"),
                    HumanMessage("thanks, a joke now")]
    sticky = ToolRouterMiddleware(router, TOOLS, always_include=["translate_text"])
    assert through(sticky, conversation, TOOLS) == ["get_weather_forecast", "translate_text"]
    not_sticky = ToolRouterMiddleware(router, TOOLS, always_include="translate_text", sticky=False)
    assert through(not_sticky, conversation, TOOLS) == ["translate_text"]


def test_middleware_leaves_tools_it_does_not_manage():
    extra = StructuredTool.from_function(func=lambda: "me", name="ask_human", description="Ask the user.")
    provider = {"type": "web_search"}
    middleware = ToolRouterMiddleware(keyword_router(), TOOLS)
    names = through(middleware, [HumanMessage("cook rice")], [*TOOLS, extra, provider])
    assert names == ["search_recipes", "ask_human", "web_search"]


def test_middleware_async():
    middleware = ToolRouterMiddleware(keyword_router(), TOOLS)
    request = ModelRequest(model=GenericFakeChatModel(messages=iter([])), messages=[HumanMessage("translate hi")],
                           tools=TOOLS)
    seen = []

    async def handler(req):
        seen.append(names_of(req.tools))
        return AIMessage("ok")

    asyncio.run(middleware.awrap_model_call(request, handler))
    assert seen == [["translate_text"]]


@pytest.mark.parametrize("tools, options, message", [
    (TOOLS[:3], {}, "the router can choose tools that are not in tools: get_stock_price"),
    ([*TOOLS, *stub_tools([Tool("book_taxi", "Book a taxi")])], {}, "tools the router does not know: book_taxi"),
    (TOOLS, {"always_include": ["nope"]}, "always_include names tools that are not in tools: nope"),
    ([*TOOLS, TOOLS[0]], {}, "two tools are named 'get_weather_forecast'"),
    ([], {}, "tools is empty"),
    ("send_email", {}, "tools must be a list"),
])
def test_middleware_rejects_tools_that_do_not_match_the_router(tools, options, message):
    with pytest.raises(CatalogError, match=message):
        ToolRouterMiddleware(keyword_router(), tools, **options)


def test_middleware_rejects_bad_max_tools_and_unbound_tools():
    with pytest.raises(ConfigError, match="max_tools"):
        ToolRouterMiddleware(keyword_router(), TOOLS, max_tools=0)
    middleware = ToolRouterMiddleware(keyword_router(), TOOLS)
    with pytest.raises(CatalogError, match="the agent was not given send_email"):
        through(middleware, [HumanMessage("email Bob")], TOOLS[:1])
    router = keyword_router()
    middleware = ToolRouterMiddleware(router, TOOLS)
    router.add_tools([Tool("convert_currency", "Convert money between currencies.")])
    with pytest.raises(CatalogError, match="chose convert_currency, which is not in tools"):
        through(middleware, [HumanMessage("100 euro in dollar")], TOOLS)


def test_agent_binds_only_the_routed_tool_at_each_model_call():
    model = RecordingFakeModel(messages=iter([weather_call(), AIMessage("Rain on Tuesday."),
                                              AIMessage("Why did the penguin...")]))
    agent = create_agent(model, TOOLS, middleware=[ToolRouterMiddleware(keyword_router(), TOOLS)])
    state = agent.invoke({"messages": [HumanMessage("Will it rain in Oslo this week?")]})
    assert isinstance(state["messages"][2], ToolMessage) and state["messages"][-1].content == "Rain on Tuesday."
    assert model.bound == [["get_weather_forecast"], ["get_weather_forecast"]]
    agent.invoke({"messages": [HumanMessage("Tell me a joke")]})
    assert model.bound[2:] == [[]]


def test_agent_async_with_a_follow_up_turn_keeps_called_tools():
    model = RecordingFakeModel(messages=iter([weather_call(), AIMessage("Rain."), AIMessage("Sent.")]))
    agent = create_agent(model, TOOLS, middleware=[ToolRouterMiddleware(keyword_router(), TOOLS)])

    async def conversation():
        state = await agent.ainvoke({"messages": [HumanMessage("Will it rain in Oslo?")]})
        return await agent.ainvoke({"messages": [*state["messages"], HumanMessage("Email that to Bob")]})

    asyncio.run(conversation())
    assert model.bound == [["get_weather_forecast"], ["get_weather_forecast"],
                           ["send_email", "get_weather_forecast"]]


# --------------------------------------------------------------------------------------- graph node
def test_route_tools_node_writes_routed_tool_names():
    node = route_tools_node(keyword_router(), TOOLS, always_include=["send_email"])
    assert node({"messages": [HumanMessage("cook rice")]}) == {"routed_tools": ["search_recipes", "send_email"]}
    assert node({"messages": [{"role": "user", "content": "tell a joke"}]}) == {"routed_tools": ["send_email"]}
    with pytest.raises(CatalogError, match="'messages'"):
        node({"question": "cook rice"})


@pytest.fixture
def examples_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_langgraph_example_graph_binds_routed_tools(examples_path):
    example = importlib.import_module("langgraph_graph")
    from fake_chat import ToolCallingFakeModel

    model = ToolCallingFakeModel()
    graph = example.build_graph(keyword_router(example.TOOLS), model)
    state = graph.invoke({"messages": [HumanMessage("Convert 120 euros to yen")]})
    assert state["routed_tools"] == ["convert_currency"]
    assert model.bound == [["convert_currency"], ["convert_currency"]]
    state = graph.invoke({"messages": [HumanMessage("Tell me a joke")]})
    assert state["routed_tools"] == [] and model.bound[2:] == [[]]


# ------------------------------------------------------------------------------------- real models
@pytest.fixture(scope="module")
def router(small_tools, embedder, selector):
    return ToolRouter.from_tools(small_tools, embedder=embedder, selector=selector)


@pytest.mark.slow
class TestStandardRetrieverOverRealRouter(_StandardRetrieverTests):
    @pytest.fixture(autouse=True)
    def _router(self, router) -> None:
        self.router = router


@pytest.mark.slow
def test_real_retriever_and_runnable_agree_with_route(router):
    query = "Will it rain in Lisbon this weekend?"
    route = router.route(query)
    docs = as_retriever(router).invoke(query)
    assert [d.metadata["name"] for d in docs] == [c.name for c in route.ranking if c.name != NO_TOOL]
    batch = as_runnable(router).batch([query, "send an email to HR"])
    assert [c.name for c in batch[0].ranking] == [c.name for c in route.ranking]


@pytest.mark.slow
def test_real_agent_binds_what_the_router_chose(router, small_tools):
    tools = stub_tools(small_tools)
    for query in ["Will it rain in Lisbon this weekend?", "Write a haiku about autumn"]:
        expected = routed_tool_names(router.route(query))
        model = RecordingFakeModel(messages=iter([AIMessage("answer")]))
        agent = create_agent(model, tools, middleware=[ToolRouterMiddleware(router, tools)])
        streamed = list(agent.stream({"messages": [HumanMessage(query)]}, stream_mode="messages"))
        assert model.bound == [expected]
        # Routing is plain Python: the agent's message stream holds the chat model's tokens and nothing else.
        assert streamed and {meta["langgraph_node"] for _, meta in streamed} == {"model"}


@pytest.mark.slow
def test_examples_run_with_real_models(examples_path, embedder, selector):
    models = {"embedder": embedder, "selector": selector}
    agent_example = importlib.import_module("langchain_agent")
    # Behaviour, not the shipped model's choices (which tool it picks for each query is BENCHMARKS.md's
    # business, and a retrained selector may pick another): each model call binds one catalogue tool or
    # nothing; a tool the agent called stays bound for the model call after it (sticky); no tool, one call.
    runs = agent_example.run_agent(**models)
    catalogue = {t.name for t in example_tools()}
    assert [query for query, _ in runs] == agent_example.QUERIES
    for query, calls in runs:
        assert calls and all(len(bound) <= 1 and set(bound) <= catalogue for bound in calls), (query, calls)
        assert calls == ([calls[0], calls[0]] if calls[0] else [[]]), (query, calls)
    weak = importlib.import_module("weak_to_strong")
    before, after = weak.weak_then_strong(**models)
    assert weak.STRONG not in [c.name for c in before.candidates]
    # the improved tool, added at run time without a rebuild, reaches the selector for the question it fits;
    # each route is one of its own candidates or no tool
    assert weak.STRONG in [c.name for c in after.candidates]
    for route in (before, after):
        assert route.name in {*(c.name for c in route.candidates), NO_TOOL}
    zero = importlib.import_module("zero_to_one")
    before, after = zero.without_then_with(**models)
    assert not set(zero.TRANSLATION_TOOLS) & {c.name for c in before.candidates}
    assert zero.ADDED in [c.name for c in after.candidates]  # the added tool is retrievable at once
    for route in (before, after):
        assert route.name in {*(c.name for c in route.candidates), NO_TOOL}
    graph = importlib.import_module("langgraph_graph")
    (state,) = graph.run_graph(["Convert 120 euros to yen"], **models)
    assert set(state["routed_tools"]) <= {t.name for t in graph.TOOLS}


# ------------------------------------------------------------------------------------------- MCP
async def test_mcp_server_tools_become_a_valid_catalogue(examples_path):
    """Our stdio MCP server's tools, through langchain-mcp-adapters, keep their names and parameters."""
    pytest.importorskip("langchain_mcp_adapters")
    example = importlib.import_module("mcp_tools")
    tools = await example.load_mcp_tools()
    catalog = ToolCatalog(tools)
    assert {"days_between", "convert_units", "calculate", "notes.save", "notes.list"} <= set(catalog.names())
    assert render_tool(catalog.get("notes.save")).startswith("notes.save(title, body): Save a short note")
    assert render_tool(catalog.get("days_between")).startswith("days_between(start_date, end_date): Count the days")
    assert render_tool(catalog.get("hash_text")).startswith("hash_text(text, algorithm?)")
    days = next(t for t in tools if t.name == "days_between")
    (block,) = await days.ainvoke({"start_date": "2024-02-01", "end_date": "2024-03-01"})
    assert block["text"] == "29"  # computed by the server process


@pytest.mark.slow
async def test_mcp_example_routes_to_the_fitting_mcp_tool(examples_path, embedder, selector):
    """The MCP example's agent, through the real router and selector: the routed tool is bound and really runs."""
    pytest.importorskip("langchain_mcp_adapters")
    example = importlib.import_module("mcp_tools")
    runs = await example.run_agent(embedder=embedder, selector=selector)
    served = {t.name for t in await example.load_mcp_tools()}
    # what the server computes for the example's arguments (ARGUMENTS), whichever query the tool was bound for
    computed = {"days_between": "73", "convert_units": "8.04672", "notes.save": "saved note 'groceries' (1 notes)"}
    assert [query for query, _, _ in runs] == example.QUERIES
    # Behaviour, not the shipped model's choices: each conversation binds one served tool or nothing; a bound
    # tool is called under its own name (dotted ones included), really runs in the server and stays bound for
    # the model call after it; no tool, one model call and no tool result.
    for query, calls, results in runs:
        assert calls and all(len(bound) <= 1 and set(bound) <= served for bound in calls), (query, calls)
        if calls[0]:
            (name,) = calls[0]
            assert calls == [[name], [name]] and len(results) == 1, (query, calls, results)
            assert results[0] and results[0] == computed.get(name, results[0]), (query, calls, results)
        else:
            assert calls == [[]] and results == [], (query, calls, results)
    # a dotted MCP name (MCP allows '.') is indexed and retrieved under that name for the query it fits
    router = ToolRouter.from_tools(await example.load_mcp_tools(), embedder=embedder, selector=selector)
    assert "notes.save" in [c.name for c in router.route(example.QUERIES[3]).candidates]
