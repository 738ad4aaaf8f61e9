"""The :class:`Tool` record and its conversions from the formats users already have.

A tool reaches the router as a LangChain ``BaseTool``, a plain Python callable, an OpenAI function/tool dict,
a Seal-Tools style dict or a line of a JSONL file. All of them become one immutable :class:`Tool`, validated
once here, so the index, the selector and the training data never see a malformed definition.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import ToolValidationError

__all__ = ["Tool", "NO_TOOL", "tool_from_any", "TOOL_NAME_PATTERN", "valid_tool_name", "json_schema",
           "json_schema_type", "PYTHON_TYPE_NAMES"]

#: The pseudo-tool the selector picks when no candidate applies ("answer directly", the paper's name).
NO_TOOL = "generate_response"

#: Tool names as MCP allows them: ASCII letters, digits, ``_``, ``-``, ``.`` and ``/`` (``admin.tools.list``,
#: ``fs/read_file``), 1-128 characters. The 2025-11-25 specification says 1-128 and lists ``.``; SEP-986, which it
#: adopted, also lists ``/``: the union, so every name an MCP server may send loads as it is. Not 64 (OpenAI's
#: function-name limit): a router passes names through and never sends them to a model API itself, and a name
#: cut or refused here would no longer be the name the server answers to.
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_\-./]{1,128}$")
TOOL_NAME_RULE = "1-128 ASCII letters, digits, '_', '-', '.' or '/' (no spaces)"

_MAX_DESCRIPTION_CHARS = 10_000
_VERSION_KEYS = ("family", "version", "supersedes", "deprecated")


def valid_tool_name(name: str) -> str:
    """``name`` in OpenAI's stricter function-name form: every character outside ``A-Za-z0-9_-`` replaced by
    ``_``, cut at 64 characters (for importing corpora whose names have spaces, dots or ``&``).

    Stricter than :data:`TOOL_NAME_PATTERN` on purpose: the training data is built with it, and a changed
    mapping would change every generated file (``getPM2.5Level`` stays ``getPM2_5Level``).
    """
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)[:64]


def _clean_text(value: str) -> str:
    """Collapse whitespace and drop control characters, which carry no meaning for routing."""
    value = "".join(ch if ch.isprintable() or ch in "\t\n" else " " for ch in value)
    return " ".join(value.split())


@dataclass(frozen=True)
class Tool:
    """One tool the router can choose.

    Args:
        name: Unique name: ASCII letters, digits, ``_``, ``-``, ``.`` and ``/``, at most 128 characters (MCP's rule).
        description: What the tool does, in plain language. Must not be empty.
        parameters: JSON-schema object of the arguments (``{"type": "object", "properties": {...},
            "required": [...]}``).
        returns: Optional map of returned field name to ``{"type", "description"}``.
        family: Optional name shared by the versions of one tool (``"weather"``).
        version: Optional version label (``"2"``).
        supersedes: Optional name of the tool this one replaces.
        deprecated: True when the tool is kept only for compatibility (the strings ``"true"``/``"false"`` and
            the numbers 1/0 are read as booleans: metadata often arrives as text).

    Example:
        >>> Tool("get_weather", "Current weather for a city", {"type": "object",
        ...      "properties": {"city": {"type": "string"}}, "required": ["city"]}).parameter_names()
        ['city']
    """

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    returns: Mapping[str, Any] | None = None
    family: str | None = None
    version: str | None = None
    supersedes: str | None = None
    deprecated: bool = False

    def __post_init__(self) -> None:
        _validate_name(self.name)
        if not isinstance(self.description, str):
            raise ToolValidationError(
                f"tool {self.name!r}: description must be a string, got {type(self.description).__name__}"
            )
        description = _clean_text(self.description)
        if not description:
            raise ToolValidationError(f"tool {self.name!r}: description is empty")
        if len(description) > _MAX_DESCRIPTION_CHARS:
            raise ToolValidationError(
                f"tool {self.name!r}: description has {len(description)} characters "
                f"(at most {_MAX_DESCRIPTION_CHARS})"
            )
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "parameters", _validate_parameters(self.name, self.parameters))
        object.__setattr__(self, "returns", _validate_returns(self.name, self.returns))
        for key in ("family", "version", "supersedes"):
            value = getattr(self, key)
            if value is not None:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = str(value)
                if not isinstance(value, str) or not _clean_text(value):
                    raise ToolValidationError(f"tool {self.name!r}: {key} must be a non-empty string")
                object.__setattr__(self, key, _clean_text(value))
        object.__setattr__(self, "deprecated", _parse_flag(self.name, "deprecated", self.deprecated))

    # ------------------------------------------------------------------ views
    def parameter_names(self) -> list[str]:
        """Argument names in schema order."""
        return list(self.parameters.get("properties", {}))

    def required_parameters(self) -> list[str]:
        """Names of the arguments the schema marks as required."""
        return list(self.parameters.get("required", []))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in index folders and JSONL catalogues (round-trips through :meth:`from_dict`)."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": _thaw(self.parameters),
        }
        if self.returns is not None:
            data["returns"] = _thaw(self.returns)
        for key in ("family", "version", "supersedes"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.deprecated:
            data["deprecated"] = True
        return data

    def to_openai(self) -> dict[str, Any]:
        """OpenAI ``tools=[...]`` entry, for handing the routed tool to a chat model."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": json_schema(self.parameters),
            },
        }

    # ------------------------------------------------------------- builders
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Tool":
        """Build a tool from our JSON form, an OpenAI function/tool dict, or a Seal-Tools record.

        Version metadata may sit at the top level or under ``metadata`` (as LangChain keeps it).
        """
        if not isinstance(data, Mapping):
            raise ToolValidationError(f"a tool must be a JSON object, got {type(data).__name__}")
        if data.get("type") == "function" and isinstance(data.get("function"), Mapping):
            data = data["function"]
        if "api_name" in data:  # Seal-Tools
            return cls._from_seal_tools(data)
        unknown_name = data.get("name", "<unnamed>")
        if "name" not in data:
            raise ToolValidationError(f"tool {unknown_name}: missing 'name'")
        if "description" not in data:
            raise ToolValidationError(f"tool {data['name']!r}: missing 'description'")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise ToolValidationError(f"tool {data['name']!r}: metadata must be an object")
        versions = {k: data.get(k, metadata.get(k)) for k in _VERSION_KEYS}
        return cls(
            name=data["name"],
            description=data["description"],
            parameters=data.get("parameters") or {"type": "object", "properties": {}},
            returns=data.get("returns"),
            family=versions["family"],
            version=versions["version"],
            supersedes=versions["supersedes"],
            deprecated=versions["deprecated"] if versions["deprecated"] is not None else False,
        )

    @classmethod
    def _from_seal_tools(cls, data: Mapping[str, Any]) -> "Tool":
        properties = data.get("parameters") or {}
        if not isinstance(properties, Mapping):
            raise ToolValidationError(f"tool {data.get('api_name')!r}: parameters must be an object")
        return cls(
            name=data["api_name"],
            description=data.get("api_description", ""),
            parameters={
                "type": "object",
                "properties": dict(properties),
                "required": list(data.get("required") or []),
            },
            returns=data.get("responses") or None,
        )

    @classmethod
    def from_langchain(cls, tool: Any) -> "Tool":
        """Build a tool from a LangChain ``BaseTool``; version metadata is read from ``tool.metadata``."""
        from langchain_core.utils.function_calling import convert_to_openai_function

        try:
            function = convert_to_openai_function(tool)
        except Exception as exc:  # langchain raises several types for odd schemas
            raise ToolValidationError(f"tool {getattr(tool, 'name', tool)!r}: cannot read its schema: {exc}") from exc
        metadata = dict(getattr(tool, "metadata", None) or {})
        return cls.from_dict({**function, "metadata": metadata})

    @classmethod
    def from_callable(cls, fn: Callable[..., Any]) -> "Tool":
        """Build a tool from a typed Python function; its docstring is the description."""
        from langchain_core.utils.function_calling import convert_to_openai_function

        if not (fn.__doc__ or "").strip():
            raise ToolValidationError(
                f"function {getattr(fn, '__name__', fn)!r} has no docstring: it is the tool's description"
            )
        try:
            function = convert_to_openai_function(fn)
        except Exception as exc:
            raise ToolValidationError(f"function {getattr(fn, '__name__', fn)!r}: cannot read its signature: {exc}") from exc
        return cls.from_dict(function)


