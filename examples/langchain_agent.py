"""A LangChain v1 agent over the bundled 294-tool catalogue that sees only the routed tool at each model call.

    .venv/bin/python examples/langchain_agent.py

Offline: the chat model is a stand-in that calls the first tool it is given (``fake_chat.py``). With a real
model, swap in ``init_chat_model("...")``; the three lines that matter are marked below.
"""

from __future__ import annotations

from typing import Any, Sequence

from fake_chat import ToolCallingFakeModel, stub_tools
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage

from gentool_router import ToolRouter
from gentool_router.examples import example_tools
from gentool_router.langchain import ToolRouterMiddleware

QUERIES = [
    "Will it rain in Lisbon over the next three days?",
    "How many US dollars were 500 euros worth on 1 March 2020?",
    "Write a haiku about autumn leaves",
]


def run_agent(queries: Sequence[str] = QUERIES, **router_options: Any) -> list[tuple[str, list[list[str]]]]:
    """Each query in its own conversation; returns the tool names bound to every model call of each.

    ``router_options`` go to :meth:`ToolRouter.from_tools` (tests pass their already loaded models).
    """
    catalog = example_tools()
    tools = stub_tools(catalog)                                         # the agent's 294 tools
    model = ToolCallingFakeModel()

    router = ToolRouter.from_tools(catalog, **router_options)           # 1
    middleware = ToolRouterMiddleware(router, tools)                    # 2
    agent = create_agent(model, tools, middleware=[middleware])         # 3

    bound_per_query = []
    for query in queries:
        first_call = len(model.bound)
        agent.invoke({"messages": [HumanMessage(query)]})
        bound_per_query.append((query, model.bound[first_call:]))
    return bound_per_query


def main() -> None:
    for query, calls in run_agent():
        print(query)
        for number, names in enumerate(calls, start=1):
            print(f"  model call {number}: tools bound = {names or 'none (answer directly)'}")


if __name__ == "__main__":
    main()
