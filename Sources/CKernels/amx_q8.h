// The AVX-512 and AMX tables' quantized products (amx_q8.c, packed_avx512.c), called by
// lm_matmul and lm_matmul_packed, and helpers of the packed layout's kernels.
#ifndef LM_AMX_Q8_H
#define LM_AMX_Q8_H
#include <stdint.h>

/// The smallest batch the AMX table hands to the tiles; smaller ones run its AVX-512 kernels.
#ifndef LM_AMX_MIN_BATCH
#define LM_AMX_MIN_BATCH 8
#endif

/// Rows [r0, r1) of a Q4_1 (0), Q8_0 (1), Q4_0 (2) or Q5_0 (7) matrix against `batch` tokens of
/// lm_act_q8 activations x_stride bytes apart: out[b · out_stride + r]. Only where the AMX table
/// is on (tile permission granted). Returns 0, having written nothing, if its scratch cannot be had.
int lm_amx_q8_rows(int kind, int nb, const uint8_t *w, long row_bytes, int r0, int r1,
                   const uint8_t *x, long x_stride, int batch, float *out, long out_stride);
/// The same from a packed matrix (lm_pack_rows): the tiles' B operand read from the layout.
int lm_amx_q8_packed(int kind, int nb, const uint8_t *packed, int r0, int r1,
                     const uint8_t *x, long x_stride, int batch, float *out, long out_stride);
/// A packed matrix's rows with the AVX-512 table's VPDPBUSD kernel (16 rows a zmm register);
/// sums: each token's activation block sums (nb apart; Q4_0, Q5_0 and Q8_0). 0, having written
/// nothing, where this build has no AVX-512 code.
int lm_packed_rows_avx512(int kind, int nb, const uint8_t *packed, int r0, int r1,
                          const uint8_t *x, long x_stride, int batch, const int32_t *sums, float *out, long out_stride);
/// The same for a packed Q4_K (3) or Q6_K (4) matrix against lm_block_q8_k activations.
int lm_packed_k_rows_avx512(int kind, int nb, const uint8_t *packed, int r0, int r1,
                            const uint8_t *x, long x_stride, int batch, float *out, long out_stride);

/// The rows [*lo, *hi) of 16-row group g that a call for rows [r0, r1) asks for.
static inline void lm_group_span(int g, int r0, int r1, int *lo, int *hi) {
    *lo = g * 16 > r0 ? g * 16 : r0;
    *hi = (g + 1) * 16 < r1 ? (g + 1) * 16 : r1;
}
/// A group's tile results (o[j · 16 + row in group] for nt tokens) into out, rows [lo, hi) of
/// tokens [t, t + nt).
static inline void lm_store_group(float *out, long out_stride, const float *o, int g, int lo, int hi, int t, int nt) {
    for (int j = 0; j < nt; j++)
        for (int r = lo; r < hi; r++) out[(long)(t + j) * out_stride + r] = o[j * 16 + r - g * 16];
}

#endif
