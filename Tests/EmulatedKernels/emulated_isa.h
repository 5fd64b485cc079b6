// The AVX-512 and AMX intrinsics amx_q8.c uses, in plain C, for machines that have neither:
// check.c compiles the kernels with LM_EMULATED_ISA so the AVX-512 and AMX tables' logic runs
// (slowly) on any AVX2 machine and is compared bit for bit with the AVX2 table. Each function
// does what Intel's intrinsics guide gives as its operation, lane by lane; nothing here is fast.
#ifndef LM_EMULATED_ISA_H
#define LM_EMULATED_ISA_H
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct { float f[16]; } __m512;
typedef struct { union { int32_t i[16]; uint32_t u[16]; int8_t b[64]; uint8_t ub[64]; }; } __m512i;
typedef struct { union { int16_t h[16]; uint16_t uh[16]; }; } __m256i;
typedef uint16_t __mmask16;

float lm_f16_to_f32(uint16_t h);

#define EACH(n) for (int l = 0; l < (n); l++)

static inline __m512i _mm512_setzero_si512(void) { __m512i r; memset(&r, 0, sizeof r); return r; }
static inline __m512 _mm512_setzero_ps(void) { __m512 r; memset(&r, 0, sizeof r); return r; }
static inline __m512i _mm512_set1_epi32(int v) { __m512i r; EACH(16) r.i[l] = v; return r; }
static inline __m512i _mm512_set1_epi8(char v) { __m512i r; EACH(64) r.b[l] = (int8_t)v; return r; }
static inline __m512 _mm512_set1_ps(float v) { __m512 r; EACH(16) r.f[l] = v; return r; }
static inline __m512i _mm512_setr_epi32(int a0, int a1, int a2, int a3, int a4, int a5, int a6, int a7,
                                        int a8, int a9, int a10, int a11, int a12, int a13, int a14, int a15) {
    __m512i r = { .i = { a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15 } };
    return r;
}
static inline __m512i _mm512_min_epi32(__m512i a, __m512i b) { EACH(16) a.i[l] = a.i[l] < b.i[l] ? a.i[l] : b.i[l]; return a; }
static inline __m512i _mm512_mullo_epi32(__m512i a, __m512i b) { EACH(16) a.u[l] = a.u[l] * b.u[l]; return a; }
static inline __m512i _mm512_srli_epi32(__m512i a, unsigned n) { EACH(16) a.u[l] = n > 31 ? 0 : a.u[l] >> n; return a; }
static inline __m512i _mm512_and_si512(__m512i a, __m512i b) { EACH(16) a.u[l] &= b.u[l]; return a; }
static inline __m512i _mm512_or_si512(__m512i a, __m512i b) { EACH(16) a.u[l] |= b.u[l]; return a; }
static inline __m512i _mm512_sub_epi8(__m512i a, __m512i b) { EACH(64) a.ub[l] = (uint8_t)(a.ub[l] - b.ub[l]); return a; }
// Lane l of the result: a[idx[l] mod 16].
static inline __m512i _mm512_permutexvar_epi32(__m512i idx, __m512i a) { __m512i r; EACH(16) r.i[l] = a.i[idx.u[l] & 15]; return r; }
// Lane l: the 32 bits at base + idx[l] · scale (unaligned, as a gather reads them).
static inline __m512i _mm512_i32gather_epi32(__m512i idx, const void *base, int scale) {
    __m512i r;
    EACH(16) memcpy(&r.i[l], (const char *)base + (long)idx.i[l] * scale, 4);
    return r;
}
static inline __m512 _mm512_i32gather_ps(__m512i idx, const void *base, int scale) {
    __m512 r;
    EACH(16) memcpy(&r.f[l], (const char *)base + (long)idx.i[l] * scale, 4);
    return r;
}
// Truncation to the low 16 bits of each lane (VPMOVDW).
static inline __m256i _mm512_cvtepi32_epi16(__m512i a) { __m256i r; EACH(16) r.uh[l] = (uint16_t)a.u[l]; return r; }
static inline __m512 _mm512_cvtph_ps(__m256i a) { __m512 r; EACH(16) r.f[l] = lm_f16_to_f32(a.uh[l]); return r; }
static inline __m512 _mm512_cvtepi32_ps(__m512i a) { __m512 r; EACH(16) r.f[l] = (float)a.i[l]; return r; }
static inline __m512 _mm512_mul_ps(__m512 a, __m512 b) { EACH(16) a.f[l] *= b.f[l]; return a; }
static inline __m512 _mm512_add_ps(__m512 a, __m512 b) { EACH(16) a.f[l] += b.f[l]; return a; }
static inline __m512 _mm512_fmadd_ps(__m512 a, __m512 b, __m512 c) { EACH(16) a.f[l] = fmaf(a.f[l], b.f[l], c.f[l]); return a; }
static inline __m512 _mm512_load_ps(const void *p) { __m512 r; memcpy(&r, p, 64); return r; }
static inline __m512i _mm512_load_si512(const void *p) { __m512i r; memcpy(&r, p, 64); return r; }
static inline void _mm512_store_ps(void *p, __m512 a) { memcpy(p, &a, 64); }
static inline void _mm512_store_si512(void *p, __m512i a) { memcpy(p, &a, 64); }
static inline void _mm512_mask_storeu_ps(void *p, __mmask16 m, __m512 a) { EACH(16) if ((m >> l) & 1) memcpy((float *)p + l, &a.f[l], 4); }

