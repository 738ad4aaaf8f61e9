#!/usr/bin/env bash
# The evaluation tables of BENCHMARKS.md: every method on the held-out GenTool test sample and the converted
# public sets. Needs ../shared/data beside the repo and a quiet machine (about 30 minutes on 2 cores).
set -euxo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/gentool-router
mkdir -p bench-out
[ -f data/gentool/test.jsonl ] || $G generate-data --out data/gentool --seed 0
python3 -c "l=open('data/gentool/test.jsonl').read().splitlines(); open('bench-out/gentool-test-sample.jsonl','w').write('\n'.join(l[::9])+'\n')"
$G convert-cases seal-tools --source ../shared/data/seal-tools --out bench-out/seal.jsonl
$G convert-cases metatool-reliability --source ../shared/data/metatool --out bench-out/mt-rel.jsonl --limit 200
$G convert-cases metatool-single --source ../shared/data/metatool --out bench-out/mt-single.jsonl --limit 1000
$G index bench-out/seal.tools.jsonl --out bench-out/seal-index --quiet
time $G eval bench-out/gentool-test-sample.jsonl --method retrieval --method base --json bench-out/gentool-test.json --plot bench-out/gentool-test.png
time $G eval bench-out/seal.jsonl --index bench-out/seal-index --method retrieval --method base --json bench-out/seal.json
time $G eval bench-out/mt-rel.jsonl --method retrieval --method base --json bench-out/mt-rel.json
time $G eval bench-out/mt-single.jsonl --method base --json bench-out/mt-single.json
