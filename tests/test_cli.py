"""The command line, through click's runner and the real models."""

from __future__ import annotations

import json
import subprocess
import sys

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
    # --prune-margin none: every one of the k candidates is scored, and the setting is stored with the index
    result = runner.invoke(main, ["index", str(tools), "--out", str(tmp_path / "all"), "--quiet", "--prune-margin", "none",
                                  "--confirm-margin", "0.2"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "all" / "router.json").read_text())
    assert saved["prune_margin"] is None and saved["confirm_margin"] == 0.2
    result = runner.invoke(main, ["route", "--index", str(tmp_path / "all"), "--json", "--threads", "2", "email Bob"])
    assert result.exit_code == 0 and len(json.loads(result.output)["candidates"]) == 5


@pytest.mark.parametrize("option, margin, message", [
    *[("--prune-margin", m, "a cosine difference from 0 to 2, or 'none'") for m in ("-1", "3", "wide")],
    *[("--confirm-margin", m, "a probability margin from 0 to 1, or 'none'") for m in ("-0.1", "1.5", "close")],
])
def test_index_refuses_a_bad_margin(tmp_path, small_tools, option, margin, message):
    tools = tmp_path / "tools.jsonl"
    write_tools_jsonl(small_tools, tools)
    result = CliRunner().invoke(main, ["index", str(tools), "--out", str(tmp_path / "idx"), option, margin])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "idx").exists()


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


def _train_extra_args(command: str, tmp_path) -> list[str]:
    """Arguments that get each command past click's own checks, to the point where it needs the extra."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    cases, model = tmp_path / "cases.jsonl", tmp_path / "model.gguf"
    cases.write_text("")
    model.write_bytes(b"")
    return {
        "train": ["train", "--data", str(data), "--out", str(tmp_path / "run")],
        "export": ["export", str(tmp_path / "run"), "--out", str(tmp_path / "gguf")],
        "parity": ["parity", str(tmp_path / "run"), "--cases", str(cases), "--gguf", str(model)],
    }[command]


@pytest.mark.parametrize("command, module", [("train", "torch"), ("train", "transformers"), ("train", "peft"),
                                             ("train", "gguf"), ("export", "gguf"), ("parity", "torch"),
                                             ("parity", "transformers"), ("parity", "peft")])
def test_commands_without_the_train_extra_name_it(command, module, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError, as when not installed
    result = CliRunner().invoke(main, _train_extra_args(command, tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: {command} needs the 'train' extra ({module} missing): pip install 'gentool-router[train]'"]
    assert not (tmp_path / "run").exists() and not (tmp_path / "gguf").exists()


def test_train_extra_message_from_the_installed_command(tmp_path):
    """The real entry point, none of the extra importable: one line on stderr, exit status 1, no traceback."""
    code = ("import sys\n"
            "for name in ('torch', 'transformers', 'peft', 'gguf'):\n"
            "    sys.modules[name] = None\n"
            "from gentool_router.cli import main\n"
            "main(sys.argv[1:])\n")
    result = subprocess.run([sys.executable, "-c", code, *_train_extra_args("train", tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: train needs the 'train' extra (torch, transformers, peft, gguf missing): "
        "pip install 'gentool-router[train]'"]
