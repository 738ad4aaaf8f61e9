"""Tools from an MCP server, routed: the agent sees only the MCP tool that fits each question, or none.

    .venv/bin/python examples/mcp_tools.py

Starts ``mcp_server.py`` over stdio through ``langchain-mcp-adapters`` (``pip install gentool-router[mcp]``),
builds a router over the server's tools and runs a LangChain v1 agent with the routing middleware. The chat
model is the offline stand-in from ``fake_chat.py``: it calls the tool it is given with the arguments below,
so each answer comes from a real MCP tool call.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Sequence

from fake_chat import ToolCallingFakeModel
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_mcp_adapters.client import MultiServerMCPClient

from gentool_router import ToolRouter
from gentool_router.langchain import ToolRouterMiddleware

SERVER = Path(__file__).with_name("mcp_server.py")
QUERIES = [
    "How many days are there between 2026-01-01 and 2026-03-15?",
    "Convert 5 miles to kilometres",
    "Write a short poem about the sea",
    "Save a note titled groceries: milk, eggs and bread",
]
#: What the stand-in chat model passes when it calls a tool (a real model would read them from the query).
ARGUMENTS = {
    "days_between": {"start_date": "2026-01-01", "end_date": "2026-03-15"},
    "convert_units": {"value": 5, "from_unit": "miles", "to_unit": "km"},
    "notes.save": {"title": "groceries", "body": "milk, eggs and bread"},  # MCP names may hold dots
}


async def load_mcp_tools() -> list[BaseTool]:
    """The tools of our stdio MCP server, as LangChain tools (each call starts a short MCP session)."""
    client = MultiServerMCPClient(
        {"desk": {"command": sys.executable, "args": [str(SERVER)], "transport": "stdio"}}
    )
    return await client.get_tools()


async def run_agent(queries: Sequence[str] = QUERIES,
                    **router_options: Any) -> list[tuple[str, list[list[str]], list[str]]]:
    """Each query in its own conversation: the tools bound at every model call, and the MCP tools' results."""
    tools = await load_mcp_tools()
    model = ToolCallingFakeModel(arguments=ARGUMENTS)

    router = ToolRouter.from_tools(tools, **router_options)
    agent = create_agent(model, tools, middleware=[ToolRouterMiddleware(router, tools)])

    runs = []
    for query in queries:
        first_call = len(model.bound)
        state = await agent.ainvoke({"messages": [HumanMessage(query)]})
        results = [m.text for m in state["messages"] if isinstance(m, ToolMessage)]
        runs.append((query, model.bound[first_call:], results))
    return runs


def main() -> None:
    for query, calls, results in asyncio.run(run_agent()):
        print(query)
        for number, names in enumerate(calls, start=1):
            print(f"  model call {number}: tools bound = {names or 'none (answer directly)'}")
        for result in results:
            print(f"  MCP tool result: {result}")


if __name__ == "__main__":
    main()
