// The AVX-512 table's product on the packed layout (packed.c): a zmm register holds four values
// of each of a group's 16 rows, one row a 32-bit lane, and VPDPBUSD adds each lane's four
// products to that row's integer block sum, with the token's four activations broadcast. A tile
// is one group × up to 8 tokens, 16 accumulators. Weights are taken as unsigned bytes: 4-bit
// values as they are (Q4_0 and Q5_0 then less 8 or 16 times the activations' block sum), Q8_0's
// with 128 added (less 128 times the sum). The integers, and the float order after them, are
// the AVX2 kernel's (tile_q8.h), so the results are the same bits.
#include "lm_kernels.h"
#include "amx_q8.h"
#include <stdlib.h>
#include <string.h>

#if defined(LM_EMULATED_ISA)
// Tests/EmulatedKernels: the intrinsics in plain C, so this kernel is checked on machines without AVX-512.
#include "emulated_isa.h"
#define PK_ZMM
#define PK_ZMM_ON 1
#elif defined(__x86_64__)
#include <immintrin.h>
#define PK_ZMM __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define PK_ZMM_ON 1
#endif

#ifdef PK_ZMM_ON
#define PK_INLINE static inline __attribute__((always_inline))

PK_ZMM PK_INLINE __m512i zbcast4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return _mm512_set1_epi32(v); }

// One group (16 rows) against NT ≤ 8 tokens: o[t · 16 + r].
PK_ZMM PK_INLINE void zmm_tile(const int kind, int nb, const uint8_t *grp, const lm_act_q8 *const *xs, const int32_t *const *sx,
                               const int NT, float *o) {
    const int pb = kind == 0 ? 320 : kind == 1 ? 544 : kind == 7 ? 352 : 288, qo = kind == 0 ? 64 : kind == 7 ? 96 : 32;
    const int bias = kind == 2 ? 8 : kind == 7 ? 16 : kind == 1 ? 128 : 0;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[8], corr[8];
    for (int t = 0; t < NT; t++) { acc[t] = _mm512_setzero_ps(); corr[t] = _mm512_setzero_ps(); }
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = grp + (long)b * pb, *q = p + qo;
        // Streaming (one or two tokens): the block eight ahead requested now (packed.c).
        if (NT <= 2) for (int l = 0; l < pb; l += 64) __builtin_prefetch(p + 8 * pb + l, 0, 0);
        __m512i s[8];
        for (int t = 0; t < NT; t++) s[t] = _mm512_setzero_si512();
        if (kind == 1) {
            for (int g = 0; g < 8; g++) {
                const __m512i w = _mm512_xor_si512(_mm512_loadu_si512(q + 64 * g), _mm512_set1_epi8((char)0x80));
                for (int t = 0; t < NT; t++) s[t] = _mm512_dpbusd_epi32(s[t], w, zbcast4(xs[t][b].qs + 4 * g));
            }
        } else {
            for (int c = 0; c < 4; c++) {
                const __m512i raw = _mm512_loadu_si512(q + 64 * c);
                __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi32(raw, 4), m4);
                if (kind == 7) {
                    uint64_t bl, bh;
                    memcpy(&bl, p + 32 + 16 * c, 8); memcpy(&bh, p + 32 + 16 * c + 8, 8);
                    lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(bl, _mm512_set1_epi8(0x10)));
                    hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(bh, _mm512_set1_epi8(0x10)));
                }
                for (int t = 0; t < NT; t++) {
                    s[t] = _mm512_dpbusd_epi32(s[t], lo, zbcast4(xs[t][b].qs + 4 * c));
                    s[t] = _mm512_dpbusd_epi32(s[t], hi, zbcast4(xs[t][b].qs + 16 + 4 * c));
                }
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        const __m512 mw = kind == 0 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32))) : dw;
        for (int t = 0; t < NT; t++) {
            if (bias) s[t] = _mm512_sub_epi32(s[t], _mm512_set1_epi32(bias * sx[t][b]));
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(xs[t][b].d)), _mm512_cvtepi32_ps(s[t]), acc[t]);
            if (kind == 0) corr[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(xs[t][b].s), corr[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(o + t * 16, _mm512_add_ps(acc[t], corr[t]));
}

#define ZMM_KIND(K) \
    PK_ZMM static void zmm_group_##K(int nb, const uint8_t *grp, const lm_act_q8 *const *xs, const int32_t *const *sx, int nt, float *o) { \
        switch (nt) { \
        case 1: zmm_tile(K, nb, grp, xs, sx, 1, o); break; \
        case 2: zmm_tile(K, nb, grp, xs, sx, 2, o); break; \
        case 3: zmm_tile(K, nb, grp, xs, sx, 3, o); break; \
        case 4: zmm_tile(K, nb, grp, xs, sx, 4, o); break; \
        case 5: zmm_tile(K, nb, grp, xs, sx, 5, o); break; \
        case 6: zmm_tile(K, nb, grp, xs, sx, 6, o); break; \
        case 7: zmm_tile(K, nb, grp, xs, sx, 7, o); break; \
        default: zmm_tile(K, nb, grp, xs, sx, 8, o); break; \
        } \
    }
