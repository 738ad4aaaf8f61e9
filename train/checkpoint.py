"""Checkpoints of a training run: written atomically, resumed only by a run with the same settings."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gentool_router.errors import GentoolError
from gentool_router.persistence import write_json

from .config import TrainConfig

__all__ = ["Progress", "save_checkpoint", "resume", "append_log"]


@dataclass
class Progress:
    stage_index: int = 0
    step: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def save_checkpoint(model: Any, optimizer: Any, scheduler: Any, folder: Path, config: TrainConfig,
                     stage_index: int, step: int, progress: Progress) -> None:
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
    write_json(staging / "state.json", {"config": config.identity(), "stage_index": stage_index, "step": step,
                                         "seconds": progress.seconds, "history": progress.history})
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


def resume(model: Any, checkpoint: Path, config: TrainConfig, log: Callable[[str], None]) -> Progress | None:
    """Load the checkpoint in ``checkpoint`` into ``model`` and return its position, or None when there is none.

    A run killed between the two renames of :func:`save_checkpoint` is put back first.
    Raises:
        GentoolError: the checkpoint belongs to a run with other settings.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state_file = checkpoint / "state.json"
    interrupted_swap = checkpoint.with_name(checkpoint.name + ".old")
    if not state_file.is_file() and (interrupted_swap / "state.json").is_file():
        shutil.rmtree(checkpoint, ignore_errors=True)
        os.replace(interrupted_swap, checkpoint)
    if not state_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    if state["config"] != config.identity():
        raise GentoolError(f"{checkpoint.parent} holds a checkpoint of a run with other settings; use another "
                           "--out folder or delete it to start over")
    set_peft_model_state_dict(model, load_file(checkpoint / "adapter.safetensors"))
    progress = Progress(state["stage_index"], state["step"], state["seconds"], state["history"])
    log(f"resuming from {checkpoint}: stage {config.stages[progress.stage_index]}, step {progress.step}")
    return progress


def append_log(path: Path, entry: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
