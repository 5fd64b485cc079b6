// Dot products of GGUF K-quant weight rows (Q4_K, Q6_K) with Q8_K activations, in ggml's block
// layouts. AVX2/FMA when compiled for it, portable C otherwise; both give the same integer sums.
#ifndef LM_KQUANTS_H
#define LM_KQUANTS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Q8_K activation block of 256: float scale d, 256 int8 quants, and bsums[i] = the sum of
/// qs[16 i ..< 16 i + 16]. Value k of the block is d * qs[k].
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } lm_block_q8_k;

/// x (n floats, n a multiple of 256) into n/256 Q8_K blocks, by ggml's rule: max is the element
/// of largest magnitude (the first one on ties), iscale = -127 / max, qs = nearest integer
/// (half to even) of iscale * x, at most 127, d = 1 / iscale. A block of zeros gets d = 0,
/// qs = 0 and bsums = 0.
void lm_quantize_q8_k(const float *x, lm_block_q8_k *y, int n);

/// Dot product of a Q4_K weight row (n/256 super-blocks of 144 bytes: f16 d, f16 dmin, 12 bytes
/// of packed 6-bit scales and mins of 8 sub-blocks of 32, 128 bytes of 4-bit quants) with n/256
/// Q8_K activation blocks; n a multiple of 256.
float lm_dot_q4_k_q8_k(int n, const void *w, const lm_block_q8_k *x);

/// Dot product of a Q6_K weight row (n/256 super-blocks of 210 bytes: ql[128] low 4 bits,
/// qh[64] high 2 bits, int8 scales[16] of sub-blocks of 16, f16 d) with n/256 Q8_K activation
/// blocks; n a multiple of 256.
float lm_dot_q6_k_q8_k(int n, const void *w, const lm_block_q8_k *x);

/// One weight row against `nt` (1..4) tokens' activations: out[j] is bit for bit what the
/// one-token dot gives for xs[j]; the row is unpacked once for all of them.
void lm_dot_q4_k_q8_k_tile(int n, const void *w, const lm_block_q8_k *const *xs, int nt, float *out);
void lm_dot_q6_k_q8_k_tile(int n, const void *w, const lm_block_q8_k *const *xs, int nt, float *out);

#ifdef __cplusplus
}
#endif
#endif
