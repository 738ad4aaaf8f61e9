"""The tool-or-none decision over all the evidence: features, fitting, calibration, files, identity, and the
router, `route --explain` and `calibrate` through the real components."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from gentool_router.decision import (
    TEMPERATURE_BOUNDS,
    DecisionMismatchError,
    DecisionModel,
    LabelledEvidence,
    default_decision,
    expected_calibration_error,
)
from gentool_router.errors import ConfigError, ModelLoadError
from gentool_router.evidence import (
    CANDIDATE_FEATURES,
    NONE_FEATURES,
    CandidateEvidence,
    RouteEvidence,
    candidate_features,
    none_features,
)

from conftest import SMALL_TOOLS, benchmark_script


def _evidence(rng: random.Random, kind: str, k: int = 5) -> tuple[RouteEvidence, str | None]:
    """Synthetic evidence with the structure of real routes: the right tool has a higher cosine and selector gap
    (not always first); no-tool queries have low cosines and negative gaps everywhere."""
    right = rng.randrange(k) if kind == "tool" else -1
    candidates = []
    for rank in range(k):
        hit = rank == right
        cosine = (0.55 if kind == "tool" else 0.25) - 0.03 * rank + (0.08 if hit else 0.0) + rng.gauss(0, 0.04)
        gap = (4.0 if hit else -3.0 if kind != "tool" else -1.0) + rng.gauss(0, 2.0)
        candidates.append(CandidateEvidence(f"t{rank}", rank, cosine, 3.0 * hit + rng.random(), gap))
    candidates.sort(key=lambda c: -c.cosine)
    candidates = [CandidateEvidence(c.name, i, c.cosine, c.lexical, c.selector_gap) for i, c in enumerate(candidates)]
    evidence = RouteEvidence(tuple(candidates), 0.2, 0.08, max(c.lexical for c in candidates),
                             max(candidates, key=lambda c: c.lexical).name, rng.randint(2, 20))
    return evidence, (f"t{right}" if kind == "tool" else None)


def _examples(n: int, seed: int = 0) -> list[LabelledEvidence]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = ("tool", "near_miss", "out_of_scope")[i % 3]
        evidence, expected = _evidence(rng, kind)
        out.append(LabelledEvidence(evidence, expected, kind))
    return out


# ------------------------------------------------------------------------------------------ features and model
def test_features_have_one_value_per_name():
    evidence, _ = _evidence(random.Random(1), "tool")
    rows = candidate_features(evidence)
    assert len(rows) == 5 and all(len(r) == len(CANDIDATE_FEATURES) for r in rows)
    assert len(none_features(evidence)) == len(NONE_FEATURES)
    assert sum(r[CANDIDATE_FEATURES.index("retrieval_top")] for r in rows) == 1
    assert max(r[CANDIDATE_FEATURES.index("cosine_gap")] for r in rows) == 0.0


def test_evidence_round_trips_through_json():
    evidence, _ = _evidence(random.Random(2), "near_miss")
    assert RouteEvidence.from_dict(json.loads(json.dumps(evidence.to_dict()))) == evidence


def test_fit_learns_the_decision_and_its_probabilities_are_calibrated():
    model = DecisionModel.fit(_examples(900), identity={"selector_adapter": "x"})
    held_out = _examples(900, seed=7)
    correct = [model.decide(e.evidence) == e.expected for e in held_out]
    assert sum(correct) / len(correct) > 0.85
    # calibration: among routes where the chosen option has probability in a bin, that share is right
    pairs = []
    for e in held_out:
        p = model.probabilities(e.evidence)
        best = int(np.argmax(p))
        chosen = None if best == len(e.evidence.candidates) else e.evidence.candidates[best].name
        pairs.append((p[best], chosen == e.expected))
    confidence = sum(p for p, _ in pairs) / len(pairs)
    accuracy = sum(ok for _, ok in pairs) / len(pairs)
    assert abs(confidence - accuracy) < 0.05
    assert model.report["risk_coverage"] and 0 <= model.report["fit_accuracy"] <= 1


def test_probabilities_sum_to_one_and_rank_the_strong_candidate_first():
    model = DecisionModel.fit(_examples(300))
    evidence, expected = _evidence(random.Random(3), "tool")
    p = model.probabilities(evidence)
    assert len(p) == 6 and abs(sum(p) - 1) < 1e-9
    explanation = model.explain(evidence)
    assert [o["name"] for o in explanation["options"]][0] in {expected, "generate_response"}
    contributions = {o["name"]: set(o["contributions"]) for o in explanation["options"]}
    assert contributions["generate_response"] == {*NONE_FEATURES, "operating_point"}
    assert all(c == set(CANDIDATE_FEATURES) for n, c in contributions.items() if n != "generate_response")


def _negative_log_likelihood(model: DecisionModel, examples: list[LabelledEvidence]) -> float:
    total = 0.0
    for e in examples:
        names = [*e.evidence.names, None]
        total -= math.log(model.probabilities(e.evidence)[names.index(e.expected)])
    return total / len(examples)


def _calibration_error(model: DecisionModel, examples: list[LabelledEvidence]) -> float:
    pairs = []
    for e in examples:
        p = model.probabilities(e.evidence)
        best = int(np.argmax(p))
        chosen = None if best == len(e.evidence.candidates) else e.evidence.candidates[best].name
        pairs.append((p[best], chosen == e.expected))
    return expected_calibration_error(pairs)


def test_the_penalty_shrinks_every_weight_but_the_no_tool_bias():
    # shrunk to nothing, the evidence says nothing and every candidate is alike: the unpenalised bias alone must
    # still say how often no tool is right (2 routes in 3 here, over 5 candidates: e^b / (5 + e^b) = 2/3, b = ln 10)
    model = DecisionModel.fit(_examples(900), l2=1e7, choose_operating_point=False)
    assert np.abs(model.candidate_weights).max() < 1e-2 and np.abs(model.none_weights[1:]).max() < 1e-2
    assert model.none_weights[0] == pytest.approx(math.log(10), abs=0.02)


def test_the_temperature_recalibrates_without_changing_a_decision(tmp_path):
    # a strong penalty shrinks the weights: probabilities far too timid; the fitted temperature sharpens them back
    model = DecisionModel.fit(_examples(900), l2=3000.0)
    held_out = _examples(900, seed=7)
    assert 0 < model.temperature < 1
    calibration = model.report["calibration"]
    assert calibration["temperature"] == model.temperature and calibration["fit_ece"] < calibration["fit_ece_at_1"]
    untempered = DecisionModel.from_json({**model.to_json(), "temperature": 1.0})
    assert [model.decide(e.evidence) for e in held_out] == [untempered.decide(e.evidence) for e in held_out]
    assert _negative_log_likelihood(model, held_out) < _negative_log_likelihood(untempered, held_out)
    assert _calibration_error(model, held_out) < _calibration_error(untempered, held_out)
    # routes a fit separates perfectly cannot make it certain: the temperature stays within its bounds
    assert DecisionModel.fit(_examples(900)).temperature >= TEMPERATURE_BOUNDS[0]
    assert model.explain(held_out[0].evidence)["temperature"] == model.temperature
    loaded = DecisionModel.load(model.save(tmp_path / "decision.json"))
    assert loaded.temperature == model.temperature
    assert loaded.probabilities(held_out[0].evidence) == pytest.approx(model.probabilities(held_out[0].evidence))
    old = model.to_json()
    del old["temperature"]  # a file written before temperatures: probabilities as they were
    assert DecisionModel.from_json(old).temperature == 1.0


@pytest.mark.parametrize("temperature", [0, -1.0, float("inf"), "warm"])
def test_a_bad_temperature_is_one_clear_error(tmp_path, temperature):
    data = DecisionModel.fit(_examples(60)).to_json()
    data["temperature"] = temperature
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="corrupt"):
        DecisionModel.load(tmp_path / "bad.json")


def test_fit_refuses_too_few_usable_examples():
    with pytest.raises(ConfigError, match="at least 10"):
        DecisionModel.fit(_examples(5))


def test_save_load_round_trip_and_identity_check(tmp_path):
    model = DecisionModel.fit(_examples(300), identity={"selector_adapter": "abc", "embedder": "mini"})
    path = model.save(tmp_path / "decision.json")
    loaded = DecisionModel.load(path)
    evidence, _ = _evidence(random.Random(4), "tool")
    assert loaded.probabilities(evidence) == pytest.approx(model.probabilities(evidence))
    loaded.check_matches({"selector_adapter": "abc", "embedder": "mini"})
    with pytest.raises(DecisionMismatchError, match="calibrate"):
        loaded.check_matches({"selector_adapter": "another", "embedder": "mini"})


@pytest.mark.parametrize("damage", ["not json", "{}", "corrupt weights", "old version"])
def test_a_bad_decision_file_is_one_clear_error(tmp_path, damage):
    path = tmp_path / "decision.json"
    data = DecisionModel.fit(_examples(60)).to_json()
    if damage == "not json":
        path.write_text("{oops")
    elif damage == "{}":
        path.write_text("{}")
    elif damage == "corrupt weights":
        data["candidate_weights"] = [1.0]
        path.write_text(json.dumps(data))
    else:
        data["version"] = 0
        path.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError):
        DecisionModel.load(path)


# ------------------------------------------------------------------------------------------ small catalogues
def _small_examples(n: int, seed: int = 0) -> list[LabelledEvidence]:
    """Ten-tool routes: the right tool's gap is high; near misses have middling gaps; chit-chat has middling gaps
    too, but the query classifier says it asks for no tool (only ``needs_tool`` separates it from a tool case)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = ("tool", "near_miss", "out_of_scope")[i % 3]
        evidence, expected = _evidence(rng, kind)
        gaps = [(3.0 if c.name == expected else -1.0) + rng.gauss(0, 1.0) for c in evidence.candidates]
        if kind == "out_of_scope":
            gaps = [g + 2.5 for g in gaps]
        candidates = tuple(CandidateEvidence(c.name, c.rank, c.cosine, c.lexical, g)
                           for c, g in zip(evidence.candidates, gaps))
        needs_tool = (-3.0 if kind == "out_of_scope" else 2.0) + rng.gauss(0, 1.0)
        out.append(LabelledEvidence(RouteEvidence(candidates, 0.2, 0.08, evidence.lexical_best,
                                                  evidence.lexical_best_name, evidence.query_words,
                                                  needs_tool=needs_tool, similarity_count=10), expected, kind))
    return out


