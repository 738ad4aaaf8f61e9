"""Commands of training: generate-data, train (the train extra)."""


from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from ..artefact import ADAPTER_DIR, LORA_GGUF
from ..settings import (
    MAX_K,
)

if TYPE_CHECKING:
    pass

from ._common import _friendly_errors, _require_train_extra, main


def _simulation_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """One flag per field of SimulationConfig (its ``help`` metadata is the flag's help)."""
    from dataclasses import MISSING, fields

    from gentool_router_train.simulation_config import SimulationConfig

    for f in reversed(fields(SimulationConfig)):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            func = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=f.default, show_default=True,
                                help=f.metadata.get("help"))(func)
            continue
        if f.metadata.get("path"):  # a file, or none ("")
            func = click.option(flag, f.name, type=click.Path(exists=True, dir_okay=False), default=None,
                                callback=lambda _ctx, _param, value: value or "", help=f.metadata.get("help"))(func)
            continue
        kind = click.Choice(f.metadata["choices"]) if "choices" in f.metadata else type(f.default)
        func = click.option(flag, f.name, type=kind, default=f.default if f.default is not MISSING else None,
                            show_default=True, help=f.metadata.get("help"))(func)
    return func


@main.command("generate-data")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for train.jsonl, dev.jsonl, test.jsonl, stats.json and DATASET_CARD.md: new, empty, or an "
                   "earlier generate-data output (replaced atomically).")
@_simulation_options
@_friendly_errors
def generate_data_command(out: Path, **settings: Any) -> None:
    """Simulate GenTool training and test data: zero-to-one pairs, weak-to-strong cases, four scenarios."""
    from gentool_router_train.simulate import generate_dataset
    from gentool_router_train.simulation_config import SimulationConfig

    if settings["k"] < 2 or settings["k"] > MAX_K:
        raise click.BadParameter(f"k must be between 2 and {MAX_K}", param_hint="--k")
    try:
        config = SimulationConfig(**settings)
    except ValueError as exc:  # flags that do not go together
        raise click.UsageError(str(exc)) from exc
    generate_dataset(out, config, log=click.echo)
    click.echo(f"Written to {out}")


# The train options' defaults are TrainConfig's, so the CLI and the Python API cannot disagree (the trainer
# config module imports nothing heavy).
from gentool_router_train.config import TrainConfig as _TRAIN_DEFAULTS  # noqa: E402


@main.command("train")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder from generate-data (train.jsonl, dev.jsonl).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: adapter/, training.json, train_log.jsonl; a checkpoint/ while running.")
@click.option("--stages", type=click.Choice(["two-stage", "selection-only"]), default="two-stage", show_default=True,
              help="GenTool's ranking then selection, or stage 2 (selection) alone.")
@click.option("--ranking-examples", type=click.IntRange(min=1), default=_TRAIN_DEFAULTS.ranking_examples,
              show_default=True,
              help="Records trained on in stage 1 (ranking).")
@click.option("--selection-examples", type=click.IntRange(min=1), default=_TRAIN_DEFAULTS.selection_examples,
              show_default=True,
              help="Records trained on in stage 2 (selection), none of stage 1's.")
@click.option("--batch-size", type=click.IntRange(min=1), default=_TRAIN_DEFAULTS.batch_size, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=_TRAIN_DEFAULTS.learning_rate,
              show_default=True)
@click.option("--lora-r", type=click.IntRange(min=1), default=_TRAIN_DEFAULTS.lora_r, show_default=True)
@click.option("--lora-alpha", type=click.IntRange(min=1), default=_TRAIN_DEFAULTS.lora_alpha, show_default=True)
@click.option("--lora-first-layer", type=click.IntRange(min=0), default=_TRAIN_DEFAULTS.lora_first_layer,
              show_default=True,
              help="LoRA on this layer and above only (backward stops there); 0 for all layers.")
@click.option("--dev-examples", type=click.IntRange(min=1), default=_TRAIN_DEFAULTS.dev_examples, show_default=True,
              help="Dev records for the periodic accuracy check (each stage ends with all of them).")
@click.option("--eval-every", type=click.IntRange(min=0), default=_TRAIN_DEFAULTS.eval_every, show_default=True,
              help="Steps between dev checks (0: only at the end of each stage).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=_TRAIN_DEFAULTS.checkpoint_every,
              show_default=True)
@click.option("--seed", default=_TRAIN_DEFAULTS.seed, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (default: the cores available).")
@click.option("--base", "base_gguf", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Base model GGUF (default: the packaged SmolLM2-135M-Instruct).")
@click.option("--no-export", is_flag=True, help="Skip writing the GGUF LoRA adapter at the end.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def train_command(data_dir: Path, out: Path, stages: str, no_export: bool, quiet: bool, **settings: Any) -> None:
    """Fine-tune the GenTool selector (LoRA): stage 1 ranking, then stage 2 selection. Resumes if interrupted."""
    _require_train_extra("train", "torch", "transformers", "peft", *(() if no_export else ("gguf",)))
    from gentool_router_train.trainer import TrainConfig, train

    config = TrainConfig(data_dir=data_dir, stages=("selection",) if stages == "selection-only" else
                         ("ranking", "selection"), **settings)
    summary = train(config, out, show_progress=not quiet, log=click.echo)
    click.echo(f"Adapter written to {out / 'adapter'} ({summary['train_seconds']:.0f} s of training)")
    if not no_export:
        from gentool_router_quantize.lora import export_lora_gguf

        gguf = export_lora_gguf(out / ADAPTER_DIR, out / LORA_GGUF, base_gguf=settings["base_gguf"])
        click.echo(f"GGUF LoRA adapter: {gguf}  (route with --adapter {gguf})")


@main.command("train-retriever")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder from generate-data (its train.jsonl gives the query-tool pairs).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The delta file to write (.safetensors): new, or an earlier retriever delta (replaced atomically).")
@click.option("--pairs", "pairs_limit", type=click.IntRange(min=1), default=6000, show_default=True,
              help="Query-tool pairs trained on (one epoch; 6,000 take about 16 minutes on 2 cores).")
@click.option("--rank", type=click.IntRange(min=1), default=16, show_default=True,
              help="Rank of each weight matrix's delta in the file.")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@_friendly_errors
def train_retriever_command(data_dir: Path, out: Path, pairs_limit: int, rank: int, seed: int, threads: int) -> None:
    """Fine-tune the retriever's embedder on the training queries; write its low-rank delta (TRAINING.md)."""
    _require_train_extra("train-retriever", "torch", "sentence_transformers")
    from gentool_router.errors import GentoolError
    from gentool_router.retriever_delta import load_delta
    from gentool_router_train.retriever import train_retriever

    if out.exists():
        try:
            load_delta(out)
        except GentoolError:
            raise click.UsageError(f"{out} exists and is not a retriever delta: choose another --out") from None
    train_retriever(data_dir, out, pairs_limit=pairs_limit, rank=rank, seed=seed, threads=threads, log=click.echo)
    click.echo(f"Retriever delta written to {out}; ship it as gentool_router/data/retriever-delta.safetensors")
