#!/usr/bin/env bash
# Exits 0 when this machine can run the named llama.cpp build, 1 when it cannot (and says why
# on stderr). Builds: avx2 (AVX2, FMA, F16C), avx512 (AVX-512 F/DQ/BW/VL with VNNI, BF16 and
# VBMI, as scripts/setup.sh --bench and scripts/llama-server.sh avx512 build it).
set -euo pipefail
case "${1:-}" in
  avx2) need="avx2 fma f16c" ;;
  avx512) need="avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx512vbmi" ;;
  *) echo "usage: scripts/machine-runs.sh avx2|avx512" >&2; exit 2 ;;
esac
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
missing=""
for f in $need; do
  case "$flags" in *" $f "*) ;; *) missing="$missing $f" ;; esac
done
if [ -n "$missing" ]; then
  echo "this machine cannot run the $1 build: /proc/cpuinfo lacks$missing" >&2
  exit 1
fi