def test_the_small_catalogue_part_decides_small_catalogues_only_and_uses_the_query_classifier():
    model = DecisionModel.fit(_examples(300))
    model.min_catalogue_tools = 50
    small = _small_examples(600)
    assert not model.applies_to(small[0].evidence)  # without a small part, the selector's threshold decides there
    model.fit_small(small)
    assert model.applies_to(small[0].evidence)
    assert model.small_temperature > 0 and model.report["small_catalogue"]["calibration"]["fit_ece"] <= \
        model.report["small_catalogue"]["calibration"]["fit_ece_at_1"] + 1e-9
    held_out = _small_examples(600, seed=5)
    accuracy = sum(model.decide(e.evidence) == e.expected for e in held_out) / len(held_out)
    assert accuracy > 0.85
    weights = model.report["small_catalogue"]["weights"]
    assert weights["selector_gap"] > 0 and weights["none_needs_tool"] < 0  # "asks for a tool" lowers no tool
    chat = next(e for e in held_out if e.kind == "out_of_scope")
    explanation = model.explain(chat.evidence)
    assert explanation["part"] == "small_catalogue" and explanation["options"][0]["name"] == "generate_response"
    # a large catalogue's route is still the main part's
    large, _ = _evidence(random.Random(9), "tool")
    assert model.explain(large)["part"] == "main"
    assert model.probabilities(large) == pytest.approx(DecisionModel.fit(_examples(300)).probabilities(large))


