// See lm_kernels.h. The arithmetic follows ggml's definitions of the block formats: integer
// sums per block, scaled by the product of the block scales. Activations are quantized as
// ggml's AVX2 path does (scale 127/amax, round half to even), so products match llama.cpp's.
#include "lm_kernels.h"
#include "lm_kquants.h"
#include "amx_q8.h"
#include <math.h>
#include <string.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include "avx2_bits.h"
#define LM_AVX2 1
#elif defined(__F16C__)
#include <immintrin.h>
#endif

float lm_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    // Through a zero-extending move: _cvtsh_ss inserts into a live register, and that false
    // dependency chains every block of a dot product to the previous one.
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
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

static inline float f16_round(float f) { return lm_f16_to_f32(lm_f32_to_f16(f)); }

// GELU (tanh approximation) of every F16 value, rounded to F16: ggml's CPU GeGLU looks the gate
// up here after rounding it to F16 (below -10 it is 0, above 10 the gate itself), and so do we.
static uint16_t gelu_table[65536];
__attribute__((constructor)) static void fill_gelu_table(void) {
    for (int i = 0; i < 65536; i++) {
        float x = lm_f16_to_f32((uint16_t)i);
        gelu_table[i] = lm_f32_to_f16(0.5f * x * (1.0f + tanhf(0.79788456080286535587989211986876f * x * (1.0f + 0.044715f * x * x))));
    }
}

void lm_geglu(const float *g, const float *u, float *y, int n) {
    for (int i = 0; i < n; i++) {
        float x = g[i];
        y[i] = x <= -10.0f ? 0.0f : x >= 10.0f ? x * u[i] : lm_f16_to_f32(gelu_table[lm_f32_to_f16(x)]) * u[i];
    }
}

void lm_quantize_acts(const float *x, lm_act_q8 *y, int n) {
    for (int b = 0; b < n / 32; b++) {
        const float *v = x + b * 32;
        float amax = block_amax(v);
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) { int q = (int)nearbyintf(v[j] * id); y[b].qs[j] = (int8_t)q; sum += q; }
        y[b].d = f16_round(d);
        y[b].s = f16_round((float)sum * d);
    }
}

void lm_rms_norm(const float *x, const float *w, float eps, float *y, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

void lm_prelude_run(const lm_prelude *p, int row, int e0, int e1) {
    long o = (long)row * p->n;
    float *y = p->y + o;
    switch (p->op) {
    case LM_PRE_RMS_NORM: {
        float *x = p->x + o;
        if (p->add) for (int i = 0; i < p->n; i++) x[i] += p->add[o + i];
        lm_rms_norm(x, p->w, p->eps, y, p->n);
        e0 = 0; e1 = p->n;
        break;
    }
    case LM_PRE_SILU:
        for (int i = e0; i < e1; i++) {
            float g = y[i];
            y[i] = g / (1.0f + expf(-g)) * p->up[o + i];
        }
        break;
    case LM_PRE_GEGLU:
        lm_geglu(y + e0, p->up + o + e0, y + e0, e1 - e0);
        break;
    default:
        break;
    }
    if (p->q8) lm_quantize_acts(y + e0, p->q8 + (o + e0) / 32, e1 - e0);
    if (p->q8k) lm_quantize_q8_k(y + e0, (lm_block_q8_k *)p->q8k + (o + e0) / 256, e1 - e0);
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
// Sum of unsigned a[i] * signed b[i] over 32 bytes, as 8 int32 lanes of four products each.
static inline __m256i dot_u8_i8(__m256i a, __m256i b) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}
// Lane k of the result: the sum of v[k]'s eight lanes (integers, so exact in any order).
static inline __m256i sum8x8_epi32(const __m256i v[8]) {
    __m256i s0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i s1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(s0, s1, 0x20), _mm256_permute2x128_si256(s0, s1, 0x31));
}
#endif

