// See lm_kernels.h (lm_pack_*, lm_matmul_packed). The packed layout: weight rows in groups of
// 16, each group's blocks one after another, each block holding the 16 rows' values side by
// side so that one vector load gives the same four consecutive values of 16 (zmm) or 8 (ymm)
// rows, one row per 32-bit lane. A product then sums each row in its own lane, with no
// horizontal sums, and each load of weights serves every token of the tile.
//
// A packed block (16 rows, 32 values each; the same bytes as the 16 original blocks):
//   d[16]  F16 scales, row r at 2r                          (all kinds)
//   m[16]  F16 minimums                                      (Q4_1, after d)
//   qh[64] Q5_0's fifth bits: eight 64-bit words, word 2c + p bit 4r + e = the fifth bit of
//          row r's value 16p + 4c + e                       (Q5_0, after d)
//   qs     4-bit kinds: four chunks of 64 bytes, chunk c byte 4r + e = value 4c + e of row r in
//          the low nibble, value 16 + 4c + e in the high one; Q8_0: eight chunks of 64 bytes,
//          chunk g byte 4r + e = value 4g + e of row r.
// Rows past the matrix's last (the tail of the last group) are zero.
//
// The order of the arithmetic is the unpacked tile's (tile_q8.h): each output's 32 products of
// a block summed exactly in integers, then acc = fma(d_w · d_x, Σ, acc) block by block and
// Q4_1's corr = fma(m_w, s_x, corr), output acc + corr; so packed and unpacked products, and
// every table, give the same bits. Q4_0 and Q5_0 are summed as unsigned values less 8 (16)
// times the activations' block sum, Q8_0 on AVX2 as |w| · sign(x, w): the same integers.
#include "lm_kernels.h"
#include "amx_q8.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include "avx2_bits.h"
#define PK_AVX2 1
#endif

#define PK_INLINE static inline __attribute__((always_inline))

enum { PK_ROWS = 16 };
// How far ahead streaming products request weights (measured on the 1.7B models' decode:
// eight blocks for the 32-value kinds, one super-block, spread over its sub-blocks, for the
// K-quants; more, or a whole super-block at once, was slower).
#ifndef PK_AHEAD
#define PK_AHEAD 8
#endif
#ifndef PK_K_AHEAD
#define PK_K_AHEAD 1
#endif


static int pk_block_bytes(int kind) { return kind == 0 ? 20 : kind == 1 ? 34 : kind == 7 ? 22 : kind == 2 ? 18 : 0; }

int lm_pack_supported(int kind) { return pk_block_bytes(kind) > 0 || kind == 3 || kind == 4; }

static long pk_k_block_bytes(int kind);
static void pack_k_rows(int kind, int n, const void *w, long row_bytes, int rows, int g0, int g1, void *dst);
static void unpack_k_row(int kind, int n, const void *packed, int row, void *dst);
static void matmul_packed_k(int kind, int n, const void *packed, const uint8_t *x, long x_stride, int batch,
                            float *out, long out_stride, int r0, int r1);

long lm_pack_bytes(int kind, int n, int rows) {
    const long groups = (rows + PK_ROWS - 1) / PK_ROWS;
    if (kind == 3 || kind == 4) return groups * (n / 256) * pk_k_block_bytes(kind);
    return groups * (n / 32) * PK_ROWS * pk_block_bytes(kind);
}

// Offsets in a packed block of the quants (and, for Q5_0, of the fifth bits at 32).
static int pk_qs_offset(int kind) { return kind == 0 ? 64 : kind == 7 ? 96 : 32; }

// Value e (0…31) of an original 4-bit block's quants q: nibble e % 16, high for e ≥ 16.
static inline int nib(const uint8_t *q, int e) { return e < 16 ? q[e] & 0x0F : q[e - 16] >> 4; }

void lm_pack_rows(int kind, int n, const void *w, long row_bytes, int rows, int g0, int g1, void *dst) {
    if (kind == 3 || kind == 4) { pack_k_rows(kind, n, w, row_bytes, rows, g0, g1, dst); return; }
    const int bb = pk_block_bytes(kind), nb = n / 32, pb = PK_ROWS * bb, qo = pk_qs_offset(kind);
    for (int g = g0; g < g1; g++) {
        uint8_t *gp = (uint8_t *)dst + (long)g * nb * pb;
        memset(gp, 0, (size_t)nb * pb);
        for (int r = 0; r < PK_ROWS && g * PK_ROWS + r < rows; r++) {
            const uint8_t *row = (const uint8_t *)w + (long)(g * PK_ROWS + r) * row_bytes;
            for (int b = 0; b < nb; b++) {
                const uint8_t *p = row + (long)b * bb;
                uint8_t *o = gp + (long)b * pb;
                memcpy(o + 2 * r, p, 2);
                if (kind == 1) {
                    for (int e = 0; e < 32; e++) o[qo + 64 * (e / 4) + 4 * r + e % 4] = p[2 + e];
                    continue;
                }
                if (kind == 0) memcpy(o + 32 + 2 * r, p + 2, 2);
                const uint8_t *q = p + (kind == 0 ? 4 : kind == 7 ? 6 : 2);
                for (int c = 0; c < 4; c++)
                    for (int e = 0; e < 4; e++)
                        o[qo + 64 * c + 4 * r + e] = (uint8_t)(nib(q, 4 * c + e) | (nib(q, 16 + 4 * c + e) << 4));
                if (kind == 7) {
                    uint32_t qh; memcpy(&qh, p + 2, 4);
                    for (int v = 0; v < 32; v++) {
                        if (!((qh >> v) & 1)) continue;
                        const int part = v / 16, c = (v % 16) / 4, bit = 4 * r + v % 4;
                        o[32 + 8 * (2 * c + part) + bit / 8] |= (uint8_t)(1u << (bit % 8));
                    }
                }
            }
        }
    }
}

