"""FAISS index: build, search, incremental edits, persistence (contract 4), with the real MiniLM embedder (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gentool_router import CatalogError, IndexFormatError, IndexMismatchError, Tool, ToolIndex
from gentool_router.index import INDEX_FILE, MANIFEST_FILE, TOOLS_FILE
from gentool_router.retriever_delta import TUNED_MODEL_ID

pytestmark = pytest.mark.slow


@pytest.fixture()
def index(embedder, small_tools):
    return ToolIndex.build(small_tools, embedder)


def test_search_finds_the_matching_tool(index):
    assert index.search("will it rain in Paris tomorrow?", k=1)[0].tool.name == "get_weather_forecast"
    assert index.search("email my boss the report", k=1)[0].tool.name == "send_email"
    hits = index.search("price of AAPL shares", k=3)
    assert hits[0].tool.name == "get_stock_price"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_k_larger_than_catalogue_returns_all_tools(index, small_tools):
    assert len(index.search("anything", k=50)) == len(small_tools)
    with pytest.raises(ValueError, match="k must be"):
        index.search("anything", k=0)


def test_add_and_remove_are_incremental_with_stable_ids(index):
    before = {n: index.tool_id(n) for n in index.catalog.names()}
    index.add([{"name": "book_taxi", "description": "Book a taxi ride to an address"}])
    assert index.search("get me a cab to the airport", k=1)[0].tool.name == "book_taxi"
    index.remove(["get_weather_forecast"])
    assert "get_weather_forecast" not in index
    assert all(h.tool.name != "get_weather_forecast" for h in index.search("weather forecast", k=10))
    after = {n: index.tool_id(n) for n in index.catalog.names()}
    assert all(after[n] == before[n] for n in after if n in before)
    with pytest.raises(CatalogError, match="already"):
        index.add([{"name": "book_taxi", "description": "again"}])
    with pytest.raises(CatalogError, match="no tool named"):
        index.remove(["nope"])


def test_removing_everything_then_searching_is_a_clear_error(embedder):
    index = ToolIndex.build([{"name": "a", "description": "Alpha tool"}], embedder)
    index.remove(["a"])
    with pytest.raises(CatalogError, match="no tools"):
        index.search("alpha")


def test_empty_catalogue_is_refused(embedder):
    with pytest.raises(CatalogError, match="empty"):
        ToolIndex.build([], embedder)


def test_save_load_gives_identical_search(tmp_path, index, embedder):
    index.remove(["search_recipes"])
    index.add([Tool("book_taxi", "Book a taxi ride")])
    index.save(tmp_path / "idx")
    loaded = ToolIndex.load(tmp_path / "idx", embedder)
    assert loaded.catalog.names() == index.catalog.names()
    # argument order is part of the tool text, so it must survive the JSON round trip
    assert [loaded.tool_text(n) for n in loaded.catalog.names()] == [index.tool_text(n) for n in index.catalog.names()]
    assert {n: loaded.tool_id(n) for n in loaded.catalog.names()} == {n: index.tool_id(n) for n in index.catalog.names()}
    for query in ["rain tomorrow?", "send mail", "translate to French", "taxi"]:
        a, b = index.search(query, k=4), loaded.search(query, k=4)
        assert [h.tool.name for h in a] == [h.tool.name for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-6)
    loaded.add([Tool("new_tool", "Something new")])
    assert loaded.tool_id("new_tool") > max(index.tool_id(n) for n in index.catalog.names())


def test_save_writes_manifest_with_checksums_and_no_pickle(tmp_path, index):
    folder = index.save(tmp_path / "idx")
    assert sorted(p.name for p in folder.iterdir()) == sorted([INDEX_FILE, TOOLS_FILE, MANIFEST_FILE])
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["embedder"] == {"model_id": TUNED_MODEL_ID, "dimension": 384}
    assert set(manifest["files"]) == {INDEX_FILE, TOOLS_FILE}
    assert not list(tmp_path.glob(".idx*")), "no staging folders left behind"


def test_save_replaces_an_existing_index_atomically(tmp_path, index, embedder):
    index.save(tmp_path / "idx")
    index.add([Tool("book_taxi", "Book a taxi ride")])
    index.save(tmp_path / "idx")
    assert "book_taxi" in ToolIndex.load(tmp_path / "idx", embedder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (lambda f: (f / INDEX_FILE).write_bytes((f / INDEX_FILE).read_bytes()[:100]), IndexFormatError, "checksum"),
        (lambda f: (f / TOOLS_FILE).unlink(), IndexFormatError, "missing"),
        (lambda f: (f / MANIFEST_FILE).unlink(), IndexFormatError, "manifest.json is missing"),
        (lambda f: (f / MANIFEST_FILE).write_text("{not json"), IndexFormatError, "corrupt"),
        (lambda f: _edit_manifest(f, embedder={"model_id": "other-model", "dimension": 768}), IndexMismatchError, "other-model"),
        (lambda f: _edit_manifest(f, tool_text_version="0"), IndexMismatchError, "tool-text version"),
        (lambda f: _edit_manifest(f, format_version=99), IndexMismatchError, "format version"),
    ],
)
def test_damaged_or_mismatched_folders_fail_clearly(tmp_path, index, embedder, damage, error, message):
    folder = index.save(tmp_path / "idx")
    damage(folder)
    with pytest.raises(error, match=message):
        ToolIndex.load(folder, embedder)


def test_corrupt_faiss_file_with_matching_checksum_fails_clearly(tmp_path, index, embedder):
    from gentool_router.persistence import sha256_file

    folder = index.save(tmp_path / "idx")
    (folder / INDEX_FILE).write_bytes(b"\x00" * 64)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"][INDEX_FILE]["sha256"] = sha256_file(folder / INDEX_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="not a readable FAISS index"):
        ToolIndex.load(folder, embedder)


def test_missing_folder_fails_clearly(tmp_path, embedder):
    with pytest.raises(IndexFormatError, match="not found"):
        ToolIndex.load(tmp_path / "nope", embedder)


def _edit_manifest(folder, **changes):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest.update(changes)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
