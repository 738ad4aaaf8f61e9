"""Offline stand-ins for the examples: a chat model that needs no API key, and callable stubs of catalogue tools.

The model shows what the router changes: it records the tools bound to each call, calls the first one it is
given (with placeholder arguments) and answers in text once a tool result is in, or when it has no tools.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from gentool_router import Tool

__all__ = ["ToolCallingFakeModel", "stub_tools"]

_PLACEHOLDERS = {"integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}


class ToolCallingFakeModel(BaseChatModel):
    """A chat model that calls the first tool bound to it, then answers; ``bound`` lists each call's tools.

    ``arguments`` gives the call's arguments per tool name; other tools get placeholders for their required
    parameters.
    """

    bound: list[list[str]] = Field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    arguments: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "tool-calling-fake"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        tools = [t["function"] for t in kwargs.get("tools") or []]
        self.bound.append([t["name"] for t in tools])
        if tools and isinstance(messages[-1], HumanMessage):
            first = tools[0]
            args = self.arguments.get(first["name"]) or _placeholder_args(first.get("parameters") or {})
            call = {"name": first["name"], "args": args, "id": f"call_{len(self.bound)}"}
            message = AIMessage(content="", tool_calls=[call])
        elif tools:
            message = AIMessage(content=f"Done: {messages[-1].text[:60]}")
        else:
            message = AIMessage(content="(answered directly, no tool)")
        return ChatResult(generations=[ChatGeneration(message=message)])


def _placeholder_args(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    return {name: _PLACEHOLDERS.get(properties.get(name, {}).get("type"), "example")
            for name in schema.get("required") or []}


def stub_tools(tools: Iterable[Tool]) -> list[BaseTool]:
    """LangChain tools with the catalogue's names and schemas whose call returns a canned JSON result."""
    def stub(tool: Tool) -> BaseTool:
        def run(**kwargs: Any) -> str:
            return json.dumps({"tool": tool.name, "arguments": kwargs, "result": "ok"})

        return StructuredTool.from_function(func=run, name=tool.name, description=tool.description,
                                            args_schema=dict(tool.parameters))

    return [stub(t) for t in tools]