void lm_unpack_row(int kind, int n, const void *packed, int row, void *dst) {
    if (kind == 3 || kind == 4) { unpack_k_row(kind, n, packed, row, dst); return; }
    const int bb = pk_block_bytes(kind), nb = n / 32, pb = PK_ROWS * bb, qo = pk_qs_offset(kind);
    const int g = row / PK_ROWS, r = row % PK_ROWS;
    const uint8_t *gp = (const uint8_t *)packed + (long)g * nb * pb;
    for (int b = 0; b < nb; b++) {
        const uint8_t *o = gp + (long)b * pb;
        uint8_t *p = (uint8_t *)dst + (long)b * bb;
        memcpy(p, o + 2 * r, 2);
        if (kind == 1) {
            for (int e = 0; e < 32; e++) p[2 + e] = o[qo + 64 * (e / 4) + 4 * r + e % 4];
            continue;
        }
        if (kind == 0) memcpy(p + 2, o + 32 + 2 * r, 2);
        uint8_t *q = p + (kind == 0 ? 4 : kind == 7 ? 6 : 2);
        for (int k = 0; k < 16; k++) {
            const uint8_t lo = o[qo + 64 * (k / 4) + 4 * r + k % 4];  // values k (low nibble) and 16 + k (high)
            q[k] = lo;
        }
        if (kind == 7) {
            uint32_t qh = 0;
            for (int v = 0; v < 32; v++) {
                const int part = v / 16, c = (v % 16) / 4, bit = 4 * r + v % 4;
                if ((o[32 + 8 * (2 * c + part) + bit / 8] >> (bit % 8)) & 1) qh |= 1u << v;
            }
            memcpy(p + 2, &qh, 4);
        }
    }
}

// Σ of each activation block's 32 int8 values, for tokens [0, batch): sums[t · nb + b].
static void block_sums(const uint8_t *x, long x_stride, int batch, int nb, int32_t *sums) {
    for (int t = 0; t < batch; t++) {
        const lm_act_q8 *a = (const lm_act_q8 *)(x + (long)t * x_stride);
        for (int b = 0; b < nb; b++) {
#ifdef PK_AVX2
            const __m256i v = _mm256_loadu_si256((const __m256i *)a[b].qs);
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), v), _mm256_set1_epi16(1));
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
            sums[t * nb + b] = _mm_cvtsi128_si32(h);
#else
            int s = 0;
            for (int i = 0; i < 32; i++) s += a[b].qs[i];
            sums[t * nb + b] = s;
#endif
        }
    }
}

#ifdef PK_AVX2
static inline __m256i pk_bcast4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return _mm256_set1_epi32(v); }