// One tile: NR weight rows against NT tokens (NR × NT at most 8). Every output element is
// accumulated the same way whatever NR and NT are (its exact integer sum per block, then one
// FMA per block in order; tile_q8.h), so results do not depend on the batch.
#define LM_INLINE static inline __attribute__((always_inline))

#ifdef LM_AVX2
#define LM_TILE_NAME tile_avx2
#define LM_TILE_DOT dot_u8_i8
#define LM_TILE_ATTR
#include "tile_q8.h"
#undef LM_TILE_NAME
#undef LM_TILE_DOT
#undef LM_TILE_ATTR

// AVX512-VNNI on 256-bit registers: VPDPBUSD does maddubs + madd in one instruction, with the
// same int32 lanes.
#if defined(LM_EMULATED_ISA)
// Tests/EmulatedKernels: VPDPBUSD in plain C there, so this table runs on machines without it.
#define LM_VNNI
__m256i lm_emulated_dpbusd(__m256i a, __m256i b);
LM_INLINE __m256i dot_vnni(__m256i a, __m256i b) { return lm_emulated_dpbusd(a, b); }
#else
#define LM_VNNI __attribute__((target("avx512f,avx512vl,avx512vnni")))
LM_VNNI static inline __attribute__((always_inline)) __m256i dot_vnni(__m256i a, __m256i b) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b);
}
#endif
#define LM_TILE_NAME tile_vnni
#define LM_TILE_DOT dot_vnni
#define LM_TILE_ATTR LM_VNNI
#include "tile_q8.h"
#undef LM_TILE_NAME
#undef LM_TILE_DOT
#undef LM_TILE_ATTR
#endif

// The portable tile: integer sums per block, in the same block order.
LM_INLINE void tile_portable(int kind, int nb, const uint8_t *w0, long row_bytes, const lm_act_q8 *const *xs,
                             int NR, int NT, float *out, long out_stride) {
    const int bb = kind == 0 ? 20 : kind == 1 ? 34 : kind == 7 ? 22 : 18;
    for (int i = 0; i < NR; i++) {
        for (int j = 0; j < NT; j++) {
            float sum = 0, corr = 0;
            for (int b = 0; b < nb; b++) {
                const uint8_t *p = w0 + i * row_bytes + (long)b * bb;
                const lm_act_q8 *a = xs[j] + b;
                uint16_t h; memcpy(&h, p, 2);
                float d = lm_f16_to_f32(h);
                int s = 0;
                if (kind == 0) {
                    uint16_t m; memcpy(&m, p + 2, 2);
                    for (int k = 0; k < 16; k++) s += (p[4 + k] & 0x0F) * a->qs[k] + (p[4 + k] >> 4) * a->qs[k + 16];
                    corr = fmaf(lm_f16_to_f32(m), a->s, corr);
                } else if (kind == 1) {
                    for (int k = 0; k < 32; k++) s += (int8_t)p[2 + k] * a->qs[k];
                } else if (kind == 7) {
                    uint32_t qh; memcpy(&qh, p + 2, 4);
                    for (int k = 0; k < 16; k++)
                        s += (((p[6 + k] & 0x0F) | (((qh >> k) & 1) << 4)) - 16) * a->qs[k]
                           + (((p[6 + k] >> 4) | (((qh >> (k + 16)) & 1) << 4)) - 16) * a->qs[k + 16];
                } else {
                    for (int k = 0; k < 16; k++) s += ((p[2 + k] & 0x0F) - 8) * a->qs[k] + ((p[2 + k] >> 4) - 8) * a->qs[k + 16];
                }
                sum = fmaf(d * a->d, (float)s, sum);
            }
            out[j * out_stride + i] = sum + corr;
        }
    }
}

#ifdef LM_AVX2
#define TILE tile_avx2
#else
#define TILE tile_portable
#endif

