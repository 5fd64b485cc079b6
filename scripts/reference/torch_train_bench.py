#!/usr/bin/env python3
"""The training speed peer of `make bench-train`: PyTorch (CPU) + PEFT on the same GGUF.

transformers loads SmolLM2 from the GGUF (dequantized to float32, q/k rows un-permuted); PEFT
adds LoRA (rank, alpha, every linear projection of the blocks) or, with --full, every weight
trains. A step is one batch of BATCH sequences of LENGTH tokens (ids spread over the vocabulary,
loss on every next token), AdamW; the figure is tokens per second over the steps after the
first, and the peak RSS of the process.

usage: torch_train_bench.py MODEL.gguf [--mode lora|lora-bf16|full] [--steps 6] [--batch 4] [--length 256]
                            [--threads 2] [--rank 16] [--alpha 32]
Prints one JSON object.
"""
import argparse, json, os, resource, time

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--mode", default="lora", choices=["lora", "lora-bf16", "full"])
ap.add_argument("--steps", type=int, default=6)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--length", type=int, default=256)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rank", type=int, default=16)
ap.add_argument("--alpha", type=float, default=32)
args = ap.parse_args()

import torch
torch.set_num_threads(args.threads)
from transformers import AutoModelForCausalLM

d, f = os.path.split(os.path.abspath(args.model))
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
if args.mode.startswith("lora"):
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, cfg)
    lr = 2e-4
else:
    lr = 2e-5
model.train()
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=lr)
vocab = model.config.vocab_size
ids = torch.tensor([[100 + (b * 7919 + i * 104729) % (vocab - 200) for i in range(args.length)] for b in range(args.batch)])
times = []
for step in range(args.steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    if args.mode == "lora-bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
    else:
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    times.append(time.perf_counter() - t0)
steady = times[1:] if len(times) > 1 else times
tokens = args.batch * args.length
print(json.dumps({
    "mode": args.mode,
    "tokens_per_s": tokens * len(steady) / sum(steady),
    "step_seconds": times,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "trainable_parameters": sum(p.numel() for p in params),
    "last_loss": float(loss),
}))
