// Bfloat16 products: B packed once into 32 × 16 tiles of bf16 pairs (AMX's layout, whose rows
// are also AVX512-BF16's operands), A converted per call, C accumulated in float32 by
// VDPBF16PS (AVX512-BF16) or TDPBF16PS (AMX tiles). See lm_amx.h.
#include "lm_amx.h"
#include "lm_kernels.h"
#include "amx_tile.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>

static int bf16_state = -1;

/// 0: no bfloat16 products; 1: AVX512-BF16 (VDPBF16PS); 2: AMX-BF16 tiles. AMX is used only when
/// PRS_ISA=amx asks for it; PRS_ISA=avx2 turns both off.
static int bf16_detect(void) {
    const char *isa = getenv("PRS_ISA");
    if (isa && strcmp(isa, "avx2") == 0) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    if (!((a >> 5) & 1) || !lm_isa_available(1)) return 0;  // AVX512-BF16 on top of the AVX-512 table
    // AMX only when asked for; lm_isa_available(2) also asks Linux for the tile data state.
    if (isa && strcmp(isa, "amx") == 0) return lm_isa_available(2) ? 2 : 0;
    return 1;
}

int lm_bf16_isa(void) {
    if (bf16_state < 0) bf16_state = bf16_detect();
    return bf16_state;
}

static inline int up(int x, int m) { return (x + m - 1) / m * m; }

size_t lm_amx_packed_b_count(int k, int n) { return (size_t)up(k, 32) * (size_t)up(n, 32); }
size_t lm_amx_packed_a_count(int m, int k) { return (size_t)up(m, 32) * (size_t)up(k, 32); }

static inline uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

void lm_amx_pack_b(const float *b, long ldb, int transposed, int k, int n, uint16_t *out) {
    int kb = up(k, 32) / 32, nb = up(n, 32) / 16;
    for (int j = 0; j < nb; j++) {
        for (int t = 0; t < kb; t++) {
            uint16_t *tile = out + ((size_t)j * kb + t) * 512;
            for (int r = 0; r < 16; r++) {
                for (int col = 0; col < 16; col++) {
                    for (int e = 0; e < 2; e++) {
                        int kk = t * 32 + 2 * r + e, nn = j * 16 + col;
                        float v = 0;
                        if (kk < k && nn < n) v = transposed ? b[(long)nn * ldb + kk] : b[(long)kk * ldb + nn];
                        tile[r * 32 + 2 * col + e] = bf16_round(v);
                    }
                }
            }
        }
    }
}

__attribute__((target("avx512f,avx512bf16,avx512vl")))
void lm_amx_pack_a(const float *a, long lda, int m, int k, uint16_t *out) {
    int kp = up(k, 32), mp = up(m, 32);
    for (int i = 0; i < mp; i++) {
        uint16_t *row = out + (size_t)i * kp;
        if (i >= m) { memset(row, 0, (size_t)kp * 2); continue; }
        const float *src = a + (long)i * lda;
        int j = 0;
        for (; j + 16 <= k; j += 16) {
            __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + j));
            _mm256_storeu_si256((__m256i *)(row + j), (__m256i)h);
        }
        for (; j < k; j++) row[j] = bf16_round(src[j]);
        for (; j < kp; j++) row[j] = 0;
    }
}


