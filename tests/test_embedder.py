"""The torch-free query embedder computes the same function as sentence-transformers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gentool_router.examples import example_tools
from gentool_router.tool_text import render_tool

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("tuned", [True, False], ids=["tuned", "stock"])
def test_numpy_runtime_matches_sentence_transformers(tuned):
    from sentence_transformers import SentenceTransformer

    from gentool_router.embedder import MiniLMEmbedder, _tune_torch_model

    embedder = MiniLMEmbedder(tuned=tuned)
    texts = [render_tool(t) for t in list(example_tools())[:80]] + [
        "Will it rain in Oslo tomorrow?", "x", "Ünïcödé and emoji 🚀 text", "word " * 400,
    ]
    model = SentenceTransformer(str(embedder.model_dir), device="cpu")
    if tuned:  # the reference: sentence-transformers' own forward pass over the tuned weights
        from gentool_router.retriever_delta import load_delta

        _tune_torch_model(model, load_delta())
    reference = model.encode(texts, normalize_embeddings=True)
    ours = embedder.embed_queries(texts)
    assert ours.shape == reference.shape == (len(texts), 384)
    assert ours.dtype == np.float32
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_document_and_query_paths_agree(embedder):
    texts = [render_tool(t) for t in list(example_tools())[:20]]
    docs = embedder.embed_documents(texts)
    queries = embedder.embed_queries(texts)
    assert ((docs * queries).sum(axis=1)).min() >= 0.9999


def test_routing_path_never_imports_torch(tmp_path):
    code = (
        "import sys\n"
        "from gentool_router.embedder import MiniLMEmbedder\n"
        "MiniLMEmbedder().embed_queries(['hello'])\n"
        "import gentool_router.index, gentool_router.selector, gentool_router.router, gentool_router.cli\n"
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_caching_embedder_embeds_each_distinct_text_once():
    from gentool_router.embedder import CachingEmbedder

    class Counting:
        model_id, dimension = "test:counting", 2

        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed_documents(self, texts, *, show_progress=False):
            self.seen.extend(texts)
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

        def embed_queries(self, texts):
            return self.embed_documents(texts)

    inner = Counting()
    cached = CachingEmbedder(inner)
    first = cached.embed_documents(["a", "bb", "a"])
    second = cached.embed_documents(["bb", "ccc"])
    assert inner.seen == ["a", "bb", "ccc"]
    np.testing.assert_array_equal(first[:, 0], [1, 2, 1])
    np.testing.assert_array_equal(second[:, 0], [2, 3])
    assert cached.embed_documents([]).shape == (0, 2)
    assert (cached.model_id, cached.dimension) == ("test:counting", 2)
