// The AMX table's quantized products (amx_q8.c), called by lm_matmul.
#ifndef LM_AMX_Q8_H
#define LM_AMX_Q8_H
#include <stdint.h>

/// Rows [r0, r1) of a Q4_1 (0), Q8_0 (1), Q4_0 (2) or Q5_0 (7) matrix against `batch` tokens of
/// lm_act_q8 activations x_stride bytes apart: out[b · out_stride + r]. Only where the AMX table
/// is on (tile permission granted). Returns 0, having written nothing, if its scratch cannot be had.
int lm_amx_q8_rows(int kind, int nb, const uint8_t *w, long row_bytes, int r0, int r1,
                   const uint8_t *x, long x_stride, int batch, float *out, long out_stride);

#endif
