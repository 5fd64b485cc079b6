// The quantized products' AVX-512 and AMX tables against the AVX2 table, bit for bit, on a
// machine that may have neither: the kernels are compiled with LM_EMULATED_ISA (VPDPBUSD and
// the AVX-512 / AMX intrinsics in plain C, emulated_isa.h) and lm_matmul is run with each table
// over every weight kind, row count and batch shape the dispatch distinguishes. The AVX2 table
// itself runs natively and is checked against the block-order reference in ISATests. Exit 0
// when every output matches; otherwise the first mismatches are printed and the exit is 1.
// Built and run by scripts/check-emulated-kernels.sh (make test).
#include "lm_kernels.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// VPDPBUSD with a zero accumulator: lane l = Σ_{i<4} (unsigned) a[4l + i] · (signed) b[4l + i].
__m256i lm_emulated_dpbusd(__m256i a, __m256i b) {
    uint8_t ua[32]; int8_t sb[32]; int32_t r[8];
    memcpy(ua, &a, 32); memcpy(sb, &b, 32);
    for (int l = 0; l < 8; l++) {
        r[l] = 0;
        for (int i = 0; i < 4; i++) r[l] += (int)ua[4 * l + i] * (int)sb[4 * l + i];
    }
    __m256i out; memcpy(&out, r, 32);
    return out;
}

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (uint32_t)(state >> 16);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next() & 0xFFFFFF) / 16777216.0f; }

static int block_bytes(int kind) { return kind == 0 ? 20 : kind == 1 ? 34 : kind == 7 ? 22 : 18; }

// A row of nb blocks: random quants (the extremes included), scales of either sign.
static void fill_row(int kind, int nb, uint8_t *row) {
    const int bb = block_bytes(kind);
    for (int b = 0; b < nb; b++) {
        uint8_t *p = row + b * bb;
        for (int i = 0; i < bb; i++) p[i] = (uint8_t)next();
        uint16_t d = lm_f32_to_f16(uniform(-0.05f, 0.05f));
        memcpy(p, &d, 2);
        if (kind == 0) { uint16_t m = lm_f32_to_f16(uniform(-0.2f, 0.2f)); memcpy(p + 2, &m, 2); }
        if (kind == 1 && (next() & 7) == 0) p[2 + (next() & 31)] = 0x80;  // -128: |q| is 128 unsigned
    }
}

