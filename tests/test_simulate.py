"""Invariants of the GenTool data simulation, on the full generated data set."""

from __future__ import annotations

import filecmp
import json
import random

import pytest
from click.testing import CliRunner

from gentool_router import Tool
from gentool_router.cli import main
from gentool_router_train.simulate import CASE_TYPES, SCENARIOS, generate_dataset
from gentool_router_train.simulation_config import SimulationConfig
from gentool_router_train.sources import (
    example_eval_queries,
    load_multi_call_queries,
    load_sources,
    public_eval_queries,
)
from gentool_router_train.weak import is_weaker, make_weak_variant


def _read(folder, split):
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def generated(tmp_path_factory, caching_embedder):
    """The default data set (seed 7) through the Python API that ``generate-data`` calls, with what it prints."""
    out = tmp_path_factory.mktemp("data") / "gentool"
    printed: list[str] = []
    generate_dataset(out, SimulationConfig(seed=7), embed=caching_embedder.embed_documents, log=printed.append)
    return out, "\n".join(printed)


@pytest.mark.slow
def test_counts_are_printed_and_scale_reaches_the_paper(generated):
    out, output = generated
    stats = json.loads((out / "stats.json").read_text())
    for word in ("train:", "dev:", "test:", *SCENARIOS, *CASE_TYPES):
        assert word in output
    assert stats["distinct_queries"] >= 8500
    assert stats["tools_with_queries"] >= 350 and stats["tools_in_toolsets"] >= 800
    assert set(stats["splits"]["test"]["scenarios"]) == set(SCENARIOS)
    assert set(stats["splits"]["train"]["case_types"]) == set(CASE_TYPES)
    assert "## Definitions" in (out / "DATASET_CARD.md").read_text()


@pytest.mark.slow
def test_held_out_tools_and_queries_never_reach_training(generated):
    out, _ = generated
    stats = json.loads((out / "stats.json").read_text())
    heldout = set(stats["heldout_tools"])
    train = _read(out, "train") + _read(out, "dev")
    test = _read(out, "test")
    train_tool_names = {t["name"] for case in train for t in case["tools"]}
    train_rankings = {name for case in train for name in case["ranking"]}
    assert not heldout & train_tool_names
    assert not heldout & train_rankings
    assert all(case["expected"] not in heldout for case in train)
    weak_of_heldout = {c["weak_variant"]["name"] for c in test if "weak_variant" in c and c["target"] in heldout}
    assert weak_of_heldout and not weak_of_heldout & train_tool_names
    train_queries = {c["query"] for c in _read(out, "train")}
    dev_queries = {c["query"] for c in _read(out, "dev")}
    for case in test:
        seen = case["query"] in train_queries
        assert seen == case["scenario"].startswith("seen_query"), case["id"]
        assert (case["target"] in heldout) == case["scenario"].endswith("unseen_tool"), case["id"]
        assert case["query"] not in dev_queries
    assert not dev_queries & train_queries


@pytest.mark.slow
def test_public_and_example_queries_are_left_out_of_every_split(generated):
    out, _ = generated
    public = public_eval_queries()
    assert len(public) > 1400
    examples = example_eval_queries()
    assert len(examples) >= 200  # the bundled example queries (gentool_router/data/example_queries.jsonl)
    public |= examples
    for split in ("train", "dev", "test"):
        assert not [c["id"] for c in _read(out, split) if " ".join(c["query"].split()).lower() in public]


@pytest.mark.slow
def test_multi_call_queries_train_only_and_never_show_their_other_tools(generated):
    out, _ = generated
    others = {q.query_id: set(q.others) for q in load_multi_call_queries(load_sources()[0])}
    multi = [c for c in _read(out, "train") if c["source"] == "seal-tools-multi"]
    assert len(multi) > 3000
    for case in multi:
        shown = {t["name"] for t in case["tools"]}
        assert not shown & others[case["query_id"]], case["id"]
    assert not [c for split in ("dev", "test") for c in _read(out, split) if c["source"] == "seal-tools-multi"]


def test_multi_call_queries_name_one_target_and_its_siblings():
    queries = load_multi_call_queries(load_sources()[0])
    assert len(queries) > 4000
    for q in queries:
        assert q.others and q.tool not in q.others and q.source == "seal-tools-multi"
    assert len({q.query_id for q in queries}) == len(queries)


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_toolset_holds_its_target_once_or_not_at_all(generated, split):
    out, _ = generated
    for case in _read(out, split):
        names = [t["name"] for t in case["tools"]]
        assert len(names) == 5 == len(set(names))
        Tool.from_dict(case["tools"][0])  # shown tools are valid tools
        if case["case_type"] == "no-tool":
            assert case["expected"] is None and case["target"] not in names
            assert case["ranking"][0] == "generate_response"
        else:
            assert names.count(case["target"]) == 1 and case["expected"] == case["target"]
            assert case["ranking"][0] == case["target"]
        assert sorted(case["ranking"]) == sorted([*names, "generate_response"])