// AVX512-BF16: C rows in blocks of 8, columns in blocks of 32 (two 16-wide vectors); each k
// pair of A broadcast against the B tile row that holds that pair for 16 columns.
__attribute__((target("avx512f,avx512bf16,avx512vl")))
static void avx512_gemm(const uint16_t *a, int m, int k, const uint16_t *b, int n, float *c, long ldc, float beta, int n0, int n1) {
    int kb = up(k, 32) / 32, kp = up(k, 32), pairs = kp / 2;
    for (int nc = n0; nc < n1; nc += 32) {
        int j = nc / 16;
        const uint16_t *b0 = b + (size_t)j * kb * 512, *b1 = b + (size_t)(j + 1) * kb * 512;
        int cols = n - nc < 32 ? n - nc : 32;
        __mmask16 lo = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
        __mmask16 hi = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
        for (int mr = 0; mr < m; mr += 8) {
            __m512 acc[8][2];
            for (int r = 0; r < 8; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
            const uint32_t *ar = (const uint32_t *)(a + (size_t)mr * kp);
            for (int p = 0; p < pairs; p++) {
                // Pair p lives in tile p / 16, row p % 16 (32 bf16 a row).
                size_t off = (size_t)(p / 16) * 512 + (size_t)(p % 16) * 32;
                __m512bh v0 = (__m512bh)_mm512_loadu_si512(b0 + off), v1 = (__m512bh)_mm512_loadu_si512(b1 + off);
                for (int r = 0; r < 8; r++) {
                    __m512bh x = (__m512bh)_mm512_set1_epi32((int)ar[(size_t)r * pairs + p]);
                    acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, v0);
                    acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, v1);
                }
            }
            int rows = m - mr < 8 ? m - mr : 8;
            for (int r = 0; r < rows; r++) {
                float *dst = c + (long)(mr + r) * ldc + nc;
                __m512 s0 = acc[r][0], s1 = acc[r][1];
                if (beta != 0) {
                    s0 = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(lo, dst)), s0);
                    s1 = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(hi, dst + 16)), s1);
                }
                _mm512_mask_storeu_ps(dst, lo, s0);
                if (hi) _mm512_mask_storeu_ps(dst + 16, hi, s1);
            }
        }
    }
}

__attribute__((target("amx-tile,amx-bf16,avx512f")))
static void amx_gemm(const uint16_t *a, int m, int k, const uint16_t *b, int n, float *c, long ldc, float beta, int n0, int n1) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    int kb = up(k, 32) / 32, kp = up(k, 32);
    float out[32][32] __attribute__((aligned(64)));
    for (int nc = n0; nc < n1; nc += 32) {
        int j = nc / 16;  // first of the two 16-column B tiles
        const uint16_t *b0 = b + (size_t)j * kb * 512, *b1 = b + (size_t)(j + 1) * kb * 512;
        for (int mr = 0; mr < m; mr += 32) {
            const uint16_t *a0 = a + (size_t)mr * kp, *a1 = a + (size_t)(mr + 16) * kp;
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            for (int t = 0; t < kb; t++) {
                _tile_loadd(4, a0 + t * 32, kp * 2);
                _tile_loadd(5, a1 + t * 32, kp * 2);
                _tile_loadd(6, b0 + (size_t)t * 512, 64);
                _tile_loadd(7, b1 + (size_t)t * 512, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, &out[0][0], 128);
            _tile_stored(1, &out[0][16], 128);
            _tile_stored(2, &out[16][0], 128);
            _tile_stored(3, &out[16][16], 128);
            int rows = m - mr < 32 ? m - mr : 32, cols = n - nc < 32 ? n - nc : 32;
            for (int r = 0; r < rows; r++) {
                float *dst = c + (long)(mr + r) * ldc + nc;
                if (beta == 0) { for (int q = 0; q < cols; q++) dst[q] = out[r][q]; }
                else { for (int q = 0; q < cols; q++) dst[q] = beta * dst[q] + out[r][q]; }
            }
        }
    }
    _tile_release();
}

void lm_bf16_gemm(const uint16_t *a, int m, int k, const uint16_t *b, int n, float *c, long ldc, float beta, int n0, int n1) {
    if (lm_bf16_isa() == 2) amx_gemm(a, m, k, b, n, c, ldc, beta, n0, n1);
    else if (lm_bf16_isa() == 1) avx512_gemm(a, m, k, b, n, c, ldc, beta, n0, n1);
    else abort();
}

#else
int lm_bf16_isa(void) { return 0; }
size_t lm_amx_packed_b_count(int k, int n) { (void)k; (void)n; return 0; }
size_t lm_amx_packed_a_count(int m, int k) { (void)m; (void)k; return 0; }
void lm_amx_pack_b(const float *b, long ldb, int transposed, int k, int n, uint16_t *out) { (void)b; (void)ldb; (void)transposed; (void)k; (void)n; (void)out; }
void lm_amx_pack_a(const float *a, long lda, int m, int k, uint16_t *out) { (void)a; (void)lda; (void)m; (void)k; (void)out; }
void lm_bf16_gemm(const uint16_t *a, int m, int k, const uint16_t *b, int n, float *c, long ldc, float beta, int n0, int n1) {
    (void)a; (void)m; (void)k; (void)b; (void)n; (void)c; (void)ldc; (void)beta; (void)n0; (void)n1; abort();
}
#endif