int main(void) {
    static const int kinds[] = { 0, 1, 2, 7 };
    static const int nbs[] = { 1, 2, 3, 5, 8 };
    static const int row_counts[] = { 1, 7, 8, 15, 16, 17, 37, 64 };
    static const int batches[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33 };
    static const char *names[] = { "avx2", "avx512 (emulated)", "amx (emulated)" };
    long checked = 0, failed = 0;
    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++)
        for (size_t ni = 0; ni < sizeof nbs / sizeof *nbs; ni++)
            for (size_t ri = 0; ri < sizeof row_counts / sizeof *row_counts; ri++)
                for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
                    const int kind = kinds[ki], nb = nbs[ni], rows = row_counts[ri], batch = batches[bi];
                    const long row_bytes = (long)nb * block_bytes(kind);
                    uint8_t *w = malloc((size_t)(rows * row_bytes));
                    for (int r = 0; r < rows; r++) fill_row(kind, nb, w + r * row_bytes);
                    float *xf = malloc(sizeof(float) * 32 * nb);
                    lm_act_q8 *x = malloc(sizeof(lm_act_q8) * (size_t)(nb * batch));
                    for (int t = 0; t < batch; t++) {
                        for (int i = 0; i < 32 * nb; i++) xf[i] = uniform(-2, 2) * (i % 7 == 0 ? 4.0f : 1.0f);
                        lm_quantize_acts(xf, x + (long)t * nb, 32 * nb);
                    }
                    // Rows from r0 (0, or inside the first group of 16) to the end, as a pool chunk may ask.
                    const int r0 = rows > 5 && (rows & 1) ? 5 : 0;
                    float *out[3];
                    for (int isa = 0; isa < 3; isa++) {
                        out[isa] = malloc(sizeof(float) * (size_t)(rows * batch));
                        for (int i = 0; i < rows * batch; i++) out[isa][i] = -1.0f;  // untouched outside [r0, rows)
                        lm_q8_set_isa(isa);
                        lm_matmul(kind, 32 * nb, w, row_bytes, x, (long)sizeof(lm_act_q8) * nb, batch, out[isa], rows, r0, rows);
                    }
                    // The packed layout on every table, and its rows back in the original format.
                    uint8_t *packed = malloc((size_t)lm_pack_bytes(kind, 32 * nb, rows));
                    lm_pack_rows(kind, 32 * nb, w, row_bytes, rows, 0, (rows + 15) / 16, packed);
                    uint8_t *back = malloc((size_t)row_bytes);
                    for (int r = 0; r < rows; r++) {
                        lm_unpack_row(kind, 32 * nb, packed, r, back);
                        checked++;
                        if (memcmp(back, w + r * row_bytes, (size_t)row_bytes) != 0 && ++failed <= 10)
                            fprintf(stderr, "mismatch: kind %d, %d blocks, row %d of %d: unpacked row differs from the original\n", kind, nb, r, rows);
                    }
                    for (int isa = 0; isa < 3; isa++) {
                        float *po = malloc(sizeof(float) * (size_t)(rows * batch));
                        for (int i = 0; i < rows * batch; i++) po[i] = -1.0f;
                        lm_q8_set_isa(isa);
                        lm_matmul_packed(kind, 32 * nb, packed, x, (long)sizeof(lm_act_q8) * nb, batch, po, rows, r0, rows);
                        checked++;
                        if (memcmp(out[0], po, sizeof(float) * (size_t)(rows * batch)) != 0) {
                            failed++;
                            for (int i = 0; i < rows * batch && failed <= 10; i++)
                                if (memcmp(&out[0][i], &po[i], 4) != 0) {
                                    fprintf(stderr, "mismatch: packed %s, kind %d, %d blocks, rows %d..<%d, batch %d: token %d row %d: avx2 %.9g, packed %.9g\n",
                                            names[isa], kind, nb, r0, rows, batch, i / rows, i % rows, out[0][i], po[i]);
                                    break;
                                }
                        }
                        free(po);
                    }
                    free(packed); free(back);
                    for (int isa = 1; isa < 3; isa++) {
                        checked++;
                        if (memcmp(out[0], out[isa], sizeof(float) * (size_t)(rows * batch)) == 0) continue;
                        failed++;
                        if (failed > 10) continue;
                        for (int i = 0; i < rows * batch; i++)
                            if (memcmp(&out[0][i], &out[isa][i], 4) != 0) {
                                fprintf(stderr, "mismatch: %s, kind %d, %d blocks, rows %d..<%d, batch %d: token %d row %d: avx2 %.9g, %s %.9g\n",
                                        names[isa], kind, nb, r0, rows, batch, i / rows, i % rows, out[0][i], names[isa], out[isa][i]);
                                break;
                            }
                    }
                    for (int isa = 0; isa < 3; isa++) free(out[isa]);
                    free(w); free(xf); free(x);
                }
    // K-quants: the packed layout on every table against the file-layout products (kquants.c).
    static const int knbs[] = { 1, 2, 3 };
    for (int kind = 3; kind <= 4; kind++)
        for (size_t ni = 0; ni < sizeof knbs / sizeof *knbs; ni++)
            for (size_t ri = 0; ri < sizeof row_counts / sizeof *row_counts; ri++)
                for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi += 2) {
                    const int nb = knbs[ni], rows = row_counts[ri], batch = batches[bi], n = 256 * nb;
                    const long row_bytes = (long)nb * (kind == 3 ? 144 : 210);
                    uint8_t *w = malloc((size_t)(rows * row_bytes));
                    for (long i = 0; i < rows * row_bytes; i++) w[i] = (uint8_t)next();
                    for (int r = 0; r < rows; r++)
                        for (int b = 0; b < nb; b++) {
                            uint8_t *p = w + r * row_bytes + b * (kind == 3 ? 144 : 210);
                            uint16_t d = lm_f32_to_f16(uniform(-0.01f, 0.01f)), m = lm_f32_to_f16(uniform(-0.01f, 0.01f));
                            memcpy(kind == 3 ? p : p + 208, &d, 2);
                            if (kind == 3) memcpy(p + 2, &m, 2);
                        }
                    float *xf = malloc(sizeof(float) * (size_t)n);
                    lm_block_q8_k *x = malloc(sizeof(lm_block_q8_k) * (size_t)(nb * batch));
                    for (int t = 0; t < batch; t++) {
                        for (int i = 0; i < n; i++) xf[i] = uniform(-2, 2) * (i % 7 == 0 ? 4.0f : 1.0f);
                        lm_quantize_q8_k(xf, x + (long)t * nb, n);
                    }
                    const int r0 = rows > 5 && (rows & 1) ? 5 : 0;
                    float *ref = malloc(sizeof(float) * (size_t)(rows * batch));
                    for (int i = 0; i < rows * batch; i++) ref[i] = -1.0f;
                    lm_q8_set_isa(0);
                    lm_matmul(kind, n, w, row_bytes, x, (long)sizeof(lm_block_q8_k) * nb, batch, ref, rows, r0, rows);
                    uint8_t *packed = malloc((size_t)lm_pack_bytes(kind, n, rows));
                    lm_pack_rows(kind, n, w, row_bytes, rows, 0, (rows + 15) / 16, packed);
                    uint8_t *back = malloc((size_t)row_bytes);
                    for (int r = 0; r < rows; r++) {
                        lm_unpack_row(kind, n, packed, r, back);
                        checked++;
                        if (memcmp(back, w + r * row_bytes, (size_t)row_bytes) != 0 && ++failed <= 10)
                            fprintf(stderr, "mismatch: kind %d, %d super-blocks, row %d of %d: unpacked row differs from the original\n", kind, nb, r, rows);
                    }
                    for (int isa = 0; isa < 3; isa++) {
                        float *po = malloc(sizeof(float) * (size_t)(rows * batch));
                        for (int i = 0; i < rows * batch; i++) po[i] = -1.0f;
                        lm_q8_set_isa(isa);
                        lm_matmul_packed(kind, n, packed, x, (long)sizeof(lm_block_q8_k) * nb, batch, po, rows, r0, rows);
                        checked++;
                        if (memcmp(ref, po, sizeof(float) * (size_t)(rows * batch)) != 0) {
                            failed++;
                            for (int i = 0; i < rows * batch && failed <= 10; i++)
                                if (memcmp(&ref[i], &po[i], 4) != 0) {
                                    fprintf(stderr, "mismatch: packed %s, kind %d, %d super-blocks, rows %d..<%d, batch %d: token %d row %d: file layout %.9g, packed %.9g\n",
                                            names[isa], kind, nb, r0, rows, batch, i / rows, i % rows, ref[i], po[i]);
                                    break;
                                }
                        }
                        free(po);
                    }
                    free(w); free(xf); free(x); free(ref); free(packed); free(back);
                }
    lm_q8_set_isa(0);
    if (failed) {
        fprintf(stderr, "emulated kernels: %ld of %ld table comparisons differ from AVX2\n", failed, checked);
        return 1;
    }
    printf("emulated kernels: AVX-512 and AMX tables, and the packed layout on all three, bit-identical to AVX2 in %ld comparisons\n", checked);
    return 0;
}
