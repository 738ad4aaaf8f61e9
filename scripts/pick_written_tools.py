"""Pick the Seal-Tools tools the project's written training requests are about (train/data/written/).

Why: the selector trained only on the corpora's own generated queries, and on hand-written requests (the bundled
examples) it is no surer of a right tool than of a near miss. The written requests are user-worded requests and
near misses around tools that no real-catalogue suite or fitting case expects, so training on them leaves every
held-out figure held out (``tests/test_simulate_retrieval.py`` checks it).

What it does: every Seal-Tools tool that is a target of no suite, fitting or ablation set, not in the bundled
catalogue and not held out by ``generate-data``; by top-level field in a seeded order, whole sub-fields until a
field gives about five tools (so a writer sees every neighbour a near miss must not fit), into eight batches of
about 50. Writes ``batch-K.json`` (what each writer was given, with ``train/data/written/BRIEF.md``) and the
catalogue ``tools.jsonl``. Deterministic.

    .venv/bin/python scripts/pick_written_tools.py --batches data/written
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

from gentool_router.catalog import write_tools_jsonl
from gentool_router_train import real_sets
from gentool_router_train.sources import DATA_DIR, _lines

BATCHES = 8
PER_BATCH = 50
PER_FIELD = 5


def excluded_tools() -> set[str]:
    """Targets (and removed tools) of every suite and fitting set, the bundled catalogue, generate-data's
    held-out tools."""
    names: set[str] = set()
    sets = [*real_sets.SUITE_SETS, *real_sets.FIT_SETS, *real_sets.SMALL_FIT_SETS, *real_sets.ABLATION_SETS]
    for name in sets:
        for case in real_sets.build_set(name):
            names |= {t for t in [case["expected"], *case["exclude"]] if t}
    names |= {t.name for t in real_sets.catalogue("examples")}
    return names | set(real_sets._exposure().heldout_tools)


def pick(seed: str = "written-v1") -> list[list[dict]]:
    raw = {r["api_name"]: r for r in map(json.loads, _lines(DATA_DIR / "seal-tools" / "tool.jsonl.gz"))}
    excluded = excluded_tools()
    by_top: dict[str, list[str]] = defaultdict(list)
    for name, row in raw.items():
        if name not in excluded:
            by_top[row["field"].split("/")[0]].append(name)
    rng = random.Random(seed)
    tops = sorted(by_top)
    rng.shuffle(tops)
    batches: list[list[str]] = [[] for _ in range(BATCHES)]
    current = 0
    for top in tops:
        batch = batches[current]
        subs: dict[str, list[str]] = defaultdict(list)
        for name in sorted(by_top[top]):
            subs[raw[name]["field"]].append(name)
        taken = 0
        for sub in sorted(subs, key=lambda _: rng.random()):
            if taken >= PER_FIELD or len(batch) >= PER_BATCH:
                break
            batch.extend(sorted(subs[sub]))
            taken += len(subs[sub])
        if len(batch) >= PER_BATCH:
            current += 1
            if current == BATCHES:
                break
    return [[{"name": n, "description": raw[n]["api_description"], "field": raw[n]["field"],
              "parameters": raw[n]["parameters"], "required": raw[n].get("required", [])} for n in batch]
            for batch in batches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=Path, required=True, help="folder for batch-K.json (the writers' input)")
    parser.add_argument("--tools", type=Path, default=real_sets.WRITTEN_TOOLS, help="the catalogue to write")
    args = parser.parse_args()
    args.batches.mkdir(parents=True, exist_ok=True)
    batches = pick()
    for k, batch in enumerate(batches):
        (args.batches / f"batch-{k}.json").write_text(json.dumps(batch, indent=1), encoding="utf-8")
    seal = {t.name: t for t in real_sets.catalogue("seal-tools")}
    write_tools_jsonl([seal[n] for n in sorted(t["name"] for b in batches for t in b)], args.tools)
    print(f"{sum(map(len, batches))} tools in {len(batches)} batches; catalogue {args.tools}")


if __name__ == "__main__":
    main()
