#!/usr/bin/env python3
"""Writes the small GGUF files committed under Tests/GGUFTests/Corpus, with the `gguf`
package (ggml's own Python writer and dequantizers) as the reference:

- metadata.gguf: every metadata value type, arrays included, and a few tensors;
- dequant.gguf: for each tensor type prs reads, two blocks of seeded random bytes
  (scales kept finite) and, beside each as NAME.ref, gguf-py's F32 dequantization.

Run with the project venv: .venv/bin/python scripts/make-gguf-corpus.py
"""
import os, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "GGUFTests", "Corpus")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261125)

w = gguf.GGUFWriter(os.path.join(out, "metadata.gguf"), "llama")
w.add_uint8("t.u8", 200); w.add_int8("t.i8", -5); w.add_uint16("t.u16", 60000); w.add_int16("t.i16", -300)
w.add_uint32("t.u32", 4000000000); w.add_int32("t.i32", -70000); w.add_float32("t.f32", 0.5)
w.add_uint64("t.u64", 2**40); w.add_int64("t.i64", -2**40); w.add_float64("t.f64", 1e-300)
w.add_bool("t.bool", True); w.add_string("t.str", "héllo ✓")
w.add_array("t.strs", ["a", "", "<0x0A>"]); w.add_array("t.ints", [1, -2, 3]); w.add_array("t.floats", [0.25, -1.5])
w.add_tensor("f32", np.arange(8, dtype=np.float32).reshape(2, 4))
w.add_tensor("f16", np.linspace(-2, 2, 64, dtype=np.float32).astype(np.float16))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

def blocks(qtype, n):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
    def put_f16(col, lo, hi):
        vals = rng.uniform(lo, hi, size=n).astype(np.float16)
        raw[:, col:col + 2] = vals.view(np.uint8).reshape(n, 2)
    if qtype in (Q.Q4_0, Q.Q5_0, Q.Q8_0):
        put_f16(0, 0.001, 0.1)
    elif qtype == Q.Q4_1:
        put_f16(0, 0.001, 0.1); put_f16(2, -1, 1)
    elif qtype in (Q.Q4_K, Q.Q5_K):
        put_f16(0, 0.001, 0.1); put_f16(2, 0.001, 0.1)
    elif qtype == Q.Q6_K:
        put_f16(208, 0.001, 0.1)
    return raw, block_size

w = gguf.GGUFWriter(os.path.join(out, "dequant.gguf"), "llama")
for qtype in (Q.Q4_0, Q.Q4_1, Q.Q8_0, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q5_0):
    raw, bs = blocks(qtype, 2)
    ref = gguf.quants.dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
    w.add_tensor(qtype.name, raw.reshape(-1), raw_shape=(raw.size,), raw_dtype=qtype)
    w.add_tensor(qtype.name + ".ref", ref)
vals = rng.normal(size=64).astype(np.float32)
w.add_tensor("F16", vals.astype(np.float16))
w.add_tensor("F16.ref", vals.astype(np.float16).astype(np.float32))
bf = gguf.quants.quantize(vals, Q.BF16)
bf = np.ascontiguousarray(bf).view(np.uint8).reshape(-1)
w.add_tensor("BF16", bf, raw_shape=(bf.size,), raw_dtype=Q.BF16)
w.add_tensor("BF16.ref", gguf.quants.dequantize(bf, Q.BF16).astype(np.float32).reshape(-1))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print("wrote", out)