// Rows [r0, r1) against NT tokens with one tile function: groups of 8 / NT rows (8 outputs),
// then single rows, the group two ahead prefetched. Dispatched once per call with constant kind
// and NT, so each tile is fully unrolled with its accumulators in registers and the per-group
// cost is the tile alone (a 262k-row output head is 33k groups per token).
#define ROWS(FN, K, T) { \
        enum { NRT = T == 1 ? 8 : T == 2 ? 4 : 2 }; \
        int r = r0; \
        for (; r + NRT <= r1; r += NRT) { \
            if (r + 3 * NRT <= r1) { const char *ahead = (const char *)(base + (long)(r + 2 * NRT) * row_bytes); \
                for (long o = 0; o < NRT * row_bytes; o += 64) __builtin_prefetch(ahead + o, 0, 3); } \
            FN(K, nb, base + (long)r * row_bytes, row_bytes, xs, NRT, T, out + r, out_stride); \
        } \
        for (; r < r1; r++) FN(K, nb, base + (long)r * row_bytes, row_bytes, xs, 1, T, out + r, out_stride); \
        return; }
#define CASE(FN, K, T) if (kind == K && nt == T) ROWS(FN, K, T)
#define KIND(FN, K) CASE(FN, K, 1) CASE(FN, K, 2) CASE(FN, K, 3) CASE(FN, K, 4)
#define TILES(FN) KIND(FN, 0) KIND(FN, 1) KIND(FN, 2) KIND(FN, 7)

static void tile_rows(int kind, int nb, const uint8_t *base, long row_bytes, int r0, int r1, const lm_act_q8 *const *xs,
                      int nt, float *out, long out_stride) {
    TILES(TILE)
}

#ifdef LM_AVX2
// The AVX-512 table: the same tile with VPDPBUSD for maddubs + madd.
LM_VNNI static void tile_rows_vnni(int kind, int nb, const uint8_t *base, long row_bytes, int r0, int r1, const lm_act_q8 *const *xs,
                                   int nt, float *out, long out_stride) {
    TILES(tile_vnni)
}
#endif

#undef TILES
#undef KIND
#undef CASE
#undef ROWS

static int q8_isa = -1;


#if defined(LM_AVX2)
static unsigned xcr0(void) {
    unsigned a, b, c, d;
    __get_cpuid(1, &a, &b, &c, &d);
    if (!((c >> 27) & 1)) return 0;  // OSXSAVE: the OS manages extended state, XGETBV exists
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return lo;
}
#endif

int lm_isa_available(int table) {
#if defined(LM_EMULATED_ISA)
    return table >= 0 && table <= 2;  // Tests/EmulatedKernels: every table, emulated
#elif defined(LM_AVX2)
    unsigned a, b, c, d;
    if (table == 0) return 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && ((c >> 11) & 1);  // F, DQ, BW, VL, VNNI
    if ((xcr0() & 0xE6) != 0xE6) avx512 = 0;  // SSE, AVX, opmask and ZMM state enabled by the OS
    if (table == 1) return avx512;
    if (table == 2) {
        int tile = (d >> 24) & 1, int8 = (d >> 25) & 1, bf16 = (d >> 22) & 1;
        if (!(avx512 && tile && int8 && bf16)) return 0;
        if ((xcr0() & 0x60000) != 0x60000) return 0;  // XTILECFG and XTILEDATA enabled by the OS
        // Linux hands out the tile data state only on request; without it tile loads raise SIGILL.
#if defined(__linux__)
        return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
        return 0;
#endif
    }
    return 0;
#else
    return table == 0;
#endif
}

/// The best table the quantized products have here (0 AVX2 or portable, 1 AVX-512, 2 AMX),
/// unless PRS_ISA asks for one (avx2, avx512 or amx; InstructionSet checks that it is here).
static int q8_detect(void) {
    const char *isa = getenv("PRS_ISA");
    if (isa && strcmp(isa, "avx2") == 0) return 0;
    if (isa && strcmp(isa, "avx512") == 0) return lm_isa_available(1);
    if (lm_isa_available(2)) return 2;
    return lm_isa_available(1);
}

