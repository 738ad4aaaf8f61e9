#!/usr/bin/env bash
# The evaluation tables of BENCHMARKS.md ("Evaluation"): the GenTool selector, retrieval and the zero-shot base on
# the held-out GenTool test sample, then the selector and retrieval on the converted public sets and the bundled
# example queries. Needs ../shared/data beside the repo and a quiet machine (about 40 minutes on 2 cores).
#   benchmarks/run_eval.sh                 # the packaged (shipped, gentool-v2) selector on its own test data
#   ADAPTER=data/runs/gentool-v3/gentool-lora.gguf DATA=data/gentool-v3 GEN_ARGS= OUT=bench-out/v3 benchmarks/run_eval.sh
set -euxo pipefail
cd "$(dirname "$0")/.."
G=.venv/bin/gentool-router
DATA=${DATA:-data/gentool-v2}
# the shipped adapter's data: today's defaults except that the bundled example queries were not yet left out
GEN_ARGS=${GEN_ARGS---no-exclude-example-queries}
OUT=${OUT:-bench-out}
SELECTOR=(--method gentool)
[ -n "${ADAPTER:-}" ] && SELECTOR=(--method gentool --adapter "$ADAPTER")
mkdir -p "$OUT"
[ -f "$DATA/test.jsonl" ] || $G generate-data --out "$DATA" --seed 0 $GEN_ARGS
python3 -c "import sys; l=open(sys.argv[1]).read().splitlines(); open(sys.argv[2],'w').write('\n'.join(l[::9])+'\n')" \
    "$DATA/test.jsonl" "$OUT/gentool-test-sample.jsonl"
$G convert-cases seal-tools --source ../shared/data/seal-tools --out "$OUT/seal.jsonl"
$G convert-cases metatool-reliability --source ../shared/data/metatool --out "$OUT/mt-rel.jsonl" --limit 200
$G convert-cases metatool-single --source ../shared/data/metatool --out "$OUT/mt-single.jsonl" --limit 1000
[ -f "$OUT/seal-index/manifest.json" ] || $G index "$OUT/seal.tools.jsonl" --out "$OUT/seal-index" --quiet
[ -f "$OUT/example-index/manifest.json" ] || $G index gentool_router/data/example_tools.jsonl --out "$OUT/example-index" --quiet
time $G eval "$OUT/gentool-test-sample.jsonl" "${SELECTOR[@]}" --method retrieval --method base \
    --json "$OUT/gentool-test.json" --plot "$OUT/gentool-test.png"
time $G eval gentool_router/data/example_queries.jsonl --index "$OUT/example-index" "${SELECTOR[@]}" --method retrieval \
    --json "$OUT/examples.json"
time $G eval "$OUT/seal.jsonl" --index "$OUT/seal-index" "${SELECTOR[@]}" --method retrieval --json "$OUT/seal.json"
time $G eval "$OUT/mt-rel.jsonl" "${SELECTOR[@]}" --method retrieval --json "$OUT/mt-rel.json"
time $G eval "$OUT/mt-single.jsonl" "${SELECTOR[@]}" --limit 300 --json "$OUT/mt-single.json"
