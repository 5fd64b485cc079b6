// See lm_kquants.h. A Q4_K or Q6_K super-block of 256 weights carries one f16 scale (and for
// Q4_K one f16 scale of the mins) and small integer scales per sub-block. Its dot product with a
// Q8_K block is (super scale × activation scale) × Σ_sub (sub scale × Σ q_w q_x), less, for
// Q4_K, (dmin × activation scale) × Σ_sub (sub min × Σ q_x); the inner sums are integers, the
// sums of q_x per 16 come from the Q8_K bsums, and every path computes the same integers. The
// float order every path keeps (this file's, and the packed layout's kernels): per super-block
// the exact integer sum, acc = fma(d · d_x, Σ, acc); Q4_K's mins apart, accm = fma(dmin · d_x,
// Σ_sub min · bsum, accm); the output acc − accm.
#include "lm_kquants.h"
#include <math.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define KQ_AVX2 1
#elif defined(__F16C__)
#include <immintrin.h>
#endif

enum { KQ_N = 256, KQ_Q4K_BYTES = 144, KQ_Q6K_BYTES = 210 };

static inline float kq_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));  // no false dependency, unlike _cvtsh_ss
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: mant × 2^-24
            float v = (float)mant * (1.0f / 16777216.0f);
            return sign ? -v : v;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

static inline uint16_t kq_load16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t kq_load32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

// The 12 packed bytes of a Q4_K super-block hold 8 six-bit scales and 8 six-bit mins. Bytes 0..3
// carry scales 0..3 in their low 6 bits, bytes 4..7 mins 0..3; bytes 8..11 carry the low 4 bits
// of scales 4..7 (low nibble) and of mins 4..7 (high nibble), whose top 2 bits are the top 2
// bits of bytes 0..3 (scales) and 4..7 (mins). Taken four bytes at a time as little-endian words.
static inline void kq_q4k_scales(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t w0 = kq_load32(packed), w1 = kq_load32(packed + 4), w2 = kq_load32(packed + 8);
    const uint32_t low6 = 0x3F3F3F3Fu, low4 = 0x0F0F0F0Fu, top2 = 0x03030303u;
    uint32_t s03 = w0 & low6, m03 = w1 & low6;
    uint32_t s47 = (w2 & low4) | (((w0 >> 6) & top2) << 4);
    uint32_t m47 = ((w2 >> 4) & low4) | (((w1 >> 6) & top2) << 4);
    memcpy(sc, &s03, 4); memcpy(sc + 4, &s47, 4);
    memcpy(mn, &m03, 4); memcpy(mn + 4, &m47, 4);
}

// The element of largest magnitude (the first such), or 0 when all are zero (NaNs are skipped).
static inline float kq_signed_amax(const float *x) {
#ifdef KQ_AVX2
    const __m256 nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < KQ_N; j += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), nosign), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float largest = _mm_cvtss_f32(h);
    if (largest == 0) return 0;
    const __m256 target = _mm256_set1_ps(largest);
    for (int j = 0; j < KQ_N; j += 8) {
        int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), nosign), target, _CMP_EQ_OQ));
        if (hit) return x[j + __builtin_ctz((unsigned)hit)];
    }
#endif
    // Portable (and the fallback should no lane compare equal).
    float amax = 0, max = 0;
    for (int j = 0; j < KQ_N; j++) {
        float a = fabsf(x[j]);
        if (a > amax) { amax = a; max = x[j]; }
    }
    return max;
}

void lm_quantize_q8_k(const float *x, lm_block_q8_k *y, int n) {
    for (int b = 0; b < n / KQ_N; b++, x += KQ_N) {
        const float max = kq_signed_amax(x), amax = fabsf(max);
        if (amax == 0) {
            y[b].d = 0;
            memset(y[b].qs, 0, sizeof y[b].qs);
            memset(y[b].bsums, 0, sizeof y[b].bsums);
            continue;
        }
        const float iscale = -127.0f / max;
#ifdef KQ_AVX2
        // Round to nearest even (the default MXCSR mode, as nearbyintf), at most 127; pack the
        // 32 int32 of 4 vectors to bytes and undo the per-lane interleave of the packs.
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i top = _mm256_set1_epi32(127), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (int j = 0; j < KQ_N; j += 32) {
            __m256i i0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), is)), top);
            __m256i i1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), is)), top);
            __m256i i2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 16), is)), top);
            __m256i i3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 24), is)), top);
            // Sums of 16: (i0 + i1) and (i2 + i3) reduced by two horizontal adds and a fold of the lanes.
            __m256i t = _mm256_hadd_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
            t = _mm256_hadd_epi32(t, t);
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
            y[b].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(s);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(s, 1);
            __m256i q8 = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            _mm256_storeu_si256((__m256i *)(y[b].qs + j), _mm256_permutevar8x32_epi32(q8, order));
        }