int lm_q8_isa(void) {
    if (q8_isa < 0) q8_isa = q8_detect();
    return q8_isa;
}

int lm_q8_set_isa(int isa) {
    int was = lm_q8_isa();
    q8_isa = isa >= 2 && lm_isa_available(2) ? 2 : isa >= 1 && lm_isa_available(1) ? 1 : 0;
    return was;
}

// F16 (kind 5) or F32 (kind 6) weights against F32 activations: each element summed in eight
// lanes over the columns in order, then the same horizontal sum, whatever the batch. Each
// weight row is read once for four tokens.
static void float_rows(int f32, int n, const uint8_t *base, long row_bytes, const float *x, long x_stride, int batch,
                       float *out, long out_stride, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = base + (long)r * row_bytes;
        for (int t0 = 0; t0 < batch; t0 += 4) {
            int nt = batch - t0 < 4 ? batch - t0 : 4;
#if defined(LM_AVX2) && defined(__F16C__)
            __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
            int i = 0;
            for (; i + 8 <= n; i += 8) {
                __m256 w = f32 ? _mm256_loadu_ps((const float *)row + i)
                               : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
                for (int j = 0; j < nt; j++) acc[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + (t0 + j) * x_stride + i), acc[j]);
            }
            for (int j = 0; j < nt; j++) {
                float s = hsum8(acc[j]);
                for (int c = i; c < n; c++) {
                    float wv = f32 ? ((const float *)row)[c] : lm_f16_to_f32(((const uint16_t *)row)[c]);
                    s = fmaf(wv, x[(t0 + j) * x_stride + c], s);
                }
                out[(long)(t0 + j) * out_stride + r] = s;
            }
#else
            for (int j = 0; j < nt; j++) {
                float s = 0;
                for (int c = 0; c < n; c++) {
                    float wv = f32 ? ((const float *)row)[c] : lm_f16_to_f32(((const uint16_t *)row)[c]);
                    s = fmaf(wv, x[(t0 + j) * x_stride + c], s);
                }
                out[(long)(t0 + j) * out_stride + r] = s;
            }
#endif
        }
    }
}

void lm_matmul(int kind, int n, const void *w, long row_bytes, const void *x, long x_stride, int batch,
               float *out, long out_stride, int r0, int r1) {
    const uint8_t *base = (const uint8_t *)w;
    const uint8_t *xb = (const uint8_t *)x;
    if (kind == 5 || kind == 6) {
        float_rows(kind == 6, n, base, row_bytes, (const float *)x, x_stride / (long)sizeof(float), batch, out, out_stride, r0, r1);
        return;
    }
    if (kind == 3 || kind == 4) {
        // K-quants against Q8_K activations: each row unpacked once for four tokens at a time.
        for (int r = r0; r < r1; r++) {
            const void *row = base + (long)r * row_bytes;
            for (int t = 0; t < batch; t += 4) {
                int nt = batch - t < 4 ? batch - t : 4;
                const lm_block_q8_k *xs[4];
                float o[4];
                for (int j = 0; j < nt; j++) xs[j] = (const lm_block_q8_k *)(xb + (long)(t + j) * x_stride);
                if (kind == 3) lm_dot_q4_k_q8_k_tile(n, row, xs, nt, o); else lm_dot_q6_k_q8_k_tile(n, row, xs, nt, o);
                for (int j = 0; j < nt; j++) out[(long)(t + j) * out_stride + r] = o[j];
            }
        }
        return;
    }
    int nb = n / 32;
    const int vnni = lm_q8_isa();
    // AMX: 16 rows × 16 tokens a tile multiply, for batches that fill enough of a tile.
    if (vnni == 2 && batch >= LM_AMX_MIN_BATCH && lm_amx_q8_rows(kind, nb, base, row_bytes, r0, r1, xb, x_stride, batch, out, out_stride)) return;
    // Rows in chunks that stay in cache while every group of four tokens reads them.
    const int chunk = batch > 4 ? 16 : r1 - r0;
    for (int c0 = r0; c0 < r1; c0 += chunk) {
        int c1 = c0 + chunk < r1 ? c0 + chunk : r1;
        for (int t = 0; t < batch; t += 4) {
            int nt = batch - t < 4 ? batch - t : 4;
            const lm_act_q8 *xs[4];
            for (int j = 0; j < nt; j++) xs[j] = (const lm_act_q8 *)(xb + (long)(t + j) * x_stride);
#ifdef LM_AVX2
            if (vnni) { tile_rows_vnni(kind, nb, base, row_bytes, c0, c1, xs, nt, out + (long)t * out_stride, out_stride); continue; }
#endif
            tile_rows(kind, nb, base, row_bytes, c0, c1, xs, nt, out + (long)t * out_stride, out_stride);
        }
    }
}

