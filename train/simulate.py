"""GenTool data simulation: toolsets, zero-to-one pairs, weak-to-strong cases and four held-out scenarios.

Definitions (also written into the dataset card):

* **held-out (unseen) tool**: one of a seeded fraction of the tools that have queries. It never appears in the
  train or dev split in any form: not as a target, not as a distractor, not through a weak variant.
* **seen query**: a query text that appears in the train split. Queries of held-out tools can be seen: they are
  trained as *no-tool* cases (their tool absent, answer ``generate_response``), then tested with the tool added.
* **unseen query**: a query text that appears in no train or dev case.
* Scenarios of the test split: ``seen_query_seen_tool`` (a train query, its toolset drawn anew),
  ``unseen_query_seen_tool``, ``seen_query_unseen_tool``, ``unseen_query_unseen_tool``; a case's tool is its
  target (the tool the query was written for), whether or not the toolset holds it.
* Case types: ``no-tool`` (target absent → ``generate_response``), ``tool-added`` (the same query also occurs
  with the target absent: the zero-to-one pair), ``weak-to-strong`` (the target and a weak variant of it
  are both present; the target is the answer and ranks first, the variant second), ``plain``.

A toolset holds k tools (default 5): the target (unless no-tool), its weak variant (weak-to-strong), and hard
distractors (near duplicates of the target, cosine >= :data:`NEAR_DUPLICATE`, excluded, since they would make
the label ambiguous). With ``candidates = neighbours`` the distractors are drawn from the target's nearest tools
by embedding of the canonical tool text; with ``candidates = retrieval`` they are the router's own candidates for
the query over the whole source catalogue (dense top k, BM25's best in the last place), best first, so a
no-tool case is a real near miss. Tools are shown in a random order. Ranking target (stage 1): target, weak
variant, ``generate_response``, then the distractors nearest-first; for no-tool cases ``generate_response``
first. Selection target (stage 2): the first entry.

* Weak-to-strong names and hints: by default the strong tool keeps its name and the weak one is renamed (an
  abbreviation, ``Info``, ``Basic``, ``_alt``), and a version hint makes the strong one supersede the weak one.
  With ``neutral_pairs`` either side keeps the name (the other gets a suffix drawn alike for both) and hints fall
  on either side by a coin toss: the "Shortcut check" below measures how much a name or hint alone gives away.
* With ``no_tool_queries``, requests that need no tool at all (``train/data/no-tool-queries.jsonl``) are no-tool
  cases over the retriever's top k; their test cases form the scenario ``out_of_scope``.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gentool_router.persistence import atomic_folder, check_replaceable
from gentool_router.tool_text import TOOL_TEXT_VERSION, render_tool
from gentool_router.tools import NO_TOOL, Tool

from .own_catalogue import SOURCE as OWN_SOURCE
from .own_catalogue import OwnCatalogue, load_own_catalogue
from .retrieval_cases import CatalogueRetriever
from .shortcuts import shortcut_report
from .simulation_config import SimulationConfig
from .sources import (
    SourceQuery,
    example_eval_queries,
    load_multi_call_queries,
    load_no_tool_queries,
    load_sources,
    metatool_tool_names,
    public_eval_queries,
    query_key,
)
from .weak import is_weaker, make_weak_variant, neutral_pair_names

__all__ = ["SimulationConfig", "generate_dataset", "add_version_hints", "SCENARIOS", "CASE_TYPES", "NEAR_MISS"]

SCENARIOS = ("seen_query_seen_tool", "unseen_query_seen_tool", "seen_query_unseen_tool", "unseen_query_unseen_tool")
#: The test scenario of queries that need no tool at all (``--no-tool-queries``).
OUT_OF_SCOPE = "out_of_scope"
CASE_TYPES = ("no-tool", "tool-added", "weak-to-strong", "plain")
#: The case type of a near miss of the user's (``--near-miss-cases``): a no-tool request shown beside the tool it
#: comes close to. A type of its own so balanced sampling gives near misses an equal share of training.
NEAR_MISS = "near-miss"
NEAR_DUPLICATE = 0.92
NEIGHBOURS = 40


@dataclass
class _Pool:
    tools: dict[str, Tool]
    neighbours: dict[str, list[str]]
    heldout: set[str]
    retriever: CatalogueRetriever | None = None


def _nearest(tools: dict[str, Tool], names: list[str], embed: Callable[[list[str]], np.ndarray]) -> dict[str, list[str]]:
    import faiss

    all_names = list(tools)
    vectors = embed([render_tool(tools[n]) for n in all_names])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    position = {n: i for i, n in enumerate(all_names)}
    scores, ids = index.search(vectors[[position[n] for n in names]], NEIGHBOURS + 1)
    result = {}
    for name, row_scores, row_ids in zip(names, scores, ids):
        result[name] = [all_names[i] for s, i in zip(row_scores, row_ids)
                        if i >= 0 and all_names[i] != name and s < NEAR_DUPLICATE]
    return result


def _toolset(pool: _Pool, target: str | None, present: bool, weak: Tool | None, rng: random.Random, k: int,
             training: bool, hidden: tuple[str, ...] = (), query: str = "", strong: Tool | None = None
             ) -> tuple[list[dict[str, Any]], list[str]]:
    """Shown tools (as dicts, shuffled) and the ranking target; ``hidden`` tools are never shown.

    ``strong`` is the target as shown (renamed in a neutral pair); ``target`` None is a query that needs no tool.
    """
    shown_target = strong if strong is not None else pool.tools[target] if target is not None else None
    head_tools = ([shown_target] if present and shown_target is not None else []) + ([weak] if weak is not None else [])
    head = [t.name for t in head_tools]
    need = k - len(head)
    if pool.retriever is not None:
        exclude = {*hidden, *([target] if target else []), *(pool.heldout if training else ())}
        distractors = pool.retriever.top(query, need, exclude, avoid_near=target)
    else:
        assert target is not None
        allowed = [n for n in pool.neighbours[target] if not (training and n in pool.heldout) and n not in hidden]
        distractors = sorted(rng.sample(allowed[: max(need * 2, need)], need), key=allowed.index)
    shown = head_tools + [pool.tools[n] for n in distractors]
    ranking = head + [NO_TOOL] + distractors if present else [NO_TOOL] + distractors
    order = list(range(len(shown)))
    rng.shuffle(order)
    return [shown[i].to_dict() for i in order], ranking


def add_neutral_version_hints(record: dict[str, Any], rng: random.Random) -> None:
    """Version metadata that is no clue to the answer (in place; ``--neutral-pairs``).

    A pair's newer side (version 2, superseding the other, which is deprecated half the time) is the strong or
    the weak one by a coin toss; in other cases one shown tool, drawn uniformly, is marked deprecated (version 1)
    or version 2. The selector must judge the tools themselves.
    """
    tools = {t["name"]: t for t in record["tools"]}
    target = tools.get(record["expected"]) if record["expected"] else None
    weak = tools.get(record.get("weak_variant", {}).get("name", ""))
    if target is not None and weak is not None:
        newer, older = rng.sample([target, weak], 2)
        newer.update(version="2", supersedes=older["name"])
        older["version"] = "1"
        if rng.random() < 0.5:
            older["deprecated"] = True
        record["version_hints"] = "strong-supersedes-weak" if newer is target else "weak-supersedes-strong"
        return
    hinted = rng.choice(record["tools"])
    if rng.random() < 0.5:
        hinted.update(version="1", deprecated=True)
        record["version_hints"] = "one-tool-deprecated"
    else:
        hinted["version"] = "2"
        record["version_hints"] = "one-tool-v2"


def add_version_hints(record: dict[str, Any], rng: random.Random) -> None:
    """Give a case's tools version metadata (in place), the way real catalogues carry it.

    Weak-to-strong: the target becomes version 2 and supersedes its weak variant, which becomes version 1
    (deprecated half the time). Other cases get hints that must not decide the answer: a target with no
    replacement in view is marked deprecated (still the right tool), or a distractor is labelled version 2.
    ``record["version_hints"]`` says which was done.
    """
    tools = {t["name"]: t for t in record["tools"]}
    target = tools.get(record["expected"]) if record["expected"] else None
    weak = tools.get(record.get("weak_variant", {}).get("name", ""))
    if target is not None and weak is not None:
        target.update(version="2", supersedes=weak["name"])
        weak["version"] = "1"
        if rng.random() < 0.5:
            weak["deprecated"] = True
        record["version_hints"] = "strong-supersedes-weak"
    elif target is not None and rng.random() < 0.5:
        target.update(version="1", deprecated=True)
        record["version_hints"] = "lone-target-deprecated"
    else:
        distractors = [t for n, t in tools.items() if n != record["expected"]]
        rng.choice(distractors)["version"] = "2"
        record["version_hints"] = "distractor-v2"


def _maybe_hint(record: dict[str, Any], config: SimulationConfig) -> None:
    """Version metadata on a seeded share of the cases (:data:`SimulationConfig.version_hint_share`)."""
    if config.version_hint_share > 0:
        hint_rng = random.Random(f"{config.seed}:hints:{record['id']}")
        if hint_rng.random() < config.version_hint_share:
            (add_neutral_version_hints if config.neutral_pairs else add_version_hints)(record, hint_rng)


def _no_tool_plan(config: SimulationConfig) -> list[tuple[str, str]]:
    """The requests that need no tool, as (query, id), when the configuration asks for them."""
    return [(q["query"], q["id"]) for q in load_no_tool_queries()] if config.no_tool_queries else []


def _case_types(rng: random.Random, config: SimulationConfig) -> str:
    r = rng.random()
    return "pair" if r < config.pair_share else "weak" if r < config.pair_share + config.weak_share else "plain"


def generate_dataset(
    out: str | Path,
    config: SimulationConfig | None = None,
    *,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``, ``stats.json`` and ``DATASET_CARD.md`` to ``out``.

    Returns the counts printed. ``embed`` defaults to the stock all-MiniLM-L6-v2, not the router's fine-tuned
    retriever: the shipped data was generated with it, and the retriever is fine-tuned on that data
    (``gentool_router_train.retriever``), so the data must not depend on the retriever it trains.
    An ``out`` holding anything but an earlier data set is refused before any work starts.
    """
    config = config or SimulationConfig()
    check_replaceable(Path(out).absolute(), dataset_owned_files, "generate-data output")
    own = load_own_catalogue(config.tools, config.queries or None) if config.tools else None
    if embed is None:
        from gentool_router.embedder import MiniLMEmbedder

        embedder = MiniLMEmbedder(tuned=False)
        embed = lambda texts: embedder.embed_documents(texts, show_progress=True)  # noqa: E731
    rng = random.Random(config.seed)
    tools, queries, multi, by_tool, heldout = _query_plan(config, rng)
    if own is not None:
        multi = _drop_clashes(own, tools, by_tool, multi, heldout, log)
    no_tool = _no_tool_plan(config)
    targets = sorted(by_tool)
    log(f"{len(tools)} tools, {len(targets)} with queries ({len(heldout)} held out); embedding tool texts...")
    corpus_pools = _corpus_pools(config, tools, by_tool, multi, heldout, embed, log) if config.same_source_candidates \
        else {}
    # with one pool per corpus, the whole catalogue's pool serves the requests that need no tool alone
    pool: _Pool | None = None
    if config.candidates == "retrieval" and (no_tool or not corpus_pools):
        texts = [q for q, _ in no_tool]
        if not corpus_pools:
            texts = [q.query for qs in by_tool.values() for q in qs] + [q.query for q in multi] + texts
        log(f"retrieving each of {len(set(texts))} queries' candidates over the whole catalogue (dense + BM25)...")
        pool = _Pool(tools, {}, heldout, CatalogueRetriever(tools, texts, embed, NEAR_DUPLICATE))
    elif not corpus_pools:
        pool = _Pool(tools, _nearest(tools, sorted(set(targets) | {q.tool for q in multi}), embed), heldout)
    taken = set(tools) | set(own.tools if own is not None else ())

    cases: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}

    def emit(split: str, q: SourceQuery, scenario: str | None, kind: str, weak_from: random.Random,
             source: _Pool | None = None) -> None:
        """Add the case(s) of one kind for query ``q`` (a pair adds two); ``source``: the pool ``q``'s tools come
        from (the bundled corpora's by default)."""
        source = source or corpus_pools.get(_corpus(q.source)) or pool
        assert source is not None  # every query has its corpus's pool or the whole catalogue's
        tools = source.tools
        training = split in ("train", "dev")
        variants: list[tuple[str, bool, Tool | None, list[str]]] = []
        strong = None
        if kind == "weak" and config.neutral_pairs:
            weak, criteria = make_weak_variant(tools[q.tool], weak_from, taken, q.arguments, rename=False)
            strong_name, weak_name = neutral_pair_names(q.tool, weak_from, taken)
            strong, weak = replace(tools[q.tool], name=strong_name), replace(weak, name=weak_name)
            if is_weaker(weak, strong):
                taken.update((strong_name, weak_name))
            else:  # a bare tool (one-word description, no arguments) has no weaker copy but its name
                kind, strong = "plain", None
        if kind == "pair":
            variants = [("no-tool", False, None, []), ("tool-added", True, None, [])]
        elif kind == "weak" and strong is not None:
            variants = [("weak-to-strong", True, weak, criteria)]
        elif kind == "weak":
            weak, criteria = make_weak_variant(tools[q.tool], weak_from, taken, q.arguments)
            taken.add(weak.name)
            variants = [("weak-to-strong", True, weak, criteria)]
        elif kind == "no-tool":
            variants = [("no-tool", False, None, [])]
        else:
            variants = [(kind, True, None, [])]
        for case_type, present, weak, criteria in variants:
            shown, ranking = _toolset(source, q.tool, present, weak, rng, config.k, training, q.others, q.query,
                                      strong)
            record = {
                "id": f"{split}-{len(cases[split]):05d}",
                "query": q.query,
                "tools": shown,
                "expected": (strong.name if strong is not None else q.tool) if present else None,
                "ranking": ranking,
                "scenario": scenario,
                "case_type": case_type,
                "target": q.tool,
                "query_id": q.query_id,
                "source": q.source,
            }
            if weak is not None:
                record["weak_variant"] = {"name": weak.name, "criteria": criteria}
            _maybe_hint(record, config)
            cases[split].append(record)

    def emit_no_tool(split: str, query: str, query_id: str, source: _Pool | None = None,
                     source_name: str = "no-tool-queries", near_miss_of: str | None = None) -> None:
        """A request that needs no tool, over the retriever's top k; a near miss also over the tool it comes
        close to (ranked right after no tool: the strongest wrong answer)."""
        source = source or pool
        assert source is not None  # the whole catalogue's pool is built whenever there are such requests
        training = split in ("train", "dev")
        if near_miss_of is None:
            shown, ranking = _toolset(source, None, False, None, rng, config.k, training, (), query)
        else:
            shown, ranking = _toolset(source, near_miss_of, True, None, rng, config.k, training, (), query)
            ranking = [NO_TOOL, near_miss_of, *ranking[2:]]  # _toolset ranks a shown tool first
        record = {"id": f"{split}-{len(cases[split]):05d}", "query": query, "tools": shown, "expected": None,
                  "ranking": ranking, "scenario": OUT_OF_SCOPE if split == "test" else None,
                  "case_type": "no-tool" if near_miss_of is None else NEAR_MISS, "target": None,
                  "query_id": query_id, "source": source_name}
        if near_miss_of is not None:
            record["near_miss_of"] = near_miss_of
        _maybe_hint(record, config)
        cases[split].append(record)

    train_queries: list[SourceQuery] = []
    for name in targets:
        for q in by_tool[name]:
            r = rng.random()
            if name in heldout:
                if r < config.heldout_seen_query_fraction:
                    emit("train", q, None, "no-tool", rng)  # its tool is absent: zero-to-one's first view
                    emit("test", q, "seen_query_unseen_tool", "tool-added" if rng.random() < 0.5 else "weak", rng)
                else:
                    emit("test", q, "unseen_query_unseen_tool", _case_types(rng, config), rng)
            elif r < config.unseen_query_fraction:
                emit("test", q, "unseen_query_seen_tool", _case_types(rng, config), rng)
            elif r < config.unseen_query_fraction + config.dev_fraction:
                emit("dev", q, "unseen_query_seen_tool", _case_types(rng, config), rng)
            else:
                train_queries.append(q)
                emit("train", q, None, _case_types(rng, config), rng)
    for q in rng.sample(train_queries, min(config.seen_query_test_cases, len(train_queries))):
        emit("test", q, "seen_query_seen_tool", _case_types(rng, config), rng)
    # multi-call queries train only: their text is shared by several targets, so no test case can be unseen
    multi_cases = 0
    for q in multi:
        if q.tool not in heldout:
            emit("train", q, None, _case_types(rng, config), rng)
            multi_cases += 1
    if multi:
        log(f"{multi_cases} train queries from Seal-Tools multi-call queries (calls of held-out tools left out)")
    for number, (query, query_id) in enumerate(no_tool):
        emit_no_tool("test" if number % 10 == 0 else "dev" if number % 20 == 5 else "train", query, query_id)
    if no_tool:
        log(f"{len(no_tool)} requests that need no tool (train/data/no-tool-queries.jsonl)")
    if own is not None:
        _emit_own(own, config, cases, emit, emit_no_tool, embed, rng, log)
    # the seen-query tests of held-out tools pair with their training no-tool case
    for record in cases["test"]:
        if record["scenario"] == "seen_query_unseen_tool" and record["case_type"] == "plain":
            record["case_type"] = "tool-added"

    stats = _write(Path(out), cases, config, tools, targets, heldout, queries, own)
    for split in ("train", "dev", "test"):
        log(f"{split}: {stats['splits'][split]['cases']} cases, {stats['splits'][split]['queries']} queries; "
            f"case types {stats['splits'][split]['case_types']}")
        if split == "test":
            for scenario, n in stats["splits"][split]["scenarios"].items():
                log(f"  {scenario}: {n} cases ({stats['splits'][split]['scenario_case_types'][scenario]})")
    log(f"overall: {stats['tools_in_toolsets']} distinct tools in toolsets, {stats['distinct_queries']} distinct queries")
    return stats