def test_the_small_catalogue_part_round_trips_and_is_checked_on_load(tmp_path):
    model = DecisionModel.fit(_examples(300))
    model.min_catalogue_tools = 50
    model.fit_small(_small_examples(300))
    loaded = DecisionModel.load(model.save(tmp_path / "decision.json"))
    evidence = _small_examples(3, seed=11)[0].evidence
    assert loaded.probabilities(evidence) == pytest.approx(model.probabilities(evidence))
    data = model.to_json()
    assert loaded.small_temperature == model.small_temperature
    data["small_catalogue"]["weights"] = [1.0, float("nan"), 0.0, 0.0, 0.0]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="small_catalogue"):
        DecisionModel.load(tmp_path / "bad.json")
    data = model.to_json()
    data["small_catalogue"]["temperature"] = -2.0
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="small_catalogue temperature"):
        DecisionModel.load(tmp_path / "bad.json")


def test_fit_small_refuses_a_model_for_every_size_and_large_catalogues_only():
    model = DecisionModel.fit(_examples(300))
    with pytest.raises(ConfigError, match="every size"):
        model.fit_small(_small_examples(60))
    model.min_catalogue_tools = 50
    with pytest.raises(ConfigError, match="under 50 tools"):
        model.fit_small(_examples(60))  # 50-tool routes: none for the small part