#ifdef LM_AVX2
// e^x for x ≤ 0 (8 lanes), to about 2 ulp: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6
// Taylor polynomial, 2^n through the exponent bits; below -87 it is 0.
static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
#endif

#ifdef LM_AVX2
// Adds 8 floats to two double accumulators (lanes 0-3, 4-7), and their fixed-order total.
static inline void add8_pd(__m256d *s0, __m256d *s1, __m256 e) {
    *s0 = _mm256_add_pd(*s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    *s1 = _mm256_add_pd(*s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}
static inline double sum_pd(__m256d s0, __m256d s1) {
    double parts[4];
    _mm256_storeu_pd(parts, _mm256_add_pd(s0, s1));
    return (parts[0] + parts[1]) + (parts[2] + parts[3]);
}
#endif

// Where position p of a paged cache lives, for positions visited in order from `first`: row
// table[p / block] * block + p % block, without a division per position.
typedef struct { const int32_t *table; int block, index, offset; } cache_cursor;
static inline cache_cursor cursor_at(const int32_t *table, int block, int first) {
    cache_cursor c = { table, block, first / block, first % block };
    return c;
}
static inline long cursor_next(cache_cursor *c) {
    long row = (long)c->table[c->index] * c->block + c->offset;
    if (++c->offset == c->block) { c->offset = 0; c->index++; }
    return row;
}

// Scores to attention weights in place: w = F16(e^(s - max) · (1 / Σ e)), the exponentials summed
// in double in one fixed order (eight lanes in two double accumulators, then the tail), so every
// kernel that calls this with the same scores gets the same weights.
// Soft-capping of attention scores (Gemma 2): s = cap · tanh(s / cap), as llama.cpp scales,
// takes tanh and scales back; returns the new maximum. cap 0: none.
static float soft_cap(float *sc, int count, float cap, float maxs) {
    if (cap == 0) return maxs;
    const float inv = 1.0f / cap;
    maxs = -INFINITY;
    for (int t = 0; t < count; t++) {
        sc[t] = cap * tanhf(sc[t] * inv);
        if (sc[t] > maxs) maxs = sc[t];
    }
    return maxs;
}

static void attention_weights(float *sc, int count, float maxs) {
    double total = 0;
    int t = 0;
#if defined(LM_AVX2) && defined(__F16C__)
    // glibc's expf, as before: a vector exp's last-bit differences move F16 weights and, through
    // int8 activation roundings, the logits by tenths (ReferenceEqualityTests).
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (; t + 8 <= count; t += 8) {
        for (int j = 0; j < 8; j++) sc[t + j] = expf(sc[t + j] - maxs);
        add8_pd(&s0, &s1, _mm256_loadu_ps(sc + t));
    }
    total = sum_pd(s0, s1);
#endif
    for (; t < count; t++) { float e = expf(sc[t] - maxs); sc[t] = e; total += e; }
    const float inv = (float)(1.0 / total);
    t = 0;
#if defined(LM_AVX2) && defined(__F16C__)
    const __m256 iv = _mm256_set1_ps(inv);
    for (; t + 8 <= count; t += 8)
        _mm256_storeu_ps(sc + t, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(sc + t), iv), _MM_FROUND_TO_NEAREST_INT)));
