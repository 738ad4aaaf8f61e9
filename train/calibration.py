"""The no-tool threshold of a trained selector, calibrated on held-out dev records."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from gentool_router.artefact import ADAPTER_DIR, read_training, write_training
from gentool_router.selector import default_threads

from .base_model import load_base
from .encode import Example, answer_ids, encode_record, hf_tokenize, load_records
from .scoring import dev_scores

__all__ = ["calibrate_no_tool_score", "calibrate_run"]


def calibrate_no_tool_score(examples: Sequence[Example], scores: Sequence[Any]) -> tuple[float, float]:
    """The no-tool score that maximises dev accuracy, and that accuracy.

    Training fixes the no-tool score at :data:`~gentool_router.prompt.NO_TOOL_SCORE`; where the model ends up
    slightly too eager or too shy to abstain, moving the threshold on held-out dev data corrects it without
    touching the weights. Ties go to the value closest to the training value.
    """
    import torch

    from gentool_router.prompt import NO_TOOL_SCORE

    best: list[tuple[float, int]] = []  # (best candidate score, 1/0 whether it is the target; -1: no tool is)
    for example, row in zip(examples, scores):
        candidates = row[:-1]
        if len(candidates) == 0:
            best.append((float("-inf"), -1 if example.target == 0 else 0))
            continue
        top = int(torch.argmax(candidates))
        no_tool = example.target == len(candidates)
        best.append((float(candidates[top]), -1 if no_tool else int(top == example.target)))
    if not best:
        return NO_TOOL_SCORE, 0.0

    def accuracy(threshold: float) -> float:
        hits = sum((score <= threshold) if label == -1 else (score > threshold and label == 1) for score, label in best)
        return hits / len(best)

    finite = sorted({score for score, _ in best if math.isfinite(score)})
    cuts = [NO_TOOL_SCORE] + [(a + b) / 2 for a, b in zip(finite, finite[1:])]
    threshold = max(cuts, key=lambda t: (round(accuracy(t), 9), -abs(t - NO_TOOL_SCORE)))
    return float(threshold), accuracy(threshold)


def calibrate_run(run_dir: Path, threads: int | None = None) -> dict[str, Any]:
    """Calibrate the no-tool score of a finished run (its adapter over the base) and record it in training.json."""
    import torch
    from peft import PeftModel

    run_dir = Path(run_dir)
    summary = read_training(run_dir)
    config = summary["config"]
    torch.set_num_threads(threads or default_threads())
    model, tokenizer = load_base(Path(config["base_gguf"]) if config.get("base_gguf") else None)
    model = PeftModel.from_pretrained(model, str(run_dir / ADAPTER_DIR))
    tokenize = hf_tokenize(tokenizer)
    dev = [encode_record(r, tokenize) for r in load_records(Path(config["data_dir"]) / "dev.jsonl")]
    summary["no_tool_score"], summary["dev_accuracy_calibrated"] = calibrate_no_tool_score(
        dev, dev_scores(model, dev, answer_ids(tokenize), "cpu"))
    write_training(run_dir, summary)
    return summary
