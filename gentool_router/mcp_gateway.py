"""An MCP gateway (``gentool-router mcp-gateway``): one MCP server in front of the user's MCP servers.

Why: an agent connected to many MCP servers gets every tool's schema in every request, which costs context and
makes small models pick badly. The gateway connects to the servers, indexes their tools with a
:class:`ToolRouter` and shows its client two tools: ``find_tools`` (the routed tool, or none with the reason, and
the ranked candidates with their input schemas) and ``call_tool`` (forwarded to the server that owns the tool).

Config: the ``{"mcpServers": {name: {...}}}`` file MCP clients already use (:func:`load_config`). Names: a tool
keeps its server's name; where two servers have a tool of the same name, each becomes ``server/name``.

Lifecycle: each server's client session lives in its own task, so servers start in parallel and one that fails
later fails only the calls to it (the SDK's transports cancel the task that holds them when they fail). Shutdown
(stdin closed, SIGINT or SIGTERM) closes every session, which stops the stdio servers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import stat
import sys
from collections import Counter
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Awaitable, Callable, Dict, Iterator, Literal, Mapping, Sequence, Union

import anyio
from mcp import ClientSession, McpError, types
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.fastmcp import FastMCP
from pydantic import Field

from .errors import ConfigError, GentoolError, IndexFormatError, IndexMismatchError, ToolValidationError
from .results import Route
from .router import ToolRouter
from .settings import DEFAULT_CONNECT_TIMEOUT, DEFAULT_GATEWAY_PORT, DEFAULT_HOST, DEFAULT_K, MAX_K
from .tools import NO_TOOL, Tool

__all__ = ["ServerConfig", "RemoteTool", "MCPServerError", "load_config", "gateway_tools", "build_router",
           "create_server", "serve", "run", "PREFIX_SEPARATOR"]

logger = logging.getLogger(__name__)

#: Joins a server's name and its tool's name where names collide: ``calendar/current_time``.
PREFIX_SEPARATOR = "/"
#: Server names prefix tool names, so they take tool-name characters, without the separator.
SERVER_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")
#: Transport names as the configs in use spell them (Claude Desktop: none; langchain-mcp-adapters: streamable_http;
#: Claude Code: "type": "http").
_TRANSPORTS = {"stdio": "stdio", "streamable_http": "streamable_http", "streamable-http": "streamable_http",
               "http": "streamable_http"}
#: Longest line read from a stdin pipe (one JSON-RPC message).
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Log = Callable[[str], None]


class MCPServerError(GentoolError):
    """A configured MCP server could not be started, reached or listed."""


@dataclass(frozen=True)
class ServerConfig:
    """One entry of ``mcpServers``: a command to start (stdio) or a URL (streamable HTTP)."""

    name: str
    transport: Literal["stdio", "streamable_http"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    url: str | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class RemoteTool:
    """A tool of one server as the gateway serves it: ``name`` (maybe prefixed) routes, ``original`` is called."""

    server: str
    original: str
    tool: Tool
    input_schema: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.tool.name


# ------------------------------------------------------------------------------------------------ config
def load_config(path: str | os.PathLike[str]) -> list[ServerConfig]:
    """The servers of a ``{"mcpServers": {...}}`` file, every problem named in one :class:`ConfigError`.

    stdio: ``{"command", "args"?, "env"?, "cwd"?}`` (a relative ``cwd`` is read from the file's folder; ``env`` adds
    to the few variables the MCP SDK passes on). Streamable HTTP: ``{"url", "transport": "streamable_http",
    "headers"?}`` (``"type": "http"`` too). ``"disabled": true`` leaves a server out; other keys are ignored.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"gateway config not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"gateway config {path} is a folder, not a JSON file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except ValueError as exc:  # JSONDecodeError
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f'{path}: expected {{"mcpServers": {{"name": {{"command": ...}}}}}}, an object of servers')
    problems: list[str] = []
    configs = [c for name, entry in servers.items() if (c := _server(name, entry, path.parent, problems)) is not None]
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems) if len(problems) == 1 else
                          f"{len(problems)} problems in {path}: " + "; ".join(problems))
    if not configs:
        raise ConfigError(f"{path}: no MCP servers to connect to")
    return configs


