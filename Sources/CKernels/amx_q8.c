// The AMX table's quantized products (Q4_1, Q8_0, Q4_0, Q5_0 against int8 activations) for
// batches of tokens: 16 weight rows × 16 tokens per tile multiply, one block (32 products) at a
// time, so each output's block sum comes out of the tile exact, and is scaled and accumulated
// in the order every table keeps (tile_q8.h): acc = fma(d_w · d_x, Σ, acc) block by block, Q4_1's
// offsets apart, then acc + corr. The results are the AVX2 tile's bit for bit.
//
// The activations are the tiles' A operand as they lie (token rows x_stride apart, a block's 32
// bytes at 40 · block + 8); the weights are the B operand, a row group's blocks unpacked to int8
// in the layout TDPB*D reads (B[k / 4][4 · row + k % 4]) once per call and then used by every
// group of 16 tokens. Nothing is repacked at load.
#include "lm_kernels.h"
#include "amx_q8.h"
#include "amx_tile.h"
#include <stdlib.h>
#include <string.h>

#if defined(LM_EMULATED_ISA)
// Tests/EmulatedKernels: the intrinsics below in plain C, so this table's logic is checked on
// machines without AMX.
#include "emulated_isa.h"
#define LM_AMX_Q8
#define LM_AMX_Q8_ON 1
#elif defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#define LM_AMX_Q8 __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define LM_AMX_Q8_ON 1
#endif

#ifdef LM_AMX_Q8_ON

// A thread's unpacked row group: B tiles (512 bytes a block), the rows' scales and Q4_1 minimums.
typedef struct { int8_t *b; float *d; float *m; int cap; } group_scratch;
static __thread group_scratch scratch;

static int reserve(int nb) {
    if (scratch.cap >= nb) return 1;
    free(scratch.b); free(scratch.d); free(scratch.m);
    scratch.b = aligned_alloc(64, (size_t)nb * 512);
    scratch.d = aligned_alloc(64, (size_t)nb * 64);
    scratch.m = aligned_alloc(64, (size_t)nb * 64);
    scratch.cap = scratch.b && scratch.d && scratch.m ? nb : 0;
    return scratch.cap > 0;
}

// Rows [0, rows) of a group (at most 16; the others repeat the last row and are not stored),
// every block unpacked into B tiles; scales into d[b · 16 + row], Q4_1's minimums into m.
LM_AMX_Q8 static void unpack_group(int kind, int nb, const uint8_t *w, long row_bytes, int rows, int8_t *bt, float *d, float *m) {
    const int bb = kind == 0 ? 20 : kind == 1 ? 34 : kind == 7 ? 22 : 18;
    const __m512i row = _mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(rows - 1));
    const __m512i at = _mm512_mullo_epi32(row, _mm512_set1_epi32((int)row_bytes));
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    // Q5_0: four fifth bits -> bit 4 of each of four bytes.
    const __m512i spread = _mm512_setr_epi32(0x00000000, 0x00000010, 0x00001000, 0x00001010, 0x00100000, 0x00100010, 0x00101000, 0x00101010,
                                             0x10000000, 0x10000010, 0x10001000, 0x10001010, 0x10100000, 0x10100010, 0x10101000, 0x10101010);
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = w + (long)b * bb;
        int8_t *t = bt + (long)b * 512;
        __m512i head = _mm512_i32gather_epi32(at, p, 1);
        _mm512_store_ps(d + b * 16, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head)));
        if (kind == 0) _mm512_store_ps(m + b * 16, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(head, 16))));
        if (kind == 1) {
            for (int k4 = 0; k4 < 8; k4++) _mm512_store_si512(t + k4 * 64, _mm512_i32gather_epi32(at, p + 2 + 4 * k4, 1));
            continue;
        }
        const int qs = kind == 0 ? 4 : kind == 7 ? 6 : 2;
        const __m512i qh = kind == 7 ? _mm512_i32gather_epi32(at, p + 2, 1) : _mm512_setzero_si512();
        for (int k4 = 0; k4 < 4; k4++) {
            __m512i g = _mm512_i32gather_epi32(at, p + qs + 4 * k4, 1);
            __m512i lo = _mm512_and_si512(g, low4), hi = _mm512_and_si512(_mm512_srli_epi32(g, 4), low4);
            if (kind == 7) {
                const __m512i f = _mm512_set1_epi32(0xF);
                lo = _mm512_sub_epi8(_mm512_or_si512(lo, _mm512_permutexvar_epi32(_mm512_and_si512(_mm512_srli_epi32(qh, 4 * k4), f), spread)), _mm512_set1_epi8(16));
                hi = _mm512_sub_epi8(_mm512_or_si512(hi, _mm512_permutexvar_epi32(_mm512_and_si512(_mm512_srli_epi32(qh, 16 + 4 * k4), f), spread)), _mm512_set1_epi8(16));
            } else if (kind == 2) {
                lo = _mm512_sub_epi8(lo, _mm512_set1_epi8(8));
                hi = _mm512_sub_epi8(hi, _mm512_set1_epi8(8));
            }
            _mm512_store_si512(t + k4 * 64, lo);
            _mm512_store_si512(t + (k4 + 4) * 64, hi);
        }
    }
}

