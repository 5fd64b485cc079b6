#!/usr/bin/env bash
# Runs `prs model bench` and llama.cpp's equivalent (scripts/reference/llama_bench.py) on the
# same model and thread count, and prints each figure with the ratio ours / llama.cpp.
# N continuations: prs decodes them together over the shared prompt cache. llama.cpp is shown
# two ways: one after another with the prompt's KV cache reused (its Python high-level API), and
# batched, one llama_decode of N tokens per step over the prompt's KV copied to N sequences (its
# low-level API, sampled in numpy; that sampling time is counted against llama.cpp).
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
rows = [("prompt_tokens_per_s", "prompt_tokens_per_s", "prompt processing tok/s"),
        ("decode_tokens_per_s", "decode_tokens_per_s", "decode tok/s"),
        ("nway_tokens_per_s", "nway_tokens_per_s", f"N={n} tok/s (llama seq.)"),
        ("nway_tokens_per_s", "nway_batched_tokens_per_s", f"N={n} tok/s (llama batched)"),
        ("peak_rss_mb", "peak_rss_mb", "peak RSS MB")]
for our_key, their_key, label in rows:
    a, b = ours[our_key], theirs[their_key]
    print(f"{label:28}{a:10.1f}{b:12.1f}{a / b:8.2f}")
budget = ours["model_file_mb"] + ours["kv_cache_mb"] + 150
print(f"memory target: model file {ours['model_file_mb']:.0f} MB + KV cache {ours['kv_cache_mb']:.0f} MB + 150 MB = {budget:.0f} MB; "
      f"prs peak {ours['peak_rss_mb']:.0f} MB ({'within' if ours['peak_rss_mb'] <= budget else 'OVER'})")
PY
