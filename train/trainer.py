"""Two-stage GenTool fine-tuning of the selector: stage 1 ranking, stage 2 selection, one LoRA adapter.

The recipe is designed for two CPU cores (about 3 hours for the shipped run), and every choice was measured
(BENCHMARKS.md, "Training"):

- **LoRA on the upper layers only** (:attr:`TrainConfig.lora_first_layer`): the lower layers have no trainable
  weights, so back-propagation stops halfway down the model.
- **Loss on the answer only, logits on the answer only**: the LM head (49k × 576) costs as much per token as
  eight transformer layers; we apply its yes and no rows at the answer positions alone.
- **Each record packed into one row** (:func:`_pack`): the static prefix and the query, shared by the 5-6
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

import dataclasses
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from gentool_router import __version__ as runtime_version
from gentool_router.errors import GentoolError
from gentool_router.prompt import PROMPT_VERSION
from gentool_router.selector import default_threads
from gentool_router.tool_text import TOOL_TEXT_VERSION

from .base_model import gguf_sha256, load_base
from .encode import STAGES, Example, answer_ids, encode_record, hf_tokenize, load_records, sample_balanced

__all__ = [
    "TrainConfig", "train", "calibrate_run", "calibrate_no_tool_score", "choice_accuracy", "dev_scores",
    "choice_scores", "split_scores", "selection_loss", "ranking_loss", "LORA_TARGETS", "ADAPTER_DIR", "TRAINING_JSON",
]

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_DIR = "adapter"
TRAINING_JSON = "training.json"
_CHECKPOINT_DIR = "checkpoint"
_LOG = "train_log.jsonl"


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored with the adapter; a resumed run must match it).

    Attributes:
        data_dir: Folder with ``train.jsonl`` and ``dev.jsonl`` from ``gentool-router generate-data``.
        stages: ``("ranking", "selection")`` for GenTool's two stages; ``("selection",)`` for stage 2 only.
        ranking_examples: Records trained on in stage 1 (each once).
        selection_examples: Records trained on in stage 2 (each once, none of stage 1's).
        batch_size: Examples per optimizer step.
        learning_rate: Peak AdamW learning rate of each stage (linear warm-up, cosine decay to 10%).
        warmup_steps: Warm-up steps of each stage.
        lora_r / lora_alpha: LoRA rank and scale.
        lora_first_layer: LoRA on this layer and above (SmolLM2-135M has 30); 0 trains every layer.
        max_prompt_tokens: Records with a longer candidate prompt are skipped (the runtime's are far shorter).
        dev_examples: Dev records used for the periodic accuracy check (the final check uses all).
        eval_every: Steps between dev checks (0: only at the end of each stage).
        checkpoint_every: Steps between checkpoints.
        seed: Seed of sampling, order and LoRA initialisation.
        threads: CPU threads (default: the cores available).
        base_gguf: Base model GGUF (default: the packaged SmolLM2-135M-Instruct).
    """

    data_dir: Path
    stages: tuple[str, ...] = ("ranking", "selection")
    ranking_examples: int = 1200
    selection_examples: int = 2400
    batch_size: int = 4
    learning_rate: float = 5e-4
    warmup_steps: int = 20
    lora_r: int = 16
    lora_alpha: int = 32
    lora_first_layer: int = 15
    max_prompt_tokens: int = 256
    dev_examples: int = 120
    eval_every: int = 150
    checkpoint_every: int = 50
    seed: int = 0
    threads: int | None = None
    base_gguf: Path | None = None

    def examples_for(self, stage: str) -> int:
        return self.ranking_examples if stage == "ranking" else self.selection_examples

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data_dir"] = str(self.data_dir)
        out["base_gguf"] = str(self.base_gguf) if self.base_gguf else None
        out["stages"] = list(self.stages)
        return out

    def identity(self) -> dict[str, Any]:
        """The settings a resumed run must share (threads may change between runs)."""
        out = self.to_json()
        out.pop("threads")
        return out


