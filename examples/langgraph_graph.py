"""A hand-built LangGraph graph: a routing node writes ``routed_tools``, the model node binds only those.

    .venv/bin/python examples/langgraph_graph.py

For graphs you build yourself (``create_agent`` users want ``ToolRouterMiddleware`` instead). Offline: the
chat model is the stand-in of ``fake_chat.py``.
"""

from __future__ import annotations

from typing import Any, Sequence

from fake_chat import ToolCallingFakeModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from gentool_router import ToolRouter
from gentool_router.langchain import RoutedToolsState, route_tools_node


@tool
def get_weather_forecast(city: str, days: int = 3) -> str:
    """Weather forecast for a city: temperature, rain and wind for the next days."""
    return f"{city}: light rain on day 2 of {days}"


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
    """Convert an amount of money between currencies at today's rate."""
    return f"{amount} {from_currency} = {amount * 1.1:.2f} {to_currency}"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email with a body to a recipient."""
    return f"sent to {to}"


TOOLS = [get_weather_forecast, convert_currency, send_email]


def build_graph(router: ToolRouter, model: ToolCallingFakeModel) -> Any:
    """route → model (bound to the routed tools) → tools → model … → end."""
    by_name = {t.name: t for t in TOOLS}

    def call_model(state: RoutedToolsState) -> dict[str, Any]:
        routed = [by_name[name] for name in state["routed_tools"]]
        bound = model.bind_tools(routed) if routed else model
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(RoutedToolsState)
    graph.add_node("route", route_tools_node(router, TOOLS))
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "route")
    graph.add_edge("route", "model")
    graph.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile()


def run_graph(queries: Sequence[str], **router_options: Any) -> list[dict[str, Any]]:
    """Run the graph once per query; returns each final state (``messages`` and ``routed_tools``)."""
    router = ToolRouter.from_tools(TOOLS, **router_options)
    graph = build_graph(router, ToolCallingFakeModel())
    return [graph.invoke({"messages": [HumanMessage(query)]}) for query in queries]


def main() -> None:
    queries = ["Will it rain in Porto this week?", "Convert 120 euros to yen", "Tell me a joke about penguins"]
    for query, state in zip(queries, run_graph(queries)):
        print(f"{query!r}: routed_tools={state['routed_tools']}, answer={state['messages'][-1].content!r}")


if __name__ == "__main__":
    main()