// One group against NT ≤ 4 tokens, halves [h0, h0 + NH) (8 rows each, one row a lane):
// o[t · 16 + 8h + r]. Integer block sums per lane; the float order of tile_q8.h.
PK_INLINE void pk_tile_avx2(const int kind, int nb, const uint8_t *grp, const int h0, const int NH,
                            const lm_act_q8 *const *xs, const int32_t *const *sx, const int NT, float *o) {
    const int pb = PK_ROWS * pk_block_bytes(kind), qo = pk_qs_offset(kind);
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[4][2], corr[4][2];
    for (int t = 0; t < NT; t++) for (int h = 0; h < NH; h++) { acc[t][h] = _mm256_setzero_ps(); corr[t][h] = _mm256_setzero_ps(); }
    for (int b = 0; b < nb; b++) {
        const uint8_t *pbk = grp + (long)b * pb, *q = pbk + qo;
        // Streaming (one or two tokens: every byte read once): the block PK_AHEAD ahead, which
        // runs on into the next group, requested now so the memory keeps both cores fed.
        if (NT <= 2) for (int l = 0; l < pb; l += 64) __builtin_prefetch(pbk + PK_AHEAD * pb + l, 0, 0);
        __m256i s[4][2];
        if (kind == 1) {
            for (int t = 0; t < NT; t++) for (int h = 0; h < NH; h++) s[t][h] = _mm256_setzero_si256();
            for (int g = 0; g < 8; g++)
                for (int h = 0; h < NH; h++) {
                    const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 64 * g + 32 * (h0 + h)));
                    const __m256i aw = _mm256_sign_epi8(w, w);
                    for (int t = 0; t < NT; t++) {
                        const __m256i xv = _mm256_sign_epi8(pk_bcast4(xs[t][b].qs + 4 * g), w);
                        s[t][h] = _mm256_add_epi32(s[t][h], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xv), ones));
                    }
                }
        } else {
            // 16-bit lane sums: eight products of ≤ 15 · 127 stay below 2^15; Q5_0's (≤ 31) go
            // to 32 bits chunk by chunk.
            __m256i s16[4][2];
            for (int t = 0; t < NT; t++) for (int h = 0; h < NH; h++) { s16[t][h] = _mm256_setzero_si256(); s[t][h] = _mm256_setzero_si256(); }
            for (int c = 0; c < 4; c++)
                for (int h = 0; h < NH; h++) {
                    const __m256i raw = _mm256_loadu_si256((const __m256i *)(q + 64 * c + 32 * (h0 + h)));
                    __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                    if (kind == 7) {
                        lo = _mm256_or_si256(lo, lm_fifth_bits(pbk + 32 + 16 * c + 4 * (h0 + h)));
                        hi = _mm256_or_si256(hi, lm_fifth_bits(pbk + 32 + 16 * c + 8 + 4 * (h0 + h)));
                    }
                    for (int t = 0; t < NT; t++) {
                        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, pk_bcast4(xs[t][b].qs + 4 * c)),
                                                           _mm256_maddubs_epi16(hi, pk_bcast4(xs[t][b].qs + 16 + 4 * c)));
                        if (kind == 7) s[t][h] = _mm256_add_epi32(s[t][h], _mm256_madd_epi16(p, ones));
                        else s16[t][h] = _mm256_add_epi16(s16[t][h], p);
                    }
                }
            for (int t = 0; t < NT; t++)
                for (int h = 0; h < NH; h++) {
                    if (kind != 7) s[t][h] = _mm256_madd_epi16(s16[t][h], ones);
                    if (kind == 2) s[t][h] = _mm256_sub_epi32(s[t][h], _mm256_set1_epi32(8 * sx[t][b]));
                    if (kind == 7) s[t][h] = _mm256_sub_epi32(s[t][h], _mm256_set1_epi32(16 * sx[t][b]));
                }
        }
        for (int h = 0; h < NH; h++) {
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pbk + 16 * (h0 + h))));
            const __m256 mw = kind == 0 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pbk + 32 + 16 * (h0 + h)))) : dw;
            for (int t = 0; t < NT; t++) {
                acc[t][h] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xs[t][b].d)), _mm256_cvtepi32_ps(s[t][h]), acc[t][h]);
                if (kind == 0) corr[t][h] = _mm256_fmadd_ps(mw, _mm256_set1_ps(xs[t][b].s), corr[t][h]);
            }
        }
    }
    for (int t = 0; t < NT; t++)
        for (int h = 0; h < NH; h++) _mm256_storeu_ps(o + t * 16 + 8 * (h0 + h), _mm256_add_ps(acc[t][h], corr[t][h]));
}

// A group against NT tokens: both halves in one pass for one or two tokens (every weight byte
// read once), one half a pass for three or four (the accumulators fill the registers).
#define PK_GROUP(K) \
    static void pk_group_##K(int nb, const uint8_t *grp, const lm_act_q8 *const *xs, const int32_t *const *sx, int nt, float *o) { \
        switch (nt) { \
        case 1: pk_tile_avx2(K, nb, grp, 0, 2, xs, sx, 1, o); break; \
        case 2: pk_tile_avx2(K, nb, grp, 0, 2, xs, sx, 2, o); break; \
        case 3: pk_tile_avx2(K, nb, grp, 0, 1, xs, sx, 3, o); pk_tile_avx2(K, nb, grp, 1, 1, xs, sx, 3, o); break; \
        default: pk_tile_avx2(K, nb, grp, 0, 1, xs, sx, 4, o); pk_tile_avx2(K, nb, grp, 1, 1, xs, sx, 4, o); break; \
        } \
    }
PK_GROUP(0)
PK_GROUP(1)
PK_GROUP(2)
PK_GROUP(7)
#undef PK_GROUP
#endif

