"""The two GenTool losses on the runtime's scores: stage 1 ranking (Plackett–Luce), stage 2 selection."""

from __future__ import annotations

from typing import Any, Sequence

from .encode import Example
from .scoring import choice_scores

__all__ = ["batch_loss", "selection_loss", "ranking_loss"]


def batch_loss(model: Any, batch: Sequence[Example], stage: str, answers: tuple[int, int], pad_id: int,
          device: str) -> Any:
    """Stage 1: Plackett–Luce (ListMLE) on the full GenTool ranking; stage 2: cross-entropy on the one choice.

    Both work on the scores the runtime uses, with logits computed at the last position of each row only.
    """
    import torch

    losses = []
    for example, scores in zip(batch, choice_scores(model, batch, answers, pad_id, device)):
        if stage == "selection":
            losses.append(selection_loss(scores, example.target))
        else:
            losses.append(ranking_loss(scores, example.ranking))
    return torch.stack(losses).mean()


def selection_loss(scores: Any, target: int) -> Any:
    """Stage 2: cross-entropy of the softmax over the choices' scores (what the runtime ranks by)."""
    import torch

    return -torch.log_softmax(scores, dim=0)[target]


def ranking_loss(scores: Any, ranking: Sequence[int]) -> Any:
    """Stage 1: Plackett–Luce negative log-likelihood of the full ranking, averaged over its positions.

    Term i is ``-log P(ranking[i] is best among ranking[i:])``; the first term equals :func:`selection_loss`.
    """
    import torch

    ordered = scores[list(ranking)]
    tails = torch.logcumsumexp(ordered.flip(0), dim=0).flip(0)
    return (tails[:-1] - ordered[:-1]).mean()
