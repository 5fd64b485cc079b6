// Bfloat16 matrix products (AVX512-BF16, or AMX-BF16 tiles), float32 accumulation,
// for training's frozen-weight products. Detected and enabled at run time; callers keep a
// float32 path for machines without it.
#ifndef LM_AMX_H
#define LM_AMX_H
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which bfloat16 product runs here, decided once: 0 none, 1 AVX512-BF16 (VDPBF16PS), 2 AMX-BF16
/// tiles. AMX only with PRS_ISA=amx (it also asks Linux for the tile state with
/// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); without it tile loads raise SIGILL);
/// PRS_ISA=avx2 turns both off.
int lm_bf16_isa(void);

/// Scalars of a packed B operand: K rounded up to 32, N to 16.
size_t lm_amx_packed_b_count(int k, int n);
/// Packs B (K × N) as bfloat16 tiles of 32 × 16 in the pairs TDPBF16PS reads. `transposed`:
/// the source is N × K row-major (b[n * ldb + k]), as a weight W (out × in) is for x · Wᵀ;
/// otherwise K × N row-major (b[k * ldb + n]). Zero padding.
void lm_amx_pack_b(const float *b, long ldb, int transposed, int k, int n, uint16_t *out);

/// Scalars of a packed A operand: M rounded up to 32, K to 32.
size_t lm_amx_packed_a_count(int m, int k);
/// A (M × K row-major, `lda` apart) as bfloat16 rows (round to nearest even), zero padded.
void lm_amx_pack_a(const float *a, long lda, int m, int k, uint16_t *out);

/// C = beta · C + A · B for the columns [n0, n1) (multiples of 32, or N), C row-major `ldc`
/// apart. Each element is summed in one fixed order (K in order), whatever n0 and n1.
void lm_bf16_gemm(const uint16_t *a, int m, int k, const uint16_t *b, int n, float *c, long ldc, float beta, int n0, int n1);

#ifdef __cplusplus
}
#endif
#endif