// The portable group: the same integers and the same float order, one output at a time.
__attribute__((unused)) static void pk_group_portable(int kind, int nb, const uint8_t *grp, const lm_act_q8 *const *xs, int nt, float *o) {
    const int pb = PK_ROWS * pk_block_bytes(kind), qo = pk_qs_offset(kind);
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < PK_ROWS; r++) {
            float acc = 0, corr = 0;
            for (int b = 0; b < nb; b++) {
                const uint8_t *p = grp + (long)b * pb;
                const lm_act_q8 *a = xs[t] + b;
                uint16_t h; memcpy(&h, p + 2 * r, 2);
                int s = 0;
                for (int e = 0; e < 32; e++) {
                    int v;
                    if (kind == 1) v = (int8_t)p[qo + 64 * (e / 4) + 4 * r + e % 4];
                    else {
                        const uint8_t byte = p[qo + 64 * ((e % 16) / 4) + 4 * r + e % 4];
                        v = e < 16 ? byte & 0x0F : byte >> 4;
                        if (kind == 7) {
                            const int bit = 4 * r + e % 4;
                            v |= ((p[32 + 8 * (2 * ((e % 16) / 4) + e / 16) + bit / 8] >> (bit % 8)) & 1) << 4;
                            v -= 16;
                        } else if (kind == 2) v -= 8;
                    }
                    s += v * a->qs[e];
                }
                acc = fmaf(lm_f16_to_f32(h) * a->d, (float)s, acc);
                if (kind == 0) { uint16_t m; memcpy(&m, p + 32 + 2 * r, 2); corr = fmaf(lm_f16_to_f32(m), a->s, corr); }
            }
            o[t * 16 + r] = acc + corr;
        }
}

// A thread's block sums of the activations (grown as needed).
static __thread int32_t *pk_sums;
static __thread long pk_sums_cap;

void lm_matmul_packed(int kind, int n, const void *packed, const void *x, long x_stride, int batch,
                      float *out, long out_stride, int r0, int r1) {
    const uint8_t *xb = (const uint8_t *)x;
    if (kind == 3 || kind == 4) { matmul_packed_k(kind, n, packed, xb, x_stride, batch, out, out_stride, r0, r1); return; }
    const int nb = n / 32, pb = PK_ROWS * pk_block_bytes(kind);
    const int isa = lm_q8_isa();
    if (isa == 2 && batch >= LM_AMX_MIN_BATCH && lm_amx_q8_packed(kind, nb, (const uint8_t *)packed, r0, r1, xb, x_stride, batch, out, out_stride)) return;
    // The activations' block sums, once per call, for the kinds summed with an offset: Q4_0 and
    // Q5_0 everywhere, Q8_0 on the AVX-512 table (AVX2 takes Q8_0 signed).
    const int32_t *sums = NULL;
    if (kind == 2 || kind == 7 || (isa >= 1 && kind == 1)) {
        const long need = (long)batch * nb;
        if (need > pk_sums_cap) {
            free(pk_sums);
            pk_sums = malloc(sizeof(int32_t) * (size_t)need);
            if (!pk_sums) abort();  // a few KB per token: out of memory here is fatal anyway
            pk_sums_cap = need;
        }
        block_sums(xb, x_stride, batch, nb, pk_sums);
        sums = pk_sums;
    }
    if (isa >= 1 && lm_packed_rows_avx512(kind, nb, (const uint8_t *)packed, r0, r1, xb, x_stride, batch, sums, out, out_stride)) return;
    float o[4 * PK_ROWS];
    // A pool chunk starts a new stream: its first blocks requested before the kernel reaches
    // them (the kernel requests PK_AHEAD blocks ahead from there on).
    if (batch <= 2) {
        const uint8_t *first = (const uint8_t *)packed + (long)(r0 / PK_ROWS) * nb * pb;
        for (long l = 0; l < (long)PK_AHEAD * pb; l += 64) __builtin_prefetch(first + l, 0, 0);
    }
    for (int g = r0 / PK_ROWS; g * PK_ROWS < r1; g++) {
        const uint8_t *grp = (const uint8_t *)packed + (long)g * nb * pb;
        int lo, hi;
        lm_group_span(g, r0, r1, &lo, &hi);
        for (int t = 0; t < batch; t += 4) {
            const int nt = batch - t < 4 ? batch - t : 4;
            const lm_act_q8 *xs[4];
            const int32_t *sx[4] = { 0 };
            for (int j = 0; j < nt; j++) {
                xs[j] = (const lm_act_q8 *)(xb + (long)(t + j) * x_stride);
                if (sums) sx[j] = sums + (long)(t + j) * nb;
            }
#ifdef PK_AVX2
            switch (kind) {
            case 0: pk_group_0(nb, grp, xs, sx, nt, o); break;
            case 1: pk_group_1(nb, grp, xs, sx, nt, o); break;
            case 2: pk_group_2(nb, grp, xs, sx, nt, o); break;
            default: pk_group_7(nb, grp, xs, sx, nt, o); break;
            }
#else
            pk_group_portable(kind, nb, grp, xs, nt, o);
#endif
            lm_store_group(out, out_stride, o, g, lo, hi, t, nt);
        }
    }
}