#else
        for (int g = 0; g < KQ_N / 16; g++) {
            int sum = 0;
            for (int j = 16 * g; j < 16 * g + 16; j++) {
                int q = (int)nearbyintf(iscale * x[j]);
                if (q > 127) q = 127;
                y[b].qs[j] = (int8_t)q;
                sum += q;
            }
            y[b].bsums[g] = (int16_t)sum;
        }
#endif
        y[b].d = 1.0f / iscale;
    }
}

#ifdef KQ_AVX2
// Integer lane sums: exact in any order.
static inline int kq_hsum4_epi32(__m128i s) {
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}
static inline int kq_hsum8_epi32(__m256i v) {
    return kq_hsum4_epi32(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}
#endif

float lm_dot_q4_k_q8_k(int n, const void *w, const lm_block_q8_k *x) {
#ifdef KQ_AVX2
    // The four-token tile below with one token: the same arithmetic.
    float out;
    lm_dot_q4_k_q8_k_tile(n, w, &x, 1, &out);
    return out;
#else
    const uint8_t *p = (const uint8_t *)w;
    const int nb = n / KQ_N;
    float sum = 0, msum = 0;
    for (int b = 0; b < nb; b++, p += KQ_Q4K_BYTES) {
        uint8_t sc[8], mn[8];
        kq_q4k_scales(p + 4, sc, mn);
        const uint8_t *q = p + 16;
        const int8_t *y = x[b].qs;
        int sumi = 0, summ = 0;
        // 64 weights per 32 bytes: low nibbles are sub-block 2k, high nibbles sub-block 2k+1.
        for (int k = 0; k < 4; k++, q += 32, y += 64) {
            int s_lo = 0, s_hi = 0;
            for (int l = 0; l < 32; l++) {
                s_lo += (q[l] & 0x0F) * y[l];
                s_hi += (q[l] >> 4) * y[l + 32];
            }
            sumi += sc[2 * k] * s_lo + sc[2 * k + 1] * s_hi;
        }
        for (int j = 0; j < 8; j++) summ += mn[j] * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        const float dx = x[b].d;
        sum = fmaf(kq_f16_to_f32(kq_load16(p)) * dx, (float)sumi, sum);
        msum = fmaf(kq_f16_to_f32(kq_load16(p + 2)) * dx, (float)summ, msum);
    }
    return sum - msum;
#endif
}

// Q6_K: the 256 weights are two halves of 128, each with 64 bytes of ql, 32 of qh, 8 scales.
// Within a half, for l < 32: weight l = low nibble of ql[l] | bits 0-1 of qh[l] << 4, weight
// l+32 = low nibble of ql[l+32] | bits 2-3, weight l+64 = high nibble of ql[l] | bits 4-5,
// weight l+96 = high nibble of ql[l+32] | bits 6-7; each minus 32. Scale i covers weights
// 16i ..< 16i+16 of the super-block. Σ (q - 32) y = Σ q y - 32 Σ y, the last from bsums.
float lm_dot_q6_k_q8_k(int n, const void *w, const lm_block_q8_k *x) {
#ifdef KQ_AVX2
    float out;
    lm_dot_q6_k_q8_k_tile(n, w, &x, 1, &out);
    return out;
#else
    const uint8_t *p = (const uint8_t *)w;
    const int nb = n / KQ_N;
    float sum = 0;
    for (int b = 0; b < nb; b++, p += KQ_Q6K_BYTES) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        const int8_t *y = x[b].qs;
        int sumi = 0;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, y += 128, sc += 8) {
            int s[8] = {0};  // per sub-block of 16 within this half
            for (int l = 0; l < 32; l++) {
                const int g = l >> 4;
                s[g + 0] += ((ql[l] & 0x0F) | ((qh[l] & 0x03) << 4)) * y[l];
                s[g + 2] += ((ql[l + 32] & 0x0F) | ((qh[l] & 0x0C) << 2)) * y[l + 32];
                s[g + 4] += ((ql[l] >> 4) | (qh[l] & 0x30)) * y[l + 64];
                s[g + 6] += ((ql[l + 32] >> 4) | ((qh[l] >> 2) & 0x30)) * y[l + 96];
            }
            for (int i = 0; i < 8; i++) sumi += sc[i] * (s[i] - 32 * x[b].bsums[8 * half + i]);
        }
        sum = fmaf(kq_f16_to_f32(kq_load16(p + 208)) * x[b].d, (float)sumi, sum);
    }
    return sum;
