#!/usr/bin/env python3
"""PEFT in PyTorch, the reference for prs's PEFT adapters (tests only).

Usage:
  peft_check.py make MODEL.gguf OUT_DIR [--patterns]
      a LoRA made in PyTorch with PEFT on the model transformers loads from MODEL.gguf: r 8,
      lora_alpha 16, every projection, B drawn at random (PEFT starts B at zero; a trained adapter
      is not), saved with save_pretrained (adapter_model.safetensors + adapter_config.json).
      --patterns: with use_rslora, rank_pattern (k_proj r 4) and alpha_pattern (v_proj alpha 40)
  peft_check.py logprobs MODEL.gguf [PEFT_DIR] [--input sequences.json]   (else standard input)
      sequences.json: a JSON list of token-id lists. Prints a JSON list with, per sequence, the
      log-probability of each token after the first given the tokens before it: from the model
      transformers loads from MODEL.gguf (weights dequantized to float32), with the PEFT adapter
      PEFT_DIR loaded by PeftModel.from_pretrained when given.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

torch.manual_seed(0)
torch.set_num_threads(2)


def load(gguf):
    d, f = os.path.split(os.path.abspath(gguf))
    return AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).eval()


def make(gguf, out, patterns):
    from peft import LoraConfig, get_peft_model
    extra = dict(use_rslora=True, rank_pattern={"k_proj": 4}, alpha_pattern={"v_proj": 40}) if patterns else {}
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], **extra)
    peft = get_peft_model(load(gguf), config)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    peft.save_pretrained(out, safe_serialization=True)


def logprobs(gguf, adapter, source):
    model = load(gguf)
    if adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, adapter).eval()
    out = []
    for ids in json.load(source):
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        lp = torch.log_softmax(logits, dim=-1)
        out.append([float(lp[i - 1, ids[i]]) for i in range(1, len(ids))])
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], "--patterns" in sys.argv)
    else:
        args = sys.argv[2:]
        source = sys.stdin
        if "--input" in args:
            i = args.index("--input")
            source = open(args[i + 1])
            del args[i:i + 2]
        logprobs(args[0], args[1] if len(args) > 1 else None, source)