def test_the_shipped_decision_model_loads_and_names_its_selector():
    model = default_decision()
    assert model is not None, "gentool_router/data/decision.json must ship with the package"
    assert {"selector_model", "selector_adapter", "prompt_version", "tool_text_version", "embedder"} <= set(model.identity)


# ------------------------------------------------------------------------------------------ held-out suite
def test_the_real_suite_is_held_out_from_training_and_fitting():
    """Tool- and query-disjoint: no suite query in the shipped selector's training data or a fitting set, no
    suite target tool fitted on (gentool_router_train.real_sets.check_disjoint)."""
    from gentool_router_train.real_sets import (
        ABLATION_SETS,
        FIT_SETS,
        SMALL_FIT_SETS,
        SUITE_SETS,
        build_set,
        check_disjoint,
    )

    suite = {n: build_set(n) for n in SUITE_SETS}
    # the ablation sets too: real_suite.py fits on them when asked (--fit-extra, --fit-small-extra)
    fit = {n: build_set(n) for n in [*FIT_SETS, *SMALL_FIT_SETS, *ABLATION_SETS]}
    assert all(len(cases) >= 50 for cases in suite.values())
    assert check_disjoint(suite, fit) == []
    # the check itself can fail: a fitting query copied into the suite is caught
    leaked = {**suite, "seal_in_domain": [*suite["seal_in_domain"], {**fit["fit_seal"][0], "id": "leak"}]}
    assert any(p.startswith("leak") for p in check_disjoint(leaked, fit))
    kinds = {kind for kind, _ in SUITE_SETS.values()}
    assert kinds == {"tool", "near_miss", "out_of_scope"}


# ------------------------------------------------------------------------------------------ real components
@pytest.mark.slow
def test_the_router_decides_with_the_shipped_model_and_explains(embedder, selector):
    from gentool_router import ToolRouter
    from gentool_router.examples import example_tools

    packaged = ToolRouter.from_tools(example_tools(), embedder=embedder, selector=selector)  # the packaged selector
    route = packaged.route("Will it rain in Oslo tomorrow?")
    assert route.decided_by == "decision" and route.evidence is not None and route.evidence.needs_tool != 0
    assert abs(sum(c.score for c in route.ranking) - 1) < 1e-6
    names = [o["name"] for o in route.explanation["options"]]
    assert names[0] == route.name and "generate_response" in names
    assert route.timings.decide >= 0  # measured, not asserted: BENCHMARKS.md (a slow host took 73 ms once)
    packaged.set_decision(None)
    assert packaged.route("Will it rain in Oslo tomorrow?").decided_by == "selector"
    # the main part was fitted on catalogues of 50 tools and more; a handful of tools is the small part's
    small = ToolRouter.from_tools(SMALL_TOOLS, embedder=embedder, selector=selector)
    assert small.decision is not None and small.decision.min_catalogue_tools == 50
    route = small.route("Will it rain in Oslo tomorrow?")
    assert route.decided_by == "decision" and route.explanation["part"] == "small_catalogue"
    assert route.explanation["temperature"] == small.decision.small_temperature
    assert abs(sum(c.score for c in route.ranking) - 1) < 1e-6
    assert {o["name"] for o in route.explanation["options"]} == {*route.evidence.names, "generate_response"}
    # a decision model without a small part leaves small catalogues to the selector's own threshold
    main_only = DecisionModel.from_json({**small.decision.to_json(), "small_catalogue": None})
    small.set_decision(main_only)
    assert small.route("Will it rain in Oslo tomorrow?").decided_by == "selector"


@pytest.mark.slow
def test_a_decision_for_another_selector_is_refused(embedder, tmp_path):
    from gentool_router import ToolRouter
    from gentool_router.decision import DecisionMismatchError

    model = DecisionModel.fit(_examples(60), identity={"selector_adapter": "not-this-one"})
    router = ToolRouter.from_tools(SMALL_TOOLS, embedder=embedder, decision=model.save(tmp_path / "d.json"))
    with pytest.raises(DecisionMismatchError, match="calibrate"):
        router.route("Will it rain in Oslo tomorrow?")