def _corpus(source: str) -> str:
    """The corpus a query comes from: ``metatool`` or ``seal-tools`` (single- and multi-call alike)."""
    return "metatool" if source == "metatool" else "seal-tools"


def _corpus_pools(config: SimulationConfig, tools: dict[str, Tool], by_tool: dict[str, list[SourceQuery]],
                  multi: list[SourceQuery], heldout: set[str], embed: Callable[[list[str]], np.ndarray],
                  log: Callable[[str], None]) -> dict[str, _Pool]:
    """One pool per corpus (``--same-source-candidates``): a query's other tools come from its own corpus, so an
    answer never stands out by its corpus's writing (MetaTool's prose without parameters among Seal-Tools')."""
    metatool = metatool_tool_names()
    pools = {}
    # Seal-Tools first: from 2,000 texts the embedder switches to sentence-transformers and stays there, so both
    # corpora get that runtime's vectors (near ties between neighbours depend on it; gentool-v7 was made so)
    for corpus in ("seal-tools", "metatool"):
        own = {n: t for n, t in tools.items() if (n in metatool) == (corpus == "metatool")}
        queries = [q for qs in by_tool.values() for q in qs if _corpus(q.source) == corpus]
        queries += [q for q in multi if _corpus(q.source) == corpus]
        log(f"{corpus}: {len(own)} tools, candidates for {len(queries)} queries from these alone...")
        if config.candidates == "retrieval":
            retriever = CatalogueRetriever(own, [q.query for q in queries], embed, NEAR_DUPLICATE)
            pools[corpus] = _Pool(own, {}, heldout & set(own), retriever)
        else:
            pools[corpus] = _Pool(own, _nearest(own, sorted({q.tool for q in queries}), embed), heldout & set(own))
    return pools


