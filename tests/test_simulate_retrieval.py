"""The data of use: toolsets from the production retriever, neutral weak-to-strong pairs, no-tool requests, and
the shortcut check that tells the old giveaways from the new data (``generate-data --candidates retrieval``)."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from gentool_router import Tool
from gentool_router.cli import main
from gentool_router_train.shortcuts import hints_only_auc, hints_only_pair_accuracy, names_only_accuracy, text_only_auc
from gentool_router_train.simulate import OUT_OF_SCOPE, SimulationConfig, add_neutral_version_hints, generate_dataset
from gentool_router_train.sources import load_no_tool_queries, query_key
from gentool_router_train.weak import NEUTRAL_SUFFIXES, is_weaker, neutral_pair_names


def _read(folder, split):
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def retrieved(tmp_path_factory, caching_embedder):
    """``generate-data --seed 7 --candidates retrieval --neutral-pairs --no-tool-queries --max-queries-per-tool 15``
    through the Python API it calls (the session's embedder: the tool texts are the ones test_simulate embedded).
    15 queries a tool instead of 50 keep over 2,000 weak-to-strong pairs for the shortcut check at a third of the
    queries to retrieve."""
    out = tmp_path_factory.mktemp("data") / "gentool-retrieval"
    config = SimulationConfig(seed=7, candidates="retrieval", neutral_pairs=True, no_tool_queries=True,
                              max_queries_per_tool=15)
    generate_dataset(out, config, embed=caching_embedder.embed_documents, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def source_router(caching_embedder):
    """The production router (retrieval only) over the whole source catalogue, as generate-data sees it."""
    from gentool_router import ToolRouter
    from gentool_router.selector import RetrievalSelector
    from gentool_router_train.sources import load_sources

    tools, _ = load_sources()
    return ToolRouter.from_tools(list(tools.values()), embedder=caching_embedder, selector=RetrievalSelector())


@pytest.mark.slow
def test_near_misses_show_what_the_router_retrieves_without_the_right_tool(retrieved, source_router):
    """Test cases (no held-out tool is hidden there): the shown tools are the router's own top 5 for the query with
    the target left out, near duplicates of the target aside."""
    cases = [c for c in _read(retrieved, "test") if c["case_type"] == "no-tool" and c["target"]][:40]
    assert len(cases) == 40
    agree = 0
    for case in cases:
        route = source_router.route(case["query"], exclude=[case["target"]])
        agree += {c.name for c in route.candidates} == {t["name"] for t in case["tools"]}
        assert case["ranking"][0] == "generate_response"
    assert agree >= 34, f"{agree}/40 toolsets are the router's candidates"


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_toolset_holds_its_answer_once_and_k_tools(retrieved, split):
    for case in _read(retrieved, split):
        names = [t["name"] for t in case["tools"]]
        assert len(names) == 5 == len(set(names)), case["id"]
        assert sorted(case["ranking"]) == sorted([*names, "generate_response"])
        if case["expected"] is None:
            assert case["ranking"][0] == "generate_response" and case["target"] not in names
        else:
            assert names.count(case["expected"]) == 1 and case["ranking"][0] == case["expected"]


@pytest.mark.slow
def test_no_tool_requests_are_cases_of_every_split_and_a_test_scenario(retrieved):
    requests = {query_key(q["query"]) for q in load_no_tool_queries()}
    by_split = {s: [c for c in _read(retrieved, s) if c["source"] == "no-tool-queries"] for s in ("train", "dev", "test")}
    assert len(by_split["test"]) == 60 and len(by_split["dev"]) == 30 and len(by_split["train"]) == 510
    for split, cases in by_split.items():
        for case in cases:
            assert query_key(case["query"]) in requests and case["expected"] is None
            assert case["scenario"] == (OUT_OF_SCOPE if split == "test" else None)
    train = {c["query"] for c in by_split["train"]}
    assert not train & {c["query"] for c in by_split["test"]}


@pytest.mark.slow
def test_neutral_pairs_are_weaker_by_construction_and_either_side_keeps_the_name(retrieved):
    pairs = [c for c in _read(retrieved, "train") if c["case_type"] == "weak-to-strong"]
    assert len(pairs) > 2000
    keeps = 0
    for case in pairs:
        tools = {t["name"]: Tool.from_dict(t) for t in case["tools"]}
        strong, weak = tools[case["expected"]], tools[case["weak_variant"]["name"]]
        assert is_weaker(weak, strong) and "name" not in case["weak_variant"]["criteria"]
        assert case["target"] in (strong.name, weak.name)
        keeps += strong.name == case["target"]
    assert 0.45 < keeps / len(pairs) < 0.55


@pytest.mark.slow
def test_neither_names_nor_version_hints_give_the_answer_away(retrieved):
    """The issue's shortcut check, on the generated data: chance is 0.5 for all three."""
    train = _read(retrieved, "train")
    accuracy, pairs = names_only_accuracy(train)
    hint_accuracy, hinted_pairs = hints_only_pair_accuracy(train)
    auc, tools = hints_only_auc(train)
    assert pairs > 2000 and hinted_pairs > 1000 and tools > 10000
    assert abs(accuracy - 0.5) < 0.04, accuracy
    assert abs(hint_accuracy - 0.5) < 0.04, hint_accuracy
    assert abs(auc - 0.5) < 0.04, auc
    card = (retrieved / "DATASET_CARD.md").read_text()
    assert "## Shortcut check" in card


def _pair_case(strong: str, weak: str) -> dict:
    return {"expected": strong, "case_type": "weak-to-strong", "weak_variant": {"name": weak, "criteria": []},
            "tools": [{"name": strong, "description": "d"}, {"name": weak, "description": "d"},
                      {"name": "other", "description": "d"}], "version_hints": "strong-supersedes-weak"}


def test_the_check_catches_the_old_giveaways():
    """The old rules (the weak side renamed `XInfo`/`X_alt`, the strong side always v2) are found at once, so a
    figure at chance on the new data means something."""
    rng = random.Random(0)
    old = []
    for number in range(200):
        name = f"get{rng.choice(['Weather', 'Stock', 'News', 'Flight'])}{number}"
        case = _pair_case(name, name + rng.choice(["Info", "_alt", "Basic"]))
        case["tools"][0].update(version="2", supersedes=case["tools"][1]["name"])
        case["tools"][1]["version"] = "1"
        old.append(case)
    assert names_only_accuracy(old)[0] > 0.9
    assert hints_only_pair_accuracy(old)[0] > 0.9


def _text_case(rng: random.Random, number: int, rich_answers: bool) -> dict:
    """Five tools of random words; the answer's description is longer and lists features when ``rich_answers``."""
    vocabulary = ["data", "report", "city", "user", "file", "price", "date", "order", "image", "account"]
    tools = []
    for slot in range(5):
        words = rng.sample(vocabulary, 4)
        if rich_answers and slot == 0:
            words += ["with", "prices,", "stops,", "durations", "and", "hourly", "forecasts"]
        tools.append({"name": f"tool{number}x{slot}", "description": " ".join(words)})
    answer = tools[0]["name"] if rich_answers else tools[rng.randrange(5)]["name"]
    rng.shuffle(tools)
    return {"expected": answer, "tools": tools}


def test_the_tool_text_check_finds_answers_that_look_like_answers():
    """Answers written richer than their distractors are found from the text alone (folds by tool name, so no
    tool is remembered); tools that are answers by chance stay at 0.5."""
    rng = random.Random(2)
    rich = [_text_case(rng, n, rich_answers=True) for n in range(300)]
    plain = [_text_case(rng, n, rich_answers=False) for n in range(300)]
    auc, tools = text_only_auc(rich)
    assert tools == 1500 and auc > 0.95
    assert abs(text_only_auc(plain)[0] - 0.5) < 0.08
    with pytest.raises(ValueError, match="too few"):
        text_only_auc(plain[:0])


def test_neutral_names_and_hints_do_not_favour_a_side():
    rng = random.Random(1)
    original, suffixes = 0, {True: [], False: []}
    for number in range(2000):
        strong, weak = neutral_pair_names(f"tool{number}", rng, set())
        original += strong == f"tool{number}"
        renamed, kept = (weak, True) if strong == f"tool{number}" else (strong, False)
        suffixes[kept].append(renamed[len(f"tool{number}"):])
        assert renamed[len(f"tool{number}"):] in NEUTRAL_SUFFIXES
    assert 0.46 < original / 2000 < 0.54
    newer_is_strong = 0
    for seed in range(400):
        case = _pair_case("a", "b")
        add_neutral_version_hints(case, random.Random(seed))
        newer_is_strong += case["version_hints"] == "strong-supersedes-weak"
    assert 0.42 < newer_is_strong / 400 < 0.58


def test_no_tool_queries_need_retrieved_candidates():
    with pytest.raises(ValueError, match="needs --candidates retrieval"):
        SimulationConfig(no_tool_queries=True)
    result = CliRunner().invoke(main, ["generate-data", "--out", "unused", "--no-tool-queries"])
    assert result.exit_code == 2 and "needs --candidates retrieval" in result.output
    with pytest.raises(ValueError, match="candidates must be one of"):
        SimulationConfig(candidates="nearest")


def test_the_suite_stays_out_of_every_measured_selectors_data():
    """Every measured recipe (gentool-v2, v4, v7, and v8, whose queries v9 to v11, the shipped one, train on): no suite
    query is one their data can use."""
    from gentool_router_train.real_sets import SUITE_SETS, build_set, trained_configs
    from gentool_router_train.simulate import training_exposure

    suite_queries = {query_key(c["query"]) for name in SUITE_SETS for c in build_set(name)}
    assert len(suite_queries) > 1500
    for config in trained_configs():
        assert not suite_queries & training_exposure(config).query_keys, config
    assert {query_key(q["query"]) for q in load_no_tool_queries()} <= training_exposure(trained_configs()[1]).query_keys


def test_the_written_requests_stay_out_of_the_suite_and_the_fitting_sets():
    """gentool-v8's written requests (train/data/written): their tools are no suite or fitting case's target (nor
    a bundled catalogue tool), and no suite or fitting query is one of them; every tool has requests both ways."""
    from gentool_router_train.own_catalogue import load_own_catalogue
    from gentool_router_train.real_sets import (
        ABLATION_SETS,
        FIT_SETS,
        SMALL_FIT_SETS,
        SUITE_SETS,
        WRITTEN_REQUESTS,
        WRITTEN_TOOLS,
        build_set,
        catalogue,
    )

    own = load_own_catalogue(WRITTEN_TOOLS, WRITTEN_REQUESTS)
    written = {query_key(q.query) for q in own.queries} | {query_key(q) for q, _ in own.no_tool}
    assert len(own.tools) > 400 and len(written) > 2000 and not own.tools_without_queries
    assert set(own.tools) <= set(own.near_miss_of.values())  # two near misses were written around every tool
    assert not set(own.tools) & {t.name for t in catalogue("examples")}
    for name in [*SUITE_SETS, *FIT_SETS, *SMALL_FIT_SETS, *ABLATION_SETS]:
        cases = build_set(name)
        assert not {query_key(c["query"]) for c in cases} & written, name
        assert not {t for c in cases for t in [c["expected"], *c["exclude"]] if t} & set(own.tools), name


@pytest.mark.slow
def test_same_source_candidates_keep_each_query_among_its_own_corpus(tmp_path, caching_embedder):
    """``--same-source-candidates``: a MetaTool query is shown MetaTool tools only, a Seal-Tools query Seal-Tools
    tools only (weak variants and renamed pair sides are copies of the query's own tool)."""
    from gentool_router_train.sources import load_sources, metatool_tool_names

    out = tmp_path / "same-source"
    config = SimulationConfig(seed=3, same_source_candidates=True, max_queries_per_tool=2, multi_call_queries=False)
    generate_dataset(out, config, embed=caching_embedder.embed_documents, log=lambda _: None)
    metatool, (tools, _) = metatool_tool_names(), load_sources()
    checked = {"metatool": 0, "seal-tools": 0}
    for split in ("train", "test"):
        for case in _read(out, split):
            corpus = "metatool" if case["source"] == "metatool" else "seal-tools"
            source_tools = [t["name"] for t in case["tools"] if t["name"] in tools and t["name"] != case["target"]]
            assert source_tools and all((n in metatool) == (corpus == "metatool") for n in source_tools), case["id"]
            checked[corpus] += 1
    assert checked["metatool"] > 100 and checked["seal-tools"] > 100