@pytest.mark.slow
def test_calibrate_end_to_end_then_route_explain(tmp_path):
    """`gentool-router calibrate` routes the labels through the real router, fits, saves into the index; `route`
    then uses it and `--explain` shows the evidence."""
    from click.testing import CliRunner

    from gentool_router.cli import main

    tools = tmp_path / "tools.jsonl"
    tools.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in SMALL_TOOLS))
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(tools), "--out", str(tmp_path / "idx"), "--quiet"]).exit_code == 0
    labels = tmp_path / "labels.jsonl"
    rows = [("Will it rain in Oslo tomorrow?", "get_weather_forecast"), ("Email Bob that I'm late", "send_email"),
            ("Put a meeting with Ana in my calendar at 3pm", "create_calendar_event"),
            ("How much is one Apple share right now?", "get_stock_price"),
            ("Say 'good night' in Italian", "translate_text"), ("Any pasta recipe with mushrooms?", "search_recipes"),
            ("Is it going to snow in Bergen this weekend?", "get_weather_forecast"),
            ("Send an email to my landlord about the heating", "send_email"),
            ("hello there!", None), ("thanks, that's all", None), ("what's the capital of Peru?", None),
            ("write me a haiku about autumn", None)]
    labels.write_text("".join(json.dumps({"query": q, "expected": e}) + "\n" for q, e in rows))
    result = runner.invoke(main, ["calibrate", str(labels), "--index", str(tmp_path / "idx"), "--quiet",
                                  "--no-bundled-out-of-scope", "--near-misses"])
    assert result.exit_code == 0, result.output
    assert "Fitted on 20 routes" in result.output and "temperature" in result.output
    assert (tmp_path / "idx" / "decision.json").is_file()
    # the temperature was fitted on each fold's labels as predicted by the model fitted on the other four
    fitted = DecisionModel.load(tmp_path / "idx" / "decision.json")
    assert fitted.report["calibration"]["held_out_groups"] == 5 and fitted.temperature > 0
    result = runner.invoke(main, ["route", "--index", str(tmp_path / "idx"), "--explain",
                                  "Will it rain in Lisbon on Friday?"])
    assert result.exit_code == 0, result.output
    # the evidence table: each scored candidate's cosine, rank, BM25 score and selector gap, and the reasons
    assert "decided by: the decision model" in result.output and "gap  strongest reasons" in result.output
    # without a calibrated model in the index folder, the shipped one's small-catalogue part decides six tools
    plain = tmp_path / "plain"
    assert runner.invoke(main, ["index", str(tools), "--out", str(plain), "--quiet"]).exit_code == 0
    result = runner.invoke(main, ["route", "--index", str(plain), "--explain", "Will it rain in Lisbon on Friday?"])
    assert result.exit_code == 0 and "small-catalogue part" in result.output, result.output
    assert "temperature" in result.output  # the shipped small part's fitted temperature is not 1
    result = runner.invoke(main, ["route", "--index", str(tmp_path / "idx"), "--json", "--explain", "hi"])
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["decided_by"] == "decision" and data["explanation"]["options"]


def test_calibrate_reports_every_bad_label_line_before_routing(tmp_path):
    from gentool_router.calibration import load_labels
    from gentool_router.errors import CatalogError

    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"query": "ok", "expected": null}\nnot json\n{"query": "", "expected": null}\n'
                      '{"query": "x", "expected": "nope"}\n')
    with pytest.raises(CatalogError) as info:
        load_labels(labels, ["send_email"])
    message = str(info.value)
    assert "3 bad label lines: " in message and ":2:" in message and ":3:" in message and "'nope'" in message


# ------------------------------------------------------------------------------------------ lexical and conversation
def test_bm25_scores_exact_words_of_names_descriptions_and_parameters():
    from gentool_router.lexical import LexicalIndex, lexical_words

    assert lexical_words("getWeatherForecast for_the cities") == ["weather", "forecast", "citi"]  # "get" is a stop word
    index = LexicalIndex(SMALL_TOOLS)
    scores, best, best_name = index.score_names("what's the forecast for Oslo", ["send_email", "get_weather_forecast"])
    assert scores[1] > 0 == scores[0] and best_name == "get_weather_forecast" and best == scores[1]
    assert index.best("the ticker symbol of Apple")[0] == "get_stock_price"  # a parameter name and description word
    assert index.best("zzz qqq") == (None, 0.0)
    _, _, without = index.score_names("what's the forecast for Oslo", [], exclude=["get_weather_forecast"])
    assert without != "get_weather_forecast"