// A packed group (lm_pack_rows; 16 rows, padding rows zero) into B tiles: the layout's chunks are
// the tiles' rows already, nibbles split and offsets taken off; scales and minimums as above.
LM_AMX_Q8 static void unpack_packed_group(int kind, int nb, const uint8_t *grp, int8_t *bt, float *d, float *m) {
    const int pb = kind == 0 ? 320 : kind == 1 ? 544 : kind == 7 ? 352 : 288, qo = kind == 0 ? 64 : kind == 7 ? 96 : 32;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = grp + (long)b * pb;
        int8_t *t = bt + (long)b * 512;
        _mm512_store_ps(d + b * 16, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)));
        if (kind == 0) _mm512_store_ps(m + b * 16, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32))));
        if (kind == 1) { memcpy(t, p + qo, 512); continue; }
        for (int c = 0; c < 4; c++) {
            const __m512i raw = _mm512_loadu_si512(p + qo + 64 * c);
            __m512i lo = _mm512_and_si512(raw, low4), hi = _mm512_and_si512(_mm512_srli_epi32(raw, 4), low4);
            if (kind == 7) {
                uint64_t bl, bh;
                memcpy(&bl, p + 32 + 16 * c, 8); memcpy(&bh, p + 32 + 16 * c + 8, 8);
                lo = _mm512_sub_epi8(_mm512_or_si512(lo, _mm512_maskz_mov_epi8(bl, _mm512_set1_epi8(0x10))), _mm512_set1_epi8(16));
                hi = _mm512_sub_epi8(_mm512_or_si512(hi, _mm512_maskz_mov_epi8(bh, _mm512_set1_epi8(0x10))), _mm512_set1_epi8(16));
            } else if (kind == 2) {
                lo = _mm512_sub_epi8(lo, _mm512_set1_epi8(8));
                hi = _mm512_sub_epi8(hi, _mm512_set1_epi8(8));
            }
            _mm512_store_si512(t + c * 64, lo);
            _mm512_store_si512(t + (c + 4) * 64, hi);
        }
    }
}

LM_AMX_Q8 static void configure(int nt) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 2; i++) {
        cfg.rows[i] = (uint8_t)nt; cfg.colsb[i] = 64;          // C: tokens × 16 int32 (rows)
        cfg.rows[2 + i] = (uint8_t)nt; cfg.colsb[2 + i] = 32;  // A: tokens × a block's 32 activations
        cfg.rows[4 + i] = 8; cfg.colsb[4 + i] = 64;            // B: 8 × (16 rows × 4 weights)
    }
    _tile_loadconfig(&cfg);
}

// Block b's multiply into tile C (A and B the tiles it reads): blocks alternate between two
// sets of tiles, so one block's multiply runs while the one before is scaled and added.
#define BLOCK_MUL(C, A, B, b) do { \
        const uint8_t *xb_ = x + (long)(b) * (long)sizeof(lm_act_q8); \
        _tile_zero(C); \
        _tile_loadd(A, xb_ + 8, x_stride); \
        _tile_loadd(B, bt + (long)(b) * 512, 64); \
        if (kind == 0) _tile_dpbsud(C, A, B); else _tile_dpbssd(C, A, B); \
    } while (0)

// Block b's sums (tile C, stored) scaled into the accumulators.
#define BLOCK_ADD(C, b) do { \
        _tile_stored(C, c, 64); \
        _mm512_store_ps(dx, _mm512_i32gather_ps(tok, x + (long)(b) * (long)sizeof(lm_act_q8), 1)); \
        const __m512 dw_ = _mm512_load_ps(d + (b) * 16); \
        for (int j = 0; j < 16; j++) \
            acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(dw_, _mm512_set1_ps(dx[j])), _mm512_cvtepi32_ps(_mm512_load_si512(c[j])), acc[j]); \
    } while (0)

