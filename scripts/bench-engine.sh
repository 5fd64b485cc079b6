#!/usr/bin/env bash
# Runs `prs model bench` and llama.cpp's equivalent (scripts/reference/llama_bench.py) on the
# same model and thread count, with two llama.cpp builds made by scripts/setup.sh --bench: the
# AVX2 baseline (.venv) and AVX-512 + VNNI + BF16 with AMX off (.venv-llama512). Prints each
# figure, the ratio ours / the faster build on that figure, and the issue's targets; also the
# machine's read bandwidth (1 and --threads threads) and the share of it single decode reaches.
# N continuations: prs decodes them together over the shared prompt cache. llama.cpp is shown
# two ways: one after another with the prompt's KV cache reused (its Python high-level API), and
# batched, one llama_decode of N tokens per step over the prompt's KV copied to N sequences (its
# low-level API, sampled in numpy; that sampling time is counted against llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1; shift
PROMPT=200; GEN=128; N=8; THREADS=2
# The issue's targets for this model: ratios against llama.cpp's faster build (prompt, decode,
# N-way batched) and the share of the two-thread read bandwidth single decode reaches.
TARGETS=3,1.5,3; BW_TARGET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS=$2; shift 2 ;;
    --bandwidth-target) BW_TARGET=$2; shift 2 ;;
    --prompt-tokens) PROMPT=$2; shift 2 ;;
    --gen) GEN=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ours=$(.build/release/prs model bench "$MODEL" --prompt-tokens "$PROMPT" --gen "$GEN" --n "$N" --threads "$THREADS" --bandwidth --json)
avx2=$(.venv/bin/python scripts/reference/llama_bench.py "$MODEL" "$PROMPT" "$GEN" "$N" "$THREADS")
# The AVX-512 build only where the machine runs it (scripts/machine-runs.sh says what is missing).
if bash scripts/machine-runs.sh avx512; then
  avx512=$(.venv-llama512/bin/python scripts/reference/llama_bench.py "$MODEL" "$PROMPT" "$GEN" "$N" "$THREADS")
else
  avx512=null
fi
.venv/bin/python - "$ours" "$avx2" "$avx512" "$PROMPT" "$GEN" "$N" "$THREADS" "$TARGETS" "$BW_TARGET" "$MODEL" <<'PY'
import json, sys
ours, l2, l5 = (json.loads(a) for a in sys.argv[1:4])
p, g, n, t = sys.argv[4:8]
tp, td, tn = (float(v) for v in sys.argv[8].split(","))
bw_target = float(sys.argv[9])
print(f"== {sys.argv[10]}")
print(f"engine bench: {p}-token prompt, {g} generated tokens, N={n}, {t} threads; prs kernels: {ours['isa']}")
print(f"load: {ours['load_seconds']:.2f} s, of which repacking {ours['repacked_mb']:.0f} MB into the kernels' layout {ours['repack_seconds']:.2f} s")
print(f"{'':30}{'prs':>9}{'llama AVX2':>12}{'llama AVX512':>14}{'ratio':>8}  target")
rows = [("prompt_tokens_per_s", "prompt_tokens_per_s", "prompt processing tok/s", tp),
        ("decode_tokens_per_s", "decode_tokens_per_s", "decode tok/s", td),
        ("nway_tokens_per_s", "nway_batched_tokens_per_s", f"N={n} tok/s (llama batched)", tn),
        ("nway_tokens_per_s", "nway_tokens_per_s", f"N={n} tok/s (llama sequential)", None)]
def cell(v, width, fmt):
    return f"{'not run':>{width}}" if v is None else f"{v:{width}{fmt}}"
for our_key, their_key, label, target in rows:
    a, b2 = ours[our_key], l2[their_key]
    b5 = l5[their_key] if l5 else None
    ratio = a / max(b2, b5 or 0)
    verdict = "" if target is None else f"≥{target:.1f}× {'met' if ratio >= target else 'MISSED'}"
    print(f"{label:30}{a:9.1f}{b2:12.1f}{cell(b5, 14, '.1f')}{ratio:8.2f}  {verdict}")
r5 = l5["peak_rss_mb"] if l5 else None
print(f"{'peak RSS MB':30}{ours['peak_rss_mb']:9.0f}{l2['peak_rss_mb']:12.0f}{cell(r5, 14, '.0f')}"
      f"{ours['peak_rss_mb'] / min(l2['peak_rss_mb'], r5 or l2['peak_rss_mb']):8.2f}")
if not l5:
    print("llama.cpp AVX-512: not run, this machine lacks the instructions (scripts/machine-runs.sh avx512); ratios are against AVX2")
per_token = ours["decode_weights_mb"] + ours["decode_kv_mb"]
share = ours["decode_bandwidth_share"]
print(f"read bandwidth: {ours['read_gb_per_s_1_thread']:.1f} GB/s on 1 thread, {ours['read_gb_per_s']:.1f} on {t}; a decode step reads "
      f"{per_token:.0f} MiB (weights {ours['decode_weights_mb']:.0f}, KV {ours['decode_kv_mb']:.0f}): prs decode uses {share * 100:.0f}% of it "
      f"({'target ≥%.0f%% %s' % (bw_target * 100, 'met' if share >= bw_target else 'MISSED') if bw_target else 'no target on this model'}), the bound is {ours['read_gb_per_s'] * 1e9 / (per_token * 1048576):.0f} tok/s")
wait, serial = ours["decode_pool_wait_share"], ours["decode_serial_share"]
print(f"pool: during single decode the threads waited {wait * 100:.1f}% of their time (target <5% {'met' if wait < 0.05 else 'MISSED'}); "
      f"the calling thread's serial work outside the pool was {serial * 100:.1f}%")
budget = ours["model_file_mb"] + ours["kv_cache_mb"] + 150
print(f"memory target: model file {ours['model_file_mb']:.0f} MB + KV cache {ours['kv_cache_mb']:.0f} MB + 150 MB = {budget:.0f} MB; "
      f"prs peak {ours['peak_rss_mb']:.0f} MB ({'within' if ours['peak_rss_mb'] <= budget else 'OVER'})")
print(f"tokens: greedy {ours['greedy_tokens'][:8]}…, N-way hash {ours['nway_tokens_fnv1a']} (equal on every table: PRS_ISA=avx2 make bench-engine)")
PY
