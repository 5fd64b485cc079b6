#!/usr/bin/env python3
"""llama.cpp's figures for `make bench-engine`, measured like `prs model bench` on the same file:
prompt processing (one batch), single-sequence decode, and N continuations done sequentially
with the prompt's KV cache reused. Prints JSON with the same keys.

Usage: llama_bench.py MODEL.gguf PROMPT_TOKENS GEN N THREADS
"""
import json, resource, sys, time
import llama_cpp

model, n_prompt, n_gen, n_way, threads = sys.argv[1], *map(int, sys.argv[2:6])
llm = llama_cpp.Llama(model_path=model, n_ctx=n_prompt + n_gen + 16, n_threads=threads, n_threads_batch=threads,
                      n_batch=512, verbose=False)
vocab = llm.n_vocab()
prompt = [100 + (i * 7919) % (vocab - 200) for i in range(n_prompt)]
llm.reset(); t = time.perf_counter(); llm.eval(prompt); prompt_rate = n_prompt / (time.perf_counter() - t)
t = time.perf_counter()
for _ in range(n_gen):
    tok = llm.sample(top_k=1, temp=0.0)
    llm.eval([tok])
decode_rate = n_gen / (time.perf_counter() - t)
t = time.perf_counter(); total = 0
for i in range(n_way):
    llm.n_tokens = n_prompt  # keep the prompt's KV cache, drop the previous continuation
    llm._ctx.kv_cache_seq_rm(-1, n_prompt, -1) if hasattr(llm._ctx, "kv_cache_seq_rm") else None
    llm.eval(prompt[-1:]) if False else None
    for _ in range(n_gen):
        tok = llm.sample(top_k=50, temp=0.8)
        llm.eval([tok]); total += 1
nway_rate = total / (time.perf_counter() - t)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"prompt_tokens_per_s": prompt_rate, "decode_tokens_per_s": decode_rate, "nway_tokens_per_s": nway_rate, "peak_rss_mb": rss}))
