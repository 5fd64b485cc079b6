#!/usr/bin/env python3
"""Writes a model of the size users run, for speed and memory benchmarks only: SmolLM2's real
tokenizer and chat template (copied from the SmolLM2-135M GGUF), a real architecture's shape,
and random weights (normal, std 0.02; norms 1). The gguf package writes it in F16 one tensor at
a time, and llama.cpp's own quantizer (llama_model_quantize, through llama-cpp-python) makes
the quantized files. Only speed and memory mean anything on these models.

  .venv/bin/python scripts/make-random-model.py --shape smollm2-1.7b --types q4_0,q4_k_m --out models
  .venv/bin/python scripts/make-random-model.py --shape llama3-8b --types q4_0 --out models

Writes OUT/random-SHAPE.TYPE.gguf for each type and skips those that exist. The F16 file is
a temporary one (deleted at the end unless --keep-f16).
"""
import argparse, ctypes, os, sys, time
import numpy as np
import gguf

SHAPES = {
    # width, FFN, layers, heads, KV heads, rope base, context
    "smollm2-1.7b": dict(dim=2048, ffn=8192, layers=24, heads=32, kv=32, rope=130000.0, ctx=8192),
    "llama3-8b": dict(dim=4096, ffn=14336, layers=32, heads=32, kv=8, rope=500000.0, ctx=8192),
}
FTYPES = {"q4_0": 2, "q4_1": 3, "q8_0": 7, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}

def tokenizer_fields(path):
    """(key, value, type) of every tokenizer.* key of a GGUF, read with gguf's reader."""
    r = gguf.GGUFReader(path)
    out = []
    for name, f in r.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = f.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            etype = f.types[1]
            if etype == gguf.GGUFValueType.STRING:
                val = [bytes(f.parts[i]).decode("utf-8", errors="surrogateescape") for i in f.data]
            else:
                val = [f.parts[i].tolist()[0] for i in f.data]
            out.append((name, val, vtype, etype))
        elif vtype == gguf.GGUFValueType.STRING:
            out.append((name, bytes(f.parts[f.data[0]]).decode("utf-8"), vtype, None))
        else:
            out.append((name, f.parts[f.data[0]].tolist()[0], vtype, None))
    vocab = len(next(v for k, v, _, _ in out if k == "tokenizer.ggml.tokens"))
    return out, vocab

def write_f16(path, shape, tokenizer_path, seed):
    s = SHAPES[shape]
    fields, vocab = tokenizer_fields(tokenizer_path)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(f"random-{shape}")
    w.add_context_length(s["ctx"]); w.add_embedding_length(s["dim"]); w.add_feed_forward_length(s["ffn"])
    w.add_block_count(s["layers"]); w.add_head_count(s["heads"]); w.add_head_count_kv(s["kv"])
    w.add_rope_freq_base(s["rope"]); w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(s["dim"] // s["heads"])
    w.add_file_type(1)  # F16
    for key, val, vtype, etype in fields:
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, val, vtype, sub_type=etype) if "sub_type" in gguf.GGUFWriter.add_key_value.__code__.co_varnames else w.add_array(key, val)
        else:
            w.add_key_value(key, val, vtype)
    dim, ffn, kvdim = s["dim"], s["ffn"], s["dim"] // s["heads"] * s["kv"]
    tensors = [("token_embd.weight", (vocab, dim)), ("output_norm.weight", (dim,))]
    for l in range(s["layers"]):
        tensors += [(f"blk.{l}.attn_norm.weight", (dim,)), (f"blk.{l}.ffn_norm.weight", (dim,)),
                    (f"blk.{l}.attn_q.weight", (dim, dim)), (f"blk.{l}.attn_k.weight", (kvdim, dim)),
                    (f"blk.{l}.attn_v.weight", (kvdim, dim)), (f"blk.{l}.attn_output.weight", (dim, dim)),
                    (f"blk.{l}.ffn_gate.weight", (ffn, dim)), (f"blk.{l}.ffn_up.weight", (ffn, dim)),
                    (f"blk.{l}.ffn_down.weight", (dim, ffn))]
    for name, shp in tensors:
        dtype = np.float32 if len(shp) == 1 else np.float16
        w.add_tensor_info(name, shp, np.dtype(dtype), int(np.prod(shp)) * np.dtype(dtype).itemsize)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for i, (name, shp) in enumerate(tensors):
        if len(shp) == 1:
            w.write_tensor_data(np.ones(shp, dtype=np.float32))
        else:
            w.write_tensor_data((rng.standard_normal(shp, dtype=np.float32) * 0.02).astype(np.float16))
        if i % 20 == 0:
            print(f"[make-random-model] {path}: tensor {i + 1}/{len(tensors)}", file=sys.stderr)
    w.close()

def quantize(src, dst, ftype, threads):
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[ftype]
    params.nthread = threads
    t0 = time.time()
    rc = llama_cpp.llama_model_quantize(src.encode(), (dst + ".part").encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize {src} -> {dst} ({ftype}) failed: {rc}")
    os.replace(dst + ".part", dst)
    print(f"[make-random-model] {dst}: {os.path.getsize(dst) / 1e9:.2f} GB in {time.time() - t0:.0f} s", file=sys.stderr)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--types", default="q4_0", help="comma-separated: " + ", ".join(FTYPES))
    ap.add_argument("--out", default="models")
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "..", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep-f16", action="store_true")
    a = ap.parse_args()
    types = [t.strip() for t in a.types.split(",") if t.strip()]
    for t in types:
        if t not in FTYPES:
            sys.exit(f"--types: {t} is not one of {', '.join(FTYPES)}")
    os.makedirs(a.out, exist_ok=True)
    todo = [t for t in types if not os.path.exists(os.path.join(a.out, f"random-{a.shape}.{t}.gguf"))]
    for t in types:
        if t not in todo:
            print(os.path.join(a.out, f"random-{a.shape}.{t}.gguf"))
    if not todo:
        return
    f16 = os.path.join(a.out, f"random-{a.shape}.f16.gguf")
    if not os.path.exists(f16):
        write_f16(f16 + ".part", a.shape, a.tokenizer, a.seed)
        os.replace(f16 + ".part", f16)
    for t in todo:
        dst = os.path.join(a.out, f"random-{a.shape}.{t}.gguf")
        quantize(f16, dst, t, a.threads)
        print(dst)
    if not a.keep_f16:
        os.remove(f16)

if __name__ == "__main__":
    main()
