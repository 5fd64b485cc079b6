#!/usr/bin/env bash
# Budgets where the paper measured (issue 36, part 3): Rand, PRand, PRS (N/2 + N/2), PRS with
# d = 4 layers (N/4 each) and PRS with verifier feedback, at N = 4, 8, 16 and 32, on the 120
# held-out loop prompts (examples/loop-heldout.jsonl), rubric reward, embedded SmolLM2-135M.
# Each budget is a prs compare directory (resumable: run again after a kill) with an HTML report
# (best-of-n curves, refinement success) and its figures as JSON; scripts/evidence.py then
# writes docs/evidence.md from them.
#
#   make evidence                     (or: bash scripts/evidence.sh [OUT])
#
# Sized for a 2-core machine: answers up to 48 tokens (EVIDENCE_MAX_TOKENS), 64 prompts in
# flight and decode batches up to 64, so the four budgets take about an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
PRS=.build/release/prs
OUT=${1:-runs/evidence}
PROMPTS=${EVIDENCE_PROMPTS:-examples/loop-heldout.jsonl}
MAX_TOKENS=${EVIDENCE_MAX_TOKENS:-48}
BUDGETS=${EVIDENCE_BUDGETS:-4 8 16 32}
mkdir -p "$OUT"
start=$(date +%s)
for N in $BUDGETS; do
  q=$((N / 4))
  echo "== N=$N: rand, prand, prs ($((N / 2))+$((N / 2))), prs ($q+$q+$q+$q), prs@verifier ($(( $(date +%s) - start )) s so far)" >&2
  "$PRS" compare --prompts "$PROMPTS" --out "$OUT/n$N" --budget "$N" --max-tokens "$MAX_TOKENS" --seed 0 \
    --reward rubric --concurrency 64 --max-batch 64 --kv-cache-tokens 65536 \
    --strategies "rand,prand,prs,prs:$q+$q+$q+$q,prs@verifier" | grep -v -E '^(items:|wrote |next:)'
  "$PRS" report "$OUT/n$N" --out "$OUT/n$N/report.html" --baseline prand --title "Budget N=$N" >/dev/null
  "$PRS" report "$OUT/n$N" --out "$OUT/n$N/report.json" --baseline prand --format json >/dev/null
done
echo "== all budgets in $(( $(date +%s) - start )) s" >&2
python3 scripts/evidence.py "$OUT" --max-tokens "$MAX_TOKENS" --seconds "$(( $(date +%s) - start ))" > "$OUT/evidence.md"
echo "wrote $OUT/evidence.md (copy it to docs/evidence.md to publish it)"
