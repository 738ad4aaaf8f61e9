"""The adapter merged into its base as one q8_0 GGUF (``gentool_router.merged``).

The merge arithmetic and the cache are checked on small GGUF files written here; the packaged selector merged
for real is checked in ``tests/test_llama_backend.py`` (scores within the bounds of base + run-time LoRA) and
below (its metadata, and the fallback when the cache cannot be written).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize

from gentool_router import merged
from gentool_router.artefact import ArtefactMetadata
from gentool_router.errors import ModelLoadError, WriteError
from gentool_router.merged import MAX_CACHED, merge_adapter, merged_selector_gguf

ROWS, COLS, RANK, ALPHA = 64, 96, 4, 8.0


def _base(folder: Path, rng: np.random.Generator) -> tuple[Path, dict[str, np.ndarray]]:
    weights = {"blk.0.attn_q.weight": rng.normal(0, 0.05, (ROWS, COLS)).astype(np.float32),
               "blk.0.ffn_up.weight": rng.normal(0, 0.05, (ROWS, COLS)).astype(np.float32),
               "blk.0.attn_norm.weight": rng.normal(1, 0.1, (COLS,)).astype(np.float32)}
    path = folder / "base.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("general.name", "tiny base")
    writer.add_uint32("llama.block_count", 1)
    for name, values in weights.items():
        writer.add_tensor(name, values)
    _finish(writer)
    return path, weights


def _lora(folder: Path, rng: np.random.Generator, target: str = "blk.0.attn_q.weight", *, rows: int = ROWS,
          kind: str = "adapter") -> tuple[Path, np.ndarray]:
    a = rng.normal(0, 0.2, (RANK, COLS)).astype(np.float32)
    b = rng.normal(0, 0.2, (rows, RANK)).astype(np.float32)
    path = folder / f"lora-{target}-{rows}-{kind}.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("general.type", kind)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", ALPHA)
    writer.add_string("gentool.prompt_version", "3")
    writer.add_float32("gentool.no_tool_score", -0.5)
    writer.add_tensor(f"{target}.lora_a", a)
    writer.add_tensor(f"{target}.lora_b", b)
    _finish(writer)
    return path, (ALPHA / RANK) * (b.astype(np.float64) @ a.astype(np.float64))


def _finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _read(path: Path) -> dict[str, np.ndarray]:
    reader = gguf.GGUFReader(path)
    return {t.name: dequantize(t.data, t.tensor_type).reshape(tuple(int(n) for n in reversed(list(t.shape))))
            for t in reader.tensors}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    base, weights = _base(tmp_path, rng)
    lora, delta = _lora(tmp_path, rng)
    return base, weights, lora, delta


def test_the_merge_adds_the_scaled_lora_and_stores_weights_at_q8_0(files, tmp_path):
    base, weights, lora, delta = files
    out = merge_adapter(base, lora, tmp_path / "merged.gguf")
    values = _read(out)
    expected = weights["blk.0.attn_q.weight"] + delta
    step = np.abs(expected).max() / 127  # q8_0's rounding step at most
    assert np.abs(values["blk.0.attn_q.weight"] - expected).max() <= step
    assert np.abs(delta).max() > 10 * step  # the LoRA's change is far above the rounding: the check can fail
    assert np.abs(values["blk.0.ffn_up.weight"] - weights["blk.0.ffn_up.weight"]).max() <= step
    np.testing.assert_array_equal(values["blk.0.attn_norm.weight"], weights["blk.0.attn_norm.weight"])
    reader = gguf.GGUFReader(out)
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert str(reader.fields["general.name"].contents()) == "tiny base"
    meta = ArtefactMetadata.from_gguf(out)  # the adapter's own keys travel into the merged file
    assert meta.prompt_version == "3" and meta.no_tool_score == pytest.approx(-0.5)


def test_bad_inputs_are_one_clear_error_and_write_nothing(files, tmp_path):
    base, _, lora, _ = files
    rng = np.random.default_rng(1)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"PK\x03\x04" * 64)
    not_adapter, _ = _lora(tmp_path, rng, kind="model")
    other_tensor, _ = _lora(tmp_path, rng, "blk.7.attn_q.weight")
    other_shape, _ = _lora(tmp_path, rng, rows=ROWS * 2)
    cases = [(base, garbage, "not a readable GGUF"), (garbage, lora, "not a readable GGUF"),
             (base, tmp_path / "missing.gguf", "not found"), (base, not_adapter, "is not a LoRA adapter"),
             (base, other_tensor, "does not have: blk.7.attn_q.weight"), (base, other_shape, "does not fit")]
    for model_path, adapter_path, message in cases:
        out = tmp_path / "out" / "merged.gguf"
        out.parent.mkdir(exist_ok=True)
        with pytest.raises(ModelLoadError, match=message) as caught:
            merge_adapter(model_path, adapter_path, out)
        assert "\n" not in str(caught.value)
        assert list(out.parent.iterdir()) == []  # no half-written file


def test_the_cache_builds_once_rebuilds_a_damaged_file_and_keeps_the_recent_ones(files, tmp_path, monkeypatch):
    base, _, lora, _ = files
    cache = tmp_path / "cache"
    calls = []
    real = merged.merge_adapter
    monkeypatch.setattr(merged, "merge_adapter", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = merged_selector_gguf(base, lora, cache_dir=cache)
    assert merged_selector_gguf(base, lora, cache_dir=cache) == first and len(calls) == 1
    first.write_bytes(b"damaged")
    assert merged_selector_gguf(base, lora, cache_dir=cache) == first and len(calls) == 2
    assert _read(first)  # whole again
    # older merged files beyond MAX_CACHED go when a new one is written; files of other names stay
    for number in range(MAX_CACHED + 2):
        old = cache / f"old-q8_0-{number:016x}.gguf"
        old.write_bytes(b"old")
        os.utime(old, (1_000 + number, 1_000 + number))
    (cache / "notes.txt").write_text("mine")
    first.unlink()
    merged_selector_gguf(base, lora, cache_dir=cache)
    left = sorted(p.name for p in cache.iterdir())
    assert "notes.txt" in left and first.name in left
    assert [n for n in left if n.startswith("old-")] == [f"old-q8_0-{n:016x}.gguf"
                                                         for n in range(MAX_CACHED + 2 - (MAX_CACHED - 1), MAX_CACHED + 2)]


def test_another_adapter_or_base_is_another_file(files, tmp_path):
    base, _, lora, _ = files
    other, _ = _lora(tmp_path, np.random.default_rng(5), "blk.0.ffn_up.weight")
    cache = tmp_path / "cache"
    assert merged_selector_gguf(base, lora, cache_dir=cache) != merged_selector_gguf(base, other, cache_dir=cache)


def test_an_unwritable_cache_is_a_clear_write_error(files, tmp_path, monkeypatch):
    base, _, lora, _ = files
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GENTOOL_ROUTER_CACHE", str(blocker / "cache"))
    with pytest.raises(WriteError, match="cannot write the merged selector into .*GENTOOL_ROUTER_CACHE"):
        merged_selector_gguf(base, lora)


@pytest.mark.slow
def test_the_packaged_selector_runs_merged_and_falls_back_to_the_run_time_lora(selector, tmp_path, monkeypatch,
                                                                               caplog):
    from gentool_router import LlamaSelector

    assert selector.runtime_path.name.startswith("gentool-selector-lora-q8_0-")
    meta = ArtefactMetadata.from_gguf(selector.runtime_path)
    assert meta == ArtefactMetadata.from_gguf(selector.adapter_path)  # the threshold and versions of the adapter
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GENTOOL_ROUTER_CACHE", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, logger="gentool_router.selector"):
        fallback = LlamaSelector(n_threads=selector.n_threads)
    try:
        assert fallback.runtime_path == fallback.model_path
        assert "applied at run time instead" in caplog.text
        query, names = "What's the weather in Oslo tomorrow?", ["get_weather", "send_email"]
        texts = ["get_weather(city, date): Weather forecast for a city", "send_email(to, body): Send an email"]
        assert fallback.select(query, names, texts, [0.5, 0.1]).best == selector.select(query, names, texts,
                                                                                         [0.5, 0.1]).best
    finally:
        fallback.close()
