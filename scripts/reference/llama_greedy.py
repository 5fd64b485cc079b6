#!/usr/bin/env python3
"""Reference greedy decoding with llama.cpp (llama-cpp-python), for tests.

Usage: llama_greedy.py MODEL.gguf MAX_TOKENS < prompts.json
prompts.json is a JSON list of raw prompt strings; prints a JSON list with, per prompt,
the prompt's token ids (BOS added as the model's metadata asks, special tokens parsed)
and the greedy continuation's token ids.
"""
import json, sys
import llama_cpp

model, max_tokens = sys.argv[1], int(sys.argv[2])
prompts = json.load(sys.stdin)
# One thread: ggml's worker threads spin at barriers, and with the test suite running other
# processes on a 2-core machine two spinning threads made a run take minutes instead of seconds.
# Each row of a product is computed the same way whatever the thread count, so results are unchanged.
llm = llama_cpp.Llama(model_path=model, n_ctx=2048, n_threads=1, n_threads_batch=1, n_batch=512, verbose=False, logits_all=False)
out = []
for p in prompts:
    toks = llm.tokenize(p.encode("utf-8"), add_bos=True, special=True)
    llm.reset()
    gen = []
    for t in llm.generate(toks, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if t == llm.token_eos() or len(gen) >= max_tokens:
            break
        gen.append(t)
    out.append({"prompt": toks, "tokens": gen})
print(json.dumps(out))
