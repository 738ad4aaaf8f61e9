"""Two MCP servers behind one gateway: the client sees two tools, finds the right one for a request, then calls it.

    .venv/bin/python examples/mcp_gateway.py                    # the shipped selector (about a second a request)
    .venv/bin/python examples/mcp_gateway.py --retrieval-only   # embedding similarity alone (never "no tool")

Writes a config naming our two stdio servers (``mcp_server.py``: desk tools; ``mcp_server_calendar.py``: a calendar;
both have a ``current_time``, served as ``desk/current_time`` and ``calendar/current_time``), starts
``gentool-router mcp-gateway`` on it as an MCP client (Claude Desktop, an agent) would, over stdio, and for each
request calls ``find_tools``, then ``call_tool`` with the arguments a model would write from the returned schema.
Everything runs offline.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

HERE = Path(__file__).resolve().parent
REQUESTS = [
    "Add an event to my calendar: dentist on 2026-03-02 at 09:30",
    "How many days are there between 2026-01-01 and 2026-03-15?",
    "Which weekday is it today in Tokyo?",
    "Write a short poem about the sea",
]
#: What a model would pass to each tool for the requests above (it reads them from the request and the schema).
ARGUMENTS: dict[str, dict[str, Any]] = {
    "create_event": {"title": "dentist", "date": "2026-03-02", "start": "09:30"},
    "days_between": {"start_date": "2026-01-01", "end_date": "2026-03-15"},
    "calendar/current_time": {"timezone": "Asia/Tokyo"},
    "desk/current_time": {"timezone": "Asia/Tokyo"},
}


def write_config(folder: Path) -> Path:
    """The ``mcpServers`` file MCP clients use: here, our two example servers, started with this Python."""
    servers = {name: {"command": sys.executable, "args": [str(HERE / script)]}
               for name, script in (("desk", "mcp_server.py"), ("calendar", "mcp_server_calendar.py"))}
    path = folder / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


async def run(*gateway_options: str) -> list[tuple[str, dict[str, Any], str | None]]:
    """Each request's ``find_tools`` answer and, when a tool was found, what ``call_tool`` returned."""
    with tempfile.TemporaryDirectory() as folder:
        gateway = StdioServerParameters(command=sys.executable, args=[
            "-m", "gentool_router.cli", "mcp-gateway", "--config", str(write_config(Path(folder))), *gateway_options])
        async with stdio_client(gateway) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            runs = []
            for request in REQUESTS:
                found = (await client.call_tool("find_tools", {"request": request})).structuredContent or {}
                result = None
                if found.get("tool") in ARGUMENTS:
                    called = await client.call_tool("call_tool", {"name": found["tool"],
                                                                  "arguments": ARGUMENTS[found["tool"]]})
                    result = " ".join(block.text for block in called.content if block.type == "text")
                runs.append((request, found, result))
            return runs


def main() -> None:
    for request, found, result in asyncio.run(run(*sys.argv[1:])):
        print(request)
        print(f"  find_tools: {found['tool'] or 'no tool'}  ({found['reason']})")
        print(f"  candidates: {', '.join(c['name'] for c in found['candidates'])}")
        if result is not None:
            print(f"  call_tool -> {result}")


if __name__ == "__main__":
    main()
