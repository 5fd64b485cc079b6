// See lm_kernels.h. The arithmetic follows ggml's definitions of the block formats: integer
// sums per block, scaled by the product of the block scales. Activations are quantized as
// ggml's AVX2 path does (scale 127/amax, round half to even), so products match llama.cpp's.
#include "lm_kernels.h"
#include <math.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LM_AVX2 1
#elif defined(__F16C__)
#include <immintrin.h>
#endif

float lm_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#endif
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) { bits = sign; }
        else { float v = (float)mant * (1.0f / 16777216.0f); return sign ? -v : v; }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f; memcpy(&f, &bits, 4); return f;
}

uint16_t lm_f32_to_f16(float f) {
#if defined(__F16C__)
    return _cvtss_sh(f, 0);
#else
    uint32_t x; memcpy(&x, &f, 4);
    uint16_t sign = (x >> 16) & 0x8000;
    int exp = (x >> 23) & 0xFF; uint32_t mant = x & 0x7FFFFF;
    if (exp == 0xFF) return sign | 0x7C00 | (mant ? 0x200 : 0);
    int e = exp - 127 + 15;
    if (e >= 31) return sign | 0x7C00;
    if (e <= 0) {
        if (e < -10) return sign;
        mant |= 0x800000;
        uint32_t shift = 14 - e, h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return sign | (uint16_t)h;
    }
    uint32_t h = mant >> 13, rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) { h++; if (h == 0x400) { h = 0; e++; if (e >= 31) return sign | 0x7C00; } }
    return sign | (uint16_t)(e << 10) | (uint16_t)h;
#endif
}

static inline float block_amax(const float *v) {
    float amax = 0;
    for (int j = 0; j < 32; j++) { float a = fabsf(v[j]); if (a > amax) amax = a; }
    return amax;
}

void lm_quantize_q8_1(const float *x, lm_block_q8_1 *y, int n) {
    for (int b = 0; b < n / 32; b++) {
        const float *v = x + b * 32;
        float amax = block_amax(v);
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) { int q = (int)nearbyintf(v[j] * id); y[b].qs[j] = (int8_t)q; sum += q; }
        y[b].d = lm_f32_to_f16(d);
        y[b].s = lm_f32_to_f16((float)sum * d);
    }
}

void lm_quantize_q8_0(const float *x, lm_block_q8_0 *y, int n) {
    for (int b = 0; b < n / 32; b++) {
        const float *v = x + b * 32;
        float amax = block_amax(v);
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 32; j++) y[b].qs[j] = (int8_t)nearbyintf(v[j] * id);
        y[b].d = lm_f32_to_f16(d);
    }
}

#ifdef LM_AVX2
static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
// 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15) then high (16..31).
static inline __m256i nibbles32(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}
// Sum of unsigned a[i] * signed b[i] over 32 bytes, as 8 int32 lanes converted to float.
static inline __m256 dot_u8_i8(__m256i a, __m256i b) {
    __m256i p16 = _mm256_maddubs_epi16(a, b);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}
#endif

float lm_dot_q4_1_q8_1(int n, const void *w, const lm_block_q8_1 *x) {
    const uint8_t *p = (const uint8_t *)w;
    int nb = n / 32;
#ifdef LM_AVX2
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int b = 0; b < nb; b++, p += 20) {
        uint16_t dw, mw; memcpy(&dw, p, 2); memcpy(&mw, p + 2, 2);
        float d = lm_f16_to_f32(dw) * lm_f16_to_f32(x[b].d);
        summs += lm_f16_to_f32(mw) * lm_f16_to_f32(x[b].s);
        __m256i q4 = nibbles32(p + 4);
        __m256i q8 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), dot_u8_i8(q4, q8), acc);
    }
    return hsum8(acc) + summs;
#else
    float sum = 0;
    for (int b = 0; b < nb; b++, p += 20) {
        uint16_t dw, mw; memcpy(&dw, p, 2); memcpy(&mw, p + 2, 2);
        int s = 0;
        for (int j = 0; j < 16; j++) {
            s += (p[4 + j] & 0x0F) * x[b].qs[j];
            s += (p[4 + j] >> 4) * x[b].qs[j + 16];
        }
        sum += lm_f16_to_f32(dw) * lm_f16_to_f32(x[b].d) * (float)s + lm_f16_to_f32(mw) * lm_f16_to_f32(x[b].s);
    }
    return sum;
#endif
}

float lm_dot_q4_0_q8_0(int n, const void *w, const lm_block_q8_0 *x) {
    const uint8_t *p = (const uint8_t *)w;
    int nb = n / 32;
    float sum = 0;
    for (int b = 0; b < nb; b++, p += 18) {
        uint16_t dw; memcpy(&dw, p, 2);
        int s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((p[2 + j] & 0x0F) - 8) * x[b].qs[j];
            s += ((p[2 + j] >> 4) - 8) * x[b].qs[j + 16];
        }
        sum += lm_f16_to_f32(dw) * lm_f16_to_f32(x[b].d) * (float)s;
    }
    return sum;
}

