#!/usr/bin/env python3
"""llama.cpp's (llama-cpp-python's) logits at chosen positions of one token sequence, for tests.

Usage: llama_logits_at.py MODEL.gguf --input request.json
request.json: {"tokens": [ids], "positions": [p, ...]}. Prints a JSON list with, per position p,
the logits after token p (predicting token p+1) as base64 of little-endian float32.
"""
import base64, json, sys
import numpy as np
import llama_cpp

model = sys.argv[1]
req = json.load(open(sys.argv[sys.argv.index("--input") + 1]))
toks, positions = req["tokens"], req["positions"]
llm = llama_cpp.Llama(model_path=model, n_ctx=max(512, len(toks) + 8), n_threads=1, n_threads_batch=1, n_batch=512,
                      verbose=False, logits_all=True)
llm.eval(toks)
out = [base64.b64encode(np.asarray(llm.scores[p], dtype="<f4").tobytes()).decode() for p in positions]
print(json.dumps(out))
