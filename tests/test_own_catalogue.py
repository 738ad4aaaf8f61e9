"""Fine-tuning on a user's own catalogue: reading their files, the cases built around their tools, the worked
example's held-out split, and the whole path (generate-data → train → eval → route) through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gentool_router.cli import main
from gentool_router.errors import CatalogError
from gentool_router.tools import NO_TOOL
from gentool_router_train.own_catalogue import SOURCE, load_own_catalogue
from gentool_router_train.simulate import NEAR_MISS
from gentool_router_train.sources import load_no_tool_queries, query_key

from conftest import SMALL_TOOLS, benchmark_script

ROOT = Path(__file__).resolve().parents[1]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def catalogue(tmp_path: Path) -> Path:
    return _write_jsonl(tmp_path / "tools.jsonl", [t.to_dict() for t in SMALL_TOOLS])


def test_every_bad_query_line_is_reported_at_once(tmp_path, catalogue):
    queries = _write_jsonl(tmp_path / "q.jsonl", [
        {"query": "Will it rain in Oslo?", "tool": "get_weather_forecast"},
        "{not json",
        {"query": "   ", "tool": "get_weather_forecast"},
        {"query": "Say hi to Bob", "tool": "no_such_tool"},
        {"query": "What is 2 + 2?"},
        ["a", "list"],
        {"query": "Will it snow?", "tool": "get_weather_forecast", "about": "get_weather_forecast"},
        {"query": "Delete last week's forecast", "tool": None, "about": "no_such_forecast"},
    ])
    with pytest.raises(CatalogError) as caught:
        load_own_catalogue(catalogue, queries)
    message = str(caught.value)
    assert message.startswith("7 bad query lines: ")
    for line in (2, 3, 4, 5, 6, 7, 8):
        assert f"q.jsonl:{line}:" in message
    assert "no_such_tool" in message and "q.jsonl:1:" not in message
    assert "only with \"tool\": null" in message and "'no_such_forecast' is not a tool" in message


def test_labels_of_one_text_hide_each_other_and_null_is_a_no_tool_request(tmp_path, catalogue):
    weather, email = SMALL_TOOLS[0].name, SMALL_TOOLS[1].name
    queries = _write_jsonl(tmp_path / "q.jsonl", [
        {"query": "Check the forecast and mail it to Ann", "tool": weather},
        {"query": "Check the  forecast and mail it to Ann", "tool": email},
        {"query": "Check the forecast and mail it to Ann", "tool": weather},  # a repeat: kept once
        {"query": "Thanks, that is all", "tool": None},
        {"query": "Unsend the mail I wrote Ann", "tool": None, "about": email},
    ])
    own = load_own_catalogue(catalogue, queries)
    assert [(q.tool, q.others, q.source) for q in own.queries] == [(weather, (email,), SOURCE),
                                                                    (email, (weather,), SOURCE)]
    assert [q for q, _ in own.no_tool] == ["Thanks, that is all", "Unsend the mail I wrote Ann"]
    assert own.near_miss_of == {f"{SOURCE}:5": email}
    assert set(own.tools_without_queries) == {t.name for t in SMALL_TOOLS} - {weather, email}


def test_dev_split_keeps_each_text_on_one_side(tmp_path, catalogue):
    names = [t.name for t in SMALL_TOOLS]
    rows = [{"query": f"request number {i}", "tool": names[i % len(names)]} for i in range(40)]
    rows += [{"query": "request number 3", "tool": names[0]}]
    own = load_own_catalogue(catalogue, _write_jsonl(tmp_path / "q.jsonl", rows))
    train, dev = own.split_dev(seed=0)
    assert len(dev) >= 4 and len(train) + len(dev) == len(own.queries)
    assert not {query_key(q.query) for q in train} & {query_key(q.query) for q in dev}


def test_bad_files_stop_generate_data_before_any_work(tmp_path, catalogue):
    out = tmp_path / "data"
    bad = _write_jsonl(tmp_path / "q.jsonl", [{"query": "hello", "tool": "missing_tool"}])
    result = CliRunner().invoke(main, ["generate-data", "--out", str(out), "--tools", str(catalogue),
                                       "--queries", str(bad)])
    assert result.exit_code == 1 and "missing_tool" in result.output and "Traceback" not in result.output
    assert not out.exists()
    result = CliRunner().invoke(main, ["generate-data", "--out", str(out), "--queries", str(bad)])
    assert result.exit_code == 2 and "--queries needs --tools" in result.output


def _worked_example():
    return benchmark_script("own_catalogue")


def test_the_worked_example_holds_out_queries_tools_and_requests_from_training():
    tools, queries, heldout = _worked_example().build()
    names = {t["name"] for t in tools}
    trained = {query_key(q["query"]) for q in queries}
    assert len(tools) == 70 and all(q["tool"] in names for q in queries)
    assert not trained & {query_key(c["query"]) for c in heldout}
    without = {c["expected"] for c in heldout if c["scenario"] == "tool_no_queries"}
    assert len(without) == 6 and not without & {q["tool"] for q in queries}
    chat = {query_key(c["query"]) for c in heldout if c["scenario"] == "out_of_scope"}
    assert len(chat) == 100 and not chat & {query_key(r["query"]) for r in load_no_tool_queries()}
    assert {c["scenario"] for c in heldout} == {"tool_trained", "tool_no_queries", "out_of_scope"}


@pytest.mark.slow
def test_the_whole_path_on_a_tiny_catalogue_through_the_cli(tmp_path, catalogue):
    """generate-data --tools/--queries, a few real training steps, eval against the shipped selector, route."""
    pytest.importorskip("torch")
    names = [t.name for t in SMALL_TOOLS]
    rows = [{"query": f"{verb} please, case {i}", "tool": names[i % len(names)]}
            for i, verb in enumerate(["Forecast for Bergen", "Email my landlord", "Book a slot on Monday",
                                      "Price of ACME shares", "Say this in Spanish", "A soup recipe"] * 3)]
    rows.append({"query": "Good morning!", "tool": None})
    rows.append({"query": "Delete the email I sent my landlord yesterday", "tool": None, "about": names[1]})
    queries = _write_jsonl(tmp_path / "q.jsonl", rows)
    data, run = tmp_path / "data", tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["generate-data", "--out", str(data), "--tools", str(catalogue), "--queries",
                                  str(queries), "--max-queries-per-tool", "2", "--seen-query-test-cases", "10",
                                  "--near-miss-cases"])
    assert result.exit_code == 0, result.output
    assert "your catalogue: 6 tools, 18 labelled queries, 2 of yours" in result.output
    own_cases = [json.loads(line) for split in ("train", "dev")
                 for line in (data / f"{split}.jsonl").read_text().splitlines()
                 if json.loads(line)["source"] == SOURCE]
    catalogue_names = set(names)
    assert {c["case_type"] for c in own_cases} >= {"plain", "no-tool", "tool-added", "weak-to-strong", NEAR_MISS}
    near_misses = [c for c in own_cases if c["case_type"] == NEAR_MISS]  # shown beside the tool they come close to
    assert [(c["near_miss_of"], c["expected"], c["ranking"][:2]) for c in near_misses] == [
        (names[1], None, [NO_TOOL, names[1]])]
    assert names[1] in {t["name"] for t in near_misses[0]["tools"]}
    for case in own_cases:  # the user's cases are over the user's catalogue (and weak copies of its tools)
        shown = {t["name"] for t in case["tools"]}
        weak = case.get("weak_variant", {}).get("name")
        assert shown - {weak} <= catalogue_names
        assert (case["expected"] in shown) if case["expected"] else case["target"] not in shown
    stats = json.loads((data / "stats.json").read_text())
    assert stats["own_catalogue"]["labelled_queries"] == 18 and stats["own_catalogue"]["cases"]["train"] > 0
    # train scores the whole dev split after each stage: 12 cases keep this test short (50 cost ~25 s)
    dev = (data / "dev.jsonl").read_text().splitlines(keepends=True)
    (data / "dev.jsonl").write_text("".join(dev[:12]))

    result = runner.invoke(main, ["train", "--data", str(data), "--out", str(run), "--ranking-examples", "4",
                                  "--selection-examples", "4", "--dev-examples", "4", "--eval-every", "0",
                                  "--threads", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    adapter = run / "gentool-lora.gguf"
    assert adapter.is_file()

    index = tmp_path / "index"
    assert runner.invoke(main, ["index", str(catalogue), "--out", str(index), "--quiet"]).exit_code == 0
    cases = _write_jsonl(tmp_path / "heldout.jsonl", [
        {"id": "a", "query": "Is it going to snow in Tromsø tomorrow?", "expected": names[0]},
        {"id": "b", "query": "Tell me a joke", "expected": None}])
    report = tmp_path / "eval.json"
    result = runner.invoke(main, ["eval", str(cases), "--index", str(index), "--compare", f"own={adapter}",
                                  "--method", "gentool", "--method", "retrieval", "--threads", "2",
                                  "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert set(json.loads(report.read_text())["summaries"]) == {"gentool", "own", "retrieval"}
    result = runner.invoke(main, ["route", "--index", str(index), "--adapter", str(adapter), "--threads", "2",
                                  "--json", "Will it rain in Paris?"])
    assert result.exit_code == 0, result.output
    routed = json.loads(result.output.strip().splitlines()[-1])
    assert routed["tool"] in catalogue_names | {None}  # a catalogue tool, or none (null)


def test_a_compare_decision_must_name_a_compared_adapter(tmp_path):
    cases = _write_jsonl(tmp_path / "cases.jsonl", [{"id": "a", "query": "hi", "expected": None,
                                                      "tools": [SMALL_TOOLS[0].to_dict()]}])
    result = CliRunner().invoke(main, ["eval", str(cases), "--compare", f"mine={tmp_path / 'a.gguf'}",
                                       "--compare-decision", f"other={tmp_path / 'd.json'}"])
    assert result.exit_code == 2 and "a NAME given to --compare" in result.output
    result = CliRunner().invoke(main, ["eval", str(cases), "--compare", f"mine={tmp_path / 'a.gguf'}",
                                       "--compare-decision", f"mine={tmp_path / 'missing.json'}"])
    assert result.exit_code == 1 and "missing.json" in result.output and "Traceback" not in result.output