@pytest.mark.slow
def test_weak_variants_are_weaker_by_construction(generated):
    out, _ = generated
    cases = [c for split in ("train", "test") for c in _read(out, split) if c["case_type"] == "weak-to-strong"]
    assert cases
    for case in cases:
        tools = {t["name"]: Tool.from_dict(t) for t in case["tools"]}
        weak = tools[case["weak_variant"]["name"]]
        assert is_weaker(weak, tools[case["target"]]), case["id"]
        assert case["ranking"][:2] == [case["target"], weak.name]


@pytest.mark.slow
def test_zero_to_one_pairs_share_the_query(generated):
    out, _ = generated
    train = _read(out, "train")
    no_tool = {c["query"] for c in train if c["case_type"] == "no-tool"}
    added = [c for c in train if c["case_type"] == "tool-added"]
    assert added and all(c["query"] in no_tool for c in added)


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files(caching_embedder, tmp_path):
    """Two runs of one seed (at a smaller scale: the property does not depend on it) write the same bytes."""
    config = SimulationConfig(seed=3, max_queries_per_tool=4, seen_query_test_cases=40)
    for out in (tmp_path / "first", tmp_path / "again"):
        generate_dataset(out, config, embed=caching_embedder.embed_documents, log=lambda _: None)
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "stats.json", "DATASET_CARD.md"):
        assert filecmp.cmp(tmp_path / "first" / name, tmp_path / "again" / name, shallow=False), name


def test_weak_variant_rules_on_a_tool_with_everything():
    strong = Tool("getWaterQualityReport", "Get the water quality report of a lake or river with pollutant levels",
                  {"type": "object", "properties": {"location": {}, "date": {}, "pollutants": {}},
                   "required": ["location", "date"]},
                  returns={"ph": {}, "oxygen": {}, "nitrates": {}})
    for seed in range(200):
        weak, criteria = make_weak_variant(strong, random.Random(seed), {strong.name}, ["date"])
        assert is_weaker(weak, strong) and criteria
        if "parameters" in criteria:
            assert "date" not in weak.parameter_names()  # the argument the query needs is gone


def test_weak_variant_of_a_bare_tool_still_weaker():
    strong = Tool("ABCmouse", "Provides fun and educational learning activities for children 2-8 years old.")
    weak, criteria = make_weak_variant(strong, random.Random(1), {strong.name}, [])
    assert is_weaker(weak, strong) and "description" in criteria


def _case(expected, weak=None):
    names = ["getForecast", "getTides", "getAirQuality"] + ([weak] if weak else [])
    record = {"id": "x", "tools": [{"name": n, "description": f"{n} tool."} for n in names], "expected": expected}
    if weak:
        record["weak_variant"] = {"name": weak}
    return record


def test_version_hints_make_the_strong_tool_supersede_its_weak_variant():
    from gentool_router.tool_text import render_tool
    from gentool_router_train.simulate import add_version_hints

    record = _case("getForecast", weak="getForecastInfo")
    add_version_hints(record, random.Random(0))
    tools = {t["name"]: Tool.from_dict(t) for t in record["tools"]}
    assert record["version_hints"] == "strong-supersedes-weak"
    assert render_tool(tools["getForecast"]).startswith("getForecast() [v2 replaces getForecastInfo]")
    assert tools["getForecastInfo"].version == "1"


def test_version_hints_elsewhere_never_point_at_a_wrong_answer():
    from gentool_router_train.simulate import add_version_hints

    kinds = set()
    for seed in range(40):
        for expected in ("getForecast", None):
            record = _case(expected)
            add_version_hints(record, random.Random(seed))
            kinds.add(record["version_hints"])
            tools = {t["name"]: Tool.from_dict(t) for t in record["tools"]}
            assert not any(t.supersedes for t in tools.values())
            if record["version_hints"] == "lone-target-deprecated":
                assert tools[expected].deprecated  # still the answer: nothing replaces it here
            else:
                (hinted,) = [n for n, t in tools.items() if t.version]
                assert hinted != expected
    assert kinds == {"lone-target-deprecated", "distractor-v2"}


def test_generate_data_has_the_simulation_flags():
    result = CliRunner().invoke(main, ["generate-data", "--help"])
    for flag in ("--version-hint-share", "--multi-call-queries / --no-multi-call-queries",
                 "--exclude-public-queries / --no-exclude-public-queries",
                 "--exclude-example-queries / --no-exclude-example-queries", "--candidates [neighbours|retrieval]",
                 "--neutral-pairs / --no-neutral-pairs", "--no-tool-queries / --no-no-tool-queries"):
        assert flag in result.output
