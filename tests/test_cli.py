"""The command line, through click's runner and the real models."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gentool_router.catalog import write_tools_jsonl
from gentool_router.cli import main


def test_every_command_has_help():
    runner = CliRunner()
    for command in ([], ["index"], ["route"], ["demo"]):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.slow
def test_index_then_route(tmp_path, small_tools):
    tools = tmp_path / "tools.jsonl"
    write_tools_jsonl(small_tools, tools)
    runner = CliRunner()
    result = runner.invoke(main, ["index", str(tools), "--out", str(tmp_path / "idx"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Indexed 6 tools" in result.output
    result = runner.invoke(main, ["route", "--index", str(tmp_path / "idx"), "--json", "--threads", "2",
                                  "rain in Paris?", "email Bob"])
    assert result.exit_code == 0, result.output
    routes = [json.loads(line) for line in result.output.splitlines()]
    assert [r["candidates"][0]["name"] for r in routes] == ["get_weather_forecast", "send_email"]
    assert all(len(r["candidates"]) == 5 and len(r["ranking"]) == 6 for r in routes)
    result = runner.invoke(main, ["route", "--index", str(tmp_path / "idx"), "-k", "2", "rain in Paris?"])
    assert result.exit_code == 0 and "Query: rain in Paris?" in result.output and "ranking:" in result.output


@pytest.mark.slow
def test_demo_routes_the_bundled_examples():
    from gentool_router.cli import DEMO_QUERIES
    from gentool_router.examples import example_cases

    result = CliRunner().invoke(main, ["demo", "--json", "--threads", "2"])
    assert result.exit_code == 0, result.output
    routes = [json.loads(line) for line in result.output.splitlines()]
    assert len(routes) == DEMO_QUERIES and [r["query"] for r in routes] == [
        " ".join(c["query"].split()) for c in example_cases()[:DEMO_QUERIES]]
    assert all(r["ranking"] for r in routes)
    assert {r["decided_by"] for r in routes} == {"decision"}  # the 294-tool catalogue: the shipped decision model


@pytest.mark.parametrize(
    "args, message",
    [
        (["route", "--index", "/nonexistent/idx", "q"], "index folder not found"),
        (["route", "--index", ".", "q"], "manifest.json is missing"),
    ],
)
def test_errors_are_one_line_messages(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_bad_tool_file_names_the_line(tmp_path):
    tools = tmp_path / "tools.jsonl"
    tools.write_text('{"name": "ok", "description": "fine"}\n{"name": "bad name", "description": "x"}\n')
    result = CliRunner().invoke(main, ["index", str(tools), "--out", str(tmp_path / "idx")])
    assert result.exit_code == 1 and "tools.jsonl:2" in result.output
    assert not (tmp_path / "idx").exists()