#endif
    for (; t < count; t++) sc[t] = f16_round(sc[t] * inv);
}

#if defined(LM_AVX2) && defined(__F16C__)
// Sums each of 8 vectors: out lane i = sum of a[i]'s lanes, added as ((0+1)+(2+3))+((4+5)+(6+7))
// whatever the other vectors hold, so a score does not depend on its neighbours.
static inline __m256 sum8x8(const __m256 a[8]) {
    __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    __m256 lo = _mm256_permute2f128_ps(s0, s1, 0x20), hi = _mm256_permute2f128_ps(s0, s1, 0x31);
    return _mm256_add_ps(lo, hi);
}
#endif

// Attention of one query head over positions [first, n_pos) of a paged F16 cache: position p
// lives in row table[p / block] * block + p % block, rows `stride` halves apart. As llama.cpp
// computes it without flash attention: scores = (q · k) * scale with q in F16 precision,
// softmax in F32 with a double sum, weights rounded to F16, out = Σ w v in F32. Each score and
// each output is computed the same way whatever n_pos and first are. scores: n_pos - first floats.
void lm_attention_paged(const float *q, const uint16_t *k, const uint16_t *v, long stride, const int32_t *table,
                        int block, int first, int n_pos, int hd, float scale, float softcap, float *scores, float *out) {
    float qh[256];
    for (int i = 0; i < hd; i++) qh[i] = f16_round(q[i]);
    const int count = n_pos - first;
    float maxs = -INFINITY;
    cache_cursor kc = cursor_at(table, block, first);
#if defined(LM_AVX2) && defined(__F16C__)
    if (hd % 8 == 0) {
        // Eight positions at a time: one accumulator each, summed together at the end.
        for (int t0 = first; t0 < n_pos; t0 += 8) {
            __m256 acc[8];
            for (int j = 0; j < 8; j++) {
                acc[j] = _mm256_setzero_ps();
                if (t0 + j >= n_pos) continue;
                const uint16_t *kt = k + cursor_next(&kc) * stride;
                for (int i = 0; i < hd; i += 8)
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kt + i))), _mm256_loadu_ps(qh + i), acc[j]);
            }
            float sums[8];
            _mm256_storeu_ps(sums, _mm256_mul_ps(sum8x8(acc), _mm256_set1_ps(scale)));
            for (int j = 0; j < 8 && t0 + j < n_pos; j++) {
                scores[t0 + j - first] = sums[j];
                if (sums[j] > maxs) maxs = sums[j];
            }
        }
    } else
#endif
    for (int t = first; t < n_pos; t++) {
        const uint16_t *kt = k + cursor_next(&kc) * stride;
        float s = 0;
        for (int i = 0; i < hd; i++) s += qh[i] * lm_f16_to_f32(kt[i]);
        s *= scale;
        scores[t - first] = s;
        if (s > maxs) maxs = s;
    }
    maxs = soft_cap(scores, count, softcap, maxs);
    attention_weights(scores, count, maxs);
    cache_cursor vc = cursor_at(table, block, first);
#if defined(LM_AVX2) && defined(__F16C__)
    if (hd == 64) {
        // The output stays in registers across positions.
        __m256 o[8];
        for (int i = 0; i < 8; i++) o[i] = _mm256_setzero_ps();
        for (int t = 0; t < count; t++) {
            const uint16_t *vt = v + cursor_next(&vc) * stride;
            __m256 wv = _mm256_set1_ps(scores[t]);
            for (int i = 0; i < 8; i++)
                o[i] = _mm256_fmadd_ps(wv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vt + 8 * i))), o[i]);
        }
        for (int i = 0; i < 8; i++) _mm256_storeu_ps(out + 8 * i, o[i]);
        return;
    }
