#!/usr/bin/env python3
"""Renders conversations with a model's own Jinja chat template (as llama-cpp-python does),
as the golden file for the LMEngine chat-template tests.

Usage: chat_render.py MODEL.gguf OUT.json
"""
import json, sys
import gguf, jinja2

model, out_path = sys.argv[1:3]
r = gguf.GGUFReader(model)
template = bytes(r.fields["tokenizer.chat_template"].parts[-1]).decode()
env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
t = env.from_string(template)
conversations = [
    [{"role": "user", "content": "Why is the sky blue?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a prime."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke.\nA short one."}],
]
out = [{"messages": c, "text": t.render(messages=c, add_generation_prompt=True, bos_token="", eos_token="")} for c in conversations]
json.dump(out, open(out_path, "w", encoding="utf-8"), ensure_ascii=False, indent=1)
print(f"wrote {len(out)} conversations to {out_path}")
