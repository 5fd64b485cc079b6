#!/usr/bin/env bash
# make bench-train: `prs train` against PyTorch + PEFT (CPU) on the same model, batch shape
# (4 sequences of 256 tokens a step, loss on every token), thread count and LoRA settings
# (rank 16, alpha 32, every linear projection), in one run: tokens/s over the steps after the
# first, and peak RSS. PyTorch runs LoRA in float32 and with bfloat16 autocast, and full
# fine-tuning in float32; prs runs LoRA (float32 and, with AMX, bfloat16) and full fine-tuning.
# The peer goes into its own venv (.venv-bench): torch 2.13 CPU, transformers, peft.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-2}
STEPS=${STEPS:-6}
VENV=.venv-bench
if ! "$VENV/bin/python" -c 'import torch, transformers, peft, gguf' >/dev/null 2>&1; then
  echo "[bench-train] installing PyTorch (CPU), transformers and peft into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "torch==2.13.0+cpu" transformers peft gguf numpy sentencepiece
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Plain-text completions longer than 256 tokens, cut to 256 by --max-length: every example is
# exactly one sequence of 256 tokens, four a step.
python3 - "$WORK/data.jsonl" "$((STEPS * 4))" <<'PY'
import json, random, sys
random.seed(0)
words = "the a ship sails over calm water while the crew sings old songs about distant lands and the captain reads maps by lamp light near midnight".split()
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"prompt": "", "completion": " ".join(random.choice(words) for _ in range(400))}) + "\n")
PY
prs_run() {  # mode label, extra flags...
  local label=$1; shift
  .build/release/prs train --data "$WORK/data.jsonl" --model "$MODEL" --out "$WORK/$label.gguf" --epochs 1 --all-tokens \
    --max-length 256 --batch-tokens 1024 --micro-batch-tokens 1024 --threads "$THREADS" --checkpoint-every 0 \
    --lora-rank 16 --lora-alpha 32 --json "$@" 2>/dev/null > "$WORK/$label.json"
  python3 - "$WORK/$label.json" "$WORK/$label.train.jsonl" "$label" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
log = [json.loads(l) for l in open(sys.argv[2])]
steady = log[1:] if len(log) > 1 else log
seconds = log[-1]["elapsed_s"] - (log[0]["elapsed_s"] if len(log) > 1 else 0)
print(json.dumps({"mode": sys.argv[3], "tokens_per_s": sum(s["tokens"] for s in steady) / seconds, "peak_rss_mb": summary["peak_rss_mb"]}))
PY
}
torch_run() { "$VENV/bin/python" scripts/reference/torch_train_bench.py "$MODEL" --threads "$THREADS" --steps "$STEPS" --mode "$1" 2>/dev/null | tail -1; }

echo "[bench-train] $MODEL, $THREADS threads, $STEPS steps of 4 x 256 tokens" >&2
P_LORA=$(prs_run lora); echo "  prs LoRA float32: $P_LORA" >&2
P_BF16=$(prs_run lora-bf16 --precision bf16 || echo '{}'); echo "  prs LoRA bfloat16: $P_BF16" >&2
P_FULL=$(prs_run full --full); echo "  prs full float32: $P_FULL" >&2
T_LORA=$(torch_run lora); echo "  torch LoRA float32: $T_LORA" >&2
T_BF16=$(torch_run lora-bf16); echo "  torch LoRA bf16 autocast: $T_BF16" >&2
T_FULL=$(torch_run full); echo "  torch full float32: $T_FULL" >&2
python3 - "$P_LORA" "$P_BF16" "$P_FULL" "$T_LORA" "$T_BF16" "$T_FULL" <<'PY'
import json, sys
pl, pb, pf, tl, tb, tf = (json.loads(a) if a.strip() else {} for a in sys.argv[1:7])
best = max([p for p in (pl, pb) if p.get("tokens_per_s")], key=lambda p: p["tokens_per_s"])
print(f"{'':34}{'prs':>10}{'PyTorch':>10}{'ratio':>8}  target")
def row(label, a, b, key, target):
    if not a.get(key) or not b.get(key):
        print(f"{label:34}{'-':>10}{'-':>10}{'-':>8}  {target}"); return
    r = a[key] / b[key]
    print(f"{label:34}{a[key]:10.1f}{b[key]:10.1f}{r:8.2f}  {target}")
row("LoRA tok/s (fp32 vs fp32)", pl, tl, "tokens_per_s", ">= 2")
row(f"LoRA tok/s (prs {best['mode']} vs fp32)", best, tl, "tokens_per_s", ">= 2")
row(f"LoRA tok/s (prs {best['mode']} vs bf16)", best, tb, "tokens_per_s", ">= 1.5")
row("full tok/s (fp32 vs fp32)", pf, tf, "tokens_per_s", ">= 2")
row("LoRA peak RSS MB (fp32)", pl, tl, "peak_rss_mb", "<= 0.5")
if pb.get("peak_rss_mb"): row("LoRA peak RSS MB (prs bf16)", pb, tl, "peak_rss_mb", "<= 0.5")
row("full peak RSS MB", pf, tf, "peak_rss_mb", "")
PY
