"""GenTool training pipeline (installed as ``gentool_router_train``; the ``train`` extra).

``simulate``: the GenTool data simulation (zero-to-one pairs, weak-to-strong variants, four held-out
scenarios) over the vendored Seal-Tools and MetaTool corpora, and around a user's own catalogue
(``own_catalogue``); ``trainer``: the two-stage LoRA fine-tuning. The Python API of docs/OWN_CATALOGUE.md::

    from gentool_router_train import SimulationConfig, TrainConfig, generate, train
    generate("data/mine", SimulationConfig(tools="tools.jsonl", queries="queries.jsonl"))
    train(TrainConfig(data_dir=Path("data/mine")), Path("runs/mine"))

The names load on first use, so importing the package does not import the simulation or torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["generate", "SimulationConfig", "train", "TrainConfig", "load_own_catalogue", "OwnCatalogue"]

_EXPORTS = {
    "generate": ("simulate", "generate_dataset"),
    "SimulationConfig": ("simulation_config", "SimulationConfig"),
    "train": ("trainer", "train"),
    "TrainConfig": ("trainer", "TrainConfig"),
    "load_own_catalogue": ("own_catalogue", "load_own_catalogue"),
    "OwnCatalogue": ("own_catalogue", "OwnCatalogue"),
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(import_module(f".{module}", __name__), attribute)
