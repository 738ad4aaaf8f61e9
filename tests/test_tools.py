"""Tool validation and conversion from the formats users have."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gentool_router import CatalogError, Tool, ToolCatalog, ToolValidationError, render_tool
from gentool_router.catalog import load_tools_jsonl, write_tools_jsonl
from gentool_router.tools import TOOL_NAME_PATTERN, tool_from_any


def test_tool_normalises_description_whitespace_and_control_characters():
    tool = Tool("t", "  Does\x00 a\n\n thing\x1b  ")
    assert tool.description == "Does a thing"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "has space", "description": "d"}, "invalid"),
        ({"name": "", "description": "d"}, "invalid"),
        ({"name": "x" * 129, "description": "d"}, "invalid"),
        ({"name": "a:b", "description": "d"}, "invalid"),
        ({"name": "a\\b", "description": "d"}, "invalid"),
        ({"name": 3, "description": "d"}, "must be a string"),
        ({"name": "generate_response", "description": "d"}, "reserved"),
        ({"name": "t", "description": ""}, "empty"),
        ({"name": "t", "description": "   "}, "empty"),
        ({"name": "t", "description": 42}, "must be a string"),
        ({"name": "t", "description": "d", "parameters": []}, "JSON-schema object"),
        ({"name": "t", "description": "d", "parameters": {"type": "array"}}, "type 'object'"),
        ({"name": "t", "description": "d", "parameters": {"properties": []}}, "properties must be an object"),
        ({"name": "t", "description": "d", "parameters": {"properties": {"a": "str"}}}, "parameter 'a'"),
        ({"name": "t", "description": "d", "parameters": {"properties": {"a": {}}, "required": ["b"]}}, "not in properties"),
        ({"name": "t", "description": "d", "parameters": {"properties": {}, "required": "a"}}, "list of names"),
        ({"name": "t", "description": "d", "returns": ["x"]}, "returns must be an object"),
        ({"name": "t", "description": "d", "version": ""}, "version"),
        ({"name": "t", "description": "d", "deprecated": "yes"}, "deprecated"),
        ({"name": "t", "description": "d", "parameters": {"properties": {"a": {"default": float("nan")}}}}, "NaN"),
    ],
)
def test_bad_tools_get_clear_errors(kwargs, message):
    with pytest.raises(ToolValidationError, match=message):
        Tool(**kwargs)


def test_from_dict_reads_openai_tool_and_function_forms():
    function = {"name": "f", "description": "Do f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}
    assert Tool.from_dict({"type": "function", "function": function}) == Tool.from_dict(function)
    assert Tool.from_dict(function).parameter_names() == ["x"]


def test_from_dict_reads_seal_tools_records():
    record = {"api_name": "getWaterQuality", "api_description": "Water quality of a lake", "field": "Env",
              "parameters": {"location": {"type": "str", "description": "Where"}}, "required": ["location"],
              "responses": {"quality": {"type": "str", "description": "Quality"}}}
    tool = Tool.from_dict(record)
    assert tool.name == "getWaterQuality"
    assert tool.required_parameters() == ["location"]
    assert list(tool.returns) == ["quality"]


def test_version_metadata_from_top_level_or_metadata():
    a = Tool.from_dict({"name": "w2", "description": "d", "family": "w", "version": 2, "supersedes": "w1"})
    b = Tool.from_dict({"name": "w2", "description": "d", "metadata": {"family": "w", "version": "2", "supersedes": "w1"}})
    assert a == b and a.version == "2"


def test_from_langchain_tool_keeps_schema_and_metadata():
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str, days: int = 1) -> str:
        """Weather forecast for a city."""
        return "sunny"

    get_weather.metadata = {"family": "weather", "version": "2", "deprecated": False}
    converted = tool_from_any(get_weather)
    assert converted.name == "get_weather"
    assert converted.parameter_names() == ["city", "days"]
    assert converted.required_parameters() == ["city"]
    assert converted.family == "weather" and converted.version == "2"


def test_from_callable_uses_docstring_and_signature():
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
            a: first
            b: second
        """
        return a + b

    tool = tool_from_any(add)
    assert tool.name == "add" and tool.description.startswith("Add two integers")
    assert tool.required_parameters() == ["a", "b"]


