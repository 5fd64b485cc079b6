// The packed layout's portable C path (what non-x86 builds run) against the file layout's
// portable products, bit for bit: compiled without AVX2 by scripts/check-emulated-kernels.sh,
// so both sides are the plain C code. Exit 0 when every output matches.
#include "lm_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x2545F4914F6CDD1Dull;
static uint32_t next(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (uint32_t)(state >> 16);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next() & 0xFFFFFF) / 16777216.0f; }

int main(void) {
    static const int kinds[] = { 0, 1, 2, 7, 3, 4 };
    static const int rows_list[] = { 1, 17, 37 }, batches[] = { 1, 3, 5, 9 };
    long checked = 0, failed = 0;
    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++)
        for (size_t ri = 0; ri < 3; ri++)
            for (size_t bi = 0; bi < 4; bi++) {
                const int kind = kinds[ki], rows = rows_list[ri], batch = batches[bi];
                const int k = kind == 3 || kind == 4, n = k ? 512 : 96;
                const int bb = kind == 0 ? 20 : kind == 1 ? 34 : kind == 7 ? 22 : kind == 2 ? 18 : kind == 3 ? 144 : 210;
                const int blocks = n / (k ? 256 : 32);
                const long row_bytes = (long)blocks * bb;
                uint8_t *w = malloc((size_t)(rows * row_bytes));
                for (long i = 0; i < rows * row_bytes; i++) w[i] = (uint8_t)next();
                for (int r = 0; r < rows; r++)
                    for (int b = 0; b < blocks; b++) {
                        uint8_t *p = w + r * row_bytes + b * bb;
                        uint16_t d = lm_f32_to_f16(uniform(-0.02f, 0.02f)), m = lm_f32_to_f16(uniform(-0.02f, 0.02f));
                        memcpy(kind == 4 ? p + 208 : p, &d, 2);
                        if (kind == 0 || kind == 3) memcpy(p + 2, &m, 2);
                    }
                const long xs = k ? (long)sizeof(lm_block_q8_k) * blocks : (long)sizeof(lm_act_q8) * blocks;
                uint8_t *x = malloc((size_t)(xs * batch));
                float *xf = malloc(sizeof(float) * (size_t)n);
                for (int t = 0; t < batch; t++) {
                    for (int i = 0; i < n; i++) xf[i] = uniform(-2, 2);
                    if (k) lm_quantize_q8_k(xf, (lm_block_q8_k *)(x + t * xs), n); else lm_quantize_acts(xf, (lm_act_q8 *)(x + t * xs), n);
                }
                float *a = malloc(sizeof(float) * (size_t)(rows * batch)), *b = malloc(sizeof(float) * (size_t)(rows * batch));
                lm_matmul(kind, n, w, row_bytes, x, xs, batch, a, rows, 0, rows);
                uint8_t *packed = malloc((size_t)lm_pack_bytes(kind, n, rows));
                lm_pack_rows(kind, n, w, row_bytes, rows, 0, (rows + 15) / 16, packed);
                lm_matmul_packed(kind, n, packed, x, xs, batch, b, rows, 0, rows);
                checked++;
                if (memcmp(a, b, sizeof(float) * (size_t)(rows * batch)) != 0) {
                    failed++;
                    for (int i = 0; i < rows * batch; i++)
                        if (memcmp(&a[i], &b[i], 4) != 0) {
                            fprintf(stderr, "mismatch: portable packed, kind %d, rows %d, batch %d: token %d row %d: file layout %.9g, packed %.9g\n",
                                    kind, rows, batch, i / rows, i % rows, a[i], b[i]);
                            break;
                        }
                }
                free(w); free(x); free(xf); free(a); free(b); free(packed);
            }
    if (failed) { fprintf(stderr, "portable kernels: %ld of %ld packed products differ from the file layout's\n", failed, checked); return 1; }
    printf("portable kernels: the packed layout's C path bit-identical to the file layout's in %ld products\n", checked);
    return 0;
}
