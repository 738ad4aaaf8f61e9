"""A warm HTTP JSON service around one loaded :class:`ToolRouter` (``gentool-router serve``).

Why: loading the embedder and the selector takes seconds and a route well under one; an agent in another process
or language pays the load once here, then a request per route.

Concurrency: each request routes in a worker thread, so the event loop keeps accepting requests. They share one
router, which is thread-safe (RELIABILITY.md, "Concurrency"): the llama.cpp selector's lock runs one query's
selection at a time, so concurrent requests queue there and latency grows with the queue. Separate requests are
not merged into one ``route_batch``: that would share only the query embedding (about 15 ms of a route), not
the selector pass. ``POST /v1/route_batch`` embeds its queries in one call.

Tool edits (``POST /v1/tools``, ``DELETE /v1/tools/{name}``) exist only when an admin token is given
(``gentool-router serve`` reads :data:`ADMIN_TOKEN_ENV`); they change the catalogue in memory, not the index folder.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import socket
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as HTTPRoute

from . import __version__
from .conversation import routing_text
from .errors import CatalogError, ConfigError, GentoolError, QueryError, ToolValidationError
from .router import ToolRouter, _clean_query, _is_packaged_selector
from .selector import LlamaSelector
from .settings import DEFAULT_CONTEXT_TURNS, DEFAULT_HOST, DEFAULT_SERVE_PORT, MAX_K
from .tools import Tool, tool_from_any

__all__ = ["create_app", "run", "ADMIN_TOKEN_ENV", "MAX_BATCH", "MAX_BODY_BYTES"]

logger = logging.getLogger(__name__)

#: The environment variable whose value enables tool edits and is the bearer token they require.
ADMIN_TOKEN_ENV = "GENTOOL_ROUTER_ADMIN_TOKEN"
#: Queries a ``/v1/route_batch`` request may hold: the batch holds the selector for about a second a query.
MAX_BATCH = 256
#: Largest request body: 256 queries of the 20,000 characters a route reads, and then some.
MAX_BODY_BYTES = 8 * 1024 * 1024

_ROUTE_FIELDS = ("query", "messages", "context_turns", "k", "exclude")
_BATCH_FIELDS = ("queries", "k", "exclude")


class _RequestError(Exception):
    """A request the service refuses: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def create_app(router: ToolRouter, *, admin_token: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The ASGI app serving ``router``: ``POST /v1/route``, ``POST /v1/route_batch``, ``GET /healthz``, and with
    ``admin_token`` ``POST /v1/tools`` and ``DELETE /v1/tools/{name}`` (bearer token; without one they are 404).

    Every error is ``{"error": "one line"}`` with a 4xx status for what the client can fix, 500 otherwise.

    Example:
        >>> app = create_app(ToolRouter.load("my-index"))
        >>> uvicorn.run(app, port=8080)        # or: gentool-router serve --index my-index
    """
    token = admin_token or None  # an empty token would let anyone in: it disables edits instead

    async def route(request: Request) -> JSONResponse:
        body = _fields(await _read_json(request, max_body_bytes), _ROUTE_FIELDS)
        query = _conversation_text(body) if "messages" in body else _query(body)
        result = await router.aroute(query, exclude=_exclude(body), k=_k(body))
        return JSONResponse(result.to_dict(explanation=True))

    async def route_batch(request: Request) -> JSONResponse:
        body = _fields(await _read_json(request, max_body_bytes), _BATCH_FIELDS)
        queries = body.get("queries")
        if not isinstance(queries, list):
            raise _RequestError(400, f"'queries' must be a list of strings, got {_kind(queries)}")
        if len(queries) > MAX_BATCH:
            raise _RequestError(400, f"at most {MAX_BATCH} queries a batch, got {len(queries)}")
        for position, query in enumerate(queries):  # name the bad one: the router's error would not
            try:
                _clean_query(query)
            except QueryError as exc:
                raise QueryError(f"queries[{position}]: {exc}") from None
        routes = await router.aroute_batch(queries, exclude=_exclude(body), k=_k(body))
        return JSONResponse({"routes": [r.to_dict(explanation=True) for r in routes]})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(_health, router))  # the first call may load the selector

    async def add_tools(request: Request) -> JSONResponse:
        _authorize(request, token)
        body = _fields(await _read_json(request, max_body_bytes), ("tools",))
        tools = _tools(body.get("tools"))
        try:
            await asyncio.to_thread(router.add_tools, tools)
        except CatalogError as exc:  # a name already in the catalogue, or given twice
            raise _RequestError(409, str(exc)) from None
        excluded = {t.name: router.catalog.excluded.get(t.name, []) for t in tools if t.name not in router.index}
        return JSONResponse({"added": [t.name for t in tools if t.name not in excluded], "excluded": excluded,
                             "tools": len(router.index)})

    async def remove_tool(request: Request) -> JSONResponse:
        _authorize(request, token)
        name = request.path_params["name"]
        try:
            await asyncio.to_thread(router.remove_tools, [name])
        except CatalogError as exc:
            raise _RequestError(404, str(exc)) from None
        return JSONResponse({"removed": name, "tools": len(router.index)})

    routes = [
        HTTPRoute("/v1/route", _answering(route), methods=["POST"]),
        HTTPRoute("/v1/route_batch", _answering(route_batch), methods=["POST"]),
        HTTPRoute("/healthz", _answering(healthz), methods=["GET"]),
        HTTPRoute("/v1/tools", _answering(add_tools), methods=["POST"]),
        HTTPRoute("/v1/tools/{name:path}", _answering(remove_tool), methods=["DELETE"]),  # MCP names hold '/'
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})  # unknown paths, methods


def run(router: ToolRouter, *, host: str = DEFAULT_HOST, port: int = DEFAULT_SERVE_PORT, admin_token: str | None = None,
        log: Callable[[str], None] = print, source: str | None = None) -> None:
    """Warm ``router`` up, listen on ``host:port`` (0: any free port), log where, serve until SIGINT/SIGTERM.

    ``source`` (the index folder) is named in the log line.

    uvicorn shuts down gracefully on the signal: it stops accepting, lets running requests finish, then returns
    (after SIGTERM it raises the signal again, so the process ends as terminated by it, as process managers expect).
    A port in use is an ``OSError`` naming the address, raised before the warm-up loads the models.
    """
    import uvicorn

    listener = _listen(host, port)  # first: a port in use is an error before seconds of model loading
    try:
        router.route("warm-up")  # loads the selector, the decision model and the query embedder now, not on request 1
    except BaseException:
        listener.close()
        raise
    app = create_app(router, admin_token=admin_token)
    bound = listener.getsockname()
    address = f"[{bound[0]}]" if listener.family == socket.AF_INET6 else bound[0]
    edits = "tool edits on, with the bearer token" if admin_token else f"tool edits off: set {ADMIN_TOKEN_ENV}"
    origin = f" from {source}" if source else ""
    log(f"Serving {len(router.index)} tools{origin} on http://{address}:{bound[1]}  ({edits}; Ctrl+C stops)")
    # no lifespan: the app needs none, and uvicorn logged a traceback from it when stopped by Ctrl+C
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="off", timeout_graceful_shutdown=30))
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled, once it has shut down
        pass
    finally:
        listener.close()
    log("Stopped")


# ----------------------------------------------------------------------------------------------- requests
async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read no further than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _RequestError(413, f"the request body is over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _RequestError(413, f"the request body is over {limit} bytes")
    if not body.strip():
        raise _RequestError(400, "the request body is empty: send a JSON object")
    try:
        data = json.loads(body)
    except RecursionError:
        raise _RequestError(400, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise _RequestError(400, f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _RequestError(400, f"the request body must be a JSON object, got {_kind(data)}")
    return data


def _fields(body: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = [key for key in body if key not in allowed]
    if unknown:
        raise _RequestError(400, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                                 f"expected {', '.join(allowed)}")
    return body


def _query(body: dict[str, Any]) -> str:
    if "query" not in body:
        raise _RequestError(400, "give 'query' (a string) or 'messages' (a chat history)")
    if "context_turns" in body:
        raise _RequestError(400, "'context_turns' goes with 'messages', not 'query'")
    query = body["query"]
    if not isinstance(query, str):
        raise _RequestError(400, f"'query' must be a string, got {_kind(query)}")
    return query


def _conversation_text(body: dict[str, Any]) -> str:
    """What the LangChain middleware routes for a chat history: the latest user messages (``routing_text``)."""
    if "query" in body:
        raise _RequestError(400, "give 'query' or 'messages', not both")
    messages, turns = body["messages"], body.get("context_turns", DEFAULT_CONTEXT_TURNS)
    if not isinstance(messages, list):
        raise _RequestError(400, f"'messages' must be a list of {{role, content}} objects, got {_kind(messages)}")
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        raise _RequestError(400, f"'context_turns' must be a positive integer, got {turns!r}")
    texts = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _RequestError(400, f"messages[{position}] must be an object with a string 'role'")
        text = _message_text(message.get("content"), position)
        if message["role"] == "user":
            texts.append(text)
    query = routing_text(texts, turns)
    if not query:
        raise QueryError("'messages' holds no user message with text")
    return query


def _message_text(content: Any, position: int) -> str:
    """A message's text: a string, null, or OpenAI-style parts (their ``text`` parts joined)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        texts = [part.get("text") for part in content if part.get("type") == "text"]
        if all(isinstance(text, str) for text in texts):
            return " ".join(texts)
    raise _RequestError(400, f"messages[{position}].content must be a string, null or a list of "
                             "{type: 'text', text} parts")


def _k(body: dict[str, Any]) -> int | None:
    k = body.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K):
        raise ConfigError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


