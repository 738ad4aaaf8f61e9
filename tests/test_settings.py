"""Every front end takes its defaults from ``gentool_router.settings`` (change detectors: no model is loaded)."""

from __future__ import annotations

import dataclasses
import inspect

import click
import pytest
from click.testing import CliRunner

from gentool_router import prompt, router, settings
from gentool_router.cli import main
from gentool_router.conversation import routing_text
from gentool_router.embedder import MiniLMEmbedder, SentenceTransformerEmbedder
from gentool_router.evaluation import evaluate
from gentool_router.index import ToolIndex
from gentool_router.index_base import BaseToolIndex
from gentool_router.router import ToolRouter
from gentool_router.selector import DEFAULT_ADAPTER, LlamaSelector
from gentool_router.settings import DEFAULT_K, DEFAULTS, MAX_K, RouterSettings


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def _option(command: str, name: str) -> click.Option:
    return next(p for p in main.commands[command].params if isinstance(p, click.Option) and p.name == name)


def test_the_defaults_are_the_documented_values():
    # what the README and the help texts promise; a change here is a change of behaviour
    assert (DEFAULTS.k, DEFAULTS.max_k, DEFAULTS.n_ctx, DEFAULTS.embed_batch_size) == (5, 64, 4096, 64)
    assert (DEFAULTS.n_threads, DEFAULTS.n_gpu_layers, DEFAULTS.hybrid, DEFAULTS.on_selector_error) == (
        None, 0, True, "retrieval")
    assert (DEFAULTS.context_turns, DEFAULTS.max_tools) == (1, 1)
    assert (DEFAULTS.merge_adapter, DEFAULTS.flash_attn, DEFAULTS.prune_margin, DEFAULTS.confirm_margin) == (
        True, True, 0.15, 0.10)
    assert DEFAULTS.small_prune_margin == 0.06
    assert (DEFAULTS.host, DEFAULTS.serve_port, DEFAULTS.gateway_port, DEFAULTS.connect_timeout) == (
        "127.0.0.1", 8080, 8000, 30.0)
    assert (settings.DEFAULT_K, settings.MAX_K) == (DEFAULTS.k, DEFAULTS.max_k)


def test_settings_are_frozen_and_checked():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.k = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="k must be from 1 to max_k"):
        RouterSettings(k=MAX_K + 1)
    with pytest.raises(ValueError, match="on_selector_error"):
        RouterSettings(on_selector_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prune_margin"):
        RouterSettings(prune_margin=3.0)
    with pytest.raises(ValueError, match="confirm_margin"):
        RouterSettings(confirm_margin=1.5)
    with pytest.raises(ValueError, match="small_prune_margin"):
        RouterSettings(small_prune_margin=-0.1)
    assert RouterSettings(k=8).k == 8


def test_the_cli_options_come_from_settings():
    for command in ("index", "eval"):
        option = _option(command, "k")
        assert option.default == DEFAULT_K and option.type.max == MAX_K and option.type.min == 1, command
    for command in ("route", "demo", "mcp-gateway"):  # default None: the saved setting, else DEFAULT_K
        option = _option(command, "k")
        assert option.default is None and option.type.max == MAX_K, command
        assert f"default {DEFAULT_K}" in (option.help or ""), command
    assert _option("serve", "host").default == DEFAULTS.host == _option("mcp-gateway", "host").default
    assert _option("serve", "port").default == DEFAULTS.serve_port
    assert _option("mcp-gateway", "port").default == DEFAULTS.gateway_port
    assert _option("mcp-gateway", "connect_timeout").default == DEFAULTS.connect_timeout
    assert float(_option("index", "small_prune_margin").default) == DEFAULTS.small_prune_margin


def test_generate_data_refuses_more_candidates_than_the_selector_scores(tmp_path):
    result = CliRunner().invoke(main, ["generate-data", "--out", str(tmp_path / "d"), "--k", str(MAX_K + 1)])
    assert result.exit_code == 2 and f"between 2 and {MAX_K}" in result.output
    assert not (tmp_path / "d").exists()


def test_the_api_defaults_come_from_settings():
    assert router.DEFAULT_K is DEFAULT_K  # still importable from the router
    for function in (ToolRouter.__init__, ToolRouter.from_tools, ToolRouter.from_vectorstore):
        assert _default(function, "k") == DEFAULT_K
        assert _default(function, "on_selector_error") == DEFAULTS.on_selector_error
    assert _default(ToolRouter.from_tools, "n_gpu_layers") == DEFAULTS.n_gpu_layers
    assert _default(ToolRouter.__init__, "hybrid") is DEFAULTS.hybrid
    for function in (ToolRouter.__init__, ToolRouter.from_tools, ToolRouter.from_vectorstore):
        assert _default(function, "prune_margin") == DEFAULTS.prune_margin
        assert _default(function, "confirm_margin") == DEFAULTS.confirm_margin
        assert _default(function, "small_prune_margin") == DEFAULTS.small_prune_margin
    assert _default(LlamaSelector.__init__, "merge_adapter") is DEFAULTS.merge_adapter
    assert _default(LlamaSelector.__init__, "flash_attn") is DEFAULTS.flash_attn
    assert prompt.MAX_CANDIDATES == MAX_K
    assert _default(LlamaSelector.__init__, "n_ctx") == DEFAULTS.n_ctx
    assert _default(LlamaSelector.__init__, "n_gpu_layers") == DEFAULTS.n_gpu_layers
    assert _default(LlamaSelector.__init__, "adapter_path") == DEFAULT_ADAPTER == settings.PACKAGED == "default"
    assert _default(ToolRouter.__init__, "decision") == router.DEFAULT_DECISION == settings.PACKAGED
    for embedder in (MiniLMEmbedder, SentenceTransformerEmbedder):
        assert _default(embedder.__init__, "batch_size") == DEFAULTS.embed_batch_size
    assert _default(evaluate, "k") == DEFAULT_K
    assert _default(ToolIndex.search, "k") == DEFAULT_K == _default(BaseToolIndex.search, "k")
    assert _default(routing_text, "turns") == DEFAULTS.context_turns


def test_the_simulation_draws_toolsets_of_the_routed_size():
    from gentool_router_train.simulation_config import SimulationConfig

    assert SimulationConfig().k == DEFAULT_K


def test_the_langchain_classes_take_their_defaults_from_settings():
    pytest.importorskip("langchain")
    from gentool_router import langchain

    assert langchain.ToolRouterRetriever.model_fields["k"].default == DEFAULT_K
    for function in (langchain.ToolRouterMiddleware.__init__, langchain.route_tools_node):
        assert _default(function, "max_tools") == DEFAULTS.max_tools
        assert _default(function, "context_turns") == DEFAULTS.context_turns
    assert _default(langchain.routed_tool_names, "max_tools") == DEFAULTS.max_tools


def test_serve_and_the_gateway_take_their_defaults_from_settings():
    pytest.importorskip("starlette")
    from gentool_router import serve

    assert (_default(serve.run, "host"), _default(serve.run, "port")) == (DEFAULTS.host, DEFAULTS.serve_port)
    pytest.importorskip("mcp")
    from gentool_router import mcp_gateway

    assert _default(mcp_gateway.serve, "port") == DEFAULTS.gateway_port == _default(mcp_gateway.create_server, "port")
    assert _default(mcp_gateway.serve, "connect_timeout") == DEFAULTS.connect_timeout
