"""What every command shares: the ``gentool-router`` group, error handling, shared options, route printing."""


from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from ..errors import GentoolError
from ..settings import (
    DEFAULT_K,
    MAX_K,
    PACKAGED,
)

if TYPE_CHECKING:
    pass


__all__ = ["main"]


#: `gentool-router demo` routes this many of the bundled example queries unless given --all.
DEMO_QUERIES = 21


def _friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's errors into a one-line ``Error: ...`` and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GentoolError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc

    return wrapper


#: How to install what `train`, `export` and `parity` import beyond the library (torch, transformers, peft, gguf).
TRAIN_EXTRA = "pip install 'gentool-router[train]'"


def _require_train_extra(command: str, *modules: str) -> None:
    """Exit with one line naming the ``train`` extra, not a traceback, when one of ``modules`` is not installed.

    Looked up, not imported (torch alone takes seconds): the command imports them when it needs them.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(f"{command} needs the 'train' extra ({', '.join(missing)} missing): {TRAIN_EXTRA}")


def _selector_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Selector GGUF (default: the packaged GenTool selector's base model)."),
        click.option("--adapter", "adapter_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="GGUF LoRA adapter applied over --model."),
        click.option("--threads", "n_threads", type=click.IntRange(min=1),
                     help="CPU threads for the selector (default: the cores available)."),
        click.option("--gpu-layers", "n_gpu_layers", type=click.IntRange(min=0), default=None,
                     help="Layers to offload to a GPU (needs a GPU build of llama-cpp-python)."),
        click.option("-k", "--k", "k", type=click.IntRange(min=1, max=MAX_K), default=None,
                     help=f"Candidates retrieved per query (default {DEFAULT_K}, or the saved setting)."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gentool-router")
def main() -> None:
    """Route queries to the right tool with FAISS retrieval and a GenTool selector model, offline."""


def _decision_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--decision", "decision_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Decision model file from `gentool-router calibrate --out` (default: the index's own, "
                          "else the one shipped for the packaged selector)."),
        click.option("--no-decision", is_flag=True,
                     help="Let the selector's own no-tool threshold decide (the router before the decision model)."),
        click.option("--explain", is_flag=True,
                     help="Show each candidate's evidence and what decided (with --json: an 'explanation' key)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _decision_setting(decision_path: Path | None, no_decision: bool) -> Any:
    if decision_path is not None and no_decision:
        raise click.UsageError("give --decision or --no-decision, not both")
    return None if no_decision else decision_path if decision_path is not None else PACKAGED


def _print_route(route: Any, as_json: bool, explain: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(route.to_dict(explanation=explain), ensure_ascii=False))
        return
    t = route.timings
    best = route.ranking[0]
    click.echo(click.style(f"Query: {route.query}", bold=True))
    flag = "  (selector failed: retrieval fallback)" if route.fallback else ""
    click.echo(f"  -> {click.style(route.name, fg='green' if route.tool else 'yellow')}  p={best.score:.2f}{flag}")
    click.echo("     ranking: " + " | ".join(f"{c.name} {c.score:.2f}" for c in route.ranking[:4]))
    click.echo(
        f"     time: embed {t.embed * 1000:.0f} ms, search {t.search * 1000:.1f} ms, "
        f"select {t.select * 1000:.0f} ms, decide {t.decide * 1000:.1f} ms ({route.prompt_tokens} prompt tokens)"
    )
    if explain:
        _print_explanation(route)


def _print_explanation(route: Any) -> None:
    explanation = route.explanation or {}
    if explanation.get("not_scored"):
        click.echo(f"     not scored ({explanation['not_scored_why']}): {', '.join(explanation['not_scored'])}")
    if route.decided_by != "decision":
        click.echo(f"     decided by: {route.decided_by} ({explanation.get('note', '')})")
        return
    if explanation.get("part") == "small_catalogue":
        click.echo("     decided by: the decision model's small-catalogue part (the selector's gaps and the cosines "
                   "against a no-tool score from the query classifier and the best cosine)")
    else:
        click.echo("     decided by: the decision model over retrieval, BM25 and the selector (catalogue similarity "
                   f"mean {explanation['similarity_mean']:.2f}, sd {explanation['similarity_std']:.2f}; "
                   f"BM25 best: {explanation['lexical_best_name'] or '-'})")
    click.echo(f"       {'option':<32} {'p':>5}  {'cos':>5} {'rank':>4} {'bm25':>5} {'gap':>6}  strongest reasons")
    for option in explanation["options"]:
        reasons = sorted(option["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        why = ", ".join(f"{name} {value:+.1f}" for name, value in reasons)
        e = option.get("evidence")
        numbers = (f"{e['cosine']:5.2f} {e['rank']:4d} {e['lexical']:5.1f} {e['selector_gap']:6.1f}" if e
                   else f"{'':5} {'':4} {'':5} {'':6}")
        click.echo(f"       {option['name'][:32]:<32} {option['probability']:5.2f}  {numbers}  {why}")
    temperature = explanation.get("temperature", 1.0)
    if temperature != 1.0:
        click.echo(f"       (reasons add up to each option's utility; p: the softmax of the utilities divided by the "
                   f"temperature {temperature:.2f}, fitted for calibration)")