#endif
    for (int i = 0; i < hd; i++) out[i] = 0;
    for (int t = 0; t < count; t++) {
        const uint16_t *vt = v + cursor_next(&vc) * stride;
        float wt = scores[t];
#if defined(LM_AVX2) && defined(__F16C__)
        if (hd % 8 == 0) {
            __m256 wv = _mm256_set1_ps(wt);
            for (int i = 0; i < hd; i += 8) {
                __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vt + i)));
                _mm256_storeu_ps(out + i, _mm256_fmadd_ps(wv, vv, _mm256_loadu_ps(out + i)));
            }
            continue;
        }
#endif
        for (int i = 0; i < hd; i++) out[i] += wt * lm_f16_to_f32(vt[i]);
    }
}

#if defined(LM_AVX2) && defined(__F16C__)
// The query heads that share key/value head `kvh` (grouped-query attention), 64 wide: each key
// and value row is converted from F16 once for all of them. Every number is computed exactly as
// lm_attention_paged computes it for one head, so the two give identical results.
void lm_attention_group64(const float *q, int group, const uint16_t *k, const uint16_t *v, long stride,
                          const int32_t *table, int block, int first, int n_pos, float scale, float softcap,
                          float *scores, float *out) {
    float qh[8][64];
    float maxs[8];
    const int count = n_pos - first;
    for (int g = 0; g < group; g++) {
        for (int i = 0; i < 64; i++) qh[g][i] = f16_round(q[g * 64 + i]);
        maxs[g] = -INFINITY;
    }
    cache_cursor kc = cursor_at(table, block, first);
    for (int t0 = first; t0 < n_pos; t0 += 8) {
        __m256 acc[8][8];
        for (int j = 0; j < 8; j++) {
            if (t0 + j >= n_pos) { for (int g = 0; g < group; g++) acc[g][j] = _mm256_setzero_ps(); continue; }
            const uint16_t *kt = k + cursor_next(&kc) * stride;
            __m256 kf[8];
            for (int i = 0; i < 8; i++) kf[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kt + 8 * i)));
            for (int g = 0; g < group; g++) {
                __m256 s = _mm256_setzero_ps();
                for (int i = 0; i < 8; i++) s = _mm256_fmadd_ps(kf[i], _mm256_loadu_ps(qh[g] + 8 * i), s);
                acc[g][j] = s;
            }
        }
        for (int g = 0; g < group; g++) {
            float sums[8];
            _mm256_storeu_ps(sums, _mm256_mul_ps(sum8x8(acc[g]), _mm256_set1_ps(scale)));
            for (int j = 0; j < 8 && t0 + j < n_pos; j++) {
                scores[g * count + t0 + j - first] = sums[j];
                if (sums[j] > maxs[g]) maxs[g] = sums[j];
            }
        }
    }
    for (int g = 0; g < group; g++) {
        attention_weights(scores + g * count, count, soft_cap(scores + g * count, count, softcap, maxs[g]));
        for (int i = 0; i < 64; i++) out[g * 64 + i] = 0;
    }
    // Values sixteen rows at a time: converted once, then applied to each head in position order.
    float vf[16][64];
    cache_cursor vc = cursor_at(table, block, first);
    for (int t0 = 0; t0 < count; t0 += 16) {
        int m = count - t0 < 16 ? count - t0 : 16;
        for (int j = 0; j < m; j++) {
            const uint16_t *vt = v + cursor_next(&vc) * stride;
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(vf[j] + 8 * i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vt + 8 * i))));
        }
        for (int g = 0; g < group; g++) {
            __m256 o[8];
            for (int i = 0; i < 8; i++) o[i] = _mm256_loadu_ps(out + g * 64 + 8 * i);
            const float *sc = scores + g * count + t0;
            for (int j = 0; j < m; j++) {
                __m256 wv = _mm256_set1_ps(sc[j]);
                for (int i = 0; i < 8; i++) o[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(vf[j] + 8 * i), o[i]);
            }
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(out + g * 64 + 8 * i, o[i]);
        }
    }
}
#endif

