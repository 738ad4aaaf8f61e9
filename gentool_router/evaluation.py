"""Tool-selection evaluation over case files (docs/ARCHITECTURE.md, contract 6), methods side by side.

A case file is JSONL, one case a line: ``{"id", "query", "tools" (optional: the case's own catalogue),
"expected" (a tool name, or null when no tool applies), "scenario" (optional)}``; an optional ``case_type``
(as in the generated data) gets its own accuracy column. A case's own tools form its
catalogue (an index built per case, cached by content within a run); cases without tools are routed over the
index given with ``--index``.

Figures per method: tool-selection accuracy (``generate_response`` counted as a choice) overall and per
scenario; on cases with ``expected: null``, abstention precision, recall and F1; accuracy on cases that have a
tool; retrieval recall@k (is the expected tool among the candidates); latency p50/p95 per stage.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .catalog import ToolCatalog
from .embedder import CachingEmbedder, Embedder, MiniLMEmbedder
from .errors import CatalogError, GentoolError, QueryError
from .index import ToolIndex
from .jsonl import listing, parse_object, read_lines
from .poison import DEFAULT_POLICY, SuspiciousPolicy
from .results import Route
from .router import DEFAULT_DECISION, DecisionSetting, ToolRouter, _clean_query
from .selector import LlamaSelector, RetrievalSelector, Selector
from .settings import DEFAULT_K
from .tools import NO_TOOL, Tool, ToolValidationError

__all__ = ["EvalCase", "load_cases", "load_runnable_cases", "read_cases", "check_cases", "split_cases", "evaluate",
           "METHODS", "summarize", "format_table", "plot_summary", "percentile", "invalid_cases_message"]

METHODS = ("gentool", "retrieval", "base")


@dataclass(frozen=True)
class EvalCase:
    id: str
    query: str
    expected: str | None
    tools: tuple[Tool, ...] | None = None
    scenario: str | None = None
    case_type: str | None = None
    #: ``file:line`` of the case in its case file (for error messages); empty for cases made in code.
    where: str = field(default="", compare=False)


def load_cases(path: str | os.PathLike[str], *, skip_invalid: bool = False) -> list[EvalCase]:
    """Read a case file, every line checked before any case runs: the bad lines are one error that lists each
    (file:line and why), or, with ``skip_invalid``, are left out (:func:`read_cases` also returns them)."""
    cases, invalid = read_cases(path)
    return _kept(path, cases, invalid, skip_invalid, " (skip_invalid=True leaves them out)")


def load_runnable_cases(path: str | os.PathLike[str], index: ToolIndex | None = None, *, skip_invalid: bool = False,
                        suspicious: SuspiciousPolicy | None = None,
                        hint: str = " (skip_invalid=True leaves them out)") -> tuple[list[EvalCase], list[str]]:
    """The cases of a file that can run over ``index`` and, with ``skip_invalid``, why each other one cannot
    (:func:`read_cases`, then :func:`split_cases`); without it, any invalid case is one error listing all."""
    cases, invalid = read_cases(path)
    cases, problems = split_cases(cases, index, suspicious)
    invalid += problems
    return _kept(path, cases, invalid, skip_invalid, hint), invalid


def _kept(path: Any, cases: list[EvalCase], invalid: list[str], skip_invalid: bool, hint: str) -> list[EvalCase]:
    """``cases`` when nothing was invalid or invalid ones are to be skipped; else one error listing them all."""
    if invalid and not skip_invalid:
        raise CatalogError(invalid_cases_message(path, invalid, hint))
    if not cases:
        raise CatalogError(f"{path}: no cases" + (f" ({len(invalid)} invalid, skipped)" if invalid else ""))
    return cases


def invalid_cases_message(source: Any, invalid: Sequence[str], hint: str = "", shown: int = 20) -> str:
    """One line naming every invalid case (the first ``shown`` of them, then a count)."""
    return f"{source}: {len(invalid)} invalid case{'s' if len(invalid) != 1 else ''}{hint}: {listing(invalid, shown)}"


def read_cases(path: str | os.PathLike[str]) -> tuple[list[EvalCase], list[str]]:
    """The valid cases of a case file and, for each invalid line, ``"file:line: why"``.

    A query is checked with the router's own cleaning (``_clean_query``), so a query the router would refuse
    (only control characters: "the query is empty") is found here, not minutes into a run.
    """
    cases: list[EvalCase] = []
    invalid: list[str] = []
    for number, line in read_lines(path, "case"):
        where = f"{path}:{number}"
        try:
            cases.append(_parse_case(line, where))
        except GentoolError as exc:
            invalid.append(f"{where}: {exc}")
    return cases, invalid


def _parse_case(line: str, where: str) -> EvalCase:
    """One case line, or a :class:`CatalogError` saying why it cannot be evaluated."""
    data = parse_object(line, "case")
    for key in ("id", "query"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise CatalogError(f"'{key}' must be a non-empty string")
    try:
        _clean_query(data["query"])
    except QueryError as exc:
        raise CatalogError(str(exc)) from None
    if "expected" not in data or not (data["expected"] is None or isinstance(data["expected"], str)):
        raise CatalogError("'expected' must be a tool name or null")
    expected = None if data["expected"] in (None, NO_TOOL) else data["expected"]
    tools = None
    if data.get("tools") is not None:
        if not isinstance(data["tools"], list) or not data["tools"]:
            raise CatalogError("'tools' must be a non-empty list of tools")
        try:
            tools = tuple(Tool.from_dict(t) for t in data["tools"])
        except ToolValidationError as exc:
            raise CatalogError(str(exc)) from None
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise CatalogError("duplicate tool names in 'tools'")
        if expected is not None and expected not in names:
            raise CatalogError(f"expected tool {expected!r} is not among the case's tools")
    scenario = data.get("scenario")
    if scenario is not None and not isinstance(scenario, str):
        raise CatalogError("'scenario' must be a string")
    case_type = data.get("case_type") if isinstance(data.get("case_type"), str) else None
    return EvalCase(data["id"], data["query"], expected, tools, scenario, case_type, where=where)


def check_cases(cases: Sequence[EvalCase], index: ToolIndex | None = None,
                suspicious: SuspiciousPolicy | None = None) -> list[str]:
    """What would stop each case once the run has started, found before it starts (see :func:`split_cases`)."""
    return split_cases(cases, index, suspicious)[1]


def split_cases(cases: Sequence[EvalCase], index: ToolIndex | None = None,
                suspicious: SuspiciousPolicy | None = None) -> tuple[list[EvalCase], list[str]]:
    """The cases that can run, and ``"where: why"`` for each that cannot: no tools and no index, an expected
    tool the index does not hold, a catalogue whose every tool the ``suspicious`` policy leaves out."""
    good: list[EvalCase] = []
    problems: list[str] = []
    screened: dict[str, str | None] = {}
    for case in cases:
        problem = _case_problem(case, index, suspicious, screened)
        if problem is None:
            good.append(case)
        else:
            problems.append(f"{case.where or f'case {case.id!r}'}: {problem}")
    return good, problems


def _case_problem(case: EvalCase, index: ToolIndex | None, suspicious: SuspiciousPolicy | None,
                  screened: dict[str, str | None]) -> str | None:
    if case.tools is None:
        if index is None:
            return "the case has no 'tools': give an index (--index DIR)"
        if case.expected is not None and case.expected not in index:
            return f"expected tool {case.expected!r} is not in the index"
        return None
    key = _catalogue_key(case.tools)
    if key not in screened:  # screened once per distinct catalogue (generated cases share them)
        screened[key] = _screening_problem(case.tools, suspicious)
    return screened[key]


def _catalogue_key(tools: Sequence[Tool]) -> str:
    return hashlib.sha256(json.dumps([t.to_dict() for t in tools]).encode()).hexdigest()


def _screening_problem(tools: Sequence[Tool], suspicious: SuspiciousPolicy | None) -> str | None:
    try:
        ToolCatalog.from_tools(tools, suspicious=suspicious or DEFAULT_POLICY)
    except GentoolError as exc:
        return str(exc)
    return None


def make_selector(method: str, model_path: str | os.PathLike[str] | None = None,
                  adapter_path: str | os.PathLike[str] | None = None,
                  n_threads: int | None = None) -> Selector:
    """The selector of a method: ``gentool`` (default model, or --model/--adapter), ``retrieval``, ``base``."""
    if method == "retrieval":
        return RetrievalSelector()
    if method == "base":
        return LlamaSelector(adapter_path=None, n_threads=n_threads)
    if method == "gentool":
        if adapter_path is None:
            return LlamaSelector(model_path, n_threads=n_threads)  # the packaged GenTool adapter by default
        return LlamaSelector(model_path, adapter_path=adapter_path, n_threads=n_threads)
    raise ValueError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")


def evaluate(
    cases: Sequence[EvalCase],
    selector: Selector,
    *,
    k: int = DEFAULT_K,
    index: ToolIndex | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda items: items,
    suspicious: SuspiciousPolicy | None = None,
    decision: DecisionSetting = DEFAULT_DECISION,
) -> list[dict[str, Any]]:
    """Route every case and return one record per case (prediction, ranking, candidates, timings).

    ``decision`` is the router's (``ToolRouter(decision=...)``): by default the shipped decision model for the
    packaged selector and the selector's own threshold for any other; a decision model (or its file) fitted with
    ``calibrate`` for ``selector`` decides instead.

    ``suspicious`` is the policy for instruction-like text in the cases' own tools (default
    ``"exclude"``, as for any catalogue; ``benchmarks/bench_poisoned.py`` compares the policies).

    Every case is checked first (:func:`check_cases`): the problems are one :class:`CatalogError` listing
    each, before any model runs. An error during the run names its case and keeps its own class
    (a :class:`SelectorError` stays one).
    """
    problems = check_cases(cases, index, suspicious)
    if problems:
        raise CatalogError(invalid_cases_message("evaluate", problems))
    embedder = embedder or (index.embedder if index is not None else MiniLMEmbedder())
    case_embedder = CachingEmbedder(embedder)  # cases' catalogues share their tools: each text embedded once
    cache: dict[str, ToolIndex] = {}
    records = []
    for case in progress(cases):
        try:
            if case.tools is not None:
                key = _catalogue_key(case.tools)
                if key not in cache:
                    cache[key] = ToolIndex.build(case.tools, case_embedder, show_progress=False,
                                                 suspicious=suspicious)
                case_index = cache[key]
            else:
                assert index is not None  # check_cases: a case without its own tools needs the index
                case_index = index
            router = ToolRouter(case_index, selector, k=k, on_selector_error="raise", decision=decision)
            route = router.route(case.query)
        except GentoolError as exc:
            raise _naming_case(exc, case) from exc
        records.append(_record(case, route))
    return records


def _naming_case(error: GentoolError, case: EvalCase) -> GentoolError:
    """``error`` with the case named in its message, of the same class (callers catch by class)."""
    message = f"case {case.id!r}" + (f" ({case.where})" if case.where else "") + f": {error}"
    try:
        renamed = type(error)(message)
    except Exception:  # a subclass with another constructor: keep the class's base
        renamed = GentoolError(message)
    return renamed


def _record(case: EvalCase, route: Route) -> dict[str, Any]:
    predicted = route.tool.name if route.tool is not None else None
    return {
        "id": case.id,
        "scenario": case.scenario,
        "case_type": case.case_type,
        "expected": case.expected,
        "predicted": predicted,
        "correct": predicted == case.expected,
        "in_candidates": case.expected is None or any(c.name == case.expected for c in route.candidates),
        "ranking": [[c.name, round(c.score, 6)] for c in route.ranking],
        "candidates": [c.name for c in route.candidates],
        "timings": {"embed": route.timings.embed, "search": route.timings.search, "select": route.timings.select},
    }


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of one method's run."""
    n = len(records)
    with_tool = [r for r in records if r["expected"] is not None]
    none_expected = [r for r in records if r["expected"] is None]
    none_predicted = [r for r in records if r["predicted"] is None]
    true_none = sum(1 for r in none_expected if r["predicted"] is None)
    precision = true_none / len(none_predicted) if none_predicted else None
    recall = true_none / len(none_expected) if none_expected else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if none_expected else None)
    by_scenario: dict[str, list[bool]] = defaultdict(list)
    by_case_type: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        if r["scenario"]:
            by_scenario[r["scenario"]].append(r["correct"])
        if r.get("case_type"):
            by_case_type[r["case_type"]].append(r["correct"])
    latency = {
        stage: {"p50_ms": percentile([r["timings"][stage] * 1000 for r in records], 50),
                "p95_ms": percentile([r["timings"][stage] * 1000 for r in records], 95)}
        for stage in ("embed", "search", "select")
    }
    return {
        "cases": n,
        "accuracy": sum(r["correct"] for r in records) / n if n else None,
        "accuracy_by_scenario": {s: sum(v) / len(v) for s, v in sorted(by_scenario.items())},
        "accuracy_by_case_type": {s: sum(v) / len(v) for s, v in sorted(by_case_type.items())},
        "accuracy_with_tool": sum(r["correct"] for r in with_tool) / len(with_tool) if with_tool else None,
        "abstention": {"cases": len(none_expected), "precision": precision, "recall": recall, "f1": f1},
        "recall_at_k": sum(r["in_candidates"] for r in with_tool) / len(with_tool) if with_tool else None,
        "latency": latency,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def format_table(summaries: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per method."""
    scenarios = sorted({s for summary in summaries.values() for s in summary["accuracy_by_scenario"]})
    case_types = sorted({s for summary in summaries.values() for s in summary.get("accuracy_by_case_type", {})})
    head = ["method", "cases", "accuracy", *scenarios, *case_types, "acc. with tool", "abstain P", "abstain R", "abstain F1",
            "recall@k", "select p50 ms", "select p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, s in summaries.items():
        row = [method, str(s["cases"]), _pct(s["accuracy"]), *(_pct(s["accuracy_by_scenario"].get(x)) for x in scenarios),
               *(_pct(s.get("accuracy_by_case_type", {}).get(x)) for x in case_types),
               _pct(s["accuracy_with_tool"]), _pct(s["abstention"]["precision"]), _pct(s["abstention"]["recall"]),
               _pct(s["abstention"]["f1"]), _pct(s["recall_at_k"]), f"{s['latency']['select']['p50_ms']:.0f}",
               f"{s['latency']['select']['p95_ms']:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_summary(summaries: dict[str, dict[str, Any]], out: str | os.PathLike[str]) -> None:
    """Bar chart of accuracy per scenario (and overall), one bar per method."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise GentoolError("--plot needs matplotlib: pip install 'gentool-router[eval]'") from exc
    groups = ["overall", *sorted({s for x in summaries.values() for s in x["accuracy_by_scenario"]})]
    width = 0.8 / max(1, len(summaries))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4))
    for i, (method, s) in enumerate(summaries.items()):
        values = [s["accuracy"] or 0.0, *(s["accuracy_by_scenario"].get(g, 0.0) for g in groups[1:])]
        ax.bar([x + i * width for x in range(len(groups))], [v * 100 for v in values], width, label=method)
    ax.set_xticks([x + width * (len(summaries) - 1) / 2 for x in range(len(groups))])
    ax.set_xticklabels([g.replace("_", " ") for g in groups], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("tool-selection accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
