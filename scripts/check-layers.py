#!/usr/bin/env python3
"""The layer table of DESIGN.md as a check: every `import` in Sources/TARGET is one its row allows.

Run by `make test`; fails naming the file, line and import that leave the row."""
import os, re, sys

ALLOWED = {
    "GGUF": {"Foundation", "Glibc"},
    "LMEngine": {"Foundation", "Glibc", "GGUF", "CKernels"},
    "LMTraining": {"Foundation", "Glibc", "Dispatch", "GGUF", "CKernels", "COpenBLAS", "LMEngine"},
    "PRSCore": {"Foundation"},
    "PRSBackends": {"Foundation", "PRSCore", "LMEngine", "LMTraining", "AsyncHTTPClient", "NIOCore", "NIOHTTP1", "Logging"},
    "PRSStore": {"Foundation", "PRSCore", "GRDB"},
    "PRSRunner": {"Foundation", "PRSCore", "PRSStore", "Logging"},
    "PRSServer": {"Foundation", "PRSCore", "LMEngine", "Hummingbird", "HTTPTypes", "NIOCore", "ServiceLifecycle",
                  "Logging", "Metrics", "Prometheus"},
    "prs": None,  # everything above, ArgumentParser, Yams
}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources")
bad = []
for target, allowed in ALLOWED.items():
    if allowed is None:
        continue
    for dirpath, _, files in os.walk(os.path.join(root, target)):
        for f in files:
            if not f.endswith(".swift"):
                continue
            path = os.path.join(dirpath, f)
            for n, line in enumerate(open(path, encoding="utf-8"), 1):
                m = re.match(r"\s*(?:@\w+\s+)*import\s+(?:(?:struct|class|enum|func|protocol)\s+)?(\w+)", line)
                if m and m.group(1) not in allowed:
                    bad.append(f"{os.path.relpath(path, os.path.join(root, '..'))}:{n}: {target} imports {m.group(1)}, "
                               f"outside its row of DESIGN.md's layer table")
found = {t for t in os.listdir(root) if os.path.isdir(os.path.join(root, t))} - set(ALLOWED) - {"CKernels", "COpenBLAS"}
for t in sorted(found):
    bad.append(f"Sources/{t}: a target with no row in the layer table")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
print(f"layers: every import of {len(ALLOWED) - 1} library targets is in its row")
