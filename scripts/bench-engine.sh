#!/usr/bin/env bash
# Runs `prs model bench` and llama.cpp's equivalent (scripts/reference/llama_bench.py) on the
# same model and thread count, and prints each figure with the ratio ours / llama.cpp.
# N continuations: prs decodes them together over the shared prompt cache; the llama.cpp side
# decodes them one after another with the prompt's KV cache reused (its Python high-level API).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1; shift
PROMPT=200; GEN=128; N=8; THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --prompt-tokens) PROMPT=$2; shift 2 ;;
    --gen) GEN=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ours=$(.build/release/prs model bench "$MODEL" --prompt-tokens "$PROMPT" --gen "$GEN" --n "$N" --threads "$THREADS" --json)
theirs=$(.venv/bin/python scripts/reference/llama_bench.py "$MODEL" "$PROMPT" "$GEN" "$N" "$THREADS")
.venv/bin/python - "$ours" "$theirs" "$PROMPT" "$GEN" "$N" "$THREADS" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
p, g, n, t = sys.argv[3:7]
print(f"engine bench: {p}-token prompt, {g} generated tokens, N={n}, {t} threads")
print(f"{'':28}{'prs':>10}{'llama.cpp':>12}{'ratio':>8}")
for key, label in [("prompt_tokens_per_s", "prompt processing tok/s"), ("decode_tokens_per_s", "decode tok/s"),
                   ("nway_tokens_per_s", f"N={n} from one prompt tok/s"), ("peak_rss_mb", "peak RSS MB")]:
    a, b = ours[key], theirs[key]
    print(f"{label:28}{a:10.1f}{b:12.1f}{a / b:8.2f}")
PY