// ---- K-quants (kinds 3 Q4_K and 4 Q6_K against Q8_K activations) ----
//
// A packed super-block (16 rows, 256 values each):
//   Q4_K (2,368 bytes, 4 more a row than the file's 144: the 6-bit scales and minimums are
//   unpacked to bytes): d[16] F16 at 0, dmin[16] at 32, sc[8][16] at 64 (sub-block j, row r
//   at 64 + 16j + r), mn[8][16] at 192, then sub-block j's 32 values at 320 + 256j as a
//   Q4_0 block's quants are packed (chunk c byte 4r + e: value 4c + e low, 16 + 4c + e high).
//   Q6_K (3,360 bytes, as the file's): d[16] F16 at 0, sc[16][16] int8 at 32 (sub-block of 16
//   i, row r at 32 + 16i + r), then the low four bits at 288: 32 chunks of 64 bytes, chunk k
//   byte 4r + e = value 4k + e's in the low nibble, value 128 + 4k + e's in the high one; then
//   the high two bits at 2,336: 16 chunks, chunk k byte 4r + e bits 2m, 2m + 1 = value
//   64m + 4k + e's.
// The arithmetic is kquants.c's, integer for integer, in its float order.
enum { PK_Q4K = 2368, PK_Q6K = 3360, KQ_Q4K = 144, KQ_Q6K = 210 };

static long pk_k_block_bytes(int kind) { return kind == 3 ? PK_Q4K : PK_Q6K; }

// Value v (0…255) of an original Q6_K super-block, 0…63.
static inline int q6k_get(const uint8_t *p, int v) {
    const int half = v / 128, w = v % 128, l = w % 32, quarter = w / 32;
    const uint8_t *ql = p + 64 * half, *qh = p + 128 + 32 * half;
    const int low = quarter & 1 ? ql[l + 32] : ql[l];
    return ((quarter & 2 ? low >> 4 : low & 0x0F) | (((qh[l] >> (2 * quarter)) & 3) << 4));
}
static inline void q6k_set(uint8_t *p, int v, int val) {
    const int half = v / 128, w = v % 128, l = w % 32, quarter = w / 32;
    uint8_t *ql = p + 64 * half, *qh = p + 128 + 32 * half;
    uint8_t *low = quarter & 1 ? &ql[l + 32] : &ql[l];
    *low = quarter & 2 ? (uint8_t)((*low & 0x0F) | ((val & 0x0F) << 4)) : (uint8_t)((*low & 0xF0) | (val & 0x0F));
    qh[l] = (uint8_t)((qh[l] & ~(3 << (2 * quarter))) | (((val >> 4) & 3) << (2 * quarter)));
}
// Q4_K's 12 bytes of 6-bit scales and minimums (kquants.c's kq_q4k_scales, written out).
static void q4k_scales(const uint8_t *q, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) { sc[j] = q[j] & 63; mn[j] = q[j + 4] & 63; }
    for (int j = 4; j < 8; j++) {
        sc[j] = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        mn[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}
static void q4k_scales_pack(uint8_t *q, const uint8_t sc[8], const uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 0x0F) | ((mn[j + 4] & 0x0F) << 4));
    }
}

static void pack_k_rows(int kind, int n, const void *w, long row_bytes, int rows, int g0, int g1, void *dst) {
    const int nb = n / 256, bb = kind == 3 ? KQ_Q4K : KQ_Q6K;
    const long pb = pk_k_block_bytes(kind);
    for (int g = g0; g < g1; g++) {
        uint8_t *gp = (uint8_t *)dst + (long)g * nb * pb;
        memset(gp, 0, (size_t)(nb * pb));
        for (int r = 0; r < PK_ROWS && g * PK_ROWS + r < rows; r++) {
            const uint8_t *row = (const uint8_t *)w + (long)(g * PK_ROWS + r) * row_bytes;
            for (int b = 0; b < nb; b++) {
                const uint8_t *p = row + (long)b * bb;
                uint8_t *o = gp + (long)b * pb;
                if (kind == 3) {
                    memcpy(o + 2 * r, p, 2);
                    memcpy(o + 32 + 2 * r, p + 2, 2);
                    uint8_t sc[8], mn[8];
                    q4k_scales(p + 4, sc, mn);
                    for (int j = 0; j < 8; j++) { o[64 + 16 * j + r] = sc[j]; o[192 + 16 * j + r] = mn[j]; }
                    for (int j = 0; j < 8; j++) {
                        const uint8_t *q = p + 16 + 32 * (j / 2);
                        for (int c = 0; c < 4; c++)
                            for (int e = 0; e < 4; e++) {
                                const int v0 = 4 * c + e, v1 = 16 + 4 * c + e;
                                const int a = j & 1 ? q[v0] >> 4 : q[v0] & 0x0F, bq = j & 1 ? q[v1] >> 4 : q[v1] & 0x0F;
                                o[320 + 256 * j + 64 * c + 4 * r + e] = (uint8_t)(a | (bq << 4));
                            }
                    }
                } else {
                    memcpy(o + 2 * r, p + 208, 2);
                    for (int i = 0; i < 16; i++) o[32 + 16 * i + r] = p[192 + i];
                    for (int v = 0; v < 256; v++) {
                        const int val = q6k_get(p, v), k = (v % 128) / 4, e = v % 4;
                        o[288 + 64 * k + 4 * r + e] |= (uint8_t)((val & 0x0F) << (v >= 128 ? 4 : 0));
                        o[2336 + 64 * ((v % 64) / 4) + 4 * r + e] |= (uint8_t)((val >> 4) << (2 * (v / 64)));
                    }
                }
            }
        }
    }
}

