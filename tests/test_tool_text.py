"""The canonical tool text (contract 1)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gentool_router import Tool, render_tool
from gentool_router.tool_text import MAX_DESCRIPTION_WORDS, MAX_PARAMETERS


def test_renders_name_arguments_returns_and_description():
    tool = Tool("get_weather", "Weather for a city.",
                {"type": "object", "properties": {"city": {}, "units": {}}, "required": ["city"]},
                returns={"temp": {}, "wind": {}})
    assert render_tool(tool) == "get_weather(city, units?) -> temp, wind: Weather for a city."


def test_version_metadata_is_a_short_hint():
    tool = Tool("w2", "Forecast.", version="2", supersedes="w1")
    assert render_tool(tool) == "w2() [v2 replaces w1]: Forecast."
    assert render_tool(Tool("w1", "Old.", deprecated=True)) == "w1() [deprecated]: Old."


def test_long_descriptions_and_argument_lists_are_cut():
    tool = Tool("t", " ".join(f"w{i}" for i in range(100)),
                {"type": "object", "properties": {f"p{i}": {} for i in range(20)}})
    text = render_tool(tool)
    assert text.count("w") == MAX_DESCRIPTION_WORDS + 0 and text.endswith("...")
    assert text.count("p") == MAX_PARAMETERS


@settings(max_examples=200, deadline=None)
@given(description=st.text(min_size=1, max_size=500).filter(lambda s: any(c.isprintable() and not c.isspace() for c in s)))
def test_text_is_one_line_and_deterministic(description):
    tool = Tool("t", description)
    text = render_tool(tool)
    assert "\n" not in text and text == render_tool(Tool.from_dict(tool.to_dict()))
