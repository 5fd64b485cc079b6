#!/usr/bin/env python3
"""llama.cpp's (llama-cpp-python's) negative log-likelihood of scored tokens, with an optional LoRA adapter.

Usage: llama_nll.py MODEL.gguf [LORA.gguf] < sequences.json
sequences.json: a JSON list of {"tokens": [ids], "scored": [bools]}; token i is scored when
scored[i] (predicted from the tokens before it). Prints a JSON list with each sequence's
{"nll": sum of -log p over scored tokens, "tokens": how many}.
"""
import json, sys
import numpy as np
import llama_cpp

# `--input FILE` instead of standard input.
if "--input" in sys.argv:
    i = sys.argv.index("--input")
    source = open(sys.argv[i + 1])
    del sys.argv[i:i + 2]
else:
    source = sys.stdin

model = sys.argv[1]
lora = sys.argv[2] if len(sys.argv) > 2 else None
seqs = json.load(source)
llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_threads=1, n_threads_batch=1, n_batch=512, verbose=False, logits_all=True,
                      **({"lora_path": lora} if lora else {}))
out = []
for s in seqs:
    toks, scored = s["tokens"], s["scored"]
    llm.reset()
    llm.eval(toks)
    nll, n = 0.0, 0
    for i in range(1, len(toks)):
        if not scored[i]:
            continue
        row = np.array(llm.scores[i - 1], dtype=np.float64)
        m = row.max()
        lse = m + np.log(np.exp(row - m).sum())
        nll += float(lse - row[toks[i]])
        n += 1
    out.append({"nll": nll, "tokens": n})
print(json.dumps(out))