static void unpack_k_row(int kind, int n, const void *packed, int row, void *dst) {
    const int nb = n / 256, bb = kind == 3 ? KQ_Q4K : KQ_Q6K;
    const long pb = pk_k_block_bytes(kind);
    const int g = row / PK_ROWS, r = row % PK_ROWS;
    const uint8_t *gp = (const uint8_t *)packed + (long)g * nb * pb;
    for (int b = 0; b < nb; b++) {
        const uint8_t *o = gp + (long)b * pb;
        uint8_t *p = (uint8_t *)dst + (long)b * bb;
        memset(p, 0, (size_t)bb);
        if (kind == 3) {
            memcpy(p, o + 2 * r, 2);
            memcpy(p + 2, o + 32 + 2 * r, 2);
            uint8_t sc[8], mn[8];
            for (int j = 0; j < 8; j++) { sc[j] = o[64 + 16 * j + r]; mn[j] = o[192 + 16 * j + r]; }
            q4k_scales_pack(p + 4, sc, mn);
            for (int j = 0; j < 8; j++) {
                uint8_t *q = p + 16 + 32 * (j / 2);
                for (int v = 0; v < 32; v++) {
                    const uint8_t byte = o[320 + 256 * j + 64 * ((v % 16) / 4) + 4 * r + v % 4];
                    const int val = v < 16 ? byte & 0x0F : byte >> 4;
                    q[v] |= (uint8_t)(j & 1 ? val << 4 : val);
                }
            }
        } else {
            memcpy(p + 208, o + 2 * r, 2);
            for (int i = 0; i < 16; i++) p[192 + i] = o[32 + 16 * i + r];
            for (int v = 0; v < 256; v++) {
                const int k = (v % 128) / 4, e = v % 4;
                const int low = (o[288 + 64 * k + 4 * r + e] >> (v >= 128 ? 4 : 0)) & 0x0F;
                const int high = (o[2336 + 64 * ((v % 64) / 4) + 4 * r + e] >> (2 * (v / 64))) & 3;
                q6k_set(p, v, low | (high << 4));
            }
        }
    }
}

#ifdef PK_AVX2
// Bytes b[r0 … r0 + 7] as eight 32-bit lanes each holding (b, b) as two int16 (sign- or zero-extended).
static inline __m256i pk_pairs16(const uint8_t *b, int is_signed) {
    const __m128i v = _mm_loadl_epi64((const __m128i *)b);
    const __m128i d = _mm_unpacklo_epi8(v, v);  // b0 b0 b1 b1 …
    return is_signed ? _mm256_cvtepi8_epi16(d) : _mm256_cvtepu8_epi16(d);
}
// Lanes r: (a[r], b[r]) as int16 pairs from two rows of bytes (8 each).
static inline __m256i pk_two16(const uint8_t *a, const uint8_t *b, int is_signed) {
    const __m128i v = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)a), _mm_loadl_epi64((const __m128i *)b));
    return is_signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
}

