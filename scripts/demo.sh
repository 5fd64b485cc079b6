#!/usr/bin/env bash
# The demo: Rand, PRand and PRS (feedback from the model itself, and from the constraint
# verifier) at the same budget on the held-out demo prompts, on the embedded
# SmolLM2-135M-Instruct (no server). The reward mixes the constraint rubric with the model
# as a judge; the summaries are printed side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
PRS=.build/release/prs
OUT=${PRS_DEMO_OUT:-runs/demo}
PROMPTS=${PRS_DEMO_PROMPTS:-examples/prefs-heldout.jsonl}
BUDGET=${PRS_DEMO_BUDGET:-4}
MAX_TOKENS=${PRS_DEMO_MAX_TOKENS:-96}
REWARD=${PRS_DEMO_REWARD:-0.5*rubric+0.5*judge}

common=(--prompts "$PROMPTS" --budget "$BUDGET" --max-tokens "$MAX_TOKENS" --seed 1 --reward "$REWARD")
rm -rf "$OUT/rand" "$OUT/prand" "$OUT/prs" "$OUT/prs-verifier"
for run in rand prand prs prs-verifier; do
  case "$run" in
    prs-verifier) args=(--strategy prs --feedback verifier) ;;
    prs) args=(--strategy prs --feedback self) ;;
    *) args=(--strategy "$run") ;;
  esac
  echo "== $run, budget $BUDGET (embedded engine)" >&2
  "$PRS" sample "${common[@]}" "${args[@]}" --out "$OUT/$run" >/dev/null
done
echo
echo "Rand, PRand and PRS at budget N=$BUDGET on $PROMPTS (embedded SmolLM2-135M-Instruct; reward: $REWARD, 0..1)"
"$PRS" inspect "$OUT/rand" "$OUT/prand" "$OUT/prs" "$OUT/prs-verifier"
echo
echo "Trees: $OUT/*/trees.jsonl"