def test_routing_text_joins_the_last_user_turns():
    from gentool_router.conversation import MAX_CONTEXT_CHARS, routing_text

    turns = ["Is the Hilton in Lisbon free on Friday?", "ok", "Book it for two nights"]
    assert routing_text(turns) == "Book it for two nights"
    assert routing_text(turns, 3) == "Is the Hilton in Lisbon free on Friday? ok Book it for two nights"
    long = routing_text(["word " * 500, "the latest message"], 2)
    assert long.endswith("the latest message") and len(long) <= MAX_CONTEXT_CHARS
    assert routing_text([]) == ""
    with pytest.raises(ValueError):
        routing_text(turns, 0)


@pytest.mark.slow
def test_hybrid_candidates_always_hold_bm25s_best_tool(embedder):
    """With ``hybrid`` (the default) BM25's best tool of the catalogue takes the last place when the embedding
    missed it; without it the candidates are the dense top k. Routes with a retrieval selector (no model)."""
    from gentool_router import RetrievalSelector, ToolIndex, ToolRouter

    index = ToolIndex.build(SMALL_TOOLS, embedder)
    hybrid = ToolRouter(index, RetrievalSelector(), k=2, prune_margin=None)
    dense = ToolRouter(index, RetrievalSelector(), k=2, hybrid=False, prune_margin=None)
    queries = ["What is the ticker symbol quote for Apple?", "ingredients for a dish", "the subject and body of a mail",
               "target language for this text", "start time and duration please", "rain and wind in Oslo"]
    for query in queries:
        best, _ = index.lexical().best(query)
        names = [c.name for c in hybrid.route(query).candidates]
        dense_names = [c.name for c in dense.route(query).candidates]
        assert dense_names == [s.tool.name for s in index.search(query, k=2)]
        if best is not None:
            assert best in names
            assert names[0] == dense_names[0]  # the nearest tool always stays
    excluded = hybrid.route("rain and wind in Oslo", exclude=["get_weather_forecast"])
    assert "get_weather_forecast" not in [c.name for c in excluded.candidates]


def test_candidates_far_below_the_nearest_are_not_scored(embedder, selector, tmp_path):
    """``prune_margin``: the llama.cpp selector scores only candidates within the margin of the nearest tool's cosine
    (the nearest and BM25's best always); the others stay candidates, come last in the ranking with probability 0
    and are named in the explanation. None scores all k; other selectors get all k; the setting is saved."""
    from gentool_router import RetrievalSelector, ToolIndex, ToolRouter
    from gentool_router.examples import example_tools

    index = ToolIndex.build(example_tools(), embedder, show_progress=False)
    queries = ["Will it rain in Oslo tomorrow?", "send a mail to my boss about the budget",
               "translate this paragraph into French", "book a meeting tomorrow at ten", "thanks, that's all"]
    pruning = ToolRouter(index, selector, k=5, prune_margin=0.05)
    everything = ToolRouter(index, selector, k=5, prune_margin=None)
    pruned_any = False
    for query in queries:
        route, full = pruning.route(query), everything.route(query)
        assert [c.name for c in route.candidates] == [c.name for c in full.candidates]
        lexical_best, _ = index.lexical().best(query)
        top = route.candidates[0].retrieval_score
        skipped = [c.name for c in route.candidates
                   if not (c.retrieval_rank == 0 or c.name == lexical_best or c.retrieval_score >= top - 0.05)]
        assert route.explanation.get("not_scored", []) == skipped
        assert [c.name for c in route.ranking[len(route.ranking) - len(skipped):]] == skipped
        assert all(c.score == 0.0 for c in route.ranking if c.name in skipped)
        assert route.name not in skipped and len(route.ranking) == len(full.ranking)
        if skipped:
            pruned_any = True
            assert route.prompt_tokens < full.prompt_tokens
        assert "not_scored" not in full.explanation
    assert pruned_any  # the check can fail: some candidates were pruned
    retrieval = ToolRouter(index, RetrievalSelector(), k=5, prune_margin=0.0).route(queries[0])
    assert len(retrieval.ranking) == 5 and "not_scored" not in retrieval.explanation
    pruning.save(tmp_path / "router")
    assert ToolRouter.load(tmp_path / "router", embedder=embedder, selector=selector).prune_margin == 0.05


