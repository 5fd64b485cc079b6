#!/usr/bin/env python3
"""Renders chat templates with Python's Jinja2 set up as transformers sets it up, the reference
for prs's Jinja renderer (tests only).

Usage: jinja_render.py --input cases.json
cases.json: a JSON list of {"template": str, "context": {...}}. Prints a JSON list with, per
case, {"text": rendered} or {"error": message}. The environment: ImmutableSandboxedEnvironment
with trim_blocks and lstrip_blocks, the loopcontrols extension, `tojson` as
json.dumps(ensure_ascii=False, sort_keys=False), and raise_exception / strftime_now globals.
"""
import json, sys
from datetime import datetime
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)

cases = json.load(open(sys.argv[sys.argv.index("--input") + 1]))
out = []
for c in cases:
    try:
        out.append({"text": env.from_string(c["template"]).render(**c["context"])})
    except Exception as e:  # noqa: BLE001
        out.append({"error": f"{type(e).__name__}: {e}"})
print(json.dumps(out, ensure_ascii=False))
