"""Two-stage GenTool fine-tuning of the selector: stage 1 ranking, stage 2 selection, one LoRA adapter.

The recipe is designed for two CPU cores (about 3 hours for the shipped run), and every choice was measured
(BENCHMARKS.md, "Training"):

- **LoRA on the upper layers only** (:attr:`TrainConfig.lora_first_layer`): the lower layers have no trainable
  weights, so back-propagation stops halfway down the model.
- **Loss on the answer only, logits on the answer only**: the LM head (49k × 576) costs as much per token as
  eight transformer layers; we apply its yes and no rows at the answer positions alone.
- **Each record packed into one row** (``scoring.pack_examples``): the static prefix and the query, shared by the 5-6
  candidate prompts of a record, are evaluated once, and an attention mask keeps the candidates apart. Same
  scores as one prompt per candidate (tested), half the tokens: a step of 4 records takes 2.9 s instead of 6.2 s
  (``benchmarks/bench_train_step.py``).
- **No padding waste**: examples are grouped by their packed length before batching.
- **Examples that teach most**: an equal share of each case type (:func:`sample_balanced`), so the rare hard
  cases (no tool fits, weak next to strong) are not drowned by easy ones; stage 2 sees records stage 1 did not.

Checkpoints (adapter, optimizer, position) are written atomically every ``checkpoint_every`` steps; running the
same command again resumes from the last one. A JSON-lines log records losses and dev accuracy.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from gentool_router import __version__ as runtime_version
from gentool_router.artefact import ADAPTER_DIR, CHECKPOINT_DIR, TRAIN_LOG, TRAINING_JSON, write_training
from gentool_router.errors import GentoolError
from gentool_router.persistence import atomic_folder
from gentool_router.prompt import PROMPT_VERSION
from gentool_router.selector import default_threads
from gentool_router.tool_text import TOOL_TEXT_VERSION

from .base_model import gguf_sha256, load_base
from .calibration import calibrate_no_tool_score, calibrate_run
from .checkpoint import Progress, append_log, resume, save_checkpoint
from .config import LORA_TARGETS, TrainConfig
from .encode import STAGES, Example, answer_ids, encode_record, hf_tokenize, load_records, sample_balanced
from .losses import batch_loss, ranking_loss, selection_loss
from .scoring import choice_accuracy, choice_scores, dev_scores, split_scores

# the loop lives here; its parts by role: config, scoring, losses, calibration, checkpoint (also importable from here)
__all__ = [
    "TrainConfig", "train", "calibrate_run", "calibrate_no_tool_score", "choice_accuracy", "dev_scores",
    "choice_scores", "split_scores", "selection_loss", "ranking_loss", "LORA_TARGETS", "ADAPTER_DIR", "TRAINING_JSON",
]


def train(config: TrainConfig, out_dir: Path, *, show_progress: bool = True,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a training run; returns the summary written to ``out_dir/training.json``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    for stage in config.stages:
        if stage not in STAGES:
            raise GentoolError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads or default_threads())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    random.seed(config.seed)
    torch.manual_seed(config.seed)

    model, tokenizer = load_base(config.base_gguf, device)
    tokenize = hf_tokenize(tokenizer)
    answers = answer_ids(tokenize)
    n_layers = model.config.num_hidden_layers
    if not 0 <= config.lora_first_layer < n_layers:
        raise GentoolError(f"lora_first_layer must be in 0..{n_layers - 1}, got {config.lora_first_layer}")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM",
                      layers_to_transform=list(range(config.lora_first_layer, n_layers)))
    model = get_peft_model(model, lora)

    train_records = load_records(Path(config.data_dir) / "train.jsonl")
    dev_records = load_records(Path(config.data_dir) / "dev.jsonl")
    plan = _plan(config, train_records)
    dev_all = [encode_record(r, tokenize) for r in dev_records]
    dev_small = dev_all[: config.dev_examples]

    checkpoint = out_dir / CHECKPOINT_DIR
    progress = resume(model, checkpoint, config, log)
    if progress is None:
        if (out_dir / TRAINING_JSON).is_file():
            raise GentoolError(f"{out_dir} already holds a finished run; choose another --out folder")
        progress = Progress()

    log_path = out_dir / TRAIN_LOG
    final_scores = None
    for stage_index in range(progress.stage_index, len(config.stages)):
        stage = config.stages[stage_index]
        examples = [e for e in (encode_record(r, tokenize) for r in plan[stage])
                    if e.tails and len(e.head) + max(len(t) for t in e.tails) <= config.max_prompt_tokens]
        batches = _batches(examples, config.batch_size, config.seed + stage_index)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      lr=config.learning_rate, weight_decay=0.0)
        schedule = _schedule(config.warmup_steps, len(batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        start_step = progress.step if stage_index == progress.stage_index else 0
        if start_step:
            optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
            scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
        model.train()
        bar = tqdm(total=len(batches), initial=start_step, desc=f"stage {stage_index + 1} {stage}",
                   disable=not show_progress, unit="step")
        recent: list[float] = []
        for step in range(start_step, len(batches)):
            began = time.perf_counter()
            loss = batch_loss(model, batches[step], stage, answers, tokenizer.pad_token_id or 0, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.seconds += time.perf_counter() - began
            recent.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{sum(recent[-20:]) / len(recent[-20:]):.3f}")
            done = step + 1
            if done % 10 == 0 or done == len(batches):
                append_log(log_path, {"stage": stage, "step": done, "steps": len(batches),
                                   "loss": round(sum(recent[-10:]) / len(recent[-10:]), 4),
                                   "lr": scheduler.get_last_lr()[0], "train_seconds": round(progress.seconds, 1)})
            if config.eval_every and done % config.eval_every == 0 and done < len(batches):
                entry = {"stage": stage, "step": done, "dev_examples": len(dev_small),
                         **choice_accuracy(model, dev_small, answers, device)}
                progress.history.append(entry)
                append_log(log_path, entry)
                model.train()
            if done % config.checkpoint_every == 0 and done < len(batches):
                save_checkpoint(model, optimizer, scheduler, checkpoint, config, stage_index, done, progress)
        bar.close()
        final_scores = dev_scores(model, dev_all, answers, device)
        entry = {"stage": stage, "step": len(batches), "dev_examples": len(dev_all),
                 **choice_accuracy(model, dev_all, answers, device, final_scores)}
        progress.history.append(entry)
        append_log(log_path, entry)
        log(f"stage {stage_index + 1} ({stage}): {len(batches)} steps over {len(examples)} examples; "
            f"dev accuracy {entry['accuracy']:.3f}")
        progress.step = 0
        save_checkpoint(model, optimizer, scheduler, checkpoint, config, stage_index + 1, 0, progress)

    # the last stage's final dev scores are the trained model's: calibrate on them rather than scoring again
    if final_scores is None:  # resumed after the last stage had finished
        final_scores = dev_scores(model, dev_all, answers, device)
    no_tool_score, calibrated_accuracy = calibrate_no_tool_score(dev_all, final_scores)
    log(f"no-tool score calibrated on dev: {no_tool_score:.3f} (dev accuracy {calibrated_accuracy:.3f})")
    # swapped in whole: a kill leaves the previous adapter/ (a run's own folder, replaced whatever it holds)
    atomic_folder(out_dir / ADAPTER_DIR, model.save_pretrained,
                  owned_files=lambda folder: {entry.name for entry in folder.iterdir()}, kind="adapter folder")
    summary = {
        "config": config.to_json(),
        "base_gguf_sha256": gguf_sha256(Path(config.base_gguf) if config.base_gguf else _default_base()),
        "prompt_version": PROMPT_VERSION,
        "tool_text_version": TOOL_TEXT_VERSION,
        "gentool_router_version": runtime_version,
        "train_seconds": round(progress.seconds, 1),
        "device": device,
        "threads": torch.get_num_threads(),
        "dev": progress.history,
        "no_tool_score": no_tool_score,
        "dev_accuracy_calibrated": calibrated_accuracy,
    }
    write_training(out_dir, summary)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return summary


def _default_base() -> Path:
    from gentool_router.models import base_selector_gguf

    return base_selector_gguf()


def _plan(config: TrainConfig, records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Disjoint, balanced record samples for each stage."""
    plan: dict[str, list[dict[str, Any]]] = {}
    used: set[str] = set()
    for index, stage in enumerate(config.stages):
        chosen = sample_balanced(records, config.examples_for(stage), config.seed + 101 * index, exclude=used)
        if not chosen:
            raise GentoolError(f"no training records left for stage {stage}")
        used.update(r.get("id") for r in chosen)
        plan[stage] = chosen
    return plan


def _batches(examples: Sequence[Example], batch_size: int, seed: int) -> list[list[Example]]:
    """Batches of similar length (little padding), in a seeded random order."""
    rng = random.Random(seed)
    shuffled = list(examples)
    rng.shuffle(shuffled)
    batches: list[list[Example]] = []
    window = batch_size * 16
    for start in range(0, len(shuffled), window):
        chunk = sorted(shuffled[start:start + window], key=lambda e: e.tokens)
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _schedule(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