def test_small_catalogues_prune_by_their_own_margin(embedder, selector, tmp_path):
    """``small_prune_margin`` decides which candidates are scored in a catalogue under 50 tools, ``prune_margin``
    only in larger ones; both are saved."""
    from gentool_router import ToolIndex, ToolRouter

    index = ToolIndex.build(SMALL_TOOLS, embedder, show_progress=False)
    query = "Will it rain in Oslo tomorrow?"
    lexical_best, _ = index.lexical().best(query)
    tight = ToolRouter(index, selector, k=5, prune_margin=None, small_prune_margin=0.0).route(query)
    scored = {c.name for c in tight.candidates if c.retrieval_rank == 0 or c.name == lexical_best}
    assert set(tight.explanation["not_scored"]) == {c.name for c in tight.candidates} - scored
    assert "0 below the nearest" in tight.explanation["not_scored_why"]
    loose = ToolRouter(index, selector, k=5, prune_margin=0.0, small_prune_margin=None).route(query)
    assert "not_scored" not in loose.explanation and loose.prompt_tokens > tight.prompt_tokens
    router = ToolRouter(index, selector, k=5, small_prune_margin=0.02)
    router.save(tmp_path / "router")
    assert ToolRouter.load(tmp_path / "router", embedder=embedder, selector=selector).small_prune_margin == 0.02


def test_close_decisions_are_scored_again_with_the_exact_arithmetic(embedder, selector, tmp_path):
    """``confirm_margin``: a route decided by less than the margin with the fast arithmetic (merged file, flash
    attention, one decode) is scored again with base + run-time LoRA without flash attention, one decode per
    candidate, and decided on those scores: the same evidence as a selector that runs the exact arithmetic
    throughout. A margin of 0 never scores twice."""
    from gentool_router import LlamaSelector, ToolIndex, ToolRouter
    from gentool_router.examples import example_tools

    assert selector.exact_differs  # the default selector runs the fast arithmetic
    exact = LlamaSelector(n_threads=2, merge_adapter=False, flash_attn=False, batched=False)
    try:
        assert not exact.exact_differs
        index = ToolIndex.build(example_tools(), embedder, show_progress=False)
        always = ToolRouter(index, selector, k=5, prune_margin=None, confirm_margin=1.0)
        never = ToolRouter(index, selector, k=5, prune_margin=None, confirm_margin=0.0)
        reference = ToolRouter(index, exact, k=5, prune_margin=None)
        for query in ["Will it rain in Oslo tomorrow?", "send a mail to my boss about the budget"]:
            twice, once, ref = always.route(query), never.route(query), reference.route(query)
            assert "scored_twice" in twice.explanation and "scored_twice" not in once.explanation
            assert "scored_twice" not in ref.explanation  # nothing faster to confirm
            assert 0 <= twice.explanation["scored_twice"]["fast_margin"] < 1.0
            gaps = [c.selector_gap for c in twice.evidence.candidates]
            assert gaps == pytest.approx([c.selector_gap for c in ref.evidence.candidates], abs=1e-4)
            assert [(c.name, round(c.score, 4)) for c in twice.ranking] == [
                (c.name, round(c.score, 4)) for c in ref.ranking]
        always.save(tmp_path / "router")
        assert ToolRouter.load(tmp_path / "router", embedder=embedder, selector=selector).confirm_margin == 1.0
    finally:
        exact.close()


@pytest.mark.parametrize("setting, margin", [
    *[("prune_margin", m) for m in (-0.1, 2.5, "0.1", True, float("nan"))],
    *[("small_prune_margin", m) for m in (-0.1, 2.5, "0.1")],
    *[("confirm_margin", m) for m in (-0.1, 1.5, "0.1", True, float("nan"))],
])
def test_a_bad_margin_is_a_config_error(setting, margin):
    from gentool_router import RetrievalSelector, ToolIndex, ToolRouter

    class NoEmbedder:  # the router is never asked to route
        model_id, dimension = "test:none", 8

    index = ToolIndex(NoEmbedder())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=setting):
        ToolRouter(index, RetrievalSelector(), **{setting: margin})


def test_worth_scoring_keeps_the_nearest_and_bm25s_best():
    from gentool_router.evidence import worth_scoring

    assert worth_scoring(0, 0.1, 0.9, False, 0.15)  # the nearest, whatever its cosine
    assert worth_scoring(3, 0.1, 0.9, True, 0.15)  # BM25's best
    assert worth_scoring(2, 0.75, 0.9, False, 0.15) and not worth_scoring(2, 0.74, 0.9, False, 0.15)
    assert worth_scoring(4, -1.0, 1.0, False, None)


