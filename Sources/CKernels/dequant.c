// Rows of GGUF tensors expanded to float32 a span at a time: training's frozen products read the
// quantized blocks straight from the file and expand only the tile they are about to multiply.
// Each value is computed exactly as GGUF's Dequantize.block computes it (the same operations in
// the same order, no fused multiply-adds), so both give the same bits.
#include "lm_kernels.h"
#include <string.h>

#pragma clang fp contract(off)

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float h2f(const uint8_t *p) { return lm_f16_to_f32(rd16(p)); }

static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *s, uint8_t *m) {
    if (j < 4) {
        *s = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *s = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void q4_0(const uint8_t *x, float *y, int blocks) {
    for (int b = 0; b < blocks; b++, x += 18, y += 32) {
        const float d = h2f(x);
        for (int j = 0; j < 16; j++) {
            const uint8_t q = x[2 + j];
            y[j] = (float)((int)(q & 0xF) - 8) * d;
            y[j + 16] = (float)((int)(q >> 4) - 8) * d;
        }
    }
}

static void q4_1(const uint8_t *x, float *y, int blocks) {
    for (int b = 0; b < blocks; b++, x += 20, y += 32) {
        const float d = h2f(x), m = h2f(x + 2);
        for (int j = 0; j < 16; j++) {
            const uint8_t q = x[4 + j];
            y[j] = (float)(q & 0xF) * d + m;
            y[j + 16] = (float)(q >> 4) * d + m;
        }
    }
}

static void q5_0(const uint8_t *x, float *y, int blocks) {
    for (int b = 0; b < blocks; b++, x += 22, y += 32) {
        const float d = h2f(x);
        uint32_t qh;
        memcpy(&qh, x + 2, 4);
        for (int j = 0; j < 16; j++) {
            const uint8_t q = x[6 + j];
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(((int)(q & 0xF) | h0) - 16) * d;
            y[j + 16] = (float)(((int)(q >> 4) | h1) - 16) * d;
        }
    }
}

static void q8_0(const uint8_t *x, float *y, int blocks) {
    for (int b = 0; b < blocks; b++, x += 34, y += 32) {
        const float d = h2f(x);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)x[2 + j] * d;
    }
}

static void q4_k(const uint8_t *x, float *y, int blocks) {
    for (int b = 0; b < blocks; b++, x += 144, y += 256) {
        const float d = h2f(x), dmin = h2f(x + 2);
        const uint8_t *q = x + 16;
        float *out = y;
        for (int j = 0; j < 256; j += 64) {
            uint8_t s1, m1, s2, m2;
            scale_min_k4(j / 32, x + 4, &s1, &m1);
            scale_min_k4(j / 32 + 1, x + 4, &s2, &m2);
            const float d1 = d * (float)s1, dm1 = dmin * (float)m1;
            const float d2 = d * (float)s2, dm2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) out[l] = d1 * (float)(q[l] & 0xF) - dm1;
            for (int l = 0; l < 32; l++) out[32 + l] = d2 * (float)(q[l] >> 4) - dm2;
            q += 32;
            out += 64;
        }
    }
}

static void q5_k(const uint8_t *x, float *y, int blocks) {
    for (int b = 0; b < blocks; b++, x += 176, y += 256) {
        const float d = h2f(x), dmin = h2f(x + 2);
        const uint8_t *qh = x + 16, *ql = x + 48;
        float *out = y;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 256; j += 64) {
            uint8_t s1, m1, s2, m2;
            scale_min_k4(j / 32, x + 4, &s1, &m1);
            scale_min_k4(j / 32 + 1, x + 4, &s2, &m2);
            const float d1 = d * (float)s1, dm1 = dmin * (float)m1;
            const float d2 = d * (float)s2, dm2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) out[l] = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - dm1;
            for (int l = 0; l < 32; l++) out[32 + l] = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - dm2;
            ql += 32;
            out += 64;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

static void q6_k(const uint8_t *x, float *y, int blocks) {
    for (int b = 0; b < blocks; b++, x += 210, y += 256) {
        const float d = h2f(x + 208);
        const uint8_t *ql = x, *qh = x + 128;
        const int8_t *sc = (const int8_t *)(x + 192);
        float *out = y;
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l++) {
                const int s = l / 16;
                const uint8_t h = qh[l];
                const int q1 = (int)((ql[l] & 0xF) | ((h & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((h >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
                out[l] = d * (float)sc[s] * (float)q1;
                out[l + 32] = d * (float)sc[s + 2] * (float)q2;
                out[l + 64] = d * (float)sc[s + 4] * (float)q3;
                out[l + 96] = d * (float)sc[s + 6] * (float)q4;
            }
            out += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void f16(const uint8_t *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = h2f(x + 2 * i);
}

static void bf16(const uint8_t *x, float *y, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)rd16(x + 2 * i) << 16;
        memcpy(y + i, &bits, 4);
    }
}

int lm_dequant_block_size(int type) {
    switch (type) {
    case 0: case 1: case 30: return 1;
    case 2: case 3: case 6: case 8: return 32;
    case 12: case 13: case 14: return 256;
    default: return 0;
    }
}

static int block_bytes(int type) {
    switch (type) {
    case 0: return 4;
    case 1: case 30: return 2;
    case 2: return 18;
    case 3: return 20;
    case 6: return 22;
    case 8: return 34;
    case 12: return 144;
    case 13: return 176;
    case 14: return 210;
    default: return 0;
    }
}

int lm_dequantize_rows(int type, const void *w, long row_bytes, int rows, int c0, int c1, float *out, long ld) {
    const int bs = lm_dequant_block_size(type);
    if (bs == 0 || c0 % bs != 0 || c1 % bs != 0 || c1 < c0) return -1;
    const int bb = block_bytes(type), blocks = (c1 - c0) / bs;
    for (int r = 0; r < rows; r++) {
        const uint8_t *x = (const uint8_t *)w + (long)r * row_bytes + (long)(c0 / bs) * bb;
        float *y = out + (long)r * ld;
        switch (type) {
        case 0: memcpy(y, x, (size_t)blocks * 4); break;
        case 1: f16(x, y, blocks); break;
        case 30: bf16(x, y, blocks); break;
        case 2: q4_0(x, y, blocks); break;
        case 3: q4_1(x, y, blocks); break;
        case 6: q5_0(x, y, blocks); break;
        case 8: q8_0(x, y, blocks); break;
        case 12: q4_k(x, y, blocks); break;
        case 13: q5_k(x, y, blocks); break;
        case 14: q6_k(x, y, blocks); break;
        }
    }
    return 0;
}