// One row group (unpacked) against nt ≤ 16 tokens from x; out rows under `mask`.
LM_AMX_Q8 static void group_tokens(int kind, int nb, const int8_t *bt, const float *d, const float *m,
                                   const uint8_t *x, long x_stride, int nt, float *out, long out_stride, __mmask16 mask) {
    __m512 acc[16];
    int32_t c[16][16] __attribute__((aligned(64)));
    float dx[16] __attribute__((aligned(64)));
    for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
    const __m512i tok = _mm512_mullo_epi32(_mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                            _mm512_set1_epi32(nt - 1)), _mm512_set1_epi32((int)x_stride));
    BLOCK_MUL(0, 2, 4, 0);
    int b = 0;
    for (; b + 2 < nb; b += 2) {
        BLOCK_MUL(1, 3, 5, b + 1);
        BLOCK_ADD(0, b);
        BLOCK_MUL(0, 2, 4, b + 2);
        BLOCK_ADD(1, b + 1);
    }
    if (b + 1 < nb) {
        BLOCK_MUL(1, 3, 5, b + 1);
        BLOCK_ADD(0, b);
        BLOCK_ADD(1, b + 1);
    } else {
        BLOCK_ADD(0, b);
    }
    for (int j = 0; j < nt; j++) {
        __m512 corr = _mm512_setzero_ps();
        if (kind == 0) {
            const lm_act_q8 *a = (const lm_act_q8 *)(x + (long)j * x_stride);
            for (int k = 0; k < nb; k++) corr = _mm512_fmadd_ps(_mm512_load_ps(m + k * 16), _mm512_set1_ps(a[k].s), corr);
        }
        _mm512_mask_storeu_ps(out + (long)j * out_stride, mask, _mm512_add_ps(acc[j], corr));
    }
}

int lm_amx_q8_rows(int kind, int nb, const uint8_t *w, long row_bytes, int r0, int r1,
                   const uint8_t *x, long x_stride, int batch, float *out, long out_stride) {
    if (!reserve(nb)) return 0;
    int configured = 0;
    for (int g = r0; g < r1; g += 16) {
        const int rows = r1 - g < 16 ? r1 - g : 16;
        unpack_group(kind, nb, w + (long)g * row_bytes, row_bytes, rows, scratch.b, scratch.d, scratch.m);
        for (int t = 0; t < batch; t += 16) {
            const int nt = batch - t < 16 ? batch - t : 16;
            if (nt != configured) { configure(nt); configured = nt; }
            group_tokens(kind, nb, scratch.b, scratch.d, scratch.m, x + (long)t * x_stride, x_stride, nt,
                         out + (long)t * out_stride + g, out_stride, (__mmask16)((1u << rows) - 1));
        }
    }
    return 1;
}

int lm_amx_q8_packed(int kind, int nb, const uint8_t *packed, int r0, int r1,
                     const uint8_t *x, long x_stride, int batch, float *out, long out_stride) {
    if (!reserve(nb)) return 0;
    const int pb = kind == 0 ? 320 : kind == 1 ? 544 : kind == 7 ? 352 : 288;
    int configured = 0;
    for (int g = r0 / 16; g * 16 < r1; g++) {
        int lo, hi;
        lm_group_span(g, r0, r1, &lo, &hi);
        const __mmask16 mask = (__mmask16)(((1u << (hi - g * 16)) - 1) & ~((1u << (lo - g * 16)) - 1));
        unpack_packed_group(kind, nb, packed + (long)g * nb * pb, scratch.b, scratch.d, scratch.m);
        for (int t = 0; t < batch; t += 16) {
            const int nt = batch - t < 16 ? batch - t : 16;
            if (nt != configured) { configure(nt); configured = nt; }
            group_tokens(kind, nb, scratch.b, scratch.d, scratch.m, x + (long)t * x_stride, x_stride, nt,
                         out + (long)t * out_stride + g * 16, out_stride, mask);
        }
    }
    return 1;
}

#else
int lm_amx_q8_rows(int kind, int nb, const uint8_t *w, long row_bytes, int r0, int r1,
                   const uint8_t *x, long x_stride, int batch, float *out, long out_stride) {
    (void)kind; (void)nb; (void)w; (void)row_bytes; (void)r0; (void)r1; (void)x; (void)x_stride; (void)batch; (void)out; (void)out_stride;
    return 0;
}
int lm_amx_q8_packed(int kind, int nb, const uint8_t *packed, int r0, int r1,
                     const uint8_t *x, long x_stride, int batch, float *out, long out_stride) {
    (void)kind; (void)nb; (void)packed; (void)r0; (void)r1; (void)x; (void)x_stride; (void)batch; (void)out; (void)out_stride;
    return 0;
}
#endif
