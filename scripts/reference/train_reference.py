#!/usr/bin/env python3
"""An independent LoRA training reference for prs's trainer: numpy + HIPS autograd, float64.

Reads the base GGUF (dequantized by the gguf package), a LoRA adapter GGUF (llama.cpp's
layout) and a batch of token sequences with scored positions and weights. Writes:
  grads.bin   the gradient of the SFT loss at the adapter, float32, in the order of the
              adapter file's tensors (each row-major, lora_a [r, in], lora_b [out, r])
  result.json {"loss": L0, "losses": [loss before each of the AdamW steps], "names": [...]}
The loss is the weighted mean NLL of the scored tokens: sum(w * nll) / sum(w) over tokens.
AdamW (PyTorch's definition), constant learning rate, global-norm clipping to --clip.

usage: train_reference.py BASE.gguf ADAPTER.gguf BATCH.json OUTDIR [--steps 10] [--lr 1e-3] [--clip 1.0]
"""
import argparse
import json
import os

import autograd.numpy as anp
from autograd import grad
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(v).decode()
    return v.tolist()[0] if hasattr(v, "tolist") else v


def tensors(reader):
    out = {}
    for t in reader.tensors:
        ne = [int(x) for x in t.shape]
        a = np.array(dequantize(t.data, t.tensor_type), dtype=np.float64, subok=False)
        out[t.name] = a.reshape(list(reversed(ne))) if len(ne) > 1 else a.reshape(ne)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("adapter")
    ap.add_argument("batch")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=1.0)
    args = ap.parse_args()

    base = GGUFReader(args.base)
    arch = field(base, "general.architecture")
    L = int(field(base, f"{arch}.block_count"))
    dim = int(field(base, f"{arch}.embedding_length"))
    heads = int(field(base, f"{arch}.attention.head_count"))
    kv_heads = int(field(base, f"{arch}.attention.head_count_kv", heads))
    hd = dim // heads
    rope_dim = int(field(base, f"{arch}.rope.dimension_count", hd))
    rope_base = float(field(base, f"{arch}.rope.freq_base", 10000.0))
    eps = float(field(base, f"{arch}.attention.layer_norm_rms_epsilon", 1e-5))
    W = tensors(base)
    emb = W["token_embd.weight"]
    out_w = W.get("output.weight", emb)

    ad = GGUFReader(args.adapter)
    alpha = float(field(ad, "adapter.lora.alpha"))
    names = [t.name for t in ad.tensors]
    A0 = tensors(ad)
    rank = A0[names[0]].shape[0] if names[0].endswith("lora_a") else A0[names[0]].shape[1]
    scale = alpha / rank

    with open(args.batch) as f:
        batch = json.load(f)
    seqs = batch["sequences"]

    def rope_tables(n):
        pos = np.arange(n, dtype=np.float64)[:, None]
        i = np.arange(rope_dim // 2, dtype=np.float64)[None, :]
        theta = pos * rope_base ** (-2 * i / rope_dim)
        return np.cos(theta), np.sin(theta)

    def rope(x, nh, c, s):
        # x: [T, nh*hd]; rotate adjacent pairs of each head's first rope_dim values.
        T = x.shape[0]
        x = anp.reshape(x, (T, nh, hd))
        r = x[:, :, :rope_dim]
        x0, x1 = r[:, :, 0::2], r[:, :, 1::2]
        cc, ss = c[:, None, :], s[:, None, :]
        y0 = x0 * cc - x1 * ss
        y1 = x0 * ss + x1 * cc
        rot = anp.reshape(anp.stack([y0, y1], axis=-1), (T, nh, rope_dim))
        y = anp.concatenate([rot, x[:, :, rope_dim:]], axis=2) if rope_dim < hd else rot
        return anp.reshape(y, (T, nh * hd))

    def rmsnorm(x, w):
        return x / anp.sqrt(anp.mean(x * x, axis=1, keepdims=True) + eps) * w

    def lin(x, name, P):
        y = anp.dot(x, W[name].T)
        b = name[:-len(".weight")] + ".bias"
        if b in W:
            y = y + W[b]
        if name + ".lora_a" in P:
            y = y + scale * anp.dot(anp.dot(x, P[name + ".lora_a"].T), P[name + ".lora_b"].T)
        return y

    def seq_logp(tokens, P):
        T = len(tokens)
        c, s = rope_tables(T)
        x = emb[np.array(tokens)]
        mask = np.tril(np.ones((T, T), dtype=bool))
        group = heads // kv_heads
        for l in range(L):
            p = f"blk.{l}."
            xn = rmsnorm(x, W[p + "attn_norm.weight"])
            q = rope(lin(xn, p + "attn_q.weight", P), heads, c, s)
            k = rope(lin(xn, p + "attn_k.weight", P), kv_heads, c, s)
            v = lin(xn, p + "attn_v.weight", P)
            outs = []
            for h in range(heads):
                kh = h // group
                qh = q[:, h * hd:(h + 1) * hd]
                khm = k[:, kh * hd:(kh + 1) * hd]
                vh = v[:, kh * hd:(kh + 1) * hd]
                sc = anp.dot(qh, khm.T) / np.sqrt(hd)
                sc = anp.where(mask, sc, -1e30)
                sc = sc - anp.max(sc, axis=1, keepdims=True)
                e = anp.exp(sc)
                pr = e / anp.sum(e, axis=1, keepdims=True)
                outs.append(anp.dot(pr, vh))
            att = anp.concatenate(outs, axis=1)
            x = x + lin(att, p + "attn_output.weight", P)
            xn = rmsnorm(x, W[p + "ffn_norm.weight"])
            g = lin(xn, p + "ffn_gate.weight", P)
            u = lin(xn, p + "ffn_up.weight", P)
            x = x + lin(g / (1 + anp.exp(-g)) * u, p + "ffn_down.weight", P)
        xf = rmsnorm(x, W["output_norm.weight"])
        logits = anp.dot(xf, out_w.T)
        m = anp.max(logits, axis=1, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(logits - m), axis=1, keepdims=True)) + m
        logp = logits - lse
        return logp

    def loss(P):
        num = 0.0
        den = 0.0
        for sq in seqs:
            toks, scored, w = sq["tokens"], sq["scored"], sq["weight"]
            lp = seq_logp(toks, P)
            rows = [i - 1 for i in range(1, len(toks)) if scored[i]]
            tg = [toks[i + 1] for i in rows]
            num = num - w * anp.sum(lp[np.array(rows), np.array(tg)])
            den += w * len(rows)
        return num / den

    P = {n: A0[n] for n in names}
    g = grad(loss)
    os.makedirs(args.out, exist_ok=True)
    G = g(P)
    with open(os.path.join(args.out, "grads.bin"), "wb") as f:
        for n in names:
            f.write(np.ascontiguousarray(G[n], dtype=np.float32).tobytes())
    losses = []
    m = {n: np.zeros_like(P[n]) for n in names}
    v = {n: np.zeros_like(P[n]) for n in names}
    b1, b2, e = 0.9, 0.999, 1e-8
    for t in range(1, args.steps + 1):
        losses.append(float(loss(P)))
        G = g(P)
        norm = np.sqrt(sum(float(np.sum(G[n] ** 2)) for n in names))
        if args.clip > 0 and norm > args.clip:
            G = {n: G[n] * (args.clip / (norm + 1e-6)) for n in names}
        for n in names:
            m[n] = b1 * m[n] + (1 - b1) * G[n]
            v[n] = b2 * v[n] + (1 - b2) * G[n] ** 2
            mh = m[n] / (1 - b1 ** t)
            vh = v[n] / (1 - b2 ** t)
            P[n] = P[n] - args.lr * mh / (np.sqrt(vh) + e)
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump({"loss": losses[0] if losses else float(loss(P)), "losses": losses, "names": names}, f)


if __name__ == "__main__":
    main()