def _server(name: str, entry: Any, folder: Path, problems: list[str]) -> ServerConfig | None:
    before = len(problems)

    def problem(text: str) -> None:
        problems.append(f"server {name!r}: {text}")

    if not SERVER_NAME.fullmatch(name):
        problem("the name must be 1-64 ASCII letters, digits, '_', '-' or '.' (it prefixes tool names)")
    if not isinstance(entry, dict):
        problem("must be an object with 'command' (stdio) or 'url' (streamable HTTP)")
        return None
    if entry.get("disabled") is True:
        return None
    given = entry.get("transport", entry.get("type"))
    if given is None:
        given = "stdio" if "command" in entry else "streamable_http" if "url" in entry else None
    transport = _TRANSPORTS.get(given) if isinstance(given, str) else None
    if given is None:
        problem("needs 'command' (stdio) or 'url' (streamable HTTP)")
    elif given == "sse":
        problem("transport 'sse' is not supported (MCP replaced it): use streamable_http")
    elif transport is None:
        problem(f"unknown transport {given!r}: use stdio or streamable_http")
    if transport == "stdio":
        command, args, env, cwd = entry.get("command"), entry.get("args", []), entry.get("env"), entry.get("cwd")
        if not isinstance(command, str) or not command.strip():
            problem("'command' must be a non-empty string")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            problem("'args' must be a list of strings")
        if env is not None and not _strings(env):
            problem("'env' must be an object of string values")
        folder_ = folder / cwd if isinstance(cwd, str) else None
        if cwd is not None and (folder_ is None or not folder_.is_dir()):
            problem(f"'cwd' {cwd!r} is not a folder")
        if len(problems) == before:
            return ServerConfig(name, "stdio", command=command, args=tuple(args), env=env, cwd=folder_)
    elif transport == "streamable_http":
        url, headers = entry.get("url"), entry.get("headers")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problem("'url' must be an http:// or https:// URL")
        if headers is not None and not _strings(headers):
            problem("'headers' must be an object of string values")
        if len(problems) == before:
            return ServerConfig(name, "streamable_http", url=url, headers=headers)
    return None


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


# ------------------------------------------------------------------------------------------------- tools
def gateway_tools(listed: Mapping[str, Sequence[types.Tool]]) -> list[RemoteTool]:
    """The servers' tools as the gateway serves them, in config then listing order.

    A name two servers share becomes ``server/name`` on both (as does ``generate_response``, the router's name for
    "no tool"); other names stay as the server wrote them. A tool our catalogue cannot hold (a name outside MCP's
    characters, a broken schema) is left out with a warning naming it. A description-less tool is described by its
    title or name.
    """
    counts = Counter(name for tools in listed.values() for name in {tool.name for tool in tools})  # servers per name
    served: dict[str, RemoteTool] = {}
    for server, tools in listed.items():
        for remote in tools:
            shared = counts[remote.name] > 1 or remote.name == NO_TOOL
            name = f"{server}{PREFIX_SEPARATOR}{remote.name}" if shared else remote.name
            if name in served:
                if served[name].server == server:
                    logger.warning("server %r lists tool %r twice: the first is served", server, remote.name)
                    continue
                raise ConfigError(f"tool name {name!r} comes from servers {served[name].server!r} and {server!r}, "
                                  "also after prefixing: rename one of the servers")
            try:
                tool = Tool(name, remote.description or remote.title or remote.name, remote.inputSchema)
            except ToolValidationError as exc:
                logger.warning("server %r: tool left out: %s", server, exc)
                continue
            served[name] = RemoteTool(server, remote.name, tool, remote.inputSchema)
    return list(served.values())