@dataclass
class _Progress:
    stage_index: int = 0
    step: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def train(config: TrainConfig, out_dir: Path, *, show_progress: bool = True,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a training run; returns the summary written to ``out_dir/training.json``."""
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
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

    progress = _Progress()
    checkpoint = out_dir / _CHECKPOINT_DIR
    state_file = checkpoint / "state.json"
    interrupted_swap = checkpoint.with_name(checkpoint.name + ".old")
    if not state_file.is_file() and (interrupted_swap / "state.json").is_file():
        shutil.rmtree(checkpoint, ignore_errors=True)
        os.replace(interrupted_swap, checkpoint)  # killed between the two renames of _save_checkpoint
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        if state["config"] != config.identity():
            raise GentoolError(
                f"{out_dir} holds a checkpoint of a run with other settings; use another --out folder "
                "or delete it to start over"
            )
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(checkpoint / "adapter.safetensors"))
        progress = _Progress(state["stage_index"], state["step"], state["seconds"], state["history"])
        log(f"resuming from {checkpoint}: stage {config.stages[progress.stage_index]}, step {progress.step}")
    elif (out_dir / TRAINING_JSON).is_file():
        raise GentoolError(f"{out_dir} already holds a finished run; choose another --out folder")

    log_path = out_dir / _LOG
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
            loss = _loss(model, batches[step], stage, answers, tokenizer.pad_token_id or 0, device)
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
                _append(log_path, {"stage": stage, "step": done, "steps": len(batches),
                                   "loss": round(sum(recent[-10:]) / len(recent[-10:]), 4),
                                   "lr": scheduler.get_last_lr()[0], "train_seconds": round(progress.seconds, 1)})
            if config.eval_every and done % config.eval_every == 0 and done < len(batches):
                entry = {"stage": stage, "step": done, "dev_examples": len(dev_small),
                         **choice_accuracy(model, dev_small, answers, device)}
                progress.history.append(entry)
                _append(log_path, entry)
                model.train()
            if done % config.checkpoint_every == 0 and done < len(batches):
                _save_checkpoint(model, optimizer, scheduler, checkpoint, config, stage_index, done, progress)
        bar.close()
        final_scores = dev_scores(model, dev_all, answers, device)
        entry = {"stage": stage, "step": len(batches), "dev_examples": len(dev_all),
                 **choice_accuracy(model, dev_all, answers, device, final_scores)}
        progress.history.append(entry)
        _append(log_path, entry)
        log(f"stage {stage_index + 1} ({stage}): {len(batches)} steps over {len(examples)} examples; "
            f"dev accuracy {entry['accuracy']:.3f}")
        progress.step = 0
        _save_checkpoint(model, optimizer, scheduler, checkpoint, config, stage_index + 1, 0, progress)

    # the last stage's final dev scores are the trained model's: calibrate on them rather than scoring again
    if final_scores is None:  # resumed after the last stage had finished
        final_scores = dev_scores(model, dev_all, answers, device)
    no_tool_score, calibrated_accuracy = calibrate_no_tool_score(dev_all, final_scores)
    log(f"no-tool score calibrated on dev: {no_tool_score:.3f} (dev accuracy {calibrated_accuracy:.3f})")
    adapter_dir = out_dir / ADAPTER_DIR
    staging = out_dir / f".{ADAPTER_DIR}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    shutil.rmtree(adapter_dir, ignore_errors=True)
    os.replace(staging, adapter_dir)
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
    _write_json(out_dir / TRAINING_JSON, summary)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return summary


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
    summary = json.loads((run_dir / TRAINING_JSON).read_text(encoding="utf-8"))
    config = summary["config"]
    torch.set_num_threads(threads or default_threads())
    model, tokenizer = load_base(Path(config["base_gguf"]) if config.get("base_gguf") else None)
    model = PeftModel.from_pretrained(model, str(run_dir / ADAPTER_DIR))
    tokenize = hf_tokenize(tokenizer)
    dev = [encode_record(r, tokenize) for r in load_records(Path(config["data_dir"]) / "dev.jsonl")]
    summary["no_tool_score"], summary["dev_accuracy_calibrated"] = calibrate_no_tool_score(
        dev, dev_scores(model, dev, answer_ids(tokenize), "cpu"))
    _write_json(run_dir / TRAINING_JSON, summary)
    return summary


# ------------------------------------------------------------------ helpers
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


def _pack(batch: Sequence[Example], pad_id: int) -> tuple[Any, Any, Any, list[tuple[int, int]]]:
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

    The examples are packed (:func:`_pack`), and only the two answer rows of the LM head are applied, at the
    tails' last tokens (the whole 49k-row LM head costs as much per token as eight transformer layers).
    """
    import torch

    ids, positions, mask, ends = _pack(batch, pad_id)
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


def _loss(model: Any, batch: Sequence[Example], stage: str, answers: tuple[int, int], pad_id: int,
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


def _save_checkpoint(model: Any, optimizer: Any, scheduler: Any, folder: Path, config: TrainConfig,
                     stage_index: int, step: int, progress: _Progress) -> None:
    """Write the checkpoint to a staging folder and swap it in, so a kill never leaves half a checkpoint."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()},
              staging / "adapter.safetensors")
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    torch.save(scheduler.state_dict(), staging / "scheduler.pt")
    _write_json(staging / "state.json", {"config": config.identity(), "stage_index": stage_index, "step": step,
                                         "seconds": progress.seconds, "history": progress.history})
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


def _append(path: Path, entry: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