ZMM_KIND(0)
ZMM_KIND(1)
ZMM_KIND(2)
ZMM_KIND(7)
#undef ZMM_KIND

int lm_packed_rows_avx512(int kind, int nb, const uint8_t *packed, int r0, int r1,
                          const uint8_t *x, long x_stride, int batch, const int32_t *sums, float *out, long out_stride) {
    const int pb = kind == 0 ? 320 : kind == 1 ? 544 : kind == 7 ? 352 : 288;
    float o[8 * 16];
    for (int g = r0 / 16; g * 16 < r1; g++) {
        const uint8_t *grp = packed + (long)g * nb * pb;
        int lo, hi;
        lm_group_span(g, r0, r1, &lo, &hi);
        for (int t = 0; t < batch; t += 8) {
            const int nt = batch - t < 8 ? batch - t : 8;
            const lm_act_q8 *xs[8];
            const int32_t *sx[8] = { 0 };
            for (int j = 0; j < nt; j++) {
                xs[j] = (const lm_act_q8 *)(x + (long)(t + j) * x_stride);
                if (sums) sx[j] = sums + (long)(t + j) * nb;
            }
            switch (kind) {
            case 0: zmm_group_0(nb, grp, xs, sx, nt, o); break;
            case 1: zmm_group_1(nb, grp, xs, sx, nt, o); break;
            case 2: zmm_group_2(nb, grp, xs, sx, nt, o); break;
            default: zmm_group_7(nb, grp, xs, sx, nt, o); break;
            }
            lm_store_group(out, out_stride, o, g, lo, hi, t, nt);
        }
    }
    return 1;
}

// Q4_K (3) and Q6_K (4): one group × up to 4 tokens (each token's sub-block sums, running sums,
// minimum sums and two accumulators stay in registers). Each sub-block's dot is exact in 32-bit
// lanes, then multiplied by its row's scale (VPMULLD); the minimums (Q4_K) and the −32 offset
// (Q6_K) come from the activations' bsums through VPMADDWD on int16 pairs, as in packed.c.
PK_ZMM PK_INLINE __m512i zpairs(const uint8_t *a, const uint8_t *b, int is_signed) {
    const __m512i lo = is_signed ? _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)a)) : _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)a));
    const __m512i hi = is_signed ? _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b)) : _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b));
    return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(hi, 16));
}
PK_ZMM PK_INLINE __m512i zpair16(int a, int b) { return _mm512_set1_epi32((int)(((uint32_t)(uint16_t)a) | ((uint32_t)(uint16_t)b << 16))); }

