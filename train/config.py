"""The settings of a training run: one dataclass, whose defaults the CLI's ``train`` flags show."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "LORA_TARGETS"]

#: The projections LoRA adapts in each transformer block it reaches.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


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
