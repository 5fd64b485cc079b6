// Quantized dot products and activation quantization for LMEngine (ggml block layouts).
// AVX2/FMA when compiled for it, portable C otherwise; both give the same integer sums.
#ifndef LM_KERNELS_H
#define LM_KERNELS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Q8_1 activation block of 32: f16 scale d, f16 s = d * sum(q), 32 int8.
typedef struct { uint16_t d; uint16_t s; int8_t qs[32]; } lm_block_q8_1;
// Q8_0 block of 32: f16 scale d, 32 int8.
typedef struct { uint16_t d; int8_t qs[32]; } lm_block_q8_0;

/// x (n floats, n a multiple of 32) into n/32 Q8_1 blocks (round to nearest, d = amax/127).
void lm_quantize_q8_1(const float *x, lm_block_q8_1 *y, int n);
/// x (n floats, n a multiple of 32) into n/32 Q8_0 blocks.
void lm_quantize_q8_0(const float *x, lm_block_q8_0 *y, int n);

/// Dot product of a Q4_1 weight row (n/32 blocks of 20 bytes) with Q8_1 activations.
float lm_dot_q4_1_q8_1(int n, const void *w, const lm_block_q8_1 *x);
/// Dot product of a Q4_0 weight row (n/32 blocks of 18 bytes) with Q8_0 activations.
float lm_dot_q4_0_q8_0(int n, const void *w, const lm_block_q8_0 *x);
/// Dot product of a Q8_0 weight row (n/32 blocks of 34 bytes) with Q8_0 activations.
float lm_dot_q8_0_q8_0(int n, const void *w, const lm_block_q8_0 *x);


/// Attention of one head (head size hd ≤ 256) over n_pos cached positions whose rows are
/// `stride` halves apart; scores needs n_pos floats of scratch; out receives hd floats.
void lm_attention(const float *q, const uint16_t *k, const uint16_t *v, long stride, int n_pos, int hd,
                  float scale, float *scores, float *out);

/// Attention over rows [start1, start1+n1) then [start2, start2+n2) of the cache (a shared
/// prompt and one sequence's own tail); scores needs n1+n2 floats of scratch.
void lm_attention2(const float *q, const uint16_t *k, const uint16_t *v, long stride,
                   int start1, int n1, int start2, int n2, int hd, float scale, float *scores, float *out);

/// out[b * out_stride + r] = dot(row r of w, activations of token b) for r in [r0, r1) and
/// b < batch; activations are `x_stride` bytes apart. kind: 0 = Q4_1 with Q8_1 activations,
/// 1 = Q8_0 with Q8_0, 2 = Q4_0 with Q8_0.
void lm_matmat_rows(int kind, int n, const void *w, long row_bytes, const void *x, long x_stride, int batch,
                    float *out, long out_stride, int r0, int r1);

float lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);

#ifdef __cplusplus
}
#endif
#endif
