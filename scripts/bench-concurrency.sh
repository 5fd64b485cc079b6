#!/usr/bin/env bash
# Wall time of one prs sample run against a llama.cpp server (llama-cpp-python's, started here on
# a loopback port) with K prompts in flight against one prompt at a time, in one run.
# Usage: scripts/bench-concurrency.sh [K] [PROMPTS] [N_PROMPTS]
set -euo pipefail
cd "$(dirname "$0")/.."
K=${1:-4}; PROMPTS=${2:-examples/prefs-heldout.jsonl}; COUNT=${3:-8}
PORT=$((20000 + RANDOM % 20000))
TMP=$(mktemp -d)
head -n "$COUNT" "$PROMPTS" > "$TMP/prompts.jsonl"
.venv/bin/python -m llama_cpp.server --model models/SmolLM2-135M-Instruct.Q4_1.gguf --host 127.0.0.1 --port "$PORT" \
  --n_ctx 4096 --n_threads 2 > "$TMP/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 1 240); do grep -q "Uvicorn running on" "$TMP/server.log" && break; sleep 0.5; done
run() {
  local k=$1 start end
  start=$(date +%s.%N)
  .build/release/prs sample --prompts "$TMP/prompts.jsonl" --out "$TMP/run-$k" --policy "openai:http://127.0.0.1:$PORT/v1" \
    --strategy prs --budget 4 --max-tokens 48 --reward rubric --feedback self --seed 3 --concurrency "$k" >/dev/null 2>"$TMP/prs-$k.log"
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}
one=$(run 1)
many=$(run "$K")
printf 'prs sample, %s prompts, PRS budget 4, llama-cpp-python server (2 threads)\n' "$COUNT"
printf '  1 prompt in flight:  %6.1f s\n  %s prompts in flight: %6.1f s\n  speed-up: %.2fx\n' "$one" "$K" "$many" "$(python3 -c "print($one / $many)")"
