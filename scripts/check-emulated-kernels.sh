#!/usr/bin/env bash
# The quantized products' AVX-512 and AMX tables, emulated in plain C, against the AVX2 table bit
# for bit (Tests/EmulatedKernels/check.c), so their logic is checked on machines that lack them;
# ISATests runs the tables a machine has natively. x86-64 only (the kernels' AVX2 path is the base).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -m)" != "x86_64" ]; then echo "check-emulated-kernels: x86-64 only; skipped on $(uname -m)"; exit 0; fi
CC=${CC:-$(command -v clang || command -v cc)}
out=.build/emulated-kernels
mkdir -p "$out"
"$CC" -O2 -mavx2 -mfma -mf16c -DLM_EMULATED_ISA -ISources/CKernels/include -ITests/EmulatedKernels \
    Sources/CKernels/*.c Tests/EmulatedKernels/check.c -lm -lpthread -o "$out/check"
"$out/check"
# The packed layout's portable C path (what non-x86 builds run), built without AVX2 so both
# sides are plain C, against the file layout's portable products (Tests/EmulatedKernels/portable.c).
"$CC" -O2 -ISources/CKernels/include -ISources/CKernels Sources/CKernels/*.c Tests/EmulatedKernels/portable.c -lm -lpthread -o "$out/portable"
"$out/portable"
