#!/usr/bin/env python3
"""llama.cpp's figures for `make bench-engine`, measured like `prs model bench` on the same file:
prompt processing (one batch), single-sequence decode, and N continuations done sequentially
with the prompt's KV cache reused. Prints JSON with the same keys, plus
`nway_batched_tokens_per_s`: the same N continuations decoded together through llama.cpp's
low-level batch API (one llama_decode of N tokens per step over a unified KV cache whose prompt
cells are shared by all N sequences), and `nway_batched_peak_rss_mb`, the peak after it.
`peak_rss_mb` is read before the batched part, so it covers the same work as before.

Usage: llama_bench.py MODEL.gguf PROMPT_TOKENS GEN N THREADS
"""
import json, resource, sys, time
import numpy as np
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


def nway_batched(model, prompt, n_gen, n_way, threads, top_k=50, temp=0.8, seed=3):
    """N continuations of one prompt decoded together: the prompt once on sequence 0, its KV
    cells copied to sequences 1..N-1, then per step one llama_decode holding one token per
    sequence, each with its logits. Returns tokens/s over the decode steps and the sampling
    (the prompt is not timed). The sampler (top-k by numpy argpartition, temperature, softmax)
    runs in Python and its time is included against llama.cpp: about 0.1 ms a token over
    SmolLM2's 49k vocabulary, 1-2% of the measured time at N=8."""
    n_prompt = len(prompt)
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_prompt + n_way * n_gen + 64  # unified cache: the prompt once, then N continuations
    params.n_batch = params.n_ubatch = 512
    params.n_seq_max = n_way
    params.n_threads = params.n_threads_batch = threads  # flash attention: llama.cpp's default (auto)
    if hasattr(params, "kv_unified"):
        params.kv_unified = True  # one buffer for all sequences: the copied prompt cells are shared, not duplicated
    ctx = llama_cpp.llama_init_from_model(model, params)
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    batch = llama_cpp.llama_batch_init(max(512, n_way), 0, n_way)
    rng = np.random.default_rng(seed)

    def fill(entries):  # entries: (token, pos, seq_id, wants_logits)
        for i, (tok, pos, seq, out) in enumerate(entries):
            batch.token[i] = tok; batch.pos[i] = pos
            batch.n_seq_id[i] = 1; batch.seq_id[i][0] = seq
            batch.logits[i] = out
        batch.n_tokens = len(entries)

    def decode():
        rc = llama_cpp.llama_decode(ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def sample(i):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(vocab,))
        top = np.argpartition(logits, -top_k)[-top_k:]
        z = logits[top].astype(np.float64) / temp
        p = np.exp(z - z.max()); p /= p.sum()
        return int(top[rng.choice(top_k, p=p)])

    try:
        for start in range(0, n_prompt, 512):
            chunk = prompt[start:start + 512]
            fill([(tok, start + j, 0, start + j == n_prompt - 1) for j, tok in enumerate(chunk)])
            decode()
        mem = llama_cpp.llama_get_memory(ctx) if hasattr(llama_cpp, "llama_get_memory") else None
        for seq in range(1, n_way):
            if mem is not None:
                llama_cpp.llama_memory_seq_cp(mem, 0, seq, -1, -1)
            else:
                llama_cpp.llama_kv_self_seq_cp(ctx, 0, seq, -1, -1)
        t = time.perf_counter()
        last = batch.n_tokens - 1  # the prompt's logits, the same for every sequence at the first step
        rows = [last] * n_way
        for step in range(n_gen):
            toks = [sample(r) for r in rows]
            fill([(tok, n_prompt + step, seq, True) for seq, tok in enumerate(toks)])
            decode()
            rows = list(range(n_way))
        return n_way * n_gen / (time.perf_counter() - t)
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)


batched_rate = nway_batched(llm.model, prompt, n_gen, n_way, threads)
batched_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"prompt_tokens_per_s": prompt_rate, "decode_tokens_per_s": decode_rate, "nway_tokens_per_s": nway_rate, "peak_rss_mb": rss,
                  "nway_batched_tokens_per_s": batched_rate, "nway_batched_peak_rss_mb": batched_rss}))