#endif
}

// The products for up to four tokens against one weight row (the one-token dots above are these
// with one token on AVX2): the row's quants, scales and mins are unpacked once and used for every
// token; each token's integer sums and float accumulation do not depend on the others.
// Q4_K: d·Σ_sub scale·(q·x) − dmin·Σ_sub min·(Σ x) per super-block, from the bsums.
// Q6_K: Σ (q − 32)·x = Σ q·x − 32·Σ x per sub-block of 16, the last from the bsums.
void lm_dot_q4_k_q8_k_tile(int n, const void *w, const lm_block_q8_k *const *xs, int nt, float *out) {
#ifdef KQ_AVX2
    const uint8_t *p = (const uint8_t *)w;
    const int nb = n / KQ_N;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float acc[4] = { 0, 0, 0, 0 }, accm[4] = { 0, 0, 0, 0 };
    for (int b = 0; b < nb; b++, p += KQ_Q4K_BYTES) {
        const float dw = kq_f16_to_f32(kq_load16(p)), mw = kq_f16_to_f32(kq_load16(p + 2));
        uint8_t sm[16];
        kq_q4k_scales(p + 4, sm, sm + 8);
        const __m128i sm8 = _mm_loadu_si128((const __m128i *)sm);
        const __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8));
        for (int j = 0; j < nt; j++) {
            const lm_block_q8_k *x = xs[j] + b;
            const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x->bsums), _mm_loadu_si128((const __m128i *)(x->bsums + 8)));
            accm[j] = fmaf(mw * x->d, (float)kq_hsum4_epi32(_mm_madd_epi16(bs, mins16)), accm[j]);
        }
        const uint8_t *q = p + 16;
        __m128i pick = _mm_setzero_si128();
        const __m128i one = _mm_set1_epi8(1);
        __m256i sumi[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() };
        for (int k = 0; k < 4; k++, q += 32) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)q);
            const __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i s_lo = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm8, pick));
            pick = _mm_add_epi8(pick, one);
            const __m256i s_hi = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm8, pick));
            pick = _mm_add_epi8(pick, one);
            for (int j = 0; j < nt; j++) {
                const int8_t *y = xs[j][b].qs + 64 * k;
                const __m256i p_lo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)y));
                const __m256i p_hi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 32)));
                sumi[j] = _mm256_add_epi32(sumi[j], _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo), _mm256_madd_epi16(p_hi, s_hi)));
            }
        }
        for (int j = 0; j < nt; j++) acc[j] = fmaf(dw * xs[j][b].d, (float)kq_hsum8_epi32(sumi[j]), acc[j]);
    }
    for (int j = 0; j < nt; j++) out[j] = acc[j] - accm[j];
#else
    for (int j = 0; j < nt; j++) out[j] = lm_dot_q4_k_q8_k(n, w, xs[j]);
#endif
}

void lm_dot_q6_k_q8_k_tile(int n, const void *w, const lm_block_q8_k *const *xs, int nt, float *out) {
#ifdef KQ_AVX2
    const uint8_t *p = (const uint8_t *)w;
    const int nb = n / KQ_N;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    const __m256i m0c = _mm256_set1_epi8(0x0C), m30 = _mm256_set1_epi8(0x30);
    const __m128i pick0 = _mm_set_epi64x(0x0101010101010101LL, 0), two = _mm_set1_epi8(2);
    float acc[4] = { 0, 0, 0, 0 };
    for (int b = 0; b < nb; b++, p += KQ_Q6K_BYTES) {
        const float dw = kq_f16_to_f32(kq_load16(p + 208));
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(p + 192));
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m256i sumi[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() };
        __m128i pick = pick0;
        const uint8_t *ql = p, *qh = p + 128;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(h, m0c), 2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            for (int k = 0; k < 4; k++) {
                const __m256i s16 = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
                pick = _mm_add_epi8(pick, two);
                for (int j = 0; j < nt; j++) {
                    const __m256i prod = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(xs[j][b].qs + 128 * half + 32 * k)));
                    sumi[j] = _mm256_add_epi32(sumi[j], _mm256_madd_epi16(prod, s16));
                }
            }
        }
        for (int j = 0; j < nt; j++) {
            const lm_block_q8_k *x = xs[j] + b;
            const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x->bsums), sc16), 5);
            acc[j] = fmaf(dw * x->d, (float)kq_hsum8_epi32(_mm256_sub_epi32(sumi[j], corr)), acc[j]);
        }
    }
    for (int j = 0; j < nt; j++) out[j] = acc[j];
#else
    for (int j = 0; j < nt; j++) out[j] = lm_dot_q6_k_q8_k(n, w, xs[j]);
#endif
}
