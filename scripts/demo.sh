#!/usr/bin/env bash
# The demo: Rand and PRS at the same budget on examples/prompts.jsonl, on the embedded
# SmolLM2-135M-Instruct (no server), scored by the model itself as a judge; the two
# summaries are printed side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
PRS=.build/release/prs
OUT=${PRS_DEMO_OUT:-runs/demo}
BUDGET=${PRS_DEMO_BUDGET:-4}
MAX_TOKENS=${PRS_DEMO_MAX_TOKENS:-64}

rm -rf "$OUT/rand" "$OUT/prs"
for strategy in rand prs; do
  echo "== $strategy, budget $BUDGET (embedded engine)" >&2
  "$PRS" sample --prompts examples/prompts.jsonl --out "$OUT/$strategy" --strategy "$strategy" \
    --budget "$BUDGET" --max-tokens "$MAX_TOKENS" --seed 1 --reward judge >/dev/null
done
echo
echo "Rand vs PRS at budget N=$BUDGET on examples/prompts.jsonl (embedded SmolLM2-135M-Instruct; reward: the model as judge, 0..1)"
"$PRS" inspect "$OUT/rand" "$OUT/prs"
echo
echo "Trees: $OUT/rand/trees.jsonl  $OUT/prs/trees.jsonl"
