// The x86 quantized tile, included by kernels.c once per instruction set with LM_TILE_NAME,
// LM_TILE_DOT (32 bytes unsigned × signed → 8 int32 lane sums of 4 products) and LM_TILE_ATTR
// defined.
//
// The order every table keeps (the portable tile's, and the AMX tiles'): for each output, a
// block's 32 products are summed in integers (exact: no sum comes near int32's range, and no
// product pair reaches int16 saturation for Q4_0, Q4_1, Q5_0 or Q8_0), then
//     acc = fma(d_w · d_x, (float)Σ, acc)   block by block, in order,
// and Q4_1's offsets apart, corr = fma(m_w, s_x, corr) block by block; the output is acc + corr.
// Here the tile's NR × NT outputs (at most eight, output k = row k / NT against token k % NT) are
// the eight lanes of one register: the lane sums of all outputs are added across in one
// horizontal tree per block, so each lane holds its output's exact block sum.
LM_TILE_ATTR LM_INLINE void LM_TILE_NAME(int kind, int nb, const uint8_t *w0, long row_bytes, const lm_act_q8 *const *xs,
                         int NR, int NT, float *out, long out_stride) {
    __m256 acc = _mm256_setzero_ps(), corr = _mm256_setzero_ps();
    const int bb = kind == 0 ? 20 : kind == 1 ? 34 : kind == 7 ? 22 : 18;
    for (int b = 0; b < nb; b++) {
        __m256i q[8], qa[8], y[4], v[8];
        uint16_t dh[8], mh[8], hd[8], hm[8];
        for (int i = 0; i < NR; i++) {
            const uint8_t *p = w0 + i * row_bytes + (long)b * bb;
            memcpy(&dh[i], p, 2);
            if (kind == 0) { memcpy(&mh[i], p + 2, 2); q[i] = nibbles32(p + 4); }
            else if (kind == 1) { q[i] = _mm256_loadu_si256((const __m256i *)(p + 2)); }
            else if (kind == 7) { q[i] = _mm256_sub_epi8(_mm256_or_si256(nibbles32(p + 6), lm_fifth_bits(p + 2)), _mm256_set1_epi8(16)); }
            else { q[i] = _mm256_sub_epi8(nibbles32(p + 2), _mm256_set1_epi8(8)); }
            if (kind != 0) qa[i] = _mm256_sign_epi8(q[i], q[i]);
        }
        float da[8], sa[8];
        for (int j = 0; j < NT; j++) y[j] = _mm256_loadu_si256((const __m256i *)xs[j][b].qs);
        for (int k = 0; k < 8; k++) {
            if (k < NR * NT) {
                const int i = k / NT, j = k % NT;
                v[k] = kind == 0 ? LM_TILE_DOT(q[i], y[j]) : LM_TILE_DOT(qa[i], _mm256_sign_epi8(y[j], q[i]));
                da[k] = xs[j][b].d; sa[k] = xs[j][b].s;
                hd[k] = dh[i]; hm[k] = kind == 0 ? mh[i] : 0;
            } else { v[k] = _mm256_setzero_si256(); da[k] = 0; sa[k] = 0; hd[k] = 0; hm[k] = 0; }
        }
        const __m256 sum = _mm256_cvtepi32_ps(sum8x8_epi32(v));
        acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)hd)), _mm256_loadu_ps(da)), sum, acc);
        if (kind == 0) corr = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)hm)), _mm256_loadu_ps(sa), corr);
    }
    float o[8];
    _mm256_storeu_ps(o, _mm256_add_ps(acc, corr));
    for (int k = 0; k < NR * NT; k++) out[(k % NT) * out_stride + k / NT] = o[k];
}