def test_callable_without_docstring_is_refused():
    def nodoc(x: int) -> int:
        return x

    with pytest.raises(ToolValidationError, match="docstring"):
        tool_from_any(nodoc)


def test_unsupported_object_is_refused():
    with pytest.raises(ToolValidationError, match="cannot make a tool"):
        tool_from_any(42)


def test_catalog_reports_all_duplicates_and_empty_input():
    with pytest.raises(CatalogError, match="duplicate tool names: a, b"):
        ToolCatalog.from_tools([{"name": n, "description": "d"} for n in ["a", "b", "a", "b", "c"]])
    with pytest.raises(CatalogError, match="empty"):
        ToolCatalog.from_tools([])


def test_catalog_error_names_the_position_of_a_bad_tool():
    with pytest.raises(ToolValidationError, match="tool #1"):
        ToolCatalog.from_tools([{"name": "a", "description": "d"}, {"name": "b"}])


def test_catalog_add_remove():
    catalog = ToolCatalog.from_tools([{"name": "a", "description": "d"}])
    catalog.add({"name": "b", "description": "e"})
    assert catalog.names() == ["a", "b"]
    with pytest.raises(CatalogError, match="already"):
        catalog.add({"name": "a", "description": "x"})
    catalog.remove("a")
    assert catalog.names() == ["b"]
    with pytest.raises(CatalogError, match="no tool named"):
        catalog.remove("zzz")


def test_jsonl_round_trip(tmp_path, small_tools):
    path = tmp_path / "tools.jsonl"
    write_tools_jsonl(small_tools, path)
    loaded = load_tools_jsonl(path)
    assert loaded == small_tools
    assert [render_tool(t) for t in loaded] == [render_tool(t) for t in small_tools]  # argument order kept


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "tools.jsonl"
    path.write_text('{"name": "a", "description": "d"}\n\n{"name": "b", "descr\n')
    with pytest.raises(CatalogError, match=r"tools.jsonl:3: not valid JSON"):
        load_tools_jsonl(path)
    path.write_text('{"name": "a", "description": "d"}\n{"name": "b b", "description": "d"}\n')
    with pytest.raises(ToolValidationError, match=r"tools.jsonl:2: .*invalid"):
        load_tools_jsonl(path)
    path.write_bytes(b'{"name": "a", "description": "\xff\xfe"}\n')
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_tools_jsonl(path)
    with pytest.raises(CatalogError, match="not found"):
        load_tools_jsonl(tmp_path / "missing.jsonl")


names = st.from_regex(TOOL_NAME_PATTERN, fullmatch=True).filter(lambda n: n != "generate_response")
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    name=names,
    description=st.text(min_size=1, max_size=300),
    # parameter names may hold any printable text (control characters are refused: see test_reliability.py)
    params=st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and s.isprintable()),
                           st.dictionaries(st.sampled_from(["type", "description"]), json_scalars), max_size=8),
    data=st.data(),
)
def test_valid_tools_round_trip_through_json(name, description, params, data):
    required = data.draw(st.lists(st.sampled_from(sorted(params)), unique=True) if params else st.just([]))
    try:
        tool = Tool(name, description, {"type": "object", "properties": params, "required": required})
    except ToolValidationError as exc:
        # the only reason a well-formed schema may be refused is an empty description
        assert "empty" in str(exc) and not any(c.isprintable() and not c.isspace() for c in description)
        return
    again = Tool.from_dict(json.loads(json.dumps(tool.to_dict())))
    assert again == tool


@settings(max_examples=300, deadline=None)
@given(st.recursive(json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=10))
def test_arbitrary_json_never_escapes_as_an_internal_error(value):
    try:
        Tool.from_dict(value)
    except ToolValidationError:
        pass
