#!/usr/bin/env python3
"""llama.cpp's (llama-cpp-python's) logits and greedy decoding, the LMEngine's reference.

Usage: llama_reference.py MODEL.gguf STEPS [LORA.gguf] < prompts.json
prompts.json: a JSON list of raw prompt strings (tokenized with special tokens parsed and
BOS as the model's metadata asks). Prints a JSON list with, per prompt: `prompt` (token ids),
`logits` (after the prompt), `greedy` (STEPS greedy tokens, stopping at end of generation) and
`margins` (top-1 minus top-2 logit at each greedy step).
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

model, steps = sys.argv[1], int(sys.argv[2])
lora = sys.argv[3] if len(sys.argv) > 3 else None
prompts = json.load(source)
# One thread: ggml's worker threads spin at barriers, and with the test suite running other
# processes on a 2-core machine two spinning threads made a run take minutes instead of seconds.
# Each row of a product is computed the same way whatever the thread count, so results are unchanged.
llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_threads=1, n_threads_batch=1, n_batch=512, verbose=False, logits_all=True,
                      **({"lora_path": lora} if lora else {}))
eog = {llm.token_eos()}
out = []
for p in prompts:
    toks = llm.tokenize(p.encode("utf-8"), add_bos=True, special=True)
    llm.reset()
    llm.eval(toks)
    first = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    greedy, margins = [], []
    logits = first
    for _ in range(steps):
        order = np.argsort(-logits)
        t = int(order[0])
        margins.append(float(logits[order[0]] - logits[order[1]]))
        greedy.append(t)
        if t in eog or llama_cpp.llama_vocab_is_eog(llm._model.vocab, t):
            break
        llm.eval([t])
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    out.append({"prompt": toks, "logits": [round(float(x), 5) for x in first], "greedy": greedy, "margins": margins})
print(json.dumps(out))
