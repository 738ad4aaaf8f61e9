"""The retriever's fine-tuning: its delta file, the tuned embedder in both runtimes, and its training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gentool_router.errors import ModelLoadError, ModelNotFoundError
from gentool_router.retriever_delta import (
    DEFAULT_DELTA_PATH,
    DELTA_VERSION,
    TUNED_MODEL_ID,
    apply_delta,
    load_delta,
    save_delta,
)

META = {"delta_version": DELTA_VERSION}


def test_a_delta_adds_its_low_rank_product_and_its_whole_biases(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 2)).astype(np.float16), rng.normal(size=(2, 4)).astype(np.float16)
    bias = rng.normal(size=6).astype(np.float16)
    path = tmp_path / "delta.safetensors"
    save_delta({"layer.weight.a": a, "layer.weight.b": b, "layer.bias.full": bias}, path, META)
    weights = {"layer.weight": np.ones((6, 4), np.float32), "layer.bias": np.zeros(6, np.float32),
               "other": np.ones(3, np.float32)}
    tuned = apply_delta(weights, load_delta(path))
    np.testing.assert_allclose(tuned["layer.weight"], 1 + a.astype(np.float32) @ b.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(tuned["layer.bias"], bias.astype(np.float32))
    assert tuned["other"] is weights["other"]
    assert weights["layer.weight"].max() == 1.0, "the inputs are not changed"


def test_a_missing_corrupt_or_foreign_delta_file_gets_one_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="missing"):
        load_delta(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_delta(tmp_path / "bad.safetensors")
    save_delta({"x.full": np.zeros(2, np.float16)}, tmp_path / "old.safetensors", {"delta_version": "0"})
    with pytest.raises(ModelLoadError, match="layout '0'"):
        load_delta(tmp_path / "old.safetensors")


def test_a_delta_that_does_not_fit_the_weights_is_refused():
    with pytest.raises(ModelLoadError, match="does not have"):
        apply_delta({"w": np.zeros((2, 2), np.float32)}, {"v.full": np.zeros(2, np.float16)})
    with pytest.raises(ModelLoadError, match="shape"):
        apply_delta({"w": np.zeros((2, 2), np.float32)}, {"w.full": np.zeros(3, np.float16)})


def test_the_shipped_delta_is_small_and_reads():
    delta = load_delta(DEFAULT_DELTA_PATH)
    assert DEFAULT_DELTA_PATH.stat().st_size < 3_000_000
    assert any(k.endswith(".a") for k in delta) and any(k.endswith(".full") for k in delta)
    assert all(k.startswith("encoder.layer.") for k in delta)


# ----------------------------------------------------------------- the real embedder

@pytest.mark.slow
def test_the_default_embedder_is_the_tuned_one_and_stock_stays_available(embedder):
    from gentool_router.embedder import MiniLMEmbedder

    stock = MiniLMEmbedder(tuned=False)
    assert embedder.tuned and embedder.model_id == TUNED_MODEL_ID
    assert stock.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    texts = ["Will it rain in Oslo tomorrow?", "send_email(to, body): Send an email."]
    cosines = (embedder.embed_queries(texts) * stock.embed_queries(texts)).sum(axis=1)
    assert cosines.max() < 0.9999, "the delta changes the function"
    assert cosines.min() > 0.5, "... by a fine-tuning, not beyond recognition"
    with pytest.raises(ValueError, match="packaged"):
        MiniLMEmbedder(stock.model_dir, tuned=True)
    with pytest.raises(ValueError, match="delta_path"):
        MiniLMEmbedder(tuned=False, delta_path=DEFAULT_DELTA_PATH)
    other = MiniLMEmbedder(delta_path=DEFAULT_DELTA_PATH)  # another delta file: measured apart, named apart
    assert other.model_id != embedder.model_id and other.model_id.startswith(TUNED_MODEL_ID)
    np.testing.assert_allclose(other.embed_queries(texts), embedder.embed_queries(texts), atol=1e-6)


@pytest.mark.slow
def test_the_torch_runtime_computes_the_tuned_function_too(embedder):
    from gentool_router.embedder import TORCH_BATCH_THRESHOLD, MiniLMEmbedder

    texts = [f"tool number {i}: does thing {i % 7}" for i in range(TORCH_BATCH_THRESHOLD)]
    fresh = MiniLMEmbedder()
    by_torch = fresh.embed_documents(texts)  # this many texts go through sentence-transformers
    assert fresh._st_model is not None
    by_numpy = embedder.embed_queries(texts[:50])
    assert (by_torch[:50] * by_numpy).sum(axis=1).min() >= 0.9999


# ----------------------------------------------------------------- training

def _train_file(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _tool(name, description):
    return {"name": name, "description": description, "parameters": {"type": "object", "properties": {}}}


RECORDS = [
    {"query": f"question {i} about {topic}", "expected": f"{topic}_tool",
     "tools": [_tool(f"{topic}_tool", f"Answers about {topic}."), _tool(f"other_{i}", "Something else.")]}
    for i, topic in enumerate(["weather", "email", "stocks", "recipes", "music", "maps", "news", "taxes"])
] + [{"query": "hello there", "expected": None, "tools": [_tool("x", "An x tool.")]}]


def test_pairs_are_one_per_query_and_right_tool_with_the_other_tools_as_negatives(tmp_path):
    from gentool_router_train.retriever import contrastive_pairs

    _train_file(tmp_path / "train.jsonl", RECORDS + RECORDS[:2])
    pairs = contrastive_pairs(tmp_path / "train.jsonl")
    assert len(pairs) == 8  # duplicates once, no-tool records none
    query, positive, negatives = pairs[0]
    assert query == "question 0 about weather" and positive.startswith("weather_tool(")
    assert negatives == ["other_0(): Something else."]


def test_the_low_rank_delta_is_exact_at_full_rank_and_leaves_embeddings_alone():
    from gentool_router_train.retriever import low_rank_delta

    rng = np.random.default_rng(1)
    stock = {"encoder.layer.0.w": rng.normal(size=(8, 5)).astype(np.float32),
             "encoder.layer.0.bias": np.zeros(8, np.float32),
             "encoder.layer.0.LayerNorm.weight": np.ones(8, np.float32),
             "embeddings.word_embeddings.weight": np.ones((4, 5), np.float32)}
    tuned = {k: v + rng.normal(scale=0.01, size=v.shape).astype(np.float32) for k, v in stock.items()}
    delta = low_rank_delta(stock, tuned, rank=5)
    assert sorted(delta) == ["encoder.layer.0.bias.full", "encoder.layer.0.w.a", "encoder.layer.0.w.b"]
    rebuilt = apply_delta(stock, delta)
    np.testing.assert_allclose(rebuilt["encoder.layer.0.w"], tuned["encoder.layer.0.w"], atol=1e-3)


@pytest.mark.slow
def test_train_retriever_end_to_end_writes_a_delta_the_embedder_can_use(tmp_path):
    from gentool_router_train.retriever import train_retriever

    data = tmp_path / "data"
    data.mkdir()
    _train_file(data / "train.jsonl", RECORDS)
    out = tmp_path / "delta.safetensors"
    lines: list[str] = []
    metadata = train_retriever(data, out, pairs_limit=8, batch_size=4, rank=4, log=lines.append)
    assert metadata["pairs"] == "8" and metadata["rank"] == "4"
    assert any(line.startswith("step 2/2") for line in lines)
    delta = load_delta(out)
    assert {v.shape[1] for k, v in delta.items() if k.endswith(".a")} == {4}
    assert not list(tmp_path.glob(".delta*")), "no partial file left behind"


def test_train_retriever_refuses_a_folder_without_training_records(tmp_path):
    from gentool_router.errors import GentoolError
    from gentool_router_train.retriever import train_retriever

    with pytest.raises(GentoolError, match="no train.jsonl"):
        train_retriever(tmp_path, tmp_path / "d.safetensors")
    _train_file(tmp_path / "train.jsonl", RECORDS[-1:])
    with pytest.raises(GentoolError, match="no record with a right tool"):
        train_retriever(tmp_path, tmp_path / "d.safetensors")
    assert not (tmp_path / "d.safetensors").exists()


def test_the_cli_will_not_overwrite_a_file_that_is_not_a_delta(tmp_path):
    from click.testing import CliRunner

    from gentool_router.cli import main

    data = tmp_path / "data"
    data.mkdir()
    _train_file(data / "train.jsonl", RECORDS)
    precious = tmp_path / "notes.txt"
    precious.write_text("mine")
    result = CliRunner().invoke(main, ["train-retriever", "--data", str(data), "--out", str(precious)])
    assert result.exit_code != 0 and "not a retriever delta" in result.output
    assert precious.read_text() == "mine"
