"""gentool-router eval through the real pipeline, and its error messages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gentool_router import CatalogError
from gentool_router.cli import main
from gentool_router.evaluation import load_cases, summarize

from conftest import SMALL_TOOLS

CASES = [
    {"id": "a", "query": "Will it rain in Oslo tomorrow?", "tools": [t.to_dict() for t in SMALL_TOOLS[:5]],
     "expected": "get_weather_forecast", "scenario": "s1", "case_type": "plain"},
    {"id": "b", "query": "Email Bob the minutes", "tools": [t.to_dict() for t in SMALL_TOOLS[:5]],
     "expected": "send_email", "scenario": "s2"},
    {"id": "c", "query": "Write me a limerick", "tools": [t.to_dict() for t in SMALL_TOOLS[1:6]],
     "expected": None, "scenario": "s2"},
    {"id": "d", "query": "price of NVDA stock", "expected": "get_stock_price"},
]


@pytest.fixture()
def case_file(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    return path


@pytest.mark.slow
def test_every_method_through_the_real_pipeline(tmp_path, case_file, small_tools):
    from gentool_router import ToolRouter

    ToolRouter.from_tools(small_tools).save(tmp_path / "idx")
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", str(case_file), "--index", str(tmp_path / "idx"), "--method", "gentool",
                                       "--method", "retrieval", "--method", "base", "--threads", "2",
                                       "--json", str(out), "--plot", str(tmp_path / "plot.png")])
    assert result.exit_code == 0, result.output
    assert "| gentool |" in result.output and "| retrieval |" in result.output and "| base |" in result.output
    report = json.loads(out.read_text())
    assert set(report["summaries"]) == {"gentool", "retrieval", "base"}
    retrieval = report["summaries"]["retrieval"]
    # retrieval never abstains: it gets the three tool cases and misses the no-tool one
    assert retrieval["accuracy"] == 0.75 and retrieval["abstention"]["recall"] == 0.0
    assert retrieval["recall_at_k"] == 1.0
    assert set(retrieval["accuracy_by_scenario"]) == {"s1", "s2"}
    assert retrieval["accuracy_by_case_type"] == {"plain": 1.0}
    assert [r["id"] for r in report["cases"]["base"]] == ["a", "b", "c", "d"]
    assert all(r["ranking"] for r in report["cases"]["base"])
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_figures():
    records = [
        {"expected": "x", "predicted": "x", "correct": True, "in_candidates": True, "scenario": "a",
         "timings": {"embed": 0.01, "search": 0.001, "select": 0.5}},
        {"expected": None, "predicted": None, "correct": True, "in_candidates": True, "scenario": "a",
         "timings": {"embed": 0.01, "search": 0.001, "select": 0.5}},
        {"expected": None, "predicted": "y", "correct": False, "in_candidates": True, "scenario": "b",
         "timings": {"embed": 0.01, "search": 0.001, "select": 0.5}},
        {"expected": "x", "predicted": None, "correct": False, "in_candidates": False, "scenario": "b",
         "timings": {"embed": 0.01, "search": 0.001, "select": 0.5}},
    ]
    s = summarize(records)
    assert s["accuracy"] == 0.5 and s["accuracy_by_scenario"] == {"a": 1.0, "b": 0.0}
    assert s["abstention"] == {"cases": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert s["recall_at_k"] == 0.5 and s["accuracy_with_tool"] == 0.5


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "must be a JSON object"),
        ('{"id": "x", "expected": null}', "'query' must be a non-empty string"),
        ('{"id": "x", "query": "q"}', "'expected' must be a tool name or null"),
        ('{"id": "x", "query": "q", "expected": 3}', "'expected' must be a tool name or null"),
        ('{"id": "x", "query": "q", "expected": "t", "tools": []}', "non-empty list"),
        ('{"id": "x", "query": "q", "expected": "t", "tools": [{"name": "u", "description": "d"}]}', "not among"),
        ('{"id": "x", "query": "q", "expected": null, "tools": [{"name": "bad name", "description": "d"}]}', "invalid"),
    ],
)
def test_malformed_case_files_name_the_line(tmp_path, line, message):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "ok", "query": "q", "expected": null}\n' + line + "\n")
    with pytest.raises(CatalogError, match=rf"cases.jsonl:2: .*{message}"):
        load_cases(path)
    result = CliRunner().invoke(main, ["eval", str(path), "--method", "retrieval"])
    assert result.exit_code == 1 and "cases.jsonl:2" in result.output and "Traceback" not in result.output


def test_cases_without_tools_need_an_index(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(CASES[3]) + "\n")
    result = CliRunner().invoke(main, ["eval", str(path), "--method", "retrieval"])
    assert result.exit_code == 1 and "--index" in result.output


def test_a_missing_compare_adapter_fails_before_any_method_runs(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({**CASES[0], "id": "only"}) + "\n")
    result = CliRunner().invoke(main, ["eval", str(path), "--method", "retrieval", "--compare",
                                       f"new={tmp_path / 'missing.gguf'}", "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 1 and "missing.gguf" in result.output and "Traceback" not in result.output
    assert "retrieval" not in result.output and not (tmp_path / "out.json").exists()


SHARED = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not SHARED.is_dir(), reason="the public corpora (../shared/data) are not beside the checkout")
@pytest.mark.parametrize("kind, folder", [("seal-tools", "seal-tools"), ("metatool-reliability", "metatool"),
                                          ("metatool-single", "metatool")])
def test_public_corpora_convert_to_valid_case_files(tmp_path, kind, folder):
    out = tmp_path / "cases.jsonl"
    result = CliRunner().invoke(main, ["convert-cases", kind, "--source", str(SHARED / folder), "--out", str(out),
                                       "--limit", "30"])
    assert result.exit_code == 0, result.output
    cases = load_cases(out)
    assert len(cases) == 30
    if kind == "metatool-reliability":
        assert all(c.expected is None and len(c.tools) == 10 for c in cases)
    if kind == "seal-tools":
        assert all(c.tools is None and c.expected for c in cases)
        assert sum(1 for _ in out.with_suffix(".tools.jsonl").open()) == 4076