float lm_log_sum_exp(const float *x, int n) {
    float m = -INFINITY;
    int i = 0;
#ifdef LM_AVX2
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    for (int j = 0; j < 8; j++) if (lanes[j] > m) m = lanes[j];
#endif
    for (; i < n; i++) if (x[i] > m) m = x[i];
    if (m == -INFINITY) return m;
    double total = 0;
    i = 0;
#ifdef LM_AVX2
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256 mb = _mm256_set1_ps(m);
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
        add8_pd(&s0, &s1, e);
    }
    total = sum_pd(s0, s1);
#endif
    for (; i < n; i++) total += (double)expf(x[i] - m);
    return m + (float)log(total);
}

/* A draw from softmax(x · inv_temp) over all n tokens, keeping only tokens whose probability is
   at least min_p times the largest (min_p 0 keeps all): the weights exp((x-max)·inv_temp) go to
   scratch and are summed in double in a fixed order; the token is the first whose running sum
   passes u · total. Deterministic for given inputs. */
int lm_draw_full(const float *x, int n, float inv_temp, float min_p, double u, float *scratch) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) if (x[i] > m) m = x[i];
    const float floor_w = min_p > 0 ? min_p : 0;
    double total = 0;
    int i = 0;
#ifdef LM_AVX2
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    const __m256 mb = _mm256_set1_ps(m), it = _mm256_set1_ps(inv_temp), fl = _mm256_set1_ps(floor_w);
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb), it));
        e = _mm256_and_ps(e, _mm256_cmp_ps(e, fl, _CMP_GE_OQ));
        _mm256_storeu_ps(scratch + i, e);
        add8_pd(&s0, &s1, e);
    }
    total = sum_pd(s0, s1);
#endif
    for (; i < n; i++) {
        float e = expf((x[i] - m) * inv_temp);
        if (!(e >= floor_w)) e = 0;
        scratch[i] = e;
        total += (double)e;
    }
    const double target = u * total;
    double cum = 0;
    int last = 0;
    for (int j = 0; j < n; j++) {
        if (scratch[j] == 0) continue;
        cum += (double)scratch[j];
        last = j;
        if (target < cum) return j;
    }
    return last;
}

/* LoRA for one token: y += B·(scale·A·x), with A rank×in_dim and B given transposed (bt:
 * rank×out_dim). Every element is summed in one fixed order whatever else is in the batch:
 * A's rows as two 8-lane accumulators then a scalar tail; y's elements over r = 0…rank−1. */
void lm_lora_apply(int in_dim, int rank, int out_dim, const float *a, const float *bt, float scale,
                   const float *x, float *y, float *scratch) {
    for (int r = 0; r < rank; r++) {
        const float *row = a + (long)r * in_dim;
        int i = 0;
        float s = 0.0f;
#if defined(__AVX2__) && defined(__FMA__)
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (; i + 16 <= in_dim; i += 16) {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + i), _mm256_loadu_ps(x + i), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(row + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
        }
        s = hsum8(_mm256_add_ps(acc0, acc1));
#endif
        for (; i < in_dim; i++) s = fmaf(row[i], x[i], s);
        scratch[r] = s * scale;
    }
    int o = 0;
#if defined(__AVX2__) && defined(__FMA__)
    for (; o + 8 <= out_dim; o += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int r = 0; r < rank; r++) acc = _mm256_fmadd_ps(_mm256_loadu_ps(bt + (long)r * out_dim + o), _mm256_set1_ps(scratch[r]), acc);
        _mm256_storeu_ps(y + o, _mm256_add_ps(_mm256_loadu_ps(y + o), acc));
    }
#endif
    for (; o < out_dim; o++) {
        float acc = 0.0f;
        for (int r = 0; r < rank; r++) acc = fmaf(bt[(long)r * out_dim + o], scratch[r], acc);
        y[o] += acc;
    }
}