PK_INLINE void pk_k_tile_avx2(const int kind, int nb, const uint8_t *grp, const int h0, const int NH,
                              const lm_block_q8_k *const *xs, const int NT, float *o) {
    const long pb = pk_k_block_bytes(kind);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[8][2], accm[8][2];
    for (int t = 0; t < NT; t++) for (int h = 0; h < NH; h++) { acc[t][h] = _mm256_setzero_ps(); accm[t][h] = _mm256_setzero_ps(); }
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = grp + (long)b * pb;
        // Streaming: super-block PK_K_AHEAD ahead requested a slice per sub-block (spread out: a
        // whole super-block's lines at once fill the line-fill buffers).
        const uint8_t *ahead = p + PK_K_AHEAD * pb;
        __m256i s[8][2], sm[8][2];
        for (int t = 0; t < NT; t++) for (int h = 0; h < NH; h++) { s[t][h] = _mm256_setzero_si256(); sm[t][h] = _mm256_setzero_si256(); }
        if (kind == 3) {
            for (int j = 0; j < 8; j++) {
                if (NT <= 2 && PK_K_AHEAD) for (long l = j * (pb / 8); l < (j + 1) * (pb / 8); l += 64) __builtin_prefetch(ahead + l, 0, 0);
                __m256i s16[8][2];
                for (int t = 0; t < NT; t++) for (int h = 0; h < NH; h++) s16[t][h] = _mm256_setzero_si256();
                for (int c = 0; c < 4; c++)
                    for (int h = 0; h < NH; h++) {
                        const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 320 + 256 * j + 64 * c + 32 * (h0 + h)));
                        const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                        for (int t = 0; t < NT; t++)
                            s16[t][h] = _mm256_add_epi16(s16[t][h], _mm256_add_epi16(
                                _mm256_maddubs_epi16(lo, pk_bcast4(xs[t][b].qs + 32 * j + 4 * c)),
                                _mm256_maddubs_epi16(hi, pk_bcast4(xs[t][b].qs + 32 * j + 16 + 4 * c))));
                    }
                for (int h = 0; h < NH; h++) {
                    const __m256i sc = pk_pairs16(p + 64 + 16 * j + 8 * (h0 + h), 0);
                    for (int t = 0; t < NT; t++) s[t][h] = _mm256_add_epi32(s[t][h], _mm256_madd_epi16(s16[t][h], sc));
                }
            }
            // Each token's eight sub-block sums of 32 (pairs of its bsums), as int16 pairs
            // (sub-blocks 2k, 2k + 1) in 32-bit words, for the minimums' VPMADDWD.
            int32_t pairs[8][4];
            for (int t = 0; t < NT; t++)
                _mm_storeu_si128((__m128i *)pairs[t], _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xs[t][b].bsums),
                                                                     _mm_loadu_si128((const __m128i *)(xs[t][b].bsums + 8))));
            for (int k = 0; k < 4; k++)
                for (int h = 0; h < NH; h++) {
                    const __m256i mn = pk_two16(p + 192 + 16 * (2 * k) + 8 * (h0 + h), p + 192 + 16 * (2 * k + 1) + 8 * (h0 + h), 0);
                    for (int t = 0; t < NT; t++) sm[t][h] = _mm256_add_epi32(sm[t][h], _mm256_madd_epi16(mn, _mm256_set1_epi32(pairs[t][k])));
                }
        } else {
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < 16; i++) {
                if (NT <= 2 && PK_K_AHEAD) for (long l = i * (pb / 16); l < (i + 1) * (pb / 16); l += 64) __builtin_prefetch(ahead + l, 0, 0);
                for (int h = 0; h < NH; h++) {
                    const __m256i sc = pk_pairs16(p + 32 + 16 * i + 8 * (h0 + h), 1);
                    for (int half = 0; half < 2; half++) {
                        __m256i v[2];
                        for (int u = 0; u < 2; u++) {
                            const int gi = 4 * i + 2 * half + u;  // group of four values, 0…63
                            const int kl = gi % 32, kh = gi % 16, m = gi / 16;
                            const __m256i ql = _mm256_loadu_si256((const __m256i *)(p + 288 + 64 * kl + 32 * (h0 + h)));
                            const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 2336 + 64 * kh + 32 * (h0 + h)));
                            const __m256i low = gi < 32 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
                            const __m256i high = m == 0 ? _mm256_slli_epi16(qh, 4) : m == 1 ? _mm256_slli_epi16(qh, 2) : m == 2 ? qh : _mm256_srli_epi16(qh, 2);
                            v[u] = _mm256_or_si256(low, _mm256_and_si256(high, m30));
                        }
                        for (int t = 0; t < NT; t++) {
                            const int8_t *x = xs[t][b].qs + 16 * i + 8 * half;
                            const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(v[0], pk_bcast4(x)), _mm256_maddubs_epi16(v[1], pk_bcast4(x + 4)));
                            s[t][h] = _mm256_add_epi32(s[t][h], _mm256_madd_epi16(pr, sc));
                        }
                    }
                }
            }
            // Σ (q − 32) x = Σ q x − 32 Σ x, the last per sub-block from the bsums.
            for (int k = 0; k < 8; k++)
                for (int h = 0; h < NH; h++) {
                    const __m256i sc = pk_two16(p + 32 + 16 * (2 * k) + 8 * (h0 + h), p + 32 + 16 * (2 * k + 1) + 8 * (h0 + h), 1);
                    for (int t = 0; t < NT; t++) {
                        const int16_t *bs = xs[t][b].bsums;
                        int32_t pair;  // bsums 2k and 2k + 1, as the int16 pair VPMADDWD takes
                        memcpy(&pair, bs + 2 * k, 4);
                        sm[t][h] = _mm256_add_epi32(sm[t][h], _mm256_madd_epi16(sc, _mm256_set1_epi32(pair)));
                    }
                }
            for (int t = 0; t < NT; t++) for (int h = 0; h < NH; h++) s[t][h] = _mm256_sub_epi32(s[t][h], _mm256_slli_epi32(sm[t][h], 5));
        }
        for (int h = 0; h < NH; h++) {
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * (h0 + h))));
            const __m256 mw = kind == 3 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 32 + 16 * (h0 + h)))) : dw;
            for (int t = 0; t < NT; t++) {
                const __m256 dx = _mm256_set1_ps(xs[t][b].d);
                acc[t][h] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(s[t][h]), acc[t][h]);
                if (kind == 3) accm[t][h] = _mm256_fmadd_ps(_mm256_mul_ps(mw, dx), _mm256_cvtepi32_ps(sm[t][h]), accm[t][h]);
            }
        }
    }
    for (int t = 0; t < NT; t++)
        for (int h = 0; h < NH; h++) _mm256_storeu_ps(o + t * 16 + 8 * (h0 + h), _mm256_sub_ps(acc[t][h], accm[t][h]));
}