def tool_from_any(obj: Any) -> Tool:
    """Convert any supported tool form to a :class:`Tool` (the catalogue's single entry point)."""
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, Mapping):
        return Tool.from_dict(obj)
    if _is_langchain_tool(obj):
        return Tool.from_langchain(obj)
    if callable(obj):
        return Tool.from_callable(obj)
    raise ToolValidationError(
        f"cannot make a tool from {type(obj).__name__}: expected a Tool, a dict, a LangChain BaseTool or a function"
    )


def _is_langchain_tool(obj: Any) -> bool:
    return any(cls.__name__ == "BaseTool" and cls.__module__.startswith("langchain") for cls in type(obj).__mro__)


# ------------------------------------------------------------------------ Python-style type names
#: Python-style type names (and common variants) in published catalogues -> their JSON-Schema type; ``None``:
#: any type (the ``type`` keyword is dropped). Matched case-insensitively, ``typing.`` and ``[...]`` ignored.
PYTHON_TYPE_NAMES: dict[str, str | None] = {
    **dict.fromkeys(("str", "string", "text", "unicode", "bytes"), "string"),
    **dict.fromkeys(("int", "integer", "long"), "integer"),
    **dict.fromkeys(("float", "double", "number", "decimal"), "number"),
    **dict.fromkeys(("bool", "boolean"), "boolean"),
    **dict.fromkeys(("dict", "object", "mapping", "map"), "object"),
    **dict.fromkeys(("list", "array", "tuple", "set", "frozenset", "sequence", "iterable"), "array"),
    **dict.fromkeys(("none", "nonetype", "null"), "null"),
    "any": None,
}
_TYPE_NAME = re.compile(r"^\s*(?:typing\.)?([A-Za-z]+)\s*(?:\[.*\])?\s*$", re.DOTALL)
#: Keywords whose value is one schema, a list of schemas, or a map of name -> schema (never a property name).
_ONE_SCHEMA = ("items", "additionalProperties", "not", "contains", "if", "then", "else", "additionalItems")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