def test_the_query_classifier_is_fitted_saved_and_used(tmp_path):
    """With query vectors, the model first learns whether a query asks for a tool at all (from its embedding) and
    weighs that log-odds as evidence; it survives a save and load."""
    rng = np.random.default_rng(0)
    examples = _examples(300)
    direction = rng.normal(size=16)
    vectors = [rng.normal(size=16) + (-2.0 if e.kind == "out_of_scope" else 2.0) * direction / np.linalg.norm(direction)
               for e in examples]
    model = DecisionModel.fit(examples, query_vectors=vectors)
    assert model.query_weights is not None and model.query_weights.shape == (16,)
    chat, request = -3.0 * direction / np.linalg.norm(direction), 3.0 * direction / np.linalg.norm(direction)
    assert model.needs_tool(chat) < 0 < model.needs_tool(request)
    evidence, _ = _evidence(random.Random(5), "tool")
    assert model.with_query(evidence, chat).needs_tool == pytest.approx(model.needs_tool(chat))
    loaded = DecisionModel.load(model.save(tmp_path / "d.json"))
    assert loaded.needs_tool(chat) == pytest.approx(model.needs_tool(chat))
    with pytest.raises(DecisionMismatchError, match="dim"):
        loaded.needs_tool(np.zeros(8))


def test_selector_gaps_reads_the_right_tool_and_what_it_competes_with():
    module = benchmark_script("selector_gaps")

    def record(expected, *gaps):
        return {"expected": expected, "evidence": {"candidates": [
            {"name": f"t{i}", "selector_gap": g, "cosine": 0.1 * i} for i, g in enumerate(gaps)]}}

    tool_set = [record("t1", 0.0, 2.0, 5.0), record("t0", 1.0, 3.0), record("t9", 4.0)]  # t9: not retrieved
    row = module.set_gaps(tool_set)
    assert row["routes"] == 2 and row["right_tool_not_retrieved"] == 1
    assert row["selector_gap_quartiles"][1] == pytest.approx(1.5)  # the right tools' gaps: 2.0 and 1.0
    assert row["best_wrong_candidate_gap_quartiles"][1] == pytest.approx(4.0)  # 5.0 and 3.0
    no_tool = module.set_gaps([record(None, -1.0, 2.5)])
    assert no_tool["selector_gap_quartiles"] == [2.5, 2.5, 2.5] and "best_wrong_candidate_gap_quartiles" not in no_tool
    # right tools 2.0, 1.0 and one not retrieved, against near misses whose best gaps are 2.5 and 1.0
    near = [record(None, -1.0, 2.5), record(None, 1.0)]
    assert module.separation(tool_set, near) == pytest.approx((0 + 1 + 0 + 0.5 + 0 + 0) / 6, abs=1e-3)


def test_selector_gaps_correlation_says_how_much_of_the_gap_repeats_the_cosine():
    module = benchmark_script("selector_gaps")

    def record(*pairs):
        return {"evidence": {"candidates": [{"name": f"t{i}", "selector_gap": g, "cosine": c}
                                            for i, (g, c) in enumerate(pairs)]}}

    echo = [record((1.0, 0.1), (2.0, 0.2)), record((3.0, 0.3), (5.0, 0.5))]  # gap = 10 x cosine
    assert module.gap_cosine_correlation(echo) == {"candidates": 1.0, "route_best": 1.0, "candidate_count": 4}
    against = [record((4.0, 0.1), (3.0, 0.2)), record((2.0, 0.3), (1.0, 0.4))]  # the surer, the further
    correlation = module.gap_cosine_correlation(against)
    assert correlation["candidates"] == pytest.approx(-1.0) and correlation["route_best"] == pytest.approx(-1.0)


def test_decision_ceiling_checks_each_set_against_its_own_line():
    module = benchmark_script("decision_ceiling")
    rows = module.acceptance_rows({
        "tools": {"kind": "tool", "cases": 10, "accuracy": {"router": 0.80, "retrieval": 0.70}},
        "close": {"kind": "tool", "cases": 10, "accuracy": {"router": 0.72, "retrieval": 0.70}},
        "chat": {"kind": "out_of_scope", "cases": 5, "accuracy": {"router": 0.96, "retrieval": 0.0}},
        "near": {"kind": "near_miss", "cases": 5, "accuracy": {"router": 0.50, "retrieval": 0.0}},
    })
    assert rows["tools"]["needed"] == pytest.approx(0.73) and rows["tools"]["slack"] == pytest.approx(0.07)
    assert rows["close"]["slack"] == pytest.approx(-0.01)  # above retrieval, but not by three points
    assert rows["chat"]["needed"] == 0.95 and rows["chat"]["slack"] > 0
    assert rows["near"]["needed"] == 0.75 and rows["near"]["slack"] == pytest.approx(-0.25)
