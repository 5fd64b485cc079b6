#!/usr/bin/env bash
# make bench-train: `prs train` against PyTorch + PEFT (CPU) on the same model file, batch shape
# (4 sequences of 256 tokens a step, loss on every token), thread count and LoRA settings
# (rank 16, alpha 32, every linear projection), in one run: tokens/s over the steps after the
# first, and peak RSS.
#   SmolLM2-135M Q4_1 (the default model): PyTorch LoRA in float32 and with bfloat16 autocast,
#     and full fine-tuning in float32; prs LoRA (float32 from the quantized blocks, and bfloat16
#     where the processor has it) and full fine-tuning.
#   1.7B (SmolLM2-1.7B's shape, random weights, Q4_0; scripts/make-random-model.py): LoRA only,
#     prs and PyTorch (float32 and bf16 autocast).
#   8B (Llama-3-8B's shape with SmolLM2's vocabulary, Q4_0): prs LoRA only, one timed step and
#     its peak memory (PyTorch would need a float32 copy of 32 GB).
# SIZES picks the models (default "135m 1.7b 8b"); STEPS the steps of the 135M runs (the 1.7B
# runs take 3, the 8B one 1). The peer is in its own venv (.venv-bench, made by scripts/setup.sh
# --tests): torch 2.13 CPU, transformers, peft.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
STEPS=${STEPS:-6}
SIZES=${SIZES:-135m 1.7b 8b}
VENV=.venv-bench
"$VENV/bin/python" -c 'import torch, transformers, peft, gguf' >/dev/null 2>&1 || bash scripts/setup.sh --tests
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Plain-text completions longer than 256 tokens, cut to 256 by --max-length: every example is
# exactly one sequence of 256 tokens, four a step.
make_data() {  # path, examples
  python3 - "$1" "$2" <<'PY'
import json, random, sys
random.seed(0)
words = "the a ship sails over calm water while the crew sings old songs about distant lands and the captain reads maps by lamp light near midnight".split()
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"prompt": "", "completion": " ".join(random.choice(words) for _ in range(400))}) + "\n")
PY
}
prs_run() {  # model, steps, label, extra flags...
  local model=$1 steps=$2 label=$3; shift 3
  make_data "$WORK/data-$steps.jsonl" "$((steps * 4))"
  if ! .build/release/prs train --data "$WORK/data-$steps.jsonl" --model "$model" --out "$WORK/$label.gguf" --epochs 1 --all-tokens \
    --max-length 256 --batch-tokens 1024 --micro-batch-tokens 1024 --threads "$THREADS" --checkpoint-every 0 \
    --lora-rank 16 --lora-alpha 32 --json "$@" 2>"$WORK/$label.err" > "$WORK/$label.json"; then
    echo "  prs $label failed: $(tail -1 "$WORK/$label.err")" >&2; echo '{}'; return
  fi
  python3 - "$WORK/$label.json" "$WORK/$label.train.jsonl" "$label" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
log = [json.loads(l) for l in open(sys.argv[2])]
steady = log[1:] if len(log) > 1 else log
seconds = log[-1]["elapsed_s"] - (log[0]["elapsed_s"] if len(log) > 1 else 0)
est = summary.get("memory_estimate", {})
print(json.dumps({"mode": sys.argv[3], "tokens_per_s": sum(s["tokens"] for s in steady) / seconds,
                  "step_seconds": seconds / len(steady), "peak_rss_mb": summary["peak_rss_mb"],
                  "estimate_mb": est.get("total_bytes", 0) / 2**20, "checkpointing": est.get("checkpointing")}))
PY
}
# PyTorch's bfloat16 autocast only runs at speed with bfloat16 instructions (AVX512-BF16 or AMX);
# without them it emulates (over 11 minutes for 6 steps of SmolLM2-135M on an AVX2 EPYC), so
# that row is left out, as prs's bfloat16 path is (it refuses to run there).
HAS_BF16=$(grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo 1 || echo 0)
torch_run() {  # model, steps, mode
  if [ "$3" = lora-bf16 ] && [ "$HAS_BF16" = 0 ]; then echo "  torch lora-bf16 not run: no bfloat16 instructions on this processor" >&2; echo '{}'; return; fi
  "$VENV/bin/python" scripts/reference/torch_train_bench.py "$1" --threads "$THREADS" --steps "$2" --mode "$3" 2>"$WORK/torch.err" | tail -1 \
    || { echo "  torch $3 failed: $(tail -1 "$WORK/torch.err")" >&2; echo '{}'; }
}
table() {  # title, then JSON rows: prs fp32, prs bf16, prs full, torch fp32, torch bf16, torch full[, prs fp32 dense]
  python3 - "$@" <<'PY'
import json, sys
title = sys.argv[1]
pl, pb, pf, tl, tb, tf = (json.loads(a) if a.strip() else {} for a in sys.argv[2:8])
pd = json.loads(sys.argv[8]) if len(sys.argv) > 8 and sys.argv[8].strip() else {}
print(f"\n{title}")
print(f"{'':36}{'prs':>10}{'PyTorch':>10}{'ratio':>8}  target")
def row(label, a, b, key, target):
    if not a.get(key) or not b.get(key):
        av = f"{a[key]:10.1f}" if a.get(key) else f"{'-':>10}"
        print(f"{label:36}{av}{'-':>10}{'-':>8}"); return
    print(f"{label:36}{a[key]:10.1f}{b[key]:10.1f}{a[key] / b[key]:8.2f}  {target}")
cands = [p for p in (pl, pb) if p.get("tokens_per_s")]
best = max(cands, key=lambda p: p["tokens_per_s"]) if cands else {}
row("LoRA tok/s (fp32 vs fp32)", pl, tl, "tokens_per_s", ">= 2" if tl else "")
if pb.get("tokens_per_s"):
    row(f"LoRA tok/s (prs {best['mode']} vs fp32)", best, tl, "tokens_per_s", ">= 2")
if tb: row(f"LoRA tok/s (prs {best.get('mode', '-')} vs bf16)", best, tb, "tokens_per_s", ">= 1.5")
if pf or tf: row("full tok/s (fp32 vs fp32)", pf, tf, "tokens_per_s", ">= 2")
if pd.get("tokens_per_s"):
    print(f"{'LoRA tok/s, quantized vs dense prs':36}{pl.get('tokens_per_s', 0):10.1f}{pd['tokens_per_s']:10.1f}{pl.get('tokens_per_s', 0) / pd['tokens_per_s']:8.2f}  >= 1 (no slower; dense in the PyTorch column)")
    print(f"{'LoRA peak RSS MB, quantized vs dense':36}{pl.get('peak_rss_mb', 0):10.1f}{pd['peak_rss_mb']:10.1f}{pl.get('peak_rss_mb', 0) / pd['peak_rss_mb']:8.2f}")
row("LoRA peak RSS MB (fp32)", pl, tl, "peak_rss_mb", "")
if pb.get("peak_rss_mb"): row("LoRA peak RSS MB (prs bf16)", pb, tl, "peak_rss_mb", "")
if pf or tf: row("full peak RSS MB", pf, tf, "peak_rss_mb", "")
for p in (pl, pd, pb, pf):
    if p.get("estimate_mb"):
        print(f"  prs {p['mode']}: estimate {p['estimate_mb']:.0f} MB (checkpointing {'on' if p['checkpointing'] else 'off'}), "
              f"measured peak {p['peak_rss_mb']:.0f} MB, {p['step_seconds']:.1f} s a step")
PY
}

