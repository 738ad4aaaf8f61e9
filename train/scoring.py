"""Scoring candidates with the transformers model exactly as the runtime selector scores them.

Each record's candidates are packed into one row (:func:`pack_examples`) and only the yes/no rows of the LM head
are applied at each candidate's last token: the candidates' yes-minus-no gaps, then the fixed no-tool score.
"""

from __future__ import annotations

from typing import Any, Sequence

from .encode import Example

__all__ = ["pack_examples", "choice_scores", "split_scores", "dev_scores", "choice_accuracy"]


def pack_examples(batch: Sequence[Example], pad_id: int) -> tuple[Any, Any, Any, list[tuple[int, int]]]:
    """One row per example: its head once, then every candidate's tail, with a mask that keeps tails apart.

    Each tail attends to the head and to its own earlier tokens only, and its positions continue from the head's
    end, so every tail is computed exactly as its own ``head + tail`` prompt would be (the runtime evaluates the
    query once and each candidate from its KV cache: the same thing). The head, shared by 5-6 candidates, is
    evaluated once instead of once per candidate, which halves the tokens a training step costs.

    Returns ``(ids, positions, mask, ends)``: ``mask`` is additive (0 or the dtype's minimum), shape
    ``[batch, 1, width, width]``; ``ends`` lists ``(row, column)`` of each tail's last token, in order.
    """
    import torch

    width = max(e.tokens for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    block = torch.full((len(batch), width), -2, dtype=torch.long)  # -1: head, i: tail i, -2: padding
    ends: list[tuple[int, int]] = []
    for row, example in enumerate(batch):
        head = len(example.head)
        ids[row, :head] = torch.tensor(example.head, dtype=torch.long)
        positions[row, :head] = torch.arange(head)
        block[row, :head] = -1
        at = head
        for index, tail in enumerate(example.tails):
            ids[row, at:at + len(tail)] = torch.tensor(tail, dtype=torch.long)
            positions[row, at:at + len(tail)] = torch.arange(head, head + len(tail))
            block[row, at:at + len(tail)] = index
            at += len(tail)
            ends.append((row, at - 1))
    query_block, key_block = block[:, :, None], block[:, None, :]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    allowed = causal & ((key_block == -1) | (key_block == query_block)) & (key_block != -2)
    allowed |= torch.eye(width, dtype=torch.bool)  # padding attends to itself: no all-masked row, no NaN
    mask = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, torch.finfo(torch.float32).min)
    return ids, positions, mask[:, None], ends


def choice_scores(model: Any, batch: Sequence[Example], answers: tuple[int, int], pad_id: int,
                  device: str) -> list[Any]:
    """Per example: the candidates' yes-minus-no logit gaps followed by the fixed no-tool score.

    The examples are packed (:func:`pack_examples`), and only the two answer rows of the LM head are applied, at the
    tails' last tokens (the whole 49k-row LM head costs as much per token as eight transformer layers).
    """
    import torch

    ids, positions, mask, ends = pack_examples(batch, pad_id)
    hidden = model.get_decoder()(input_ids=ids.to(device), attention_mask=mask.to(device, model.dtype),
                                 position_ids=positions.to(device), use_cache=False).last_hidden_state
    rows = torch.tensor([r for r, _ in ends], device=hidden.device)
    columns = torch.tensor([c for _, c in ends], device=hidden.device)
    head_weight = model.get_output_embeddings().weight
    gaps = hidden[rows, columns].float() @ (head_weight[answers[0]] - head_weight[answers[1]]).float()
    return split_scores(gaps, batch)


def split_scores(gaps: Any, batch: Sequence[Example]) -> list[Any]:
    """The flat candidate gaps of a batch, cut per example, each followed by the fixed no-tool score."""
    import torch

    from gentool_router.prompt import NO_TOOL_SCORE

    scores, offset = [], 0
    for example in batch:
        k = len(example.tails)
        scores.append(torch.cat([gaps[offset:offset + k], gaps.new_full((1,), NO_TOOL_SCORE)]))
        offset += k
    return scores


def dev_scores(model: Any, examples: Sequence[Example], answers: tuple[int, int], device: str,
               batch_size: int = 8) -> list[Any]:
    """Each example's choice scores (candidates, then no tool), scored exactly as the runtime selector scores."""
    import torch

    model.eval()
    scores: list[Any] = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            scores.extend(choice_scores(model, examples[start:start + batch_size], answers, 0, device))
    return scores


def choice_accuracy(model: Any, examples: Sequence[Example], answers: tuple[int, int], device: str,
                    scores: Sequence[Any] | None = None) -> dict[str, Any]:
    """Accuracy of the chosen tool (or no tool); pass ``scores`` from :func:`dev_scores` to reuse them."""
    import torch

    scores = dev_scores(model, examples, answers, device) if scores is None else scores
    correct = 0
    by_type: dict[str, list[int]] = {}
    for example, row in zip(examples, scores):
        hit = int(int(torch.argmax(row)) == example.target)
        correct += hit
        counts = by_type.setdefault(example.case_type, [0, 0])
        counts[0] += hit
        counts[1] += 1
    return {
        "accuracy": correct / max(1, len(examples)),
        "per_case_type": {t: round(h / n, 4) for t, (h, n) in sorted(by_type.items())},
    }
