#!/usr/bin/env bash
# The demo: Rand, PRand and PRS (feedback from the model itself, and from the constraint
# verifier) at the same budget on held-out demo prompts, on the embedded SmolLM2-135M-Instruct
# (no server). The reward mixes the constraint rubric with the model as a judge. Prints the
# summaries side by side and writes a report page.
set -euo pipefail
cd "$(dirname "$0")/.."
PRS=.build/release/prs
OUT=${PRS_DEMO_OUT:-runs/demo}
PROMPTS=${PRS_DEMO_PROMPTS:-examples/prefs-heldout.jsonl}
COUNT=${PRS_DEMO_COUNT:-10}   # the first COUNT prompts, to keep the demo to a few minutes
BUDGET=${PRS_DEMO_BUDGET:-4}
MAX_TOKENS=${PRS_DEMO_MAX_TOKENS:-96}
REWARD=${PRS_DEMO_REWARD:-0.5*rubric+0.5*judge}

rm -rf "$OUT"
mkdir -p "$OUT"
head -n "$COUNT" "$PROMPTS" > "$OUT/prompts.jsonl"
echo "== Rand, PRand, PRS (self feedback), PRS (verifier feedback) at budget $BUDGET on $COUNT prompts (embedded engine)" >&2
"$PRS" compare --prompts "$OUT/prompts.jsonl" --out "$OUT" --budget "$BUDGET" --max-tokens "$MAX_TOKENS" --seed 1 \
  --reward "$REWARD" --strategies rand,prand,prs,prs@verifier | grep -v -E '^(items:|wrote |next:)'
echo "(reward: $REWARD, 0..1)"
"$PRS" report "$OUT" --out "$OUT/report.html" >/dev/null
echo
echo "Trees: $OUT/*/trees.jsonl   Report: $OUT/report.html   One tree: $PRS inspect $OUT/prs --item ID"