for size in $SIZES; do
  case $size in
    135m)
      MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
      echo "[bench-train] $MODEL, $THREADS threads, $STEPS steps of 4 x 256 tokens" >&2
      P_LORA=$(prs_run "$MODEL" "$STEPS" lora); echo "  prs LoRA float32: $P_LORA" >&2
      P_DENSE=$(PRS_TRAIN_DENSE=1 prs_run "$MODEL" "$STEPS" lora-dense); echo "  prs LoRA float32, dense float copies (before): $P_DENSE" >&2
      P_BF16=$(prs_run "$MODEL" "$STEPS" lora-bf16 --precision bf16 2>/dev/null || echo '{}'); echo "  prs LoRA bfloat16: $P_BF16" >&2
      P_FULL=$(prs_run "$MODEL" "$STEPS" full --full); echo "  prs full float32: $P_FULL" >&2
      T_LORA=$(torch_run "$MODEL" "$STEPS" lora); echo "  torch LoRA float32: $T_LORA" >&2
      T_BF16=$(torch_run "$MODEL" "$STEPS" lora-bf16); echo "  torch LoRA bf16 autocast: $T_BF16" >&2
      T_FULL=$(torch_run "$MODEL" "$STEPS" full); echo "  torch full float32: $T_FULL" >&2
      table "SmolLM2-135M Q4_1 ($STEPS steps)" "$P_LORA" "$P_BF16" "$P_FULL" "$T_LORA" "$T_BF16" "$T_FULL" "$P_DENSE"
      ;;
    1.7b)
      BIG=models/random-smollm2-1.7b.q4_0.gguf
      [ -f "$BIG" ] || .venv/bin/python scripts/make-random-model.py --shape smollm2-1.7b --types q4_0 --out models >/dev/null
      echo "[bench-train] $BIG, $THREADS threads, 3 steps of 4 x 256 tokens" >&2
      P_LORA=$(prs_run "$BIG" 3 big-lora); echo "  prs LoRA float32: $P_LORA" >&2
      P_DENSE=$(PRS_TRAIN_DENSE=1 prs_run "$BIG" 3 big-lora-dense); echo "  prs LoRA float32, dense float copies (before): $P_DENSE" >&2
      P_BF16=$(prs_run "$BIG" 3 big-lora-bf16 --precision bf16 2>/dev/null || echo '{}'); echo "  prs LoRA bfloat16: $P_BF16" >&2
      T_LORA=$(torch_run "$BIG" 3 lora); echo "  torch LoRA float32: $T_LORA" >&2
      T_BF16=$(torch_run "$BIG" 3 lora-bf16); echo "  torch LoRA bf16 autocast: $T_BF16" >&2
      table "1.7B (SmolLM2-1.7B shape, random, Q4_0; 3 steps; targets: peak RSS <= 3072 MB)" "$P_LORA" "$P_BF16" "" "$T_LORA" "$T_BF16" "" "$P_DENSE"
      ;;
    8b)
      HUGE=models/random-llama3-8b.q4_0.gguf
      [ -f "$HUGE" ] || .venv/bin/python scripts/make-random-model.py --shape llama3-8b --types q4_0 --out models >/dev/null
      echo "[bench-train] $HUGE, $THREADS threads, one step of 4 x 256 tokens" >&2
      P_LORA=$(prs_run "$HUGE" 1 huge-lora); echo "  prs LoRA float32: $P_LORA" >&2
      table "8B (Llama-3-8B shape, SmolLM2 vocabulary, random, Q4_0; one step; target: peak RSS <= 8192 MB)" "$P_LORA" "" "" "" "" ""
      ;;
    *) echo "[bench-train] SIZES: unknown size $size (135m, 1.7b, 8b)" >&2; exit 2 ;;
  esac
done
