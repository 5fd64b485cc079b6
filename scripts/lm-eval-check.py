#!/usr/bin/env python3
"""lm-evaluation-harness against a running `prs serve`, checked item by item against llama.cpp.

Usage: lm-eval-check.py BASE_URL MODEL_NAME MODEL.gguf OUT_DIR

Runs the harness's own command line as a user would (`lm_eval --model local-completions` with its
default settings, so its automatic tokenizer picks the server's /tokenizer_info and /tokenize), on
the project's two small tasks in examples/lm-eval (a multiple-choice task scored by log-likelihood
and a generate_until task), offline (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1: nothing may be
downloaded). Then it scores every log-likelihood request the harness logged with llama.cpp
(llama-cpp-python, all logits, the same GGUF file), tokenizing context and continuation the way
the harness does, and compares.

Prints one line per check, `PASS name` or `FAIL name: why`, and `ITEM` lines with the figures;
exits 1 when any check failed. Tolerance: per log-likelihood request |prs - llama.cpp| <= 0.5 per
continuation token, and <= 0.2 per token on average over all requests (see TOLERANCE below).
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np

# The engine's logits are within 1.0 of llama.cpp's (ReferenceEqualityTests: measured 0.53-0.92 on
# logits up to 34; the order of float additions and int8 rounding flips). A token's log-probability
# moves with its logit and the log-normaliser: over 600 positions of README text with SmolLM2-135M
# Q4_1, |prs - llama.cpp| was 0.07 on average and 0.49 at most; on these tasks 0.31 at most.
TOLERANCE_PER_TOKEN = 0.5
TOLERANCE_MEAN = 0.2

base_url, model_name, gguf, out_dir = sys.argv[1:5]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = 0


def report(ok, name, why=""):
    global failures
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)
    if not ok:
        failures += 1


env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
lm_eval = os.path.join(os.path.dirname(sys.executable), "lm_eval")
cmd = [lm_eval, "--model", "local-completions",
       "--model_args", f"base_url={base_url}/completions,model={model_name}",
       "--include_path", "examples/lm-eval", "--tasks", "prs_mc,prs_gen",
       "--log_samples", "--output_path", out_dir]
run = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
log = run.stdout + run.stderr
report(run.returncode == 0, "lm_eval runs", log[-3000:])
report("Using remote tokenizer backend" in log, "the harness picks the server's tokenizer", log[-2000:])
samples = {}
for task in ("prs_mc", "prs_gen"):
    files = sorted(glob.glob(os.path.join(out_dir, "**", f"samples_{task}_*.jsonl"), recursive=True))
    samples[task] = [json.loads(line) for line in open(files[-1])] if files else []
report(len(samples["prs_mc"]) == 8, "every multiple-choice item scored", f"{len(samples['prs_mc'])} of 8")
report(len(samples["prs_gen"]) == 4, "every generation item answered", f"{len(samples['prs_gen'])} of 4")
if failures:
    sys.exit(1)

import llama_cpp  # noqa: E402

llm = llama_cpp.Llama(model_path=gguf, n_ctx=512, n_threads=1, n_threads_batch=1, n_batch=512, verbose=False, logits_all=True)


def tok(text):
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else []


def reference(context, continuation):
    """The harness's pair encoding (trailing spaces of the context go to the continuation; the
    continuation's tokens are those of the whole after the context's), scored by llama.cpp."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok(context + continuation)
    ctx = tok(context)
    cont = whole[len(ctx):]
    llm.reset()
    llm.eval(ctx + cont)
    total, greedy = 0.0, True
    for i, t in enumerate(cont):
        row = np.array(llm.scores[len(ctx) + i - 1], dtype=np.float64)
        m = row.max()
        total += float(row[t] - (m + np.log(np.exp(row - m).sum())))
        greedy = greedy and int(row.argmax()) == t
    return total, len(cont), greedy


worst, worst_item = 0.0, ""
total_diff, total_tokens = 0.0, 0
agreeing_choices = 0
for s in samples["prs_mc"]:
    ours, refs, counts = [], [], []
    for i, resp in enumerate(s["resps"]):
        args = s["arguments"][f"gen_args_{i}"]
        lp = float(resp[0][0])
        ref, n, _ = reference(args["arg_0"], args["arg_1"])
        diff = abs(lp - ref)
        allowed = TOLERANCE_PER_TOKEN * n
        total_diff += diff
        total_tokens += n
        print(f"ITEM doc {s['doc_id']} choice {i}: prs {lp:.4f} llama.cpp {ref:.4f} |diff| {diff:.4f} ({n} tokens)")
        if diff / allowed > worst:
            worst, worst_item = diff / allowed, f"doc {s['doc_id']} choice {i}: prs {lp:.4f}, llama.cpp {ref:.4f}, {n} tokens"
        ours.append(lp)
        refs.append(ref)
        counts.append(n)
    # Where llama.cpp's best choice leads by more than the tolerance, the harness picks it too.
    order = sorted(range(len(refs)), key=lambda j: -refs[j])
    if refs[order[0]] - refs[order[1]] > TOLERANCE_PER_TOKEN * (counts[order[0]] + counts[order[1]]):
        agreeing_choices += 1
        report(int(np.argmax(ours)) == order[0], f"doc {s['doc_id']}: the harness's choice is llama.cpp's",
               f"prs {ours}, llama.cpp {refs}")
report(worst <= 1.0, "every log-likelihood within the tolerance of llama.cpp's",
       f"worst {worst:.2f}x the allowed difference ({worst_item})")
mean = total_diff / max(1, total_tokens)
report(mean <= TOLERANCE_MEAN, "the mean difference per token is within the tolerance", f"{mean:.3f} > {TOLERANCE_MEAN}")
print(f"ITEM worst difference: {worst:.3f} of the allowed; mean |diff| per token {mean:.4f}; "
      f"{agreeing_choices} items with a clear choice compared")
for s in samples["prs_gen"]:
    text = s["resps"][0][0]
    report(isinstance(text, str) and "\n" not in text and "Question:" not in text,
           f"generation doc {s['doc_id']} stops at the harness's stop strings", repr(text))
    print(f"ITEM generation doc {s['doc_id']}: {text!r} (target {s['target']!r})")
results = sorted(glob.glob(os.path.join(out_dir, "**", "results_*.json"), recursive=True))
metrics = json.load(open(results[-1]))["results"] if results else {}
report("acc,none" in metrics.get("prs_mc", {}), "the multiple-choice accuracy is computed", json.dumps(metrics)[:500])
report(any(k.startswith("exact_match") for k in metrics.get("prs_gen", {})), "the generation metric is computed", json.dumps(metrics)[:500])
sys.exit(1 if failures else 0)
