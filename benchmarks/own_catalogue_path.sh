#!/usr/bin/env bash
# The own-catalogue path of docs/OWN_CATALOGUE.md, each step timed: data → train → index → calibrate → eval.
#
#   benchmarks/own_catalogue_path.sh data/own-100 own-100    # after: own_catalogue.py prepare --out data/own-100 --extra-tools 30
#
# Reads CATALOGUE/{tools,queries,heldout}.jsonl; writes data/NAME-data, data/runs/NAME, CATALOGUE/index,
# CATALOGUE/labels.jsonl and CATALOGUE/eval.json, and refuses to start when any of them exists.
set -euo pipefail
cd "$(dirname "$0")/.."
catalogue=${1:?usage: $0 CATALOGUE_DIR NAME}
name=${2:?usage: $0 CATALOGUE_DIR NAME}
data=data/$name-data run=data/runs/$name
for path in "$data" "$run" "$catalogue/index" "$catalogue/labels.jsonl" "$catalogue/eval.json"; do
    if [ -e "$path" ]; then echo "$path exists: move it away first" >&2; exit 2; fi
done
cli=.venv/bin/gentool-router
step() { local label=$1; shift; local t0; t0=$(date +%s); echo "=== $label: $*"; "$@"; echo "=== $label took $(( $(date +%s) - t0 )) s"; }
start=$(date +%s)
step generate-data "$cli" generate-data --out "$data" --tools "$catalogue/tools.jsonl" --queries "$catalogue/queries.jsonl"
step train "$cli" train --data "$data" --out "$run" --selection-examples 3000
step index "$cli" index "$catalogue/tools.jsonl" --out "$catalogue/index" --quiet
.venv/bin/python -c "import json, sys; [print(json.dumps({'query': r['query'], 'expected': r['tool']})) for r in \
    map(json.loads, open(sys.argv[1]))]" "$catalogue/queries.jsonl" > "$catalogue/labels.jsonl"
step calibrate "$cli" calibrate "$catalogue/labels.jsonl" --index "$catalogue/index" \
    --adapter "$run/gentool-lora.gguf" --out "$run/decision.json"
step eval "$cli" eval "$catalogue/heldout.jsonl" --index "$catalogue/index" --method gentool --method retrieval \
    --compare "mine=$run/gentool-lora.gguf" --compare-decision "mine=$run/decision.json" --json "$catalogue/eval.json"
echo "=== the whole path took $(( $(date +%s) - start )) s"
