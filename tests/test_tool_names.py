"""MCP-style tool names (``github.create_issue``, ``fs/read_file``, ``admin.tools.list``) and Python-style
parameter types, end to end: catalogue, index, save/load, selector prompt, ``route --json``, eval case files and
the LangChain middleware (the MCP example's dotted names are checked in test_langchain.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gentool_router import RetrievalSelector, Tool, ToolCatalog, ToolRouter, render_tool
from gentool_router.cli import main
from gentool_router.tools import TOOL_NAME_PATTERN, valid_tool_name

MCP_TOOLS = [
    {"name": "github.create_issue", "description": "Open a new issue (a bug report) in a GitHub repository.",
     "parameters": {"type": "object", "properties": {"repo": {"type": "string"}, "title": {"type": "string"}},
                    "required": ["repo", "title"]}},
    {"name": "fs/read_file", "description": "Read the contents of a file on the local disk.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {"name": "admin.tools.list", "description": "List the administration tools installed on the server.",
     "parameters": {"type": "object", "properties": {}}},
    {"name": "weather-v2/forecast", "description": "Weather forecast for a city: rain, wind and temperature.",
     "parameters": {"type": "dict", "properties": {"city": {"type": "str"}, "days": {"type": "int"}},
                    "required": ["city"]}},  # Python-style type names, as in published catalogues
]
QUERIES = {
    "Open a bug report in the GitHub repository acme/api": "github.create_issue",
    "Read the contents of the file /etc/hosts": "fs/read_file",
    "Which administration tools are installed on the server?": "admin.tools.list",
    "Will it rain in Lisbon tomorrow?": "weather-v2/forecast",
}


def _write_tools(path: Path) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in MCP_TOOLS))
    return path


def test_the_name_rule_is_mcps_and_the_corpus_mapping_is_unchanged():
    for name in ("getUser", "DATA_EXPORT_v2", "admin.tools.list", "user-profile/update", "x" * 128):
        assert TOOL_NAME_PATTERN.fullmatch(name), name
    for name in ("x" * 129, "a b", "a,b", "a:b", "météo", "a\n"):
        assert not TOOL_NAME_PATTERN.fullmatch(name), name
    # valid_tool_name builds the training data: its mapping must not follow the wider rule
    assert valid_tool_name("getPM2.5Level") == "getPM2_5Level"
    assert valid_tool_name("PDF&URLTool") == "PDF_URLTool" and valid_tool_name("a/b") == "a_b"
    assert valid_tool_name("y" * 100) == "y" * 64


@pytest.mark.slow
def test_mcp_names_index_save_load_and_route(tmp_path, embedder):
    router = ToolRouter.from_tools(MCP_TOOLS, embedder=embedder, selector=RetrievalSelector(), k=3)
    for query, name in QUERIES.items():
        route = router.route(query)
        assert route.name == name and route.tool.name == name, query
        assert route.candidates[0].name == name
    assert router.index.tool_text("fs/read_file") == "fs/read_file(path): Read the contents of a file on the local disk."
    router.save(tmp_path / "idx")
    loaded = ToolRouter.load(tmp_path / "idx", embedder=embedder, selector=RetrievalSelector())
    assert loaded.catalog.names() == [t["name"] for t in MCP_TOOLS]
    assert [loaded.route(q).name for q in QUERIES] == list(QUERIES.values())
    loaded.remove_tools(["admin.tools.list"])
    loaded.add_tools([{"name": "admin.tools.list", "description": "List every admin tool."}])
    assert "admin.tools.list" in loaded.index


@pytest.mark.slow
def test_python_style_types_load_as_json_schema(tmp_path, embedder):
    """The whole catalogue loads; the schema handed to a model is JSON Schema; the stored one round-trips."""
    result = CliRunner().invoke(main, ["index", str(_write_tools(tmp_path / "tools.jsonl")), "--out",
                                       str(tmp_path / "idx"), "--quiet"])
    assert result.exit_code == 0, result.output
    tool = ToolCatalog.from_jsonl(tmp_path / "tools.jsonl").get("weather-v2/forecast")
    assert tool.parameters["type"] == "object"
    assert tool.parameters["properties"]["city"] == {"type": "str"}  # stored as written
    openai = tool.to_openai()["function"]
    assert openai["name"] == "weather-v2/forecast"
    assert openai["parameters"]["properties"] == {"city": {"type": "string"}, "days": {"type": "integer"}}
    assert render_tool(tool) == "weather-v2/forecast(city, days?): Weather forecast for a city: rain, wind and temperature."


@pytest.mark.slow
def test_eval_case_files_with_mcp_names(tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps({"id": f"c{i}", "query": q, "expected": n, "tools": MCP_TOOLS}) + "\n"
                             for i, (q, n) in enumerate(QUERIES.items())))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["eval", str(cases), "--method", "retrieval", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert [c["predicted"] for c in report["cases"]["retrieval"]] == list(QUERIES.values())
    assert report["summaries"]["retrieval"]["accuracy"] == 1.0


@pytest.mark.slow
def test_langchain_middleware_binds_mcp_named_tools(embedder):
    pytest.importorskip("langchain")
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import StructuredTool

    from gentool_router.langchain import ToolRouterMiddleware

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    from fake_chat import ToolCallingFakeModel

    def make(spec: dict) -> StructuredTool:
        schema = Tool.from_dict(spec).to_openai()["function"]["parameters"]
        return StructuredTool.from_function(func=lambda **kw: f"{spec['name']} ran", name=spec["name"],
                                            description=spec["description"], args_schema=schema)

    tools = [make(t) for t in MCP_TOOLS]
    router = ToolRouter.from_tools(tools, embedder=embedder, selector=RetrievalSelector(), k=2)
    model = ToolCallingFakeModel(arguments={"fs/read_file": {"path": "/etc/hosts"}})
    agent = create_agent(model, tools, middleware=[ToolRouterMiddleware(router, tools)])
    state = agent.invoke({"messages": [HumanMessage("Read the contents of the file /etc/hosts")]})
    assert model.bound[0] == ["fs/read_file"]
    assert any(getattr(m, "name", None) == "fs/read_file" and m.text == "fs/read_file ran" for m in state["messages"])


@pytest.mark.slow
def test_route_json_with_the_real_selector(tmp_path):
    """``index`` then ``route --json`` through the CLI, the llama.cpp selector reading the names in its prompt."""
    runner = CliRunner()
    result = runner.invoke(main, ["index", str(_write_tools(tmp_path / "tools.jsonl")), "--out", str(tmp_path / "idx"),
                                  "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["route", "--index", str(tmp_path / "idx"), "--json", "--threads", "2", "-k", "4",
                                  *QUERIES])
    assert result.exit_code == 0, result.output
    routes = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(routes) == len(QUERIES)
    names = {t["name"] for t in MCP_TOOLS}
    for route in routes:
        ranked = [c["name"] for c in route["ranking"]]
        assert set(ranked) == names | {"generate_response"}, ranked  # every dotted name was scored by the selector
    chosen = [r["tool"] or "generate_response" for r in routes]
    assert sum(c == e for c, e in zip(chosen, QUERIES.values())) >= 3, chosen