PK_ZMM PK_INLINE void zmm_k_tile(const int kind, int nb, const uint8_t *grp, const lm_block_q8_k *const *xs, const int NT, float *o) {
    const long pb = kind == 3 ? 2368 : 3360;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[4], accm[4];
    for (int t = 0; t < NT; t++) { acc[t] = _mm512_setzero_ps(); accm[t] = _mm512_setzero_ps(); }
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = grp + (long)b * pb;
        const uint8_t *ahead = p + pb;  // the next super-block, a slice per sub-block (packed.c)
        __m512i s[4], sm[4], d[4];
        for (int t = 0; t < NT; t++) { s[t] = _mm512_setzero_si512(); sm[t] = _mm512_setzero_si512(); }
        if (kind == 3) {
            for (int j = 0; j < 8; j++) {
                if (NT <= 2) for (long l = j * (pb / 8); l < (j + 1) * (pb / 8); l += 64) __builtin_prefetch(ahead + l, 0, 0);
                for (int t = 0; t < NT; t++) d[t] = _mm512_setzero_si512();
                for (int c = 0; c < 4; c++) {
                    const __m512i raw = _mm512_loadu_si512(p + 320 + 256 * j + 64 * c);
                    const __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi32(raw, 4), m4);
                    for (int t = 0; t < NT; t++) {
                        d[t] = _mm512_dpbusd_epi32(d[t], lo, zbcast4(xs[t][b].qs + 32 * j + 4 * c));
                        d[t] = _mm512_dpbusd_epi32(d[t], hi, zbcast4(xs[t][b].qs + 32 * j + 16 + 4 * c));
                    }
                }
                const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 64 + 16 * j)));
                for (int t = 0; t < NT; t++) s[t] = _mm512_add_epi32(s[t], _mm512_mullo_epi32(d[t], sc));
            }
            for (int k = 0; k < 4; k++) {
                const __m512i mn = zpairs(p + 192 + 16 * (2 * k), p + 192 + 16 * (2 * k + 1), 0);
                for (int t = 0; t < NT; t++) {
                    const int16_t *bs = xs[t][b].bsums;
                    sm[t] = _mm512_add_epi32(sm[t], _mm512_madd_epi16(mn, zpair16(bs[4 * k] + bs[4 * k + 1], bs[4 * k + 2] + bs[4 * k + 3])));
                }
            }
        } else {
            for (int i = 0; i < 16; i++) {
                if (NT <= 2) for (long l = i * (pb / 16); l < (i + 1) * (pb / 16); l += 64) __builtin_prefetch(ahead + l, 0, 0);
                for (int t = 0; t < NT; t++) d[t] = _mm512_setzero_si512();
                for (int u = 0; u < 4; u++) {
                    const int gi = 4 * i + u, m = gi / 16;
                    const __m512i ql = _mm512_loadu_si512(p + 288 + 64 * (gi % 32));
                    const __m512i qh = _mm512_loadu_si512(p + 2336 + 64 * (gi % 16));
                    const __m512i low = gi < 32 ? _mm512_and_si512(ql, m4) : _mm512_and_si512(_mm512_srli_epi32(ql, 4), m4);
                    const __m512i high = m == 0 ? _mm512_slli_epi32(qh, 4) : m == 1 ? _mm512_slli_epi32(qh, 2) : m == 2 ? qh : _mm512_srli_epi32(qh, 2);
                    const __m512i v = _mm512_or_si512(low, _mm512_and_si512(high, m30));
                    for (int t = 0; t < NT; t++) d[t] = _mm512_dpbusd_epi32(d[t], v, zbcast4(xs[t][b].qs + 16 * i + 4 * u));
                }
                const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 32 + 16 * i)));
                for (int t = 0; t < NT; t++) s[t] = _mm512_add_epi32(s[t], _mm512_mullo_epi32(d[t], sc));
            }
            for (int k = 0; k < 8; k++) {
                const __m512i sc = zpairs(p + 32 + 16 * (2 * k), p + 32 + 16 * (2 * k + 1), 1);
                for (int t = 0; t < NT; t++) {
                    const int16_t *bs = xs[t][b].bsums;
                    sm[t] = _mm512_add_epi32(sm[t], _mm512_madd_epi16(sc, zpair16(bs[2 * k], bs[2 * k + 1])));
                }
            }
            for (int t = 0; t < NT; t++) s[t] = _mm512_sub_epi32(s[t], _mm512_slli_epi32(sm[t], 5));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        const __m512 mw = kind == 3 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32))) : dw;
        for (int t = 0; t < NT; t++) {
            const __m512 dx = _mm512_set1_ps(xs[t][b].d);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(s[t]), acc[t]);
            if (kind == 3) accm[t] = _mm512_fmadd_ps(_mm512_mul_ps(mw, dx), _mm512_cvtepi32_ps(sm[t]), accm[t]);
        }
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(o + t * 16, _mm512_sub_ps(acc[t], accm[t]));
}

#define ZMM_K_KIND(K) \
    PK_ZMM static void zmm_k_group_##K(int nb, const uint8_t *grp, const lm_block_q8_k *const *xs, int nt, float *o) { \
        switch (nt) { \
        case 1: zmm_k_tile(K, nb, grp, xs, 1, o); break; \
        case 2: zmm_k_tile(K, nb, grp, xs, 2, o); break; \
        case 3: zmm_k_tile(K, nb, grp, xs, 3, o); break; \
        default: zmm_k_tile(K, nb, grp, xs, 4, o); break; \
        } \
    }
ZMM_K_KIND(3)
ZMM_K_KIND(4)
#undef ZMM_K_KIND

int lm_packed_k_rows_avx512(int kind, int nb, const uint8_t *packed, int r0, int r1,
                            const uint8_t *x, long x_stride, int batch, float *out, long out_stride) {
    const long pb = kind == 3 ? 2368 : 3360;
    float o[4 * 16];
    for (int g = r0 / 16; g * 16 < r1; g++) {
        const uint8_t *grp = packed + (long)g * nb * pb;
        int lo, hi;
        lm_group_span(g, r0, r1, &lo, &hi);
        for (int t = 0; t < batch; t += 4) {
            const int nt = batch - t < 4 ? batch - t : 4;
            const lm_block_q8_k *xs[4];
            for (int j = 0; j < nt; j++) xs[j] = (const lm_block_q8_k *)(x + (long)(t + j) * x_stride);
            if (kind == 3) zmm_k_group_3(nb, grp, xs, nt, o); else zmm_k_group_4(nb, grp, xs, nt, o);
            lm_store_group(out, out_stride, o, g, lo, hi, t, nt);
        }
    }
    return 1;
}

#else
int lm_packed_rows_avx512(int kind, int nb, const uint8_t *packed, int r0, int r1,
                          const uint8_t *x, long x_stride, int batch, const int32_t *sums, float *out, long out_stride) {
    (void)kind; (void)nb; (void)packed; (void)r0; (void)r1; (void)x; (void)x_stride; (void)batch; (void)sums; (void)out; (void)out_stride;
    return 0;
}
int lm_packed_k_rows_avx512(int kind, int nb, const uint8_t *packed, int r0, int r1,
                            const uint8_t *x, long x_stride, int batch, float *out, long out_stride) {
    (void)kind; (void)nb; (void)packed; (void)r0; (void)r1; (void)x; (void)x_stride; (void)batch; (void)out; (void)out_stride;
    return 0;
}
#endif