def json_schema_type(name: Any) -> Any:
    """The JSON-Schema type of a Python-style type name (``"float"`` -> ``"number"``, ``"any"`` -> None);
    anything else (a JSON-Schema name, an unknown word, a list) is returned as it is."""
    if not isinstance(name, str):
        return name
    match = _TYPE_NAME.match(name)
    if match is None or match.group(1).lower() not in PYTHON_TYPE_NAMES:
        return name
    return PYTHON_TYPE_NAMES[match.group(1).lower()]


def json_schema(schema: Any) -> Any:
    """A copy of ``schema`` with every ``type`` keyword in JSON-Schema terms (see :data:`PYTHON_TYPE_NAMES`).

    Stored schemas keep the names they were written with (a catalogue round-trips unchanged, and the training
    data built from Seal-Tools' ``str``/``int`` schemas stays the same); this is the form handed to a chat model.
    """
    if not isinstance(schema, Mapping):
        return _thaw(schema)
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            converted = [json_schema_type(v) for v in value] if isinstance(value, list) else json_schema_type(value)
            if converted is None or (isinstance(converted, list) and None in converted):
                continue  # "any": no type constraint
            result[key] = converted
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            result[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            result[key] = [json_schema(sub) for sub in value]
        elif key in _ONE_SCHEMA and isinstance(value, Mapping):
            result[key] = json_schema(value)
        else:
            result[key] = _thaw(value)
    return result


# ------------------------------------------------------------------------ validation
def _parse_flag(tool_name: str, key: str, value: Any) -> bool:
    """A boolean, from JSON ``true``/``false``, the strings ``"true"``/``"false"`` or the numbers 1/0 (metadata
    arrives as text from YAML front matter, CSV and LangChain ``metadata``; ``bool("false")`` would be True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ToolValidationError(f"tool {tool_name!r}: {key} must be true or false, got {value!r}")


def _validate_name(name: Any) -> None:
    if not isinstance(name, str):
        raise ToolValidationError(f"tool name must be a string, got {type(name).__name__}")
    if not TOOL_NAME_PATTERN.fullmatch(name):  # match() would let a trailing newline through ("$")
        raise ToolValidationError(
            f"tool name {name!r} is invalid: use {TOOL_NAME_RULE}"
        )
    if name == NO_TOOL:
        raise ToolValidationError(f"tool name {NO_TOOL!r} is reserved for 'no tool applies'")


def _validate_parameters(tool_name: str, parameters: Any) -> dict[str, Any]:
    """Check a JSON-schema object of arguments and return a plain, JSON-safe copy."""
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, Mapping):
        raise ToolValidationError(f"tool {tool_name!r}: parameters must be a JSON-schema object")
    if json_schema_type(parameters.get("type", "object")) != "object":  # "dict" (a Python-style name) is fine
        raise ToolValidationError(f"tool {tool_name!r}: parameters must have type 'object'")
    properties = parameters.get("properties", {})
    if not isinstance(properties, Mapping):
        raise ToolValidationError(f"tool {tool_name!r}: parameters.properties must be an object")
    for arg, schema in properties.items():
        if not isinstance(arg, str) or not arg.strip():
            raise ToolValidationError(f"tool {tool_name!r}: parameter names must be non-empty strings")
        if not arg.isprintable():  # a newline in a name would break the one-line tool text
            raise ToolValidationError(f"tool {tool_name!r}: parameter name {arg!r} holds control characters")
        if not isinstance(schema, Mapping):
            raise ToolValidationError(f"tool {tool_name!r}: parameter {arg!r} must be a JSON-schema object")
    required = parameters.get("required", [])
    if not isinstance(required, (list, tuple)) or not all(isinstance(r, str) for r in required):
        raise ToolValidationError(f"tool {tool_name!r}: parameters.required must be a list of names")
    missing = [r for r in required if r not in properties]
    if missing:
        raise ToolValidationError(f"tool {tool_name!r}: required parameters {missing} are not in properties")
    result = _thaw(parameters)
    result["type"] = "object"
    result.setdefault("properties", {})
    _check_json(tool_name, result)
    return result


def _validate_returns(tool_name: str, returns: Any) -> dict[str, Any] | None:
    if returns is None:
        return None
    if not isinstance(returns, Mapping):
        raise ToolValidationError(f"tool {tool_name!r}: returns must be an object of field name to schema")
    for key in map(str, returns):
        if not key.strip() or not key.isprintable():
            raise ToolValidationError(f"tool {tool_name!r}: returned field names must be non-empty printable strings")
    result = _thaw(returns)
    _check_json(tool_name, result)
    return result or None


def _check_json(tool_name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolValidationError(f"tool {tool_name!r}: schema is not plain JSON: {exc}") from exc


def _thaw(value: Any) -> Any:
    """Deep copy of JSON-like data into plain dicts and lists (schemas stay immutable-by-convention)."""
    try:
        return _thaw_nested(value)
    except RecursionError:
        raise ToolValidationError("schema is nested too deeply") from None


def _thaw_nested(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _thaw_nested(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw_nested(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolValidationError("schemas may not hold NaN or infinite numbers")
    return value