def build_router(tools: Sequence[Tool], index_dir: Path | None = None, **options: Any) -> ToolRouter:
    """A router over ``tools`` (``options``: :meth:`ToolRouter.from_tools`'s).

    With ``index_dir``: the index there while it holds exactly these tools (embedding is the slow part of a start;
    a decision model from ``calibrate`` stays with it), else a new one saved there. A catalogue with a tool left out
    as poisoned never matches its index, so it is embedded at every start.
    """
    if index_dir is not None and (index_dir / "manifest.json").is_file():
        try:
            router = ToolRouter.load(index_dir, **options)
        except (IndexFormatError, IndexMismatchError) as exc:
            logger.warning("rebuilding the index in %s: %s", index_dir, exc)
        else:
            if [t.to_dict() for t in router.catalog] == [t.to_dict() for t in tools]:
                return router
            logger.warning("the servers' tools changed: rebuilding the index in %s", index_dir)
    router = ToolRouter.from_tools(tools, show_progress=False, **options)
    if index_dir is not None:
        router.save(index_dir)
    return router


# -------------------------------------------------------------------------------------------- upstreams
class _Upstream:
    """One server's client session, held by its own task until ``closing`` is set."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.session: ClientSession | None = None
        self.tools: list[types.Tool] = []
        self.error: str | None = None
        self.ready = anyio.Event()
        self._calls: set[anyio.CancelScope] = set()  # calls in flight, ended if the connection fails under them

    async def hold(self, closing: anyio.Event, timeout: float) -> None:
        try:
            async with AsyncExitStack() as stack:
                read, write = await self._open(stack)
                session = await stack.enter_async_context(ClientSession(read, write))
                with anyio.fail_after(timeout):
                    await session.initialize()
                    self.tools = await _list_tools(session)
                self.session = session
                self.ready.set()
                await closing.wait()
        except Exception as exc:  # this server's failure is reported; it never ends the gateway
            if not self.ready.is_set():
                self.error = _describe(exc, self.config, timeout)
            else:
                self.error = _message(exc)
                if not closing.is_set():
                    logger.error("MCP server %r disconnected: %s", self.config.name, self.error)
        finally:
            self.session = None
            self.ready.set()
            for call in list(self._calls):
                call.cancel()

    async def _open(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        config = self.config
        if config.transport == "stdio":
            assert config.command is not None
            parameters = StdioServerParameters(command=config.command, args=list(config.args),
                                               env=dict(config.env) if config.env is not None else None, cwd=config.cwd)
            read, write = await stack.enter_async_context(stdio_client(parameters, errlog=sys.stderr))
            return read, write
        import httpx

        assert config.url is not None
        client = await stack.enter_async_context(httpx.AsyncClient(headers=dict(config.headers or {}),
                                                                   timeout=httpx.Timeout(30, read=300)))
        read, write, _ = await stack.enter_async_context(streamable_http_client(config.url, http_client=client))
        return read, write

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """The server's own result (its tool errors included), or an error result saying why there is none."""
        session = self.session
        if session is None:
            return _error(f"MCP server {self.config.name!r} is not connected: {self.error or 'closed'}")
        scope = anyio.CancelScope()  # cancelled by hold() if the connection fails under the call
        self._calls.add(scope)
        try:
            with scope:
                return await session.call_tool(name, arguments)
            # an HTTP transport that fails ends its session without answering the requests in flight
            return _error(f"MCP server {self.config.name!r} disconnected during the call: {self.error or 'closed'}")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):  # the server exited since it started
            return _error(f"MCP server {self.config.name!r} is not connected: its connection closed")
        except McpError as exc:
            return _error(f"MCP server {self.config.name!r} refused {name!r}: {exc.error.message}")
        except Exception as exc:  # its transport failed, or its result broke its own output schema
            return _error(f"MCP server {self.config.name!r} failed on {name!r}: {_message(exc)}")
        finally:
            self._calls.discard(scope)


