"""Commands of routing: index, route, serve, mcp-gateway, calibrate, demo."""


from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import click

from ..settings import (
    DEFAULT_CONFIRM_MARGIN,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_GATEWAY_PORT,
    DEFAULT_HOST,
    DEFAULT_K,
    DEFAULT_PRUNE_MARGIN,
    DEFAULT_SERVE_PORT,
    DEFAULT_SMALL_PRUNE_MARGIN,
    MAX_K,
)

if TYPE_CHECKING:
    pass

from ._common import (
    DEMO_QUERIES,
    _decision_options,
    _decision_setting,
    _friendly_errors,
    _print_route,
    _selector_options,
    main,
)


@main.command("index")
@click.argument("tools", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the index to: new, empty, or an earlier index (replaced atomically).")
@click.option("-k", "--k", "k", type=click.IntRange(min=1, max=MAX_K), default=DEFAULT_K, show_default=True,
              help="Candidates per query to store as the router's default.")
@click.option("--prune-margin", "prune_margin", default=str(DEFAULT_PRUNE_MARGIN), show_default=True,
              callback=lambda _ctx, _param, value: _prune_margin(value),
              help="Stored as the router's default: candidates more than this below the nearest tool's cosine are not "
                   "scored by the selector; 'none' scores all k.")
@click.option("--small-prune-margin", "small_prune_margin", default=str(DEFAULT_SMALL_PRUNE_MARGIN), show_default=True,
              callback=lambda _ctx, _param, value: _prune_margin(value),
              help="Stored as the router's default: --prune-margin for catalogues under 50 tools.")
@click.option("--confirm-margin", "confirm_margin", default=str(DEFAULT_CONFIRM_MARGIN), show_default=True,
              callback=lambda _ctx, _param, value: _confirm_margin(value),
              help="Stored as the router's default: a route decided by less than this (probability) with the fast "
                   "selector arithmetic is scored again with the exact one; 'none' never.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly_errors
def index_command(tools: Path, out: Path, k: int, prune_margin: float | None, small_prune_margin: float | None,
                  confirm_margin: float | None, quiet: bool) -> None:
    """Embed the tools of TOOLS (JSONL, one tool a line) into an index folder."""
    import time

    from ..catalog import ToolCatalog
    from ..index import index_owned_files
    from ..persistence import check_replaceable
    from ..router import ToolRouter

    check_replaceable(out.absolute(), index_owned_files, "gentool-router index")  # before minutes of embedding
    start = time.perf_counter()
    catalog = ToolCatalog.from_jsonl(tools)
    router = ToolRouter.from_tools(catalog, k=k, show_progress=False if quiet else None, prune_margin=prune_margin,
                                   confirm_margin=confirm_margin, small_prune_margin=small_prune_margin)
    router.save(out)
    click.echo(f"Indexed {len(catalog)} tools into {out} in {time.perf_counter() - start:.1f} s")


def _margin(value: str, most: float, what: str) -> float | None:
    """``value`` as a margin from 0 to ``most``, or None for 'none'; else one clear usage error."""
    if value.strip().lower() == "none":
        return None
    try:
        margin = float(value)
    except ValueError:
        raise click.BadParameter(f"{what} from 0 to {most:g}, or 'none'; got {value!r}") from None
    if not 0 <= margin <= most:
        raise click.BadParameter(f"{what} from 0 to {most:g}, or 'none'; got {value!r}")
    return margin


def _prune_margin(value: str) -> float | None:
    return _margin(value, 2, "a cosine difference")


def _confirm_margin(value: str) -> float | None:
    return _margin(value, 1, "a probability margin")


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
    from ..router import ToolRouter

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
        from ..serve import ADMIN_TOKEN_ENV, run
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("starlette", "uvicorn"):
            raise
        raise click.ClickException('serve needs the "serve" extra: pip install "gentool-router[serve]"') from exc
    from ..router import ToolRouter

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
        from ..mcp_gateway import build_router, load_config, run
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
        from ..selector import RetrievalSelector

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

    from ..calibration import calibrate, load_labels
    from ..router import ToolRouter

    router = ToolRouter.load(index_dir, model_path=model_path, adapter_path=adapter_path, n_threads=n_threads,
                             decision=None)
    labelled = load_labels(labels, router.catalog.names())  # every bad line before the model loads
    model = calibrate(router, labelled, near_misses=near_misses, bundled_out_of_scope=bundled_out_of_scope,
                      progress=lambda jobs: tqdm(jobs, desc="routing", unit="query", disable=quiet))
    report = model.report
    click.echo(f"Fitted on {report['examples']} routes {report['kinds']}; accuracy on them "
               f"{report['fit_accuracy'] * 100:.1f}% at operating point {model.none_offset:+.2f}, temperature "
               f"{model.temperature:.2f} (calibration error on them {report['calibration']['fit_ece']:.3f})")
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
    from ..examples import example_cases, example_tools
    from ..router import ToolRouter

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
