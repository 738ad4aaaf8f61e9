"""Commands of evaluation: eval, convert-cases."""


from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..settings import (
    DEFAULT_K,
    MAX_K,
)

if TYPE_CHECKING:
    from ..selector import Selector

from ._common import _friendly_errors, main


@main.command("eval")
@click.argument("cases", type=click.Path(path_type=Path))
@click.option("--index", "index_dir", type=click.Path(path_type=Path),
              help="Index folder for cases that carry no 'tools' of their own.")
@click.option("--method", "methods", multiple=True, type=click.Choice(["gentool", "retrieval", "base"]),
              help="Selection method; repeat to compare side by side (default: gentool).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="GGUF for the gentool method (default: the packaged selector).")
@click.option("--adapter", "adapter_path", type=click.Path(dir_okay=False, path_type=Path),
              help="GGUF LoRA adapter for the gentool method.")
@click.option("--compare", "compare", multiple=True, metavar="NAME=ADAPTER",
              help="Also evaluate the packaged base with this GGUF LoRA adapter as method NAME; repeatable.")
@click.option("--compare-decision", "compare_decisions", multiple=True, metavar="NAME=FILE",
              help="The decision model of --compare method NAME (`calibrate --adapter ADAPTER --out FILE`); "
                   "without it that adapter's own threshold decides.")
@click.option("-k", "--k", "k", type=click.IntRange(min=1, max=MAX_K), default=DEFAULT_K, show_default=True,
              help="Candidates retrieved per case.")
@click.option("--threads", "n_threads", type=click.IntRange(min=1), help="CPU threads for the selector.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N cases.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every figure and each case's prediction and ranking to this file.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw methods and scenarios side by side into this PNG (needs matplotlib).")
@click.option("--skip-invalid", is_flag=True,
              help="Leave out the cases that cannot run (bad lines, empty queries, unknown expected tools) and say "
                   "how many; by default any makes the run stop before it starts, listing each.")
@_friendly_errors
def eval_command(cases: Path, index_dir: Path | None, methods: tuple[str, ...], model_path: Path | None,
                 adapter_path: Path | None, compare: tuple[str, ...], compare_decisions: tuple[str, ...], k: int,
                 n_threads: int | None,
                 limit: int | None, json_out: Path | None, plot_out: Path | None, skip_invalid: bool) -> None:
    """Measure tool selection on CASES (JSONL: id, query, tools?, expected, scenario?)."""
    from tqdm.auto import tqdm

    from ..decision import DecisionModel
    from ..evaluation import evaluate, format_table, load_runnable_cases, make_selector, plot_summary, summarize
    from ..index import ToolIndex
    from ..router import DEFAULT_DECISION

    index = ToolIndex.load(index_dir) if index_dir is not None else None
    # every case is checked before any model loads: all bad ones in one error, or (--skip-invalid) counted
    loaded, skipped = load_runnable_cases(cases, index, skip_invalid=skip_invalid,
                                          hint=" (--skip-invalid leaves them out)")
    if skipped:
        click.echo(f"Skipped {len(skipped)} invalid case{'s' if len(skipped) != 1 else ''} of {cases}: "
                   + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""), err=True)
    loaded = loaded[:limit]
    extra = {}
    for item in compare:
        name, _, path = item.partition("=")
        if not name or not path:
            raise click.BadParameter(f"expected NAME=ADAPTER, got {item!r}", param_hint="--compare")
        extra[name] = Path(path)
    decisions: dict[str, DecisionModel] = {}  # loaded now: a bad file fails before any case runs
    for item in compare_decisions:
        name, _, path = item.partition("=")
        if name not in extra or not path:
            raise click.BadParameter(f"expected NAME=FILE for a NAME given to --compare, got {item!r}",
                                     param_hint="--compare-decision")
        decisions[name] = DecisionModel.load(Path(path))
    # every selector is loaded before the first case runs: a wrong path or an adapter made for another prompt
    # version fails in a second, not after the methods before it have run for minutes
    selectors: dict[str, Selector] = {}
    for method in [*(methods or ([] if extra else ["gentool"])), *extra]:
        if method in extra:
            from ..selector import LlamaSelector

            selectors[method] = LlamaSelector(adapter_path=extra[method], n_threads=n_threads)
        else:
            selectors[method] = make_selector(method, model_path, adapter_path, n_threads)
    summaries, records = {}, {}
    for method, selector in selectors.items():
        records[method] = evaluate(loaded, selector, k=k, index=index, decision=decisions.get(method, DEFAULT_DECISION),
                                   progress=functools.partial(tqdm, desc=method, unit="case"))
        summaries[method] = summarize(records[method])
    click.echo(format_table(summaries))
    for method, summary in summaries.items():
        latency = ", ".join(f"{stage} p50 {v['p50_ms']:.1f} / p95 {v['p95_ms']:.1f} ms" for stage, v in summary["latency"].items())
        click.echo(f"{method}: {latency}")
    if json_out is not None:
        json_out.write_text(json.dumps({"summaries": summaries, "cases": records}, indent=1) + "\n", encoding="utf-8")
        click.echo(f"Wrote {json_out}")
    if plot_out is not None:
        plot_summary(summaries, plot_out)
        click.echo(f"Wrote {plot_out}")


@main.command("convert-cases")
@click.argument("kind", type=click.Choice(["seal-tools", "metatool-reliability", "metatool-single"]))
@click.option("--source", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The corpus folder (e.g. ../shared/data/seal-tools or ../shared/data/metatool).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Case file to write.")
@click.option("--seed", default=0, show_default=True, help="Seed for sampled catalogues.")
@click.option("--limit", type=click.IntRange(min=1), help="At most N cases.")
@_friendly_errors
def convert_cases_command(kind: str, source: Path, out: Path, seed: int, limit: int | None) -> None:
    """Convert a public corpus into a case file for `gentool-router eval`."""
    from gentool_router_train.public_cases import convert

    try:
        count = convert(kind, source, out, seed=seed, limit=limit)
    except (KeyError, IndexError, ValueError) as exc:
        raise click.ClickException(f"{source} does not look like the {kind} corpus: {exc}") from exc
    click.echo(f"Wrote {count} cases to {out}")
    if kind == "seal-tools":
        click.echo(f"Index its catalogue with: gentool-router index {out.with_suffix('.tools.jsonl')} --out INDEX")
