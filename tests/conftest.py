"""Shared fixtures: real models are loaded once per session (they are the slow part).

Test tiers (the ``slow`` marker, ``pyproject.toml``): a test that loads a real model (the MiniLM embedder, the
llama.cpp selector, the base model for training or parity) or trains is marked ``slow``; ``make test-fast``
(``-m "not slow"``) runs the others, which need no model. A test using :data:`MODEL_FIXTURES` is marked here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from gentool_router import Tool

WEATHER = Tool(
    "get_weather_forecast",
    "Weather forecast for a city: temperature, rain and wind for the next days.",
    {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
)
EMAIL = Tool(
    "send_email",
    "Send an email with a subject and body to a recipient.",
    {"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}},
     "required": ["to", "body"]},
)
CALENDAR = Tool(
    "create_calendar_event",
    "Create a calendar event with a title, start time and duration.",
    {"type": "object", "properties": {"title": {}, "start": {}, "minutes": {}}, "required": ["title", "start"]},
)
STOCK = Tool(
    "get_stock_price",
    "Latest stock price of a company by ticker symbol.",
    {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
)
TRANSLATE = Tool(
    "translate_text",
    "Translate text from one language into another.",
    {"type": "object", "properties": {"text": {}, "target_language": {}}, "required": ["text", "target_language"]},
)
RECIPES = Tool(
    "search_recipes",
    "Find cooking recipes by ingredient or dish name.",
    {"type": "object", "properties": {"ingredients": {"type": "array"}}, "required": ["ingredients"]},
)

SMALL_TOOLS = [WEATHER, EMAIL, CALENDAR, STOCK, TRANSLATE, RECIPES]


#: Fixtures that load a real model or train one: a test using any of them (directly or through another fixture)
#: is marked ``slow`` by :func:`pytest_collection_modifyitems`, so ``-m "not slow"`` never loads a model through
#: them, even where a test forgot its mark.
MODEL_FIXTURES = frozenset({"embedder", "caching_embedder", "selector", "tiny_run"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def small_tools() -> list[Tool]:
    return list(SMALL_TOOLS)


@pytest.fixture(scope="session")
def embedder():
    from gentool_router.embedder import MiniLMEmbedder

    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def caching_embedder(embedder):
    """The real embedder, each document text embedded once per test session: the data-simulation tests generate
    data sets over the bundled corpora several times, each embedding the same ~4,500 tool texts."""
    from gentool_router.embedder import CachingEmbedder

    return CachingEmbedder(embedder)


@pytest.fixture(scope="session")
def selector():
    from gentool_router import LlamaSelector

    selector = LlamaSelector(n_threads=2)
    yield selector
    selector.close()


# ------------------------------------------------------------------ training data and a tiny trained run
QUERIES = {
    "get_weather_forecast": ["Will it rain in Oslo tomorrow?", "Weather in Paris this weekend", "Is it windy in Bergen?"],
    "send_email": ["Email Bob that I am late", "Send a mail to alice@example.com", "Write to my boss by email"],
    "get_stock_price": ["What is Apple's share price?", "AAPL quote now", "How much is a Tesla share?"],
    "translate_text": ["Translate 'good morning' into German", "Say thank you in Japanese", "French for cheese?"],
}


def tiny_records() -> list[dict]:
    """Records in the generated format: each query with its tool (plain) and without it (no-tool)."""
    records = []
    tools = [t.to_dict() for t in SMALL_TOOLS]
    for target, queries in QUERIES.items():
        for query in queries:
            others = [t for t in tools if t["name"] != target][:3]
            with_target = [next(t for t in tools if t["name"] == target), *others]
            records.append({"id": f"r{len(records)}", "query": query, "tools": with_target, "expected": target,
                            "ranking": [target, "generate_response", *[t["name"] for t in others]],
                            "case_type": "plain"})
            records.append({"id": f"r{len(records)}", "query": query, "tools": others, "expected": None,
                            "ranking": ["generate_response", *[t["name"] for t in others]],
                            "case_type": "no-tool"})
    return records


def benchmark_script(name: str) -> types.ModuleType:
    """A script of ``benchmarks/`` loaded as a module; the folder is on the path while it loads (some scripts import
    ``real_suite`` beside them)."""
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def write_tiny_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = tiny_records()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:20]))
    (folder / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[20:]))
    return folder



@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A real two-stage training run of a few steps (adapter/ and training.json), shared by the export tests."""
    pytest.importorskip("peft")
    from gentool_router_train.trainer import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny-run")
    config = TrainConfig(data_dir=write_tiny_data(root / "data"), ranking_examples=8, selection_examples=8,
                         dev_examples=4, eval_every=0, learning_rate=5e-3, threads=2)
    train(config, root / "run", show_progress=False, log=lambda _: None)
    return root / "run"
