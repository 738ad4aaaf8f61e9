"""Seconds per training step, packed (the trainer's layout) against one prompt per candidate.

    .venv/bin/python benchmarks/bench_train_step.py --data data/gentool-v3 --lora-first-layer 15

Runs ``--steps`` stage-2 steps of ``--batch-size`` balanced train records each way (forward, loss, backward), after
one warm-up step, on the packaged base with a fresh LoRA; prints the mean seconds a step. Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

from gentool_router_train.scoring import split_scores


def one_row_per_candidate(model: Any, batch: Sequence[Any], answers: tuple[int, int], pad_id: int, device: str) -> list[Any]:
    """The layout before packing: each candidate's whole prompt as its own left-padded row."""
    import torch

    rows = [list(row) for example in batch for row in example.rows]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                   logits_to_keep=1).logits[:, -1].float()
    return split_scores(logits[:, answers[0]] - logits[:, answers[1]], batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/gentool-v3"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lora-first-layer", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model

    from gentool_router_train import trainer
    from gentool_router_train.base_model import load_base
    from gentool_router_train.encode import answer_ids, encode_record, hf_tokenize, load_records, sample_balanced

    torch.set_num_threads(args.threads)
    model, tokenizer = load_base()
    layers = list(range(args.lora_first_layer, model.config.num_hidden_layers))
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=list(trainer.LORA_TARGETS),
                                             task_type="CAUSAL_LM", layers_to_transform=layers))
    tokenize = hf_tokenize(tokenizer)
    answers = answer_ids(tokenize)
    records = sample_balanced(load_records(args.data / "train.jsonl"), args.batch_size * (args.steps + 1), 0)
    batches = trainer._batches([encode_record(r, tokenize) for r in records], args.batch_size, 0)
    for name, score in (("packed", trainer.choice_scores), ("one row per candidate", one_row_per_candidate)):
        seconds = []
        for batch in batches[: args.steps + 1]:
            began = time.perf_counter()
            scores = score(model, batch, answers, 0, "cpu")
            torch.stack([trainer.selection_loss(s, e.target) for s, e in zip(scores, batch)]).mean().backward()
            model.zero_grad()
            seconds.append(time.perf_counter() - began)
        print(f"{name}: {sum(seconds[1:]) / args.steps:.2f} s a step of {args.batch_size} records "
              f"(LoRA on layers {layers[0]}-{layers[-1]})", flush=True)


if __name__ == "__main__":
    main()