async def _list_tools(session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return tools


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside exception groups (task groups wrap what failed in them)."""
    while isinstance(getattr(exc, "exceptions", None), tuple) and exc.exceptions:  # type: ignore[attr-defined]
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def _message(exc: BaseException) -> str:
    exc = _leaf(exc)
    if isinstance(exc, McpError):
        return exc.error.message
    return str(exc) or type(exc).__name__


def _describe(exc: BaseException, config: ServerConfig, timeout: float) -> str:
    leaf = _leaf(exc)
    if isinstance(leaf, TimeoutError):
        return f"did not start and list its tools within {timeout:g} s"
    if isinstance(leaf, OSError) and config.transport == "stdio" and leaf.strerror:
        return f"cannot run {config.command!r}: {leaf.strerror}"
    reason = _message(leaf)
    # a stdio server that exits while starting closes its pipes: the client reads "Connection closed", or, when
    # it was writing at that moment, anyio's broken or closed stream (which of them is a race)
    pipe_closed = isinstance(leaf, (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream))
    if config.transport == "stdio" and (reason == "Connection closed" or pipe_closed):
        return "it exited (Connection closed; its own messages, above, may say why)"
    return reason


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], isError=True)


# ------------------------------------------------------------------------------------------------ server
# The tools' parameters, here because FastMCP reads the annotations in this module's namespace.
_Request = Annotated[str, Field(description="The user's request, in their words.")]
_K = Annotated[Union[int, None], Field(description=f"Candidates to rank, 1-{MAX_K} (default: the gateway's "
                                                   f"setting, {DEFAULT_K} unless changed).")]
_Name = Annotated[str, Field(description="The tool's name as find_tools returned it.")]
_Arguments = Annotated[Union[Dict[str, Any], None], Field(description="Arguments matching the tool's inputSchema.")]


def create_server(router: ToolRouter, tools: Sequence[RemoteTool],
                  call: Callable[[RemoteTool, dict[str, Any]], Awaitable[types.CallToolResult]], *,
                  host: str = DEFAULT_HOST, port: int = DEFAULT_GATEWAY_PORT) -> FastMCP:
    """The gateway's MCP server: ``find_tools`` routes with ``router``, ``call_tool`` forwards through ``call``.

    Errors (an empty request, a bad ``k``, an unknown name) are tool results with ``isError``, in one line.
    """
    by_name = {t.name: t for t in tools}
    shared: dict[str, list[str]] = {}
    for t in tools:
        if t.name != t.original:
            shared.setdefault(t.original, []).append(t.name)
    servers = list(dict.fromkeys(t.server for t in tools))
    about = f"{len(tools)} tools of {len(servers)} MCP servers ({', '.join(servers)})"
    server = FastMCP("gentool-router", log_level="WARNING", host=host, port=port, instructions=(
        f"This gateway serves {about}. Call find_tools with the user's request in their words: it returns the tool "
        "that fits (or none: then answer without a tool) and the ranked candidates with their input schemas. Then "
        "call call_tool with that tool's name and arguments matching its schema."))

    async def find_tools(request: _Request, k: _K = None) -> types.CallToolResult:
        if k is not None and not 1 <= k <= MAX_K:
            return _error(f"k must be an integer from 1 to {MAX_K}, got {k}")
        try:
            route = await router.aroute(request, k=k)
        except GentoolError as exc:  # an empty request; the selector or a model failed
            return _error(str(exc))
        found = _found(route, by_name)
        text = json.dumps(found, ensure_ascii=False)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structuredContent=found)

    async def call_tool(name: _Name, arguments: _Arguments = None) -> types.CallToolResult:
        remote = by_name.get(name)
        if remote is None:
            return _error(_unknown(name, shared, router))
        return await call(remote, arguments or {})

    server.add_tool(find_tools, name="find_tools", description=(
        f"Find the right tool for a request among {about}. Returns the routed tool (or null, with the reason) and "
        "the ranked candidates with their descriptions and input schemas."),
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False))
    server.add_tool(call_tool, name="call_tool", description=(
        "Call a tool that find_tools returned, with arguments matching its inputSchema: the call goes to the MCP "
        "server that owns the tool, and its result comes back as that server gave it."))
    return server


def _found(route: Route, tools: Mapping[str, RemoteTool]) -> dict[str, Any]:
    """What ``find_tools`` answers: the routed tool or None, why, and the ranked candidates with schemas."""
    ranked = [c for c in route.ranking if c.name != NO_TOOL and c.name in tools]
    return {
        "request": route.query,
        "tool": route.name if route.tool is not None else None,
        "reason": _reason(route),
        "decided_by": route.decided_by,
        "candidates": [{"name": c.name, "server": tools[c.name].server, "score": round(c.score, 4),
                        "description": tools[c.name].tool.description,
                        "inputSchema": tools[c.name].input_schema} for c in ranked],
    }


def _reason(route: Route) -> str:
    top = route.ranking[0]
    if route.decided_by == "retrieval":
        reason = f"{top.name} is the nearest tool to the request; retrieval alone never answers 'no tool'"
        return reason + (f"; the selector failed: {route.fallback_reason}" if route.fallback else "")
    nearest = next((c for c in route.ranking if c.name != NO_TOOL), None)
    no_tool = next((c for c in route.ranking if c.name == NO_TOOL), None)
    if route.tool is None:
        return ("no tool fits: answering without a tool ranked first "
                f"({top.score:.2f})" + (f", above {nearest.name} ({nearest.score:.2f})" if nearest else ""))
    return f"{top.name} ranked first ({top.score:.2f})" + (
        f", above answering without a tool ({no_tool.score:.2f})" if no_tool else "")


def _unknown(name: str, shared: Mapping[str, list[str]], router: ToolRouter) -> str:
    if name in shared:
        return f"several servers have a tool {name!r}: call {' or '.join(map(repr, shared[name]))}"
    flagged = router.catalog.excluded.get(name)
    if flagged:
        return f"tool {name!r} is not served: its text reads like instructions to the model ({flagged[0]})"
    return f"unknown tool {name!r}: call find_tools for the names this gateway serves"


# ------------------------------------------------------------------------------------------------ running
async def serve(servers: Sequence[ServerConfig], make_router: Callable[[list[Tool]], ToolRouter], *,
                transport: Literal["stdio", "streamable-http"] = "stdio", host: str = DEFAULT_HOST,
                port: int = DEFAULT_GATEWAY_PORT, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                log: Log = print) -> None:
    """Connect to ``servers``, route over their tools with ``make_router``'s router, serve MCP until stopped.

    A server that fails to start or list its tools within ``connect_timeout`` seconds is an :class:`MCPServerError`
    naming it (all of them, before any model loads). The router is built and warmed up before the first request.
    """
    upstreams = [_Upstream(config) for config in servers]
    closing = anyio.Event()
    async with anyio.create_task_group() as holders:
        try:
            for upstream in upstreams:
                holders.start_soon(upstream.hold, closing, connect_timeout)
            for upstream in upstreams:
                await upstream.ready.wait()
            failed = [f"MCP server {u.config.name!r} failed: {u.error}" for u in upstreams if u.error]
            if failed:
                raise MCPServerError("; ".join(failed))
            tools = gateway_tools({u.config.name: u.tools for u in upstreams})
            if not tools:
                raise MCPServerError("the MCP servers list no tools to serve")
            with _stdout_to_stderr() if transport == "stdio" else _nothing():  # stdout is the MCP channel
                router = await anyio.to_thread.run_sync(make_router, [t.tool for t in tools])
                await anyio.to_thread.run_sync(router.route, "warm-up")  # loads the models now, not on request 1
            owners = {u.config.name: u for u in upstreams}

            async def call(remote: RemoteTool, arguments: dict[str, Any]) -> types.CallToolResult:
                return await owners[remote.server].call(remote.original, arguments)

            served = [t for t in tools if t.name in router.index]
            prefixed = sum(t.name != t.original for t in served)
            summary = (f"MCP gateway: {len(served)} tools from {len(upstreams)} servers "
                       f"({', '.join(f'{u.config.name} {len(u.tools)}' for u in upstreams)}"
                       f"{f'; {prefixed} names prefixed' if prefixed else ''})")
            server = create_server(router, served, call, host=host, port=port)
            if transport == "stdio":
                await _serve_stdio(server, summary, log)
            else:
                await _serve_http(server, host, port, summary, log)
        finally:
            closing.set()  # each holder closes its session (a stdio server is stopped) and returns


async def _serve_stdio(server: FastMCP, summary: str, log: Log) -> None:
    from mcp.server.stdio import stdio_server

    stdin, pipe = await _stdin_pipe()
    try:
        async with anyio.create_task_group() as group:
            await group.start(_on_signal, group.cancel_scope.cancel)
            log(f"{summary} over stdio")
            async with stdio_server(stdin=stdin) as (read, write):
                await server._mcp_server.run(read, write, server._mcp_server.create_initialization_options())
            group.cancel_scope.cancel()  # the client closed stdin
    finally:
        if pipe is not None:
            pipe.close()


async def _serve_http(server: FastMCP, host: str, port: int, summary: str, log: Log) -> None:
    import uvicorn

    from .serve import _listen

    logging.getLogger("mcp.server.streamable_http").addFilter(_drop_closed_stream_tracebacks)
    listener = _listen(host, port)
    bound = listener.getsockname()
    address = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    http = uvicorn.Server(uvicorn.Config(server.streamable_http_app(), log_level="warning", lifespan="on",
                                         timeout_graceful_shutdown=30))

    def stop() -> None:
        http.should_exit = True

    try:
        async with anyio.create_task_group() as group:
            # ours first: uvicorn's own handlers then hand the signal back to the loop, not to the default handler
            await group.start(_on_signal, stop)
            log(f"{summary} on http://{address}:{bound[1]}{server.settings.streamable_http_path}  (Ctrl+C stops)")
            await http.serve(sockets=[listener])
            group.cancel_scope.cancel()
    finally:
        listener.close()


def _drop_closed_stream_tracebacks(record: logging.LogRecord) -> bool:
    """The SDK (1.30) logs an ERROR with a traceback whenever a client ends its HTTP session while the server's
    event stream is open: a race in its own clean-up, not an error. Only that record is dropped."""
    return not (record.exc_info and isinstance(record.exc_info[1], anyio.ClosedResourceError))


async def _on_signal(stop: Callable[[], None], *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
    """Call ``stop`` on SIGINT or SIGTERM (where the platform lets the event loop receive them)."""
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for _ in signals:
                stop()
    except NotImplementedError:  # pragma: no cover - Windows
        task_status.started()
        await anyio.sleep_forever()


class _Lines:
    """Lines of a stdin pipe read by the event loop: a signal can stop the read (the SDK's own read is a worker
    thread, which nothing interrupts until the client writes or closes)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> "_Lines":
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


async def _stdin_pipe() -> tuple[Any, asyncio.BaseTransport | None]:
    """stdin as :class:`_Lines` when it is a pipe or socket (as MCP clients start servers), else None: the SDK's."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return None, None
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return None, None  # a terminal or a file: the SDK's reader
    reader = asyncio.StreamReader(limit=_MAX_MESSAGE_BYTES)
    pipe, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                                 sys.stdin)
    return _Lines(reader), pipe


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr while models load: a native library printing there would corrupt stdio."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def run(servers: Sequence[ServerConfig], make_router: Callable[[list[Tool]], ToolRouter], **options: Any) -> None:
    """:func:`serve` in a new event loop; an error raised inside its task groups comes out as itself."""
    try:
        anyio.run(lambda: serve(servers, make_router, **options))
    except KeyboardInterrupt:  # Ctrl+C while starting
        pass
    except BaseException as exc:
        leaf = exc
        while isinstance(getattr(leaf, "exceptions", None), tuple) and len(leaf.exceptions) == 1:  # type: ignore
            leaf = leaf.exceptions[0]  # type: ignore[attr-defined]
        if leaf is exc:
            raise
        raise leaf from None
