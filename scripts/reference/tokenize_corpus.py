#!/usr/bin/env python3
"""Records llama.cpp's token ids (llama-cpp-python) for the tokenizer corpus, as the golden
file the LMEngine tokenizer tests compare against.

Usage: tokenize_corpus.py MODEL.gguf CORPUS.json OUT.json [MORE_CORPUS.json ...]
Per text: `special` (parse_special, no BOS), `plain` (special tokens not parsed),
`add_special` (BOS/EOS as the model's metadata asks, special tokens parsed).
"""
import json, sys
import llama_cpp

model, corpus_path, out_path = sys.argv[1:4]
llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
corpus = json.load(open(corpus_path, encoding="utf-8"))
for more in sys.argv[4:]:
    corpus += json.load(open(more, encoding="utf-8"))
out = []
for text in corpus:
    b = text.encode("utf-8")
    out.append({
        "text": text,
        "special": llm.tokenize(b, add_bos=False, special=True),
        "plain": llm.tokenize(b, add_bos=False, special=False),
        "add_special": llm.tokenize(b, add_bos=True, special=True),
    })
json.dump(out, open(out_path, "w", encoding="utf-8"), ensure_ascii=False)
print(f"wrote {len(out)} entries to {out_path}")