#: The fewest bundled training cases kept beside a user's catalogue, whatever ``own_share`` asks: the selector's
#: general skill (weak-to-strong, tools it never saw) comes from them.
MIN_BUNDLED_TRAIN_CASES = 3000
#: The case kinds each of the user's training queries is made into: 4 cases (a pair is two), so every labelled
#: query teaches its tool plain, beside a weaker copy, and absent (the zero-to-one pair).
OWN_KINDS = ("plain", "pair", "weak")


def _drop_clashes(own: OwnCatalogue, tools: dict[str, Tool], by_tool: dict[str, list[SourceQuery]],
                  multi: list[SourceQuery], heldout: set[str], log: Callable[[str], None]) -> list[SourceQuery]:
    """Leave out the bundled tools that share a name with one of the user's (in place; the user's tool wins),
    with their queries; returns the multi-call queries that remain."""
    clash = set(tools) & set(own.tools)
    if not clash:
        return multi
    for name in clash:
        del tools[name]
        by_tool.pop(name, None)
        heldout.discard(name)
    log(f"{len(clash)} bundled tool(s) share a name with one of yours and are left out: "
        + ", ".join(sorted(clash)[:10]) + (" ..." if len(clash) > 10 else ""))
    return [q for q in multi if q.tool not in clash and not clash & set(q.others)]


