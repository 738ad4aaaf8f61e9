"""The ``gentool-router`` command line.

Heavy modules (faiss, llama.cpp, the embedder) are imported inside the commands, so ``--help`` is instant and
``route`` over a saved index never imports torch.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import click

from .artefact import ADAPTER_DIR, LORA_GGUF
from .errors import GentoolError
from .settings import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_GATEWAY_PORT,
    DEFAULT_HOST,
    DEFAULT_K,
    DEFAULT_SERVE_PORT,
    MAX_K,
    PACKAGED,
)

if TYPE_CHECKING:
    from .selector import Selector

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


@main.command("index")
@click.argument("tools", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the index to: new, empty, or an earlier index (replaced atomically).")
@click.option("-k", "--k", "k", type=click.IntRange(min=1, max=MAX_K), default=DEFAULT_K, show_default=True,
              help="Candidates per query to store as the router's default.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def index_command(tools: Path, out: Path, k: int, quiet: bool) -> None:
    """Embed the tools of TOOLS (JSONL, one tool a line) into an index folder."""
    import time

    from .catalog import ToolCatalog
    from .index import index_owned_files
    from .persistence import check_replaceable
    from .router import ToolRouter

    check_replaceable(out.absolute(), index_owned_files, "gentool-router index")  # before minutes of embedding
    start = time.perf_counter()
    catalog = ToolCatalog.from_jsonl(tools)
    router = ToolRouter.from_tools(catalog, k=k, show_progress=False if quiet else None)
    router.save(out)
    click.echo(f"Indexed {len(catalog)} tools into {out} in {time.perf_counter() - start:.1f} s")


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


@main.command("route")
@click.argument("queries", nargs=-1, required=True)
@click.option("--index", "index_dir", required=True, type=click.Path(path_type=Path),
              help="Index folder written by `gentool-router index`.")
@_selector_options
@_decision_options
@_friendly_errors
def route_command(queries: Sequence[str], index_dir: Path, model_path: Path | None, adapter_path: Path | None,
                  n_threads: int | None, n_gpu_layers: int | None, k: int | None, as_json: bool,
                  decision_path: Path | None, no_decision: bool, explain: bool) -> None:
    """Route each QUERY over a saved index and print the decision."""
    from .router import ToolRouter

    router = ToolRouter.load(index_dir, model_path=model_path, adapter_path=adapter_path, n_threads=n_threads,
                             n_gpu_layers=n_gpu_layers, k=k, decision=_decision_setting(decision_path, no_decision))
    for route in router.route_batch(list(queries)):
        _print_route(route, as_json, explain)


@main.command("serve")
@click.option("--index", "index_dir", required=True, type=click.Path(path_type=Path),
              help="Index folder written by `gentool-router index`.")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=DEFAULT_SERVE_PORT, show_default=True, type=click.IntRange(min=0, max=65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--threads", "n_threads", type=click.IntRange(min=1),
              help="CPU threads for the selector (default: the cores available).")
@_friendly_errors
def serve_command(index_dir: Path, host: str, port: int, n_threads: int | None) -> None:
    """Serve routes over HTTP: POST /v1/route, POST /v1/route_batch, GET /healthz (see README, "Serve over HTTP").

    Set GENTOOL_ROUTER_ADMIN_TOKEN to enable POST /v1/tools and DELETE /v1/tools/NAME with that bearer token.
    """
    import os

    try:
        from .serve import ADMIN_TOKEN_ENV, run
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("starlette", "uvicorn"):
            raise
        raise click.ClickException('serve needs the "serve" extra: pip install "gentool-router[serve]"') from exc
    from .router import ToolRouter

    router = ToolRouter.load(index_dir, n_threads=n_threads)
    run(router, host=host, port=port, admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None, log=click.echo,
        source=str(index_dir))


@main.command("mcp-gateway")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help='The MCP servers to serve: {"mcpServers": {NAME: {"command", "args"} or {"url"}}} '
                   '(README, "MCP gateway").')
@click.option("--transport", type=click.Choice(["stdio", "streamable-http"]), default="stdio", show_default=True,
              help="How clients reach the gateway: stdio (the client starts it) or streamable HTTP at HOST:PORT/mcp.")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address for streamable HTTP.")
@click.option("--port", default=DEFAULT_GATEWAY_PORT, show_default=True, type=click.IntRange(min=0, max=65535),
              help="Port for streamable HTTP (0: any free port, printed at start).")
@click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the index here: reused while the servers' tools stay the same (with a decision model "
                   "from `calibrate`), rebuilt when they change.")
@click.option("--retrieval-only", is_flag=True,
              help="Route by embedding similarity alone, without the selector model: fast, never 'no tool'.")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_CONNECT_TIMEOUT,
              show_default=True,
              help="Seconds each server has to start and list its tools.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Selector GGUF (default: the packaged GenTool selector's base model).")
@click.option("--adapter", "adapter_path", type=click.Path(dir_okay=False, path_type=Path),
              help="GGUF LoRA adapter applied over --model.")
@click.option("--threads", "n_threads", type=click.IntRange(min=1),
              help="CPU threads for the selector (default: the cores available).")
@click.option("--gpu-layers", "n_gpu_layers", type=click.IntRange(min=0), default=None,
              help="Layers to offload to a GPU (needs a GPU build of llama-cpp-python).")
@click.option("-k", "--k", "k", type=click.IntRange(min=1, max=MAX_K), default=None,
              help=f"Candidates find_tools ranks by default (default {DEFAULT_K}, or the index's setting).")
@click.option("--decision", "decision_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Decision model file from `gentool-router calibrate --out`.")
@click.option("--no-decision", is_flag=True, help="Let the selector's own no-tool threshold decide.")
@_friendly_errors
def mcp_gateway_command(config_path: Path, transport: str, host: str, port: int, index_dir: Path | None,
                        retrieval_only: bool, connect_timeout: float, model_path: Path | None,
                        adapter_path: Path | None, n_threads: int | None, n_gpu_layers: int | None, k: int | None,
                        decision_path: Path | None, no_decision: bool) -> None:
    """Serve MCP in front of your MCP servers: find_tools routes a request, call_tool forwards to the tool's server.

    Logs go to stderr (over stdio, stdout is the MCP channel).
    """
    try:
        from .mcp_gateway import build_router, load_config, run
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "anyio", "httpx", "uvicorn", "starlette", "pydantic"):
            raise
        raise click.ClickException('mcp-gateway needs the "mcp" extra: pip install "gentool-router[mcp]"') from exc
    if retrieval_only and (model_path or adapter_path or decision_path):
        raise click.UsageError("--retrieval-only uses no selector model: leave out --model, --adapter and --decision")
    servers = load_config(config_path)  # every problem of the file before anything starts
    options: dict[str, Any] = dict(model_path=model_path, adapter_path=adapter_path, n_threads=n_threads,
                                   n_gpu_layers=n_gpu_layers or 0,
                                   decision=_decision_setting(decision_path, no_decision))
    if k is not None:
        options["k"] = k
    if retrieval_only:
        from .selector import RetrievalSelector

        options["selector"] = RetrievalSelector()

    def log(line: str) -> None:
        click.echo(line, err=True)

    import logging

    # warnings and errors, one plain line each on stderr (before the MCP SDK sets up its own, wrapped at 80 columns)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)  # also for libraries that set their own loggers to DEBUG
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", handlers=[handler])
    run(servers, lambda tools: build_router(tools, index_dir, **options), transport=transport, host=host, port=port,
        connect_timeout=connect_timeout, log=log)
    log("Stopped")


@main.command("calibrate")
@click.argument("labels", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--index", "index_dir", required=True, type=click.Path(path_type=Path),
              help="Index folder of the catalogue the labels are about.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the decision model here (default: into the index folder, which then uses it).")
@click.option("--near-misses/--no-near-misses", default=False, show_default=True,
              help="Also route each labelled query with its tool removed (expected: no tool); noisy where the "
                   "catalogue has near-duplicate tools.")
@click.option("--bundled-out-of-scope/--no-bundled-out-of-scope", default=True, show_default=True,
              help="Also route the bundled no-tool queries (chit-chat, thanks, ...) over the catalogue.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Selector GGUF (default: the index's saved setting, else the packaged one).")
@click.option("--adapter", "adapter_path", type=click.Path(dir_okay=False, path_type=Path),
              help="GGUF LoRA adapter applied over --model.")
@click.option("--threads", "n_threads", type=click.IntRange(min=1), help="CPU threads for the selector.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def calibrate_command(labels: Path, index_dir: Path, out: Path | None, near_misses: bool, bundled_out_of_scope: bool,
                      model_path: Path | None, adapter_path: Path | None, n_threads: int | None, quiet: bool) -> None:
    """Fit the tool-or-none decision for your catalogue from LABELS (JSONL: {"query", "expected": tool or null})."""
    from tqdm.auto import tqdm

    from .calibration import calibrate, load_labels
    from .router import ToolRouter

    router = ToolRouter.load(index_dir, model_path=model_path, adapter_path=adapter_path, n_threads=n_threads,
                             decision=None)
    labelled = load_labels(labels, router.catalog.names())  # every bad line before the model loads
    model = calibrate(router, labelled, near_misses=near_misses, bundled_out_of_scope=bundled_out_of_scope,
                      progress=lambda jobs: tqdm(jobs, desc="routing", unit="query", disable=quiet))
    report = model.report
    click.echo(f"Fitted on {report['examples']} routes {report['kinds']}; accuracy on them "
               f"{report['fit_accuracy'] * 100:.1f}% at operating point {model.none_offset:+.2f}")
    if out is not None:
        model.save(out)
        click.echo(f"Wrote {out}  (route with --decision {out})")
    else:
        router.set_decision(model)
        router.save(index_dir)
        click.echo(f"Saved into {index_dir}: `gentool-router route --index {index_dir}` uses it")


@main.command("demo")
@_selector_options
@_decision_options
@click.option("--all", "all_queries", is_flag=True,
              help=f"Route all bundled example queries (default: the first {DEMO_QUERIES}).")
@_friendly_errors
def demo_command(model_path: Path | None, adapter_path: Path | None, n_threads: int | None,
                 n_gpu_layers: int | None, k: int | None, as_json: bool, decision_path: Path | None,
                 no_decision: bool, explain: bool, all_queries: bool) -> None:
    """Route the bundled example queries over the bundled example catalogue."""
    from .examples import example_cases, example_tools
    from .router import ToolRouter

    tools = example_tools()
    if not as_json:
        click.echo(f"Building an index of {len(tools)} example tools...")
    router = ToolRouter.from_tools(tools, model_path=model_path, adapter_path=adapter_path, n_threads=n_threads,
                                   n_gpu_layers=n_gpu_layers or 0, k=k or DEFAULT_K, show_progress=False)
    router.set_decision(_decision_setting(decision_path, no_decision))
    cases = example_cases()
    for case in cases if all_queries else cases[:DEMO_QUERIES]:
        _print_route(router.route(case["query"]), as_json, explain)
        if not as_json:
            click.echo(f"     expected: {case['expected'] or 'generate_response'}")


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
                 adapter_path: Path | None, compare: tuple[str, ...], k: int, n_threads: int | None,
                 limit: int | None, json_out: Path | None, plot_out: Path | None, skip_invalid: bool) -> None:
    """Measure tool selection on CASES (JSONL: id, query, tools?, expected, scenario?)."""
    from tqdm.auto import tqdm

    from .evaluation import evaluate, format_table, load_runnable_cases, make_selector, plot_summary, summarize
    from .index import ToolIndex

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
    # every selector is loaded before the first case runs: a wrong path or an adapter made for another prompt
    # version fails in a second, not after the methods before it have run for minutes
    selectors: dict[str, Selector] = {}
    for method in [*(methods or ([] if extra else ["gentool"])), *extra]:
        if method in extra:
            from .selector import LlamaSelector

            selectors[method] = LlamaSelector(adapter_path=extra[method], n_threads=n_threads)
        else:
            selectors[method] = make_selector(method, model_path, adapter_path, n_threads)
    summaries, records = {}, {}
    for method, selector in selectors.items():
        records[method] = evaluate(loaded, selector, k=k, index=index,
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


def _adapter_folder(run_dir: Path) -> Path:
    """The peft adapter of a run: RUN_DIR/adapter from `train`, or RUN_DIR itself when given the folder."""
    return run_dir / ADAPTER_DIR if (run_dir / ADAPTER_DIR).is_dir() else run_dir


@main.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the GGUF files.")
@click.option("--lora/--no-lora", default=True, show_default=True,
              help="Write gentool-lora.gguf, a GGUF LoRA adapter over the base model.")
@click.option("--merged/--no-merged", default=False, show_default=True,
              help="Write gentool-f16.gguf, a standalone model with the LoRA merged in.")
@click.option("--quantize", "quant_types", multiple=True,
              type=click.Choice(["q8_0", "q4_k_m", "q4_1", "q4_0", "q5_k_m", "q6_k", "q4_1-q8_0"]),  # = QUANT_TYPES
              help="Also quantize the merged model (implies --merged, except q4_1-q8_0 alone); repeat for several. q4_1-q8_0 (ours): "
                   "the base's Q4_1 tensors unchanged, the LoRA-adapted ones at q8_0: the smallest file that "
                   "keeps the fine-tuning (see BENCHMARKS.md, 'Export').")
@click.option("--lora-dtype", type=click.Choice(["f32", "f16"]), default="f32", show_default=True)
@click.option("--base", "base_gguf", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Base model GGUF the adapter was trained on (default: the packaged one).")
@click.option("--base-f16", is_flag=True,
              help="Also write base-f16.gguf: the base alone, dequantized to f16, for checking the LoRA adapter "
                   "without the base's 4-bit arithmetic (`parity --lora-base`).")
@click.option("--keep-adapted/--no-keep-adapted", default=True, show_default=True,
              help="In llama.cpp quantizations (q4_k_m, ...), keep the tensors the LoRA changed at q8_0: at 4-5 bits "
                   "the rounding step is larger than most of the fine-tuning's change (BENCHMARKS.md, 'Export').")
@_friendly_errors
def export_command(run_dir: Path, out: Path, lora: bool, merged: bool, quant_types: tuple[str, ...],
                   lora_dtype: str, base_gguf: Path | None, base_f16: bool, keep_adapted: bool) -> None:
    """Export a trained run (RUN_DIR from `train`, or its adapter/ folder) to GGUF for llama.cpp."""
    _require_train_extra("export", "gguf")
    from gentool_router_quantize.lora import export_lora_gguf
    from gentool_router_quantize.merge import MIXED_TYPE, adapted_tensor_names, export_merged_gguf, quantize_gguf

    adapter = _adapter_folder(run_dir)
    llama_cpp_types = [q for q in quant_types if q != MIXED_TYPE]
    if lora:
        path = export_lora_gguf(adapter, out / LORA_GGUF, base_gguf=base_gguf, dtype=lora_dtype)
        click.echo(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    # the f16 merge is the input of llama.cpp-style quantization; q4_1-q8_0 alone is built from the base directly
    if merged or llama_cpp_types:
        f16 = export_merged_gguf(adapter, out / "gentool-f16.gguf", base_gguf=base_gguf)
        click.echo(f"{f16}  ({f16.stat().st_size / 1e6:.1f} MB)")
    keep = adapted_tensor_names(adapter, base_gguf=base_gguf) if keep_adapted and llama_cpp_types else []
    for quant_type in quant_types:
        target = out / f"gentool-{quant_type}.gguf"
        if quant_type == MIXED_TYPE:
            path = export_merged_gguf(adapter, target, base_gguf=base_gguf, adapted_type="q8_0")
        else:
            path = quantize_gguf(f16, target, quant_type, keep_q8_0=keep)
        click.echo(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    if base_f16:
        path = export_merged_gguf(None, out / "base-f16.gguf", base_gguf=base_gguf)
        click.echo(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")


@main.command("parity")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cases", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Generated records with tools (e.g. data/gentool/test.jsonl).")
@click.option("--gguf", "gguf_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Merged GGUF(s) to check; repeatable.")
@click.option("--lora-gguf", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="GGUF LoRA adapter to check over the base model.")
@click.option("--lora-base", "lora_bases", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Base GGUF(s) to apply --lora-gguf over, e.g. base-f16.gguf from `export --base-f16`; "
                   "repeatable (default: the packaged Q4_1 base).")
@click.option("--base-only", is_flag=True,
              help="Compare the base model alone, no adapter (transformers against each --lora-base, default the "
                   "packaged one, in llama.cpp): the gap any adapter over that base inherits from its arithmetic.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Cases to compare.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Largest allowed difference in the chosen tool's probability.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
@_friendly_errors
def parity_command(run_dir: Path, cases: Path, gguf_files: tuple[Path, ...], lora_gguf: Path | None,
                   lora_bases: tuple[Path, ...], base_only: bool, limit: int, tolerance: float,
                   json_out: Path | None) -> None:
    """Check that exported GGUFs choose what the trained transformers model chooses (exit 1 if not)."""
    _require_train_extra("parity", "torch", "transformers", *(() if base_only else ("peft",)))
    from tqdm.auto import tqdm

    from gentool_router_quantize.parity import check_parity, reference_probabilities
    from gentool_router_train.encode import load_records

    if base_only and (gguf_files or lora_gguf is not None):
        raise click.UsageError("--base-only compares base models alone: give --lora-base (or nothing), not --gguf/--lora-gguf")
    if not base_only and not gguf_files and lora_gguf is None:
        raise click.UsageError("give --gguf and/or --lora-gguf")
    if not base_only and lora_bases and lora_gguf is None:
        raise click.UsageError("--lora-base needs --lora-gguf")
    adapter = None if base_only else _adapter_folder(run_dir)
    records = [r for r in load_records(cases) if r.get("tools")][:limit]

    def bar(name: str) -> Any:
        return lambda items: tqdm(items, desc=name, unit="case", total=len(records))

    reference = reference_probabilities(adapter, records, progress=bar("transformers"))
    candidates: list[tuple[str, Path | None, Path | None]] = [(p.name, p, None) for p in gguf_files]
    if base_only:
        candidates = [(f"{b.name if b is not None else 'packaged base'} alone", b, None) for b in lora_bases or (None,)]
    if lora_gguf is not None:
        for lora_base in lora_bases or (None,):
            base_name = lora_base.name if lora_base is not None else "packaged base"
            candidates.append((f"{base_name} + {lora_gguf.name}", lora_base, lora_gguf))
    reports = [check_parity(name, reference, records, model, lora, progress=bar(name))
               for name, model, lora in candidates]
    failed = False
    for report in reports:
        ok = report.agreement == 1.0 and report.max_probability_gap <= tolerance
        failed |= not ok
        click.echo(f"{report.name}: same tool in {report.same_choice}/{report.cases} cases, "
                   f"largest probability gap {report.max_probability_gap:.4f}  {'OK' if ok else 'FAIL'}")
    if json_out:
        json_out.write_text(json.dumps([r.to_dict() for r in reports], indent=2) + "\n", encoding="utf-8")
    if failed:
        sys.exit(1)


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
    if route.decided_by != "decision":
        click.echo(f"     decided by: {route.decided_by} ({explanation.get('note', '')})")
        return
    click.echo("     decided by: the decision model over retrieval, BM25 and the selector "
               f"(catalogue similarity mean {explanation['similarity_mean']:.2f}, sd {explanation['similarity_std']:.2f}; "
               f"BM25 best: {explanation['lexical_best_name'] or '-'})")
    click.echo(f"       {'option':<32} {'p':>5}  {'cos':>5} {'rank':>4} {'bm25':>5} {'gap':>6}  strongest reasons")
    for option in explanation["options"]:
        reasons = sorted(option["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        why = ", ".join(f"{name} {value:+.1f}" for name, value in reasons)
        e = option.get("evidence")
        numbers = (f"{e['cosine']:5.2f} {e['rank']:4d} {e['lexical']:5.1f} {e['selector_gap']:6.1f}" if e
                   else f"{'':5} {'':4} {'':5} {'':6}")
        click.echo(f"       {option['name'][:32]:<32} {option['probability']:5.2f}  {numbers}  {why}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