// For the packed layout's kernels (packed_avx512.c, amx_q8.c).
typedef uint64_t __mmask64;
static inline __m512i _mm512_loadu_si512(const void *p) { __m512i r; memcpy(&r, p, 64); return r; }
static inline __m256i _mm256_loadu_si256(const void *p) { __m256i r; memcpy(&r, p, 32); return r; }
static inline void _mm512_storeu_ps(void *p, __m512 a) { memcpy(p, &a, 64); }
static inline __m512i _mm512_xor_si512(__m512i a, __m512i b) { EACH(16) a.u[l] ^= b.u[l]; return a; }
static inline __m512i _mm512_sub_epi32(__m512i a, __m512i b) { EACH(16) a.u[l] -= b.u[l]; return a; }
// Byte l: a's where bit l of k is set, else 0 (VMOVDQU8 with a zeroing mask).
static inline __m512i _mm512_maskz_mov_epi8(__mmask64 k, __m512i a) { EACH(64) if (!((k >> l) & 1)) a.ub[l] = 0; return a; }
// VPDPBUSD: lane l of src plus Σ_{i<4} (unsigned) a[4l + i] · (signed) b[4l + i], wrapping.
static inline __m512i _mm512_dpbusd_epi32(__m512i src, __m512i a, __m512i b) {
    EACH(16) {
        int32_t s = 0;
        for (int i = 0; i < 4; i++) s += (int32_t)a.ub[4 * l + i] * (int32_t)b.b[4 * l + i];
        src.u[l] += (uint32_t)s;
    }
    return src;
}

// For the K-quants' packed kernels.
typedef struct { union { int8_t b[16]; uint8_t ub[16]; }; } __m128i;
static inline __m128i _mm_loadu_si128(const void *p) { __m128i r; memcpy(&r, p, 16); return r; }
static inline __m512i _mm512_cvtepu8_epi32(__m128i a) { __m512i r; EACH(16) r.i[l] = a.ub[l]; return r; }
static inline __m512i _mm512_cvtepi8_epi32(__m128i a) { __m512i r; EACH(16) r.i[l] = a.b[l]; return r; }
static inline __m512i _mm512_add_epi32(__m512i a, __m512i b) { EACH(16) a.u[l] += b.u[l]; return a; }
static inline __m512i _mm512_slli_epi32(__m512i a, unsigned n) { EACH(16) a.u[l] = n > 31 ? 0 : a.u[l] << n; return a; }
static inline __m512 _mm512_sub_ps(__m512 a, __m512 b) { EACH(16) a.f[l] -= b.f[l]; return a; }
// VPMADDWD: lane l = a.lo16 · b.lo16 + a.hi16 · b.hi16 (signed).
static inline __m512i _mm512_madd_epi16(__m512i a, __m512i b) {
    EACH(16) {
        const int16_t a0 = (int16_t)(a.u[l] & 0xFFFF), a1 = (int16_t)(a.u[l] >> 16), b0 = (int16_t)(b.u[l] & 0xFFFF), b1 = (int16_t)(b.u[l] >> 16);
        a.i[l] = (int32_t)a0 * b0 + (int32_t)a1 * b1;
    }
    return a;
}

// AMX: eight tiles of up to 16 rows × 64 bytes, shaped by the last configuration loaded.
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } __attribute__((packed)) emulated_tilecfg;
static __thread struct { emulated_tilecfg cfg; uint8_t t[8][16][64]; } emulated_tiles;

static inline void _tile_loadconfig(const void *cfg) {
    memcpy(&emulated_tiles.cfg, cfg, sizeof emulated_tiles.cfg);
    memset(emulated_tiles.t, 0, sizeof emulated_tiles.t);
}
static inline void _tile_zero(int t) { memset(emulated_tiles.t[t], 0, sizeof emulated_tiles.t[t]); }
// Rows of colsb bytes from p, stride bytes apart; the rest of each row zero.
static inline void _tile_loadd(int t, const void *p, long stride) {
    _tile_zero(t);
    for (int r = 0; r < emulated_tiles.cfg.rows[t]; r++)
        memcpy(emulated_tiles.t[t][r], (const char *)p + r * stride, emulated_tiles.cfg.colsb[t]);
}
static inline void _tile_stored(int t, void *p, long stride) {
    for (int r = 0; r < emulated_tiles.cfg.rows[t]; r++)
        memcpy((char *)p + r * stride, emulated_tiles.t[t][r], emulated_tiles.cfg.colsb[t]);
}
// TDPBSSD / TDPBSUD: C[m][n] += Σ_k Σ_i A[m][4k + i] · B[k][4n + i] in int32; A signed bytes,
// B signed (ss) or unsigned (su). K = A's colsb / 4 dword pairs, N = C's colsb / 4 columns.
static inline void emulated_tile_dp(int c, int a, int b, int b_signed) {
    const int M = emulated_tiles.cfg.rows[c], N = emulated_tiles.cfg.colsb[c] / 4, K = emulated_tiles.cfg.colsb[a] / 4;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int32_t s;
            memcpy(&s, &emulated_tiles.t[c][m][4 * n], 4);
            for (int k = 0; k < K; k++)
                for (int i = 0; i < 4; i++) {
                    const int av = (int8_t)emulated_tiles.t[a][m][4 * k + i];
                    const uint8_t braw = emulated_tiles.t[b][k][4 * n + i];
                    s += av * (b_signed ? (int)(int8_t)braw : (int)braw);
                }
            memcpy(&emulated_tiles.t[c][m][4 * n], &s, 4);
        }
}
#define _tile_dpbssd(c, a, b) emulated_tile_dp(c, a, b, 1)
#define _tile_dpbsud(c, a, b) emulated_tile_dp(c, a, b, 0)

#undef EACH
#endif
