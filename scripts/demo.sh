#!/usr/bin/env bash
# The demo: Rand and PRS at the same budget on examples/prompts.jsonl, scored by the
# model itself as a judge, summaries printed side by side.
# Until the embedded engine lands, it serves the model with llama.cpp's server
# (llama-cpp-python) on a loopback port and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PRS=.build/release/prs
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
PORT=${PRS_DEMO_PORT:-$((20000 + RANDOM % 20000))}
OUT=${PRS_DEMO_OUT:-runs/demo}
BUDGET=${PRS_DEMO_BUDGET:-4}
LOG=$(mktemp -t prs-demo-server.XXXXXX)

.venv/bin/python -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
  --n_ctx 4096 --n_threads "$(nproc)" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  grep -q "Uvicorn running on" "$LOG" && break
  kill -0 $SERVER 2>/dev/null || { echo "llama.cpp server failed to start; see $LOG" >&2; exit 1; }
  sleep 0.5
done
grep -q "Uvicorn running on" "$LOG" || { echo "llama.cpp server did not start in 120 s; see $LOG" >&2; exit 1; }

rm -rf "$OUT/rand" "$OUT/prs"
for strategy in rand prs; do
  echo "== $strategy, budget $BUDGET" >&2
  "$PRS" sample --prompts examples/prompts.jsonl --out "$OUT/$strategy" --strategy "$strategy" \
    --budget "$BUDGET" --max-tokens 128 --seed 1 --concurrency 2 \
    --policy "openai:http://127.0.0.1:$PORT/v1" --reward judge >/dev/null
done
echo
echo "Rand vs PRS at budget N=$BUDGET on examples/prompts.jsonl (reward: the model as judge, 0..1)"
"$PRS" inspect "$OUT/rand" "$OUT/prs"
echo
echo "Trees: $OUT/rand/trees.jsonl  $OUT/prs/trees.jsonl"
