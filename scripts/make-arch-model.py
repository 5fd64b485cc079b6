#!/usr/bin/env python3
"""Writes a small random-weight model in one architecture's GGUF layout, for the engine's
equality tests against llama.cpp (only the arithmetic means anything on it). SmolLM2's real
tokenizer (copied from the SmolLM2-135M GGUF), F32 tensors, and q/k weights large enough that
attention is sharp, so positions (and rope scaling) change the answer.

  .venv/bin/python scripts/make-arch-model.py --variant llama-rope-freqs --out DIR

Variants:
  llama              plain llama (no rope scaling): the control
  llama-rope-freqs   Llama 3.x: `rope_freqs.weight` (per-pair factors dividing the angles)
  llama-linear       rope.scaling.type linear, factor 4
  llama-yarn         rope.scaling.type yarn, factor 4, original context 64
  qwen2              qwen2: q, k and v biases; rotary pairs in halves (ggml's NEOX)
  qwen3              qwen3: per-head RMSNorm of q and k before rope, heads of 96 (q wider than the
                     model), no biases, NEOX rotary pairs
Writes OUT/arch-VARIANT.gguf and prints its path.
"""
import argparse, importlib.util, os
import numpy as np
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("make_random_model", os.path.join(HERE, "make-random-model.py"))
make_random_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_random_model)

VARIANTS = ["llama", "llama-rope-freqs", "llama-linear", "llama-yarn", "qwen2", "qwen3"]
DIM, FFN, LAYERS, HEADS, KV, CTX, BASE = 256, 512, 2, 4, 2, 2048, 10000.0


def write(path, variant, tokenizer, seed):
    fields, vocab = make_random_model.tokenizer_fields(tokenizer)
    arch = variant if variant in ("qwen2", "qwen3") else "llama"
    head = 96 if variant == "qwen3" else DIM // HEADS
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"arch-{variant}")
    w.add_context_length(CTX); w.add_embedding_length(DIM); w.add_feed_forward_length(FFN)
    w.add_block_count(LAYERS); w.add_head_count(HEADS); w.add_head_count_kv(KV)
    w.add_rope_freq_base(BASE); w.add_layer_norm_rms_eps(1e-5)
    if arch == "llama":
        w.add_rope_dimension_count(head)
    if variant == "qwen3":
        w.add_key_length(head); w.add_value_length(head)
    w.add_file_type(0)  # F32
    if variant == "llama-linear":
        w.add_string("llama.rope.scaling.type", "linear"); w.add_float32("llama.rope.scaling.factor", 4.0)
    if variant == "llama-yarn":
        w.add_string("llama.rope.scaling.type", "yarn"); w.add_float32("llama.rope.scaling.factor", 4.0)
        w.add_uint32("llama.rope.scaling.original_context_length", 64)
    for key, val, vtype, etype in fields:
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, val, vtype, sub_type=etype)
        else:
            w.add_key_value(key, val, vtype)
    rng = np.random.default_rng(seed)
    kvdim = head * KV
    qdim = head * HEADS
    tensors = [("token_embd.weight", rng.standard_normal((vocab, DIM), dtype=np.float32) * 0.5),
               ("output_norm.weight", np.ones(DIM, dtype=np.float32))]
    if variant == "llama-rope-freqs":
        # Factors from 1 (the fastest pairs) to 40 (the slowest), so that mid-frequency pairs,
        # which turn noticeably within a few hundred positions, are changed too.
        tensors.append(("rope_freqs.weight", np.geomspace(1.0, 40.0, head // 2).astype(np.float32)))
    for l in range(LAYERS):
        tensors += [
            (f"blk.{l}.attn_norm.weight", np.ones(DIM, dtype=np.float32)),
            (f"blk.{l}.ffn_norm.weight", np.ones(DIM, dtype=np.float32)),
            (f"blk.{l}.attn_q.weight", rng.standard_normal((qdim, DIM), dtype=np.float32) * 0.25),
            (f"blk.{l}.attn_k.weight", rng.standard_normal((kvdim, DIM), dtype=np.float32) * 0.25),
            (f"blk.{l}.attn_v.weight", rng.standard_normal((kvdim, DIM), dtype=np.float32) * 0.08),
            (f"blk.{l}.attn_output.weight", rng.standard_normal((DIM, qdim), dtype=np.float32) * 0.08),
            (f"blk.{l}.ffn_gate.weight", rng.standard_normal((FFN, DIM), dtype=np.float32) * 0.08),
            (f"blk.{l}.ffn_up.weight", rng.standard_normal((FFN, DIM), dtype=np.float32) * 0.08),
            (f"blk.{l}.ffn_down.weight", rng.standard_normal((DIM, FFN), dtype=np.float32) * 0.08),
        ]
        if variant == "qwen2":
            tensors += [(f"blk.{l}.attn_q.bias", rng.standard_normal(qdim, dtype=np.float32) * 0.5),
                        (f"blk.{l}.attn_k.bias", rng.standard_normal(kvdim, dtype=np.float32) * 0.5),
                        (f"blk.{l}.attn_v.bias", rng.standard_normal(kvdim, dtype=np.float32) * 0.1)]
        if variant == "qwen3":
            # Norm weights away from 1, so a norm applied wrongly (or not at all) shows.
            tensors += [(f"blk.{l}.attn_q_norm.weight", (1 + rng.standard_normal(head, dtype=np.float32) * 0.3)),
                        (f"blk.{l}.attn_k_norm.weight", (1 + rng.standard_normal(head, dtype=np.float32) * 0.3))]
    for name, t in tensors:
        w.add_tensor(name, np.ascontiguousarray(t, dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=VARIANTS, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "..", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"arch-{a.variant}.gguf")
    write(path + ".part", a.variant, a.tokenizer, a.seed)
    os.replace(path + ".part", path)
    print(path)


if __name__ == "__main__":
    main()