def _exclude(body: dict[str, Any]) -> list[str]:
    exclude = body.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(name, str) for name in exclude):
        raise _RequestError(400, f"'exclude' must be a list of tool names, got {_kind(exclude)}")
    return exclude


def _tools(tools: Any) -> list[Tool]:
    """The tools of an add request, each checked by the catalogue's own rules and named by position if bad."""
    if not isinstance(tools, list) or not tools:
        raise _RequestError(400, f"'tools' must be a non-empty list of tool objects, got {_kind(tools)}")
    checked = []
    for position, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _RequestError(400, f"tools[{position}] must be a JSON object, got {_kind(tool)}")
        try:
            checked.append(tool_from_any(tool))
        except ToolValidationError as exc:
            raise ToolValidationError(f"tools[{position}]: {exc}") from None
    return checked


def _authorize(request: Request, token: str | None) -> None:
    if token is None:
        raise _RequestError(404, f"tool edits are off: start the server with {ADMIN_TOKEN_ENV} set")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise _RequestError(401, "tool edits need 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8")):
        raise _RequestError(403, "wrong admin token")


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# -------------------------------------------------------------------------------------------- responses
def _answering(handler: Callable[[Request], Awaitable[JSONResponse]]) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Turn refused requests and the library's errors into ``{"error": ...}`` with the right status."""

    async def wrapper(request: Request) -> JSONResponse:
        try:
            return await handler(request)
        except _RequestError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
        except (QueryError, ConfigError, ToolValidationError, CatalogError) as exc:  # what the request asked
            return JSONResponse({"error": str(exc)}, status_code=400)
        except GentoolError as exc:  # the selector failed, a model could not load: not the client's doing
            logger.error("%s %s: %s", request.method, request.url.path, exc)
            return JSONResponse({"error": str(exc)}, status_code=500)
        except Exception as exc:  # a bug: the traceback goes to the server log, one line to the client
            logger.exception("%s %s failed", request.method, request.url.path)
            return JSONResponse({"error": f"internal error ({type(exc).__name__}): see the server log"},
                                status_code=500)

    return wrapper


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = {"Allow": exc.headers["Allow"]} if exc.headers and "Allow" in exc.headers else None
    return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code,
                        headers=headers)


def _health(router: ToolRouter) -> dict[str, Any]:
    """What a load balancer and a person debugging want: alive, how many tools, which selector and decision."""
    selector = router.selector
    about: dict[str, Any] = {"kind": type(selector).__name__}
    if isinstance(selector, LlamaSelector):  # file names only: absolute paths are nobody's business
        about.update(model=selector.model_path.name,
                     adapter=selector.adapter_path.name if selector.adapter_path else None,
                     packaged=_is_packaged_selector(selector))
    decision = router.decision
    return {
        "status": "ok",
        "version": __version__,
        "tools": len(router.index),
        "k": router.k,
        "selector": about,
        # None: the selector's own threshold decides; else the decision model: its main part for catalogues from
        # its minimum size, its small-catalogue part (if any) below it
        "decision": None if decision is None else {"min_catalogue_tools": decision.min_catalogue_tools,
                                                   "small_catalogue": decision.small_weights is not None,
                                                   "identity": decision.identity},
    }


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, bound here so a port in use is a one-line error before serving."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:  # create_server's own message repeats the address; a bad host name has no errno
        reason = os.strerror(exc.errno) if exc.errno and not isinstance(exc, socket.gaierror) else exc.strerror or exc
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from None