def _emit_own(own: OwnCatalogue, config: SimulationConfig, cases: dict[str, list[dict[str, Any]]],
              emit: Callable[..., None], emit_no_tool: Callable[..., None],
              embed: Callable[[list[str]], np.ndarray], rng: random.Random, log: Callable[[str], None]) -> None:
    """The cases built around the user's catalogue (train and dev), then the bundled training cases sampled down
    so the user's make ``config.own_share`` of the train split (never fewer than
    :data:`MIN_BUNDLED_TRAIN_CASES` bundled ones)."""
    bundled = cases["train"]
    cases["train"] = []
    train_queries, dev_queries = own.split_dev(config.seed)
    general = [(r["query"], r["id"]) for n, r in enumerate(load_no_tool_queries()) if n % 10 != 0]
    requests = [*own.no_tool, *general]
    texts = [q.query for q in own.queries] + [q for q, _ in requests]
    log(f"your catalogue: {len(own.tools)} tools, {len(own.queries)} labelled queries, {len(own.no_tool)} of "
        f"yours and {len(general)} general requests that need no tool; retrieving their candidates...")
    pool = _Pool(own.tools, {}, set(), CatalogueRetriever(own.tools, texts, embed, NEAR_DUPLICATE))
    for q in train_queries:
        for kind in OWN_KINDS:
            emit("train", q, None, kind, rng, pool)
    for q in dev_queries:
        emit("dev", q, "unseen_query_seen_tool", _case_types(rng, config), rng, pool)
    for number, (query, query_id) in enumerate(requests):
        near_miss_of = own.near_miss_of.get(query_id) if config.near_miss_cases else None
        emit_no_tool("dev" if number % 20 == 5 else "train", query, query_id, pool, OWN_SOURCE, near_miss_of)
    keep = max(MIN_BUNDLED_TRAIN_CASES, round(len(cases["train"]) * (1 - config.own_share) / config.own_share))
    if keep < len(bundled):
        chosen = sorted(random.Random(f"{config.seed}:own-mix").sample(range(len(bundled)), keep))
        bundled = [bundled[i] for i in chosen]
    log(f"training cases: {len(cases['train'])} around your catalogue, {len(bundled)} from the bundled corpora")
    cases["train"] = bundled + cases["train"]
    missing = own.tools_without_queries
    if missing:
        log(f"{len(missing)} of your {len(own.tools)} tools have no labelled query ("
            + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            + "): the selector sees them only as other candidates and judges them by their descriptions alone, "
              "as it does tools it never saw (what that costs: docs/OWN_CATALOGUE.md)")


