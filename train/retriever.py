"""Contrastive fine-tuning of the retriever's embedder, shipped as a small low-rank delta.

Why: the router's candidates and half of its decision's evidence come from embedding similarity, and the stock
all-MiniLM-L6-v2 was never taught what a tool is for. Fine-tuned on the training queries of ``generate-data``
(query, right tool, one other shown tool as the hard negative; in-batch negatives as well,
``MultipleNegativesRankingLoss``'s objective), its top-1 rises on six of the seven held-out tool sets of the
real-catalogue suite and equals the stock model's on the seventh (TRAINING.md, "The retriever").

What ships is not the model (90 MB) but the difference to the stock model, each weight matrix's delta cut to its
best rank-``rank`` approximation (``gentool_router/data/retriever-delta.safetensors``, about 1.4 MB at rank 16;
within 0.6 points of a full fine-tune on five suite sets, TRAINING.md). The embeddings and LayerNorms are left as they are; the
biases' deltas are kept whole. :mod:`gentool_router.retriever_delta` applies it at load time.

The query pairs come from ``train.jsonl`` of a ``generate-data`` folder, so everything the real-catalogue suite
holds out stays out here as it does for the selector
(``tests/test_decision.py::test_the_real_suite_is_held_out_from_training_and_fitting``).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gentool_router.embedder import default_embedder_dir
from gentool_router.errors import GentoolError
from gentool_router.retriever_delta import DELTA_VERSION, save_delta
from gentool_router.tool_text import TOOL_TEXT_VERSION, render_tool
from gentool_router.tools import Tool

__all__ = ["contrastive_pairs", "fine_tune", "low_rank_delta", "train_retriever"]

#: (query, right tool's text, the other shown tools' texts)
Pair = tuple[str, str, list[str]]


def contrastive_pairs(train_path: Path) -> list[Pair]:
    """One pair per distinct (query, right tool) of a generated ``train.jsonl``; no-tool records have none."""
    seen: set[tuple[str, str]] = set()
    pairs: list[Pair] = []
    with train_path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            expected = record.get("expected")
            if not expected:
                continue
            tools = {t["name"]: Tool.from_dict(t) for t in record["tools"]}
            if expected not in tools or (record["query"], expected) in seen:
                continue
            seen.add((record["query"], expected))
            others = [render_tool(t) for name, t in tools.items() if name != expected]
            pairs.append((record["query"], render_tool(tools[expected]), others))
    return pairs


def fine_tune(pairs: list[Pair], *, epochs: int = 1, learning_rate: float = 2e-5, batch_size: int = 32,
              max_seq_length: int = 96, seed: int = 0, threads: int = 2,
              log: Callable[[str], None] = print) -> Any:
    """Fine-tune the packaged all-MiniLM-L6-v2 on ``pairs``: a batch's queries against its right tools and one
    hard negative each (scale 20, cross-entropy), AdamW, 10% warm-up then linear decay. Returns the model."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = SentenceTransformer(str(default_embedder_dir()), device="cpu")
    model.max_seq_length = max_seq_length

    def embed(texts: list[str]) -> Any:
        features = model.tokenize(texts)
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    steps = epochs * (len(pairs) // batch_size)
    warm_up = max(1, steps // 10)

    def schedule(step: int) -> float:
        if step < warm_up:
            return (step + 1) / warm_up
        return max(0.0, (steps - step) / max(1, steps - warm_up))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start, step = time.time(), 0
    model.train()
    for _ in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for first in range(0, len(order) - batch_size + 1, batch_size):
            batch = [pairs[i] for i in order[first:first + batch_size]]
            queries = embed([b[0] for b in batch])
            documents = torch.cat([embed([b[1] for b in batch]),
                                   embed([rng.choice(b[2]) if b[2] else b[1] for b in batch])])
            loss = torch.nn.functional.cross_entropy(20.0 * queries @ documents.T, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 20 == 0 or step == steps:
                log(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - start:.0f} s)")
    model.eval()
    return model


def _bert_weights(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """A BERT state dict (torch tensors or arrays) as float32 arrays named as in the packaged model.safetensors
    without the ``bert.`` prefix: the stock file and the tuned model compared key by key."""
    out = {}
    for key, value in state.items():
        key = key[len("auto_model."):] if key.startswith("auto_model.") else key
        key = key[len("bert."):] if key.startswith("bert.") else key
        out[key] = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float32)
    return out


def low_rank_delta(stock: dict[str, np.ndarray], tuned: dict[str, np.ndarray],
                   rank: int) -> dict[str, np.ndarray]:
    """The tuned encoder layers minus the stock ones: each weight matrix as ``KEY.a`` (out × rank) and ``KEY.b``
    (rank × in), its best rank-``rank`` approximation; each bias as ``KEY.full``. Embeddings and LayerNorms are
    left out (measured: no loss on the suite)."""
    delta: dict[str, np.ndarray] = {}
    for key, weight in stock.items():
        if not key.startswith("encoder.") or "LayerNorm" in key or key not in tuned:
            continue
        difference = tuned[key].astype(np.float32) - weight.astype(np.float32)
        if difference.ndim == 2:
            u, s, vt = np.linalg.svd(difference, full_matrices=False)
            delta[key + ".a"] = (u[:, :rank] * s[:rank]).astype(np.float16)
            delta[key + ".b"] = vt[:rank].astype(np.float16)
        else:
            delta[key + ".full"] = difference.astype(np.float16)
    return delta


def train_retriever(data: Path, out: Path, *, pairs_limit: int = 6000, rank: int = 16, seed: int = 0,
                    batch_size: int = 32, threads: int = 2, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fine-tune on ``data/train.jsonl`` (``pairs_limit`` pairs drawn with ``seed``) and write the delta file to
    ``out``. Returns what was done (also in the file's metadata)."""
    from safetensors.numpy import load_file

    train_path = data / "train.jsonl"
    if not train_path.is_file():
        raise GentoolError(f"{data} has no train.jsonl: make one with `gentool-router generate-data`")
    pairs = contrastive_pairs(train_path)
    random.Random(seed).shuffle(pairs)
    pairs = pairs[:pairs_limit]
    if not pairs:
        raise GentoolError(f"{train_path} has no record with a right tool to learn from")
    log(f"{len(pairs)} query-tool pairs from {train_path}")
    model = fine_tune(pairs, batch_size=batch_size, seed=seed, threads=threads, log=log)
    stock = _bert_weights(load_file(str(default_embedder_dir() / "model.safetensors")))
    delta = low_rank_delta(stock, _bert_weights(model[0].auto_model.state_dict()), rank)
    metadata = {"delta_version": DELTA_VERSION, "base": "sentence-transformers/all-MiniLM-L6-v2",
                "rank": str(rank), "pairs": str(len(pairs)), "data": data.name, "seed": str(seed),
                "tool_text_version": TOOL_TEXT_VERSION}
    save_delta(delta, out, metadata)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return metadata
