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
  gemma2             gemma2: 4 layers alternating sliding-window (window 48) and global, attention
                     scores soft-capped at 8 and logits at 6 (small, so the caps bite on random
                     weights), post-attention and post-FFN norms, GeGLU, embedding scaled by sqrt(dim),
                     NEOX rotary pairs, heads of 64 in groups of 2
  phi3               phi3: fused attn_qkv and gate+up (ffn_up twice as tall), NEOX rotary pairs,
                     rope_factors_short (1 to 8) and rope_factors_long (1 to 40) with original
                     context 4096: a context of 512 uses the short ones, as llama.cpp chooses
  phi3-long          the same with original context 64: a context of 512 uses the long factors
Writes OUT/arch-VARIANT.gguf and prints its path; with --quantize TYPE (q4_0, q8_0, q4_k_m, ...),
llama.cpp's quantizer then writes OUT/arch-VARIANT-TYPE.gguf from it and that path is printed.
"""
import argparse, importlib.util, os
import numpy as np
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("make_random_model", os.path.join(HERE, "make-random-model.py"))
make_random_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_random_model)

VARIANTS = ["llama", "llama-rope-freqs", "llama-linear", "llama-yarn", "qwen2", "qwen3", "gemma2", "phi3", "phi3-long"]
DIM, FFN, LAYERS, HEADS, KV, CTX, BASE = 256, 512, 2, 4, 2, 2048, 10000.0


def write(path, variant, tokenizer, seed):
    fields, vocab = make_random_model.tokenizer_fields(tokenizer)
    arch = variant if variant in ("qwen2", "qwen3", "gemma2") else "phi3" if variant.startswith("phi3") else "llama"
    head = 96 if variant == "qwen3" else DIM // HEADS
    layers = 4 if variant == "gemma2" else LAYERS
    w = gguf.GGUFWriter(path, arch)
    # llama.cpp sets Phi-3's token attributes by general.name ("phi3" or "phi-3" in it), and they
    # name "</s>", which SmolLM2's vocabulary lacks: the name avoids both.
    w.add_name(f"arch-{variant}".replace("phi3", "phi"))
    w.add_context_length(CTX); w.add_embedding_length(DIM); w.add_feed_forward_length(FFN)
    w.add_block_count(layers); w.add_head_count(HEADS); w.add_head_count_kv(KV)
    w.add_rope_freq_base(BASE); w.add_layer_norm_rms_eps(1e-5)
    if arch in ("llama", "phi3"):
        w.add_rope_dimension_count(head)
    if arch == "phi3":
        w.add_uint32("phi3.rope.scaling.original_context_length", 64 if variant == "phi3-long" else 4096)
        w.add_float32("phi3.rope.scaling.attn_factor", 1.2)
    if variant == "qwen3":
        w.add_key_length(head); w.add_value_length(head)
    if variant == "gemma2":
        w.add_uint32("gemma2.attention.sliding_window", 48)
        w.add_float32("gemma2.attn_logit_softcapping", 8.0)
        w.add_float32("gemma2.final_logit_softcapping", 6.0)
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
    if arch == "phi3":
        tensors.append(("rope_factors_short.weight", np.geomspace(1.0, 8.0, head // 2).astype(np.float32)))
        tensors.append(("rope_factors_long.weight", np.geomspace(1.0, 40.0, head // 2).astype(np.float32)))
        tensors.append(("output.weight", rng.standard_normal((vocab, DIM), dtype=np.float32) * 0.5))
    for l in range(layers):
        if arch == "phi3":
            tensors += [
                (f"blk.{l}.attn_norm.weight", np.ones(DIM, dtype=np.float32)),
                (f"blk.{l}.ffn_norm.weight", np.ones(DIM, dtype=np.float32)),
                (f"blk.{l}.attn_qkv.weight", np.concatenate([
                    rng.standard_normal((qdim, DIM), dtype=np.float32) * 0.25,
                    rng.standard_normal((kvdim, DIM), dtype=np.float32) * 0.25,
                    rng.standard_normal((kvdim, DIM), dtype=np.float32) * 0.08])),
                (f"blk.{l}.attn_output.weight", rng.standard_normal((DIM, qdim), dtype=np.float32) * 0.08),
                (f"blk.{l}.ffn_up.weight", rng.standard_normal((2 * FFN, DIM), dtype=np.float32) * 0.08),
                (f"blk.{l}.ffn_down.weight", rng.standard_normal((DIM, FFN), dtype=np.float32) * 0.08),
            ]
            continue
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
        if variant == "gemma2":
            # Gemma's post norms, weights away from 1 (the converter stores them with Gemma's 1 added).
            tensors += [(f"blk.{l}.post_attention_norm.weight", (1 + rng.standard_normal(DIM, dtype=np.float32) * 0.3)),
                        (f"blk.{l}.post_ffw_norm.weight", (1 + rng.standard_normal(DIM, dtype=np.float32) * 0.3))]
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
    ap.add_argument("--quantize", choices=sorted(make_random_model.FTYPES), help="also write a quantized copy")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"arch-{a.variant}.gguf")
    write(path + ".part", a.variant, a.tokenizer, a.seed)
    os.replace(path + ".part", path)
    if a.quantize:
        quantized = os.path.join(a.out, f"arch-{a.variant}-{a.quantize}.gguf")
        make_random_model.quantize(path, quantized, a.quantize, 2)
        path = quantized
    print(path)


if __name__ == "__main__":
    main()