float lm_dot_q8_0_q8_0(int n, const void *w, const lm_block_q8_0 *x) {
    const uint8_t *p = (const uint8_t *)w;
    int nb = n / 32;
#ifdef LM_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, p += 34) {
        uint16_t dw; memcpy(&dw, p, 2);
        float d = lm_f16_to_f32(dw) * lm_f16_to_f32(x[b].d);
        __m256i qa = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i qb = _mm256_loadu_si256((const __m256i *)x[b].qs);
        // signed × signed: make a unsigned by |a| and move its sign onto b.
        __m256i ax = _mm256_sign_epi8(qa, qa), sy = _mm256_sign_epi8(qb, qa);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), dot_u8_i8(ax, sy), acc);
    }
    return hsum8(acc);
#else
    float sum = 0;
    for (int b = 0; b < nb; b++, p += 34) {
        uint16_t dw; memcpy(&dw, p, 2);
        int s = 0;
        for (int j = 0; j < 32; j++) s += (int8_t)p[2 + j] * x[b].qs[j];
        sum += lm_f16_to_f32(dw) * lm_f16_to_f32(x[b].d) * (float)s;
    }
    return sum;
#endif
}


// Attention of one query head over up to two ranges of rows of an F16 KV cache (a shared
// prompt and a sequence's own tail), as llama.cpp computes it without flash attention:
// scores = (q · k_t) * scale with q in F16 precision, softmax in F32 with a double sum,
// weights rounded to F16, out = sum_t w_t v_t in F32. Rows are `stride` halves apart.
void lm_attention2(const float *q, const uint16_t *k, const uint16_t *v, long stride,
                   int start1, int n1, int start2, int n2, int hd, float scale, float *scores, float *out) {
    float qh[256];
    for (int i = 0; i < hd; i++) qh[i] = lm_f16_to_f32(lm_f32_to_f16(q[i]));
    int n_pos = n1 + n2;
    float maxs = -INFINITY;
    for (int t = 0; t < n_pos; t++) {
        long row = t < n1 ? start1 + t : start2 + (t - n1);
        const uint16_t *kt = k + row * stride;
        float s = 0;
#if defined(LM_AVX2) && defined(__F16C__)
        if (hd % 8 == 0) {
            __m256 acc = _mm256_setzero_ps();
            for (int i = 0; i < hd; i += 8) {
                __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kt + i)));
                acc = _mm256_fmadd_ps(kv, _mm256_loadu_ps(qh + i), acc);
            }
            s = hsum8(acc);
        } else
#endif
        for (int i = 0; i < hd; i++) s += qh[i] * lm_f16_to_f32(kt[i]);
        s *= scale;
        scores[t] = s;
        if (s > maxs) maxs = s;
    }
    double total = 0;
    for (int t = 0; t < n_pos; t++) { float e = expf(scores[t] - maxs); scores[t] = e; total += e; }
    float inv = (float)(1.0 / total);
    for (int i = 0; i < hd; i++) out[i] = 0;
    for (int t = 0; t < n_pos; t++) {
        long row = t < n1 ? start1 + t : start2 + (t - n1);
        float w = lm_f16_to_f32(lm_f32_to_f16(scores[t] * inv));
        const uint16_t *vt = v + row * stride;
#if defined(LM_AVX2) && defined(__F16C__)
        if (hd % 8 == 0) {
            __m256 wv = _mm256_set1_ps(w);
            for (int i = 0; i < hd; i += 8) {
                __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vt + i)));
                _mm256_storeu_ps(out + i, _mm256_fmadd_ps(wv, vv, _mm256_loadu_ps(out + i)));
            }
            continue;
        }
#endif
        for (int i = 0; i < hd; i++) out[i] += w * lm_f16_to_f32(vt[i]);
    }
}

void lm_attention(const float *q, const uint16_t *k, const uint16_t *v, long stride, int n_pos, int hd,
                  float scale, float *scores, float *out) {
    lm_attention2(q, k, v, stride, 0, n_pos, 0, 0, hd, scale, scores, out);
}

// out[b * out_stride + r] = dot(row r of w, activations of token b) for r in [r0, r1) and
// b in [0, batch): each weight row is read once for every token of the batch. `x` holds the
// batch's quantized activations, `x_stride` bytes apart.
void lm_matmat_rows(int kind, int n, const void *w, long row_bytes, const void *x, long x_stride, int batch,
                    float *out, long out_stride, int r0, int r1) {
    const uint8_t *base = (const uint8_t *)w;
    const uint8_t *xs = (const uint8_t *)x;
    for (int r = r0; r < r1; r++) {
        const void *row = base + (long)r * row_bytes;
        for (int b = 0; b < batch; b++) {
            const void *xb = xs + (long)b * x_stride;
            float v;
            switch (kind) {
            case 0: v = lm_dot_q4_1_q8_1(n, row, (const lm_block_q8_1 *)xb); break;
            case 1: v = lm_dot_q8_0_q8_0(n, row, (const lm_block_q8_0 *)xb); break;
            default: v = lm_dot_q4_0_q8_0(n, row, (const lm_block_q8_0 *)xb); break;
            }
            out[(long)b * out_stride + r] = v;
        }
    }
}