#define PK_K_GROUP(K) \
    static void pk_k_group_##K(int nb, const uint8_t *grp, const lm_block_q8_k *const *xs, int nt, float *o) { \
        switch (nt) { \
        case 1: pk_k_tile_avx2(K, nb, grp, 0, 2, xs, 1, o); break; \
        case 2: pk_k_tile_avx2(K, nb, grp, 0, 2, xs, 2, o); break; \
        case 3: pk_k_tile_avx2(K, nb, grp, 0, 1, xs, 3, o); pk_k_tile_avx2(K, nb, grp, 1, 1, xs, 3, o); break; \
        case 4: pk_k_tile_avx2(K, nb, grp, 0, 1, xs, 4, o); pk_k_tile_avx2(K, nb, grp, 1, 1, xs, 4, o); break; \
        case 5: pk_k_tile_avx2(K, nb, grp, 0, 1, xs, 5, o); pk_k_tile_avx2(K, nb, grp, 1, 1, xs, 5, o); break; \
        case 6: pk_k_tile_avx2(K, nb, grp, 0, 1, xs, 6, o); pk_k_tile_avx2(K, nb, grp, 1, 1, xs, 6, o); break; \
        case 7: pk_k_tile_avx2(K, nb, grp, 0, 1, xs, 7, o); pk_k_tile_avx2(K, nb, grp, 1, 1, xs, 7, o); break; \
        default: pk_k_tile_avx2(K, nb, grp, 0, 1, xs, 8, o); pk_k_tile_avx2(K, nb, grp, 1, 1, xs, 8, o); break; \
        } \
    }
PK_K_GROUP(3)
PK_K_GROUP(4)
#undef PK_K_GROUP
#endif

static void matmul_packed_k(int kind, int n, const void *packed, const uint8_t *x, long x_stride, int batch,
                            float *out, long out_stride, int r0, int r1) {
    const int nb = n / 256;
    const long pb = pk_k_block_bytes(kind);
    if (lm_q8_isa() >= 1 && lm_packed_k_rows_avx512(kind, nb, (const uint8_t *)packed, r0, r1, x, x_stride, batch, out, out_stride)) return;
    float o[8 * PK_ROWS];
    if (batch <= 2) {
        const uint8_t *first = (const uint8_t *)packed + (long)(r0 / PK_ROWS) * nb * pb;
        for (long l = 0; l < (long)PK_K_AHEAD * pb; l += 64) __builtin_prefetch(first + l, 0, 0);
    }
    for (int g = r0 / PK_ROWS; g * PK_ROWS < r1; g++) {
        const uint8_t *grp = (const uint8_t *)packed + (long)g * nb * pb;
        int lo, hi;
        lm_group_span(g, r0, r1, &lo, &hi);
        for (int t = 0; t < batch; t += 8) {
            const int nt = batch - t < 8 ? batch - t : 8;
            const lm_block_q8_k *xs[8];
            for (int j = 0; j < nt; j++) xs[j] = (const lm_block_q8_k *)(x + (long)(t + j) * x_stride);
#ifdef PK_AVX2
            if (kind == 3) pk_k_group_3(nb, grp, xs, nt, o); else pk_k_group_4(nb, grp, xs, nt, o);
#else
            // Portable: each row back in the file's format, then kquants.c's dot (the same order).
            uint8_t rowbuf[(16384 / 256) * KQ_Q6K];
            for (int r = lo; r < hi && n <= 16384; r++) {
                unpack_k_row(kind, n, packed, r, rowbuf);
                for (int j = 0; j < nt; j++)
                    o[j * PK_ROWS + r - g * PK_ROWS] = kind == 3 ? lm_dot_q4_k_q8_k(n, rowbuf, xs[j]) : lm_dot_q6_k_q8_k(n, rowbuf, xs[j]);
            }
#endif
            lm_store_group(out, out_stride, o, g, lo, hi, t, nt);
        }
    }
}
