"""The retriever's fine-tuning, shipped as a low-rank delta over the packaged all-MiniLM-L6-v2.

``gentool_router/data/retriever-delta.safetensors`` holds, for each weight matrix ``W`` of the encoder layers, two
small factors ``W.a`` and ``W.b`` (``W_tuned = W + a @ b``) and, for each bias, its whole delta ``W.full``. How
it is made and what it buys: ``gentool_router_train.retriever`` and TRAINING.md ("The retriever").

:data:`TUNED_MODEL_ID` names the tuned embedding *function*; it is stored in every index manifest and in the
decision model's identity, so an index or decision model made with the stock embedder is refused, not silently
mixed with the tuned one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import ModelLoadError, ModelNotFoundError
from .persistence import atomic_file

__all__ = ["DELTA_VERSION", "TUNED_MODEL_ID", "DEFAULT_DELTA_PATH", "load_delta", "apply_delta", "save_delta"]

#: Bump when the file's layout changes.
DELTA_VERSION = "1"
#: The tuned embedder's model id (index manifests, the decision model's identity).
TUNED_MODEL_ID = "gentool-router/all-MiniLM-L6-v2-tuned-1"
DEFAULT_DELTA_PATH = Path(__file__).resolve().parent / "data" / "retriever-delta.safetensors"


def save_delta(delta: Mapping[str, np.ndarray], path: Path, metadata: Mapping[str, str]) -> None:
    """Write a delta file atomically (never a half-written file in ``path``)."""
    from safetensors.numpy import save

    with atomic_file(path) as tmp:
        tmp.write_bytes(save(dict(delta), metadata=dict(metadata)))


def load_delta(path: str | os.PathLike[str] = DEFAULT_DELTA_PATH) -> dict[str, np.ndarray]:
    """Read a delta file; a clear error when it is missing, unreadable or of another layout."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"the retriever's delta {path} is missing (reinstall gentool-router)")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            delta = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:
        raise ModelLoadError(f"cannot read the retriever's delta {path}: {exc}") from None
    if metadata.get("delta_version") != DELTA_VERSION:
        raise ModelLoadError(f"{path} is a retriever delta of layout {metadata.get('delta_version')!r}; this "
                             f"gentool-router reads layout {DELTA_VERSION!r}")
    return delta


def _low_rank_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` as a sum of outer products, in a fixed order: a BLAS matmul's last bits depend on its thread count,
    and the same weights must come out in every process (a served router answers exactly as the one that saved it)."""
    product = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    for column, row in zip(a.T.astype(np.float32), b.astype(np.float32)):
        product += np.multiply.outer(column, row)
    return product


def apply_delta(weights: Mapping[str, np.ndarray], delta: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``weights`` (BERT names without the ``bert.`` prefix) with the delta added; the inputs are not changed."""
    out = dict(weights)
    for key in {k.rsplit(".", 1)[0] for k in delta}:
        if key not in out:
            raise ModelLoadError(f"the retriever's delta changes {key!r}, which the embedder does not have")
        if key + ".full" in delta:
            change = delta[key + ".full"].astype(np.float32)
        else:
            change = _low_rank_product(delta[key + ".a"], delta[key + ".b"])
        if change.shape != out[key].shape:
            raise ModelLoadError(f"the retriever's delta for {key!r} has shape {change.shape}, the embedder's "
                                 f"weight {out[key].shape}")
        out[key] = (out[key].astype(np.float32) + change).astype(out[key].dtype)
    return out
