"""The router inside LangChain and LangGraph: a retriever, a runnable, agent middleware and a graph node.

An agent with hundreds of tools binds them all to every model call: the schemas crowd the context and the
model picks badly. :class:`ToolRouterMiddleware` binds only what the router chose for the latest user message
(or nothing, when the router says ``generate_response``), so the chat model sees one or two tools::

    router = ToolRouter.from_tools(tools)
    middleware = ToolRouterMiddleware(router, tools)
    agent = create_agent(model, tools, middleware=[middleware])

Routing is plain Python (FAISS and llama.cpp), not a LangChain run: the selector never shows up in the
agent's callbacks, traces or token stream.

Needs the ``langchain`` extra (``pip install 'gentool-router[langchain]'``).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from .conversation import routing_text
from .errors import CatalogError, ConfigError, QueryError
from .index_base import check_k
from .results import Route
from .router import ToolRouter, _clean_query
from .settings import DEFAULT_CONTEXT_TURNS, DEFAULT_K, DEFAULT_MAX_TOOLS
from .tool_text import render_tool
from .tools import NO_TOOL

try:
    from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage, convert_to_messages
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable, RunnableConfig
    from langgraph.graph import MessagesState
    from pydantic import ConfigDict, Field
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"gentool_router.langchain needs LangChain v1 and LangGraph ({exc}); "
        "install them with: pip install 'gentool-router[langchain]'"
    ) from exc

__all__ = [
    "as_retriever",
    "as_runnable",
    "ToolRouterRetriever",
    "ToolRouterRunnable",
    "ToolRouterMiddleware",
    "RoutedToolsState",
    "route_tools_node",
    "routed_tool_names",
]

#: How many names an error message lists before it says "and N more" (catalogues can hold thousands).
_LISTED_NAMES = 10


# ----------------------------------------------------------------------------------------------- retriever
class ToolRouterRetriever(BaseRetriever):
    """The router's ranking as LangChain ``Document`` s, best first (``generate_response`` left out).

    Each document's ``page_content`` is the tool's canonical text (what was embedded and what the selector
    read); ``metadata`` holds ``name``, ``score`` (the selector's probability) and ``rank`` (0 = best).
    At most ``k`` documents, and never more than the router's own ``k`` candidates.

    Example:
        >>> retriever = as_retriever(router, k=3)
        >>> [doc.metadata["name"] for doc in retriever.invoke("Will it rain in Oslo?")]
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    router: ToolRouter
    """The router whose ranking is returned."""
    k: int = Field(default=DEFAULT_K, gt=0)
    """Documents returned at most; ``invoke(query, k=...)`` overrides it per call."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return self._documents(self.router.route(query), k)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return self._documents(await self.router.aroute(query), k)

    def _documents(self, route: Route, k: int | None) -> list[Document]:
        limit = _positive_int("k", self.k if k is None else k)
        ranked = [choice for choice in route.ranking if choice.name != NO_TOOL][:limit]
        found = {c.name: c.tool for c in route.candidates}  # the route's own tools: an edit since cannot fail it
        return [
            Document(
                id=choice.name,
                page_content=render_tool(found[choice.name]),
                metadata={"name": choice.name, "score": choice.score, "rank": rank},
            )
            for rank, choice in enumerate(ranked)
        ]


# ------------------------------------------------------------------------------------------------ runnable
class ToolRouterRunnable(Runnable[str, Route]):
    """The router as a LangChain ``Runnable[str, Route]``, for chains (``prompt | llm`` style pipelines).

    Unlike wrapping :meth:`ToolRouter.route` in a ``RunnableLambda``, :meth:`batch` embeds all queries in
    one call (:meth:`ToolRouter.route_batch`) and the async methods never block the event loop.
    """

    def __init__(self, router: ToolRouter, name: str = "ToolRouter") -> None:
        self.router = router
        self.name = name

    @property
    def InputType(self) -> type[str]:  # noqa: N802 - LangChain's name
        return str

    @property
    def OutputType(self) -> type[Route]:  # noqa: N802 - LangChain's name
        return Route

    def invoke(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> Route:
        return self._call_with_config(self.router.route, input, config)

    async def ainvoke(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> Route:
        return await self._acall_with_config(self.router.aroute, input, config)

    def batch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Route]:
        return self._batch_with_config(
            self._route_each if return_exceptions else self._route_all, list(inputs), config,
            return_exceptions=return_exceptions
        )

    async def abatch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Route]:
        return await self._abatch_with_config(
            self._aroute_each if return_exceptions else self._aroute_all, list(inputs), config,
            return_exceptions=return_exceptions
        )

    # typed as Runnable's batch helpers expect (each item a result or an exception); route_batch raises instead
    def _route_all(self, inputs: list[str]) -> list[Route | Exception]:
        return list(self.router.route_batch(inputs))

    async def _aroute_all(self, inputs: list[str]) -> list[Route | Exception]:
        return list(await self.router.aroute_batch(inputs))

    # batch(..., return_exceptions=True): each input gets its own route or its own error, as LangChain's batch
    # promises; route_batch refuses the whole list for one bad query, so bad queries are set aside first and
    # the others are still routed in one call
    def _route_each(self, inputs: list[str]) -> list[Route | Exception]:
        errors = _query_errors(inputs)
        routes = iter(self.router.route_batch([q for q, e in zip(inputs, errors) if e is None]))
        return [e if e is not None else next(routes) for e in errors]

    async def _aroute_each(self, inputs: list[str]) -> list[Route | Exception]:
        errors = _query_errors(inputs)
        routes = iter(await self.router.aroute_batch([q for q, e in zip(inputs, errors) if e is None]))
        return [e if e is not None else next(routes) for e in errors]

    def __repr__(self) -> str:
        return f"ToolRouterRunnable({self.router!r})"


def _query_errors(queries: list[Any]) -> list[Exception | None]:
    """Per query, the :class:`~gentool_router.errors.QueryError` routing it would raise, or None."""
    errors: list[Exception | None] = []
    for query in queries:
        try:
            _clean_query(query)
            errors.append(None)
        except QueryError as exc:
            errors.append(exc)
    return errors


def as_retriever(router: ToolRouter, k: int | None = None) -> ToolRouterRetriever:
    """``router`` as a LangChain retriever returning the ranked tools as ``Document`` s.

    ``k`` defaults to the router's ``k`` (more than that is never returned).
    """
    if k is not None:
        check_k(k)
    return ToolRouterRetriever(router=router, k=router.k if k is None else k)


def as_runnable(router: ToolRouter) -> ToolRouterRunnable:
    """``router`` as a LangChain ``Runnable[str, Route]``; ``batch`` routes with one embedding call."""
    return ToolRouterRunnable(router)


# ------------------------------------------------------------------------------ choosing the tools to bind
def routed_tool_names(route: Route, max_tools: int = DEFAULT_MAX_TOOLS) -> list[str]:
    """The top ``max_tools`` tools ranked above ``generate_response`` (none when the router abstains)."""
    names: list[str] = []
    for choice in route.ranking:
        if choice.name == NO_TOOL or len(names) >= max_tools:
            break
        names.append(choice.name)
    return names


class _ToolPicker:
    """What the middleware and the graph node share: checks the tools against the router once, then turns
    a conversation into the names of the tools to offer the model."""

    def __init__(
        self,
        router: ToolRouter,
        tools: Sequence[Any],
        always_include: Iterable[str],
        max_tools: int,
        sticky: bool,
        context_turns: int = DEFAULT_CONTEXT_TURNS,
    ) -> None:
        self.router = router
        self.max_tools = _positive_int("max_tools", max_tools)
        self.context_turns = _positive_int("context_turns", context_turns)
        self.sticky = bool(sticky)
        self.tools = _tools_by_name(tools)
        if isinstance(always_include, str):
            always_include = [always_include]
        self.always_include = tuple(dict.fromkeys(always_include))
        unknown = [n for n in self.always_include if n not in self.tools]
        if unknown:
            raise CatalogError(f"always_include names tools that are not in tools: {_listed(unknown)}")
        catalog = router.catalog
        routable = [n for n in self.tools if n not in self.always_include]
        not_indexed = [n for n in routable if n not in catalog]
        if not_indexed:
            raise CatalogError(
                f"tools the router does not know: {_listed(not_indexed)}; build the router from the same tools "
                "(ToolRouter.from_tools(tools)) or put them in always_include"
            )
        unbindable = [n for n in catalog.names() if n not in self.tools]
        if unbindable:
            raise CatalogError(
                f"the router can choose tools that are not in tools: {_listed(unbindable)}; pass every tool of "
                "the router's catalogue"
            )
        # One-entry cache: an agent calls the model several times per user message (after each tool call).
        self._last: tuple[tuple[str, int], list[str]] | None = None

    def pick(self, messages: Sequence[Any]) -> list[str]:
        """Routed tools (best first), then tools already called (sticky), then ``always_include``."""
        messages = convert_to_messages(messages)
        query = routing_text(human_texts(messages), self.context_turns)
        routed = self._cached(query)
        if routed is None:
            routed = self._remember(query, self.router.route(query))
        return self._merge(routed, messages)

    async def apick(self, messages: Sequence[Any]) -> list[str]:
        messages = convert_to_messages(messages)
        query = routing_text(human_texts(messages), self.context_turns)
        routed = self._cached(query)
        if routed is None:
            routed = self._remember(query, await self.router.aroute(query))
        return self._merge(routed, messages)

    def _cached(self, query: str) -> list[str] | None:
        """The routed names when they are known without routing (no user text: nothing to route)."""
        if not query:
            return []
        last = self._last
        if last is not None and last[0] == (query, len(self.router.catalog)):
            return last[1]
        return None

    def _remember(self, query: str, route: Route) -> list[str]:
        names = routed_tool_names(route, self.max_tools)
        missing = [n for n in names if n not in self.tools]
        if missing:
            raise CatalogError(
                f"the router chose {_listed(missing)}, which is not in tools: tools added to the router after "
                "the middleware was made need a new middleware (and agent) that has them"
            )
        self._last = ((query, len(self.router.catalog)), names)
        return names

    def _merge(self, routed: list[str], messages: Sequence[BaseMessage]) -> list[str]:
        chosen = list(routed)
        if self.sticky:
            chosen += [n for n in called_tool_names(messages) if n in self.tools]
        chosen += self.always_include
        return list(dict.fromkeys(chosen))


def human_texts(messages: Sequence[BaseMessage]) -> list[str]:
    """The texts of the user messages, oldest first (messages without text left out)."""
    return [m.text.strip() for m in messages if isinstance(m, HumanMessage) and m.text.strip()]


def latest_human_text(messages: Sequence[BaseMessage]) -> str:
    """The text of the last user message ("" when there is none, or it holds no text)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text.strip()
    return ""


def called_tool_names(messages: Sequence[BaseMessage]) -> list[str]:
    """Tools the conversation already called, in first-call order (from AI tool calls and tool results)."""
    names: list[str] = []
    for message in messages:
        if isinstance(message, AIMessage):
            names += [call["name"] for call in message.tool_calls]
        elif isinstance(message, ToolMessage) and message.name:
            names.append(message.name)
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------- middleware
class ToolRouterMiddleware(AgentMiddleware):
    """Binds only the routed tools to each model call of a LangChain v1 agent (``create_agent``).

    For each model call the latest user message is routed; the model is offered the top ``max_tools`` tools
    the selector ranks above ``generate_response`` (none when it abstains), plus ``always_include``, plus,
    when ``sticky``, every tool the conversation already called (so a multi-step task keeps its tools).
    Tools the middleware does not manage (other middleware's tools, provider built-ins) pass through.

    Args:
        router: A router built over ``tools`` (``ToolRouter.from_tools(tools)``).
        tools: The agent's tools (the list given to ``create_agent``): LangChain tools or functions.
        always_include: Names of tools offered on every call; they need not be in the router.
        max_tools: Routed tools offered at most per call.
        sticky: Keep offering tools called earlier in the conversation.
        context_turns: User messages routed together, latest last (``conversation.routing_text``): 1 routes the
            latest alone; 3 lets "book it for Friday" route with the request it answers (API-Bank dialogues:
            BENCHMARKS.md, "Real catalogues").

    Raises:
        CatalogError: when ``tools`` and the router's catalogue differ, or ``always_include`` names an
            unknown tool.
    """

    def __init__(
        self,
        router: ToolRouter,
        tools: Sequence[Any],
        *,
        always_include: Iterable[str] = (),
        max_tools: int = DEFAULT_MAX_TOOLS,
        sticky: bool = True,
        context_turns: int = DEFAULT_CONTEXT_TURNS,
    ) -> None:
        super().__init__()
        self._picker = _ToolPicker(router, tools, always_include, max_tools, sticky, context_turns)
        self.router = router

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        return handler(self._narrow(request, self._picker.pick(request.messages)))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        return await handler(self._narrow(request, await self._picker.apick(request.messages)))

    def _narrow(self, request: ModelRequest, chosen: list[str]) -> ModelRequest:
        managed = self._picker.tools
        offered = {_name_of(t): t for t in request.tools}
        missing = [n for n in chosen if n not in offered]
        if missing:
            raise CatalogError(
                f"the agent was not given {_listed(missing)}: pass the same tools to create_agent and "
                "ToolRouterMiddleware"
            )
        others = [t for t in request.tools if _name_of(t) not in managed]
        return request.override(tools=[offered[n] for n in chosen] + others)


# ---------------------------------------------------------------------------------------------- graph node
class RoutedToolsState(MessagesState):
    """Graph state with the names the :func:`route_tools_node` wrote (for custom LangGraph graphs)."""

    routed_tools: list[str]


def route_tools_node(
    router: ToolRouter,
    tools: Sequence[Any],
    *,
    always_include: Iterable[str] = (),
    max_tools: int = DEFAULT_MAX_TOOLS,
    sticky: bool = True,
    context_turns: int = DEFAULT_CONTEXT_TURNS,
) -> Callable[[Any], dict[str, list[str]]]:
    """A LangGraph node that reads ``state["messages"]`` and writes ``state["routed_tools"]`` (tool names).

    The same choice as :class:`ToolRouterMiddleware`, for graphs built by hand: a later node binds
    ``[tools_by_name[n] for n in state["routed_tools"]]`` to its model. In an async graph LangGraph runs
    this node in a worker thread.

    Example:
        >>> graph = StateGraph(RoutedToolsState)
        >>> graph.add_node("route", route_tools_node(router, tools))
    """
    picker = _ToolPicker(router, tools, always_include, max_tools, sticky, context_turns)

    def route_tools(state: Any) -> dict[str, list[str]]:
        try:
            messages = state["messages"]
        except (KeyError, TypeError):
            raise CatalogError("route_tools_node needs a state with a 'messages' list") from None
        return {"routed_tools": picker.pick(messages)}

    return route_tools


# ------------------------------------------------------------------------------------------------- helpers
def _tools_by_name(tools: Sequence[Any]) -> dict[str, Any]:
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
        raise CatalogError(f"tools must be a list of tools, got {type(tools).__name__}")
    by_name: dict[str, Any] = {}
    for position, tool in enumerate(tools):
        name = _name_of(tool)
        if name is None:
            raise CatalogError(f"tool #{position} ({type(tool).__name__}) has no name")
        if name in by_name:
            raise CatalogError(f"two tools are named {name!r}")
        by_name[name] = tool
    if not by_name:
        raise CatalogError("tools is empty: give the agent's tools")
    return by_name


def _name_of(tool: Any) -> str | None:
    """A tool's name as the agent will see it: LangChain tools and OpenAI dicts carry one, functions go by
    ``__name__`` (as ``create_agent`` names them); None for provider built-ins without a name."""
    if isinstance(tool, Mapping):
        function = tool.get("function")
        name = tool.get("name") or (function.get("name") if isinstance(function, Mapping) else None)
    else:
        name = getattr(tool, "name", None)
        if name is None and callable(tool):
            name = getattr(tool, "__name__", None)
    return name if isinstance(name, str) else None


def _positive_int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    return value


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED_NAMES])
    return shown if len(names) <= _LISTED_NAMES else f"{shown} and {len(names) - _LISTED_NAMES} more"