def _write(out: Path, cases: dict[str, list[dict[str, Any]]], config: SimulationConfig, tools: dict[str, Tool],
           targets: list[str], heldout: set[str], queries: list[SourceQuery], own: OwnCatalogue | None = None
           ) -> dict[str, Any]:
    stats: dict[str, Any] = {"config": asdict(config), "tool_text_version": TOOL_TEXT_VERSION, "splits": {}}
    in_toolsets: set[str] = set()
    distinct: set[str] = set()
    for split, records in cases.items():
        scenario_types: dict[str, Counter] = defaultdict(Counter)
        for r in records:
            in_toolsets.update(t["name"] for t in r["tools"])
            distinct.add(r["query"])
            if r["scenario"]:
                scenario_types[r["scenario"]][r["case_type"]] += 1
        stats["splits"][split] = {
            "cases": len(records),
            "queries": len({r["query"] for r in records}),
            "case_types": dict(sorted(Counter(r["case_type"] for r in records).items())),
            "scenarios": dict(sorted(Counter(r["scenario"] for r in records if r["scenario"]).items())),
            "scenario_case_types": {s: dict(sorted(c.items())) for s, c in sorted(scenario_types.items())},
        }
    stats["tools_in_toolsets"] = len(in_toolsets)
    stats["distinct_queries"] = len(distinct)
    stats["shortcuts"] = shortcut_report(cases["train"])
    stats["tools_with_queries"] = len(targets)
    stats["heldout_tools"] = sorted(heldout)
    if own is not None:
        stats["own_catalogue"] = {
            "tools": len(own.tools), "labelled_queries": len(own.queries), "no_tool_queries": len(own.no_tool),
            "tools_without_queries": own.tools_without_queries,
            "cases": {split: sum(r["source"] == OWN_SOURCE for r in records) for split, records in cases.items()}}

    def write(folder: Path) -> None:
        for split, records in cases.items():
            with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        (folder / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (folder / "DATASET_CARD.md").write_text(_card(stats, config), encoding="utf-8")

    atomic_folder(out, write, owned_files=dataset_owned_files, kind="generate-data output")
    return stats


def _query_plan(config: SimulationConfig, rng: random.Random) -> tuple[
        dict[str, Tool], list[SourceQuery], list[SourceQuery], dict[str, list[SourceQuery]], set[str]]:
    """The tools, the single-tool queries, the multi-call queries, the queries each target tool may use (shuffled
    and capped) and the held-out tools: everything a data set can draw from, before any case is made."""
    excluded = public_eval_queries() if config.exclude_public_queries else set()
    if config.exclude_example_queries:
        excluded |= example_eval_queries()
    tools, queries = load_sources(exclude=excluded)
    multi = [q for q in load_multi_call_queries(tools) if query_key(q.query) not in excluded
             ] if config.multi_call_queries else []
    by_tool: dict[str, list[SourceQuery]] = defaultdict(list)
    for q in queries:
        by_tool[q.tool].append(q)
    for name in sorted(by_tool):
        random.Random(f"{config.seed}:{name}").shuffle(by_tool[name])
        del by_tool[name][config.max_queries_per_tool:]
    shuffled = sorted(by_tool)
    rng.shuffle(shuffled)
    heldout = set(shuffled[: round(len(shuffled) * config.heldout_tool_fraction)])
    return tools, queries, multi, dict(by_tool), heldout


@dataclass(frozen=True)
class TrainingExposure:
    """What a data set made with one configuration can have shown the selector: any query it may use (keyed
    with :func:`query_key`) and the tools held out from its training split."""

    query_keys: frozenset[str]
    heldout_tools: frozenset[str]


def training_exposure(config: SimulationConfig) -> TrainingExposure:
    """The queries and held-out tools of ``generate-data`` with ``config``, without simulating anything (used to
    keep evaluation sets out of training: ``gentool_router_train.real_sets``)."""
    _, _, multi, by_tool, heldout = _query_plan(config, random.Random(config.seed))
    keys = {query_key(q.query) for qs in by_tool.values() for q in qs} | {query_key(q.query) for q in multi}
    keys |= {query_key(q) for q, _ in _no_tool_plan(config)}
    if config.queries:  # a catalogue's labelled requests (``--tools --queries``) are training queries too
        own = load_own_catalogue(config.tools, config.queries)
        keys |= {query_key(q.query) for q in own.queries} | {query_key(q) for q, _ in own.no_tool}
    return TrainingExposure(frozenset(keys), frozenset(heldout))


#: What ``generate-data`` writes into its folder.
DATASET_FILES = frozenset({"train.jsonl", "dev.jsonl", "test.jsonl", "stats.json", "DATASET_CARD.md"})


def dataset_owned_files(folder: Path) -> set[str] | None:
    """The files of an earlier generated data set in ``folder``, or None if it is not one (no stats.json and
    dataset card): a new run replaces such a folder only when it holds nothing else."""
    if not ((folder / "stats.json").is_file() and (folder / "DATASET_CARD.md").is_file()):
        return None
    return set(DATASET_FILES)


def _card(stats: dict[str, Any], config: SimulationConfig) -> str:
    definitions = (__doc__ or "").split("Definitions (also written into the dataset card):", 1)[1]
    rows = "\n".join(
        f"| {split} | {s['cases']} | {s['queries']} | " + ", ".join(f"{k} {v}" for k, v in s["case_types"].items()) + " |"
        for split, s in stats["splits"].items()
    )
    scenarios = "\n".join(
        f"| {scenario} | {n} | " + ", ".join(f"{k} {v}" for k, v in stats["splits"]["test"]["scenario_case_types"][scenario].items()) + " |"
        for scenario, n in stats["splits"]["test"]["scenarios"].items()
    )
    sc = stats["shortcuts"]
    settings = "\n".join(f"- `{f.name}` = {getattr(config, f.name)}: {f.metadata['help']}" for f in fields(config))
    return f"""# GenTool simulated data

Made by `gentool-router generate-data --seed {config.seed}` from the vendored Seal-Tools (Apache-2.0) and MetaTool
(MIT) corpora (see `train/data/README.md` in gentool-router). Each line of `train.jsonl`, `dev.jsonl` and
`test.jsonl` is an evaluation case (`id`, `query`, `tools`, `expected`, `scenario`) that also carries the
training targets: `ranking` (stage 1, best first) and `expected` (stage 2; null = `{NO_TOOL}`).
Tool text version {stats['tool_text_version']}.

## Definitions
{definitions}
## Counts

| split | cases | distinct queries | case types |
|---|---|---|---|
{rows}

| test scenario | cases | case types |
|---|---|---|
{scenarios}

Tools with queries: {stats['tools_with_queries']} ({len(stats['heldout_tools'])} held out); distinct tools shown in
toolsets (weak variants included): {stats['tools_in_toolsets']}; distinct queries: {stats['distinct_queries']}.

## Shortcut check (train split)

A logistic regression that sees only the two names of a weak-to-strong pair tells the strong one in
{sc['names_only_pair_accuracy']:.1%} of {sc['weak_to_strong_pairs']} pairs; one that sees only their version fields, in
{sc['hints_only_pair_accuracy']:.1%} of {sc['hinted_pairs']}; from one tool's version fields alone it ranks the answer
above the other shown tools of the other hinted cases with ROC AUC {sc['hints_only_auc']:.3f} ({sc['hinted_tools']} tools).
One that sees only a tool's canonical text, no query, tells the answers from the other shown tools with ROC AUC
{sc.get('text_only_auc', float('nan')):.3f} ({sc.get('text_only_tools', 0)} tools of a sample, folds grouped by tool name).
Chance is 50% and 0.5: a figure well above it is a giveaway the selector can learn instead of the task
(`gentool_router_train.shortcuts`; `--neutral-pairs` removes the first two, `--same-source-candidates` most of the
third).

## Settings
{settings}
"""
