// The x86 quantized tile, included by kernels.c once per instruction set with LM_TILE_NAME,
// LM_TILE_DOT (32 bytes unsigned × signed → 8 int32 lane sums of 4 products, as float) and
// LM_TILE_ATTR defined. The integer lane sums are exact in every variant (no product pair
// reaches int16 saturation for Q4_0, Q4_1, Q5_0 or Q8_0), and the float accumulation is the same
// code, so every variant gives bit-identical results.
LM_TILE_ATTR LM_INLINE void LM_TILE_NAME(int kind, int nb, const uint8_t *w0, long row_bytes, const lm_act_q8 *const *xs,
                         int NR, int NT, float *out, long out_stride) {
    __m256 acc[2][4];
    // Q4_1's offsets, Σ min · s, one lane per token (two registers instead of eight scalars).
    __m128 corr[2] = { _mm_setzero_ps(), _mm_setzero_ps() };
    for (int i = 0; i < 2; i++) for (int j = 0; j < 4; j++) acc[i][j] = _mm256_setzero_ps();
    const int bb = kind == 0 ? 20 : kind == 1 ? 34 : kind == 7 ? 22 : 18;
    for (int b = 0; b < nb; b++) {
        __m256i q[2];
        float dw[2], mw[2];
        for (int i = 0; i < NR; i++) {
            const uint8_t *p = w0 + i * row_bytes + (long)b * bb;
            dw[i] = scale_at(p);
            if (kind == 0) { mw[i] = scale_at(p + 2); q[i] = nibbles32(p + 4); }
            else if (kind == 1) { q[i] = _mm256_loadu_si256((const __m256i *)(p + 2)); }
            else if (kind == 7) { q[i] = _mm256_sub_epi8(_mm256_or_si256(nibbles32(p + 6), fifth_bits(p + 2)), _mm256_set1_epi8(16)); }
            else { q[i] = _mm256_sub_epi8(nibbles32(p + 2), _mm256_set1_epi8(8)); }
        }
        __m256i qa[2];
        if (kind != 0) for (int i = 0; i < NR; i++) qa[i] = _mm256_sign_epi8(q[i], q[i]);
        if (kind == 0) {
            __m128 s4 = _mm_setr_ps(xs[0][b].s, NT > 1 ? xs[1][b].s : 0, NT > 2 ? xs[2][b].s : 0, NT > 3 ? xs[3][b].s : 0);
            for (int i = 0; i < NR; i++) corr[i] = _mm_fmadd_ps(_mm_set1_ps(mw[i]), s4, corr[i]);
        }
        for (int j = 0; j < NT; j++) {
            const lm_act_q8 *a = xs[j] + b;
            __m256i y = _mm256_loadu_si256((const __m256i *)a->qs);
            for (int i = 0; i < NR; i++) {
                __m256 dot = kind == 0 ? LM_TILE_DOT(q[i], y) : LM_TILE_DOT(qa[i], _mm256_sign_epi8(y, q[i]));
                acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_broadcast_ss(&dw[i]), _mm256_broadcast_ss(&a->d)), dot, acc[i][j]);
            }
        }
    }
    for (int i = 0; i < NR; i++) {
        float c[4];
        _mm_storeu_ps(c, corr[i]);
        for (int j = 0; j < NT; j++) out[j * out_stride + i] = hsum8(acc[i][j]) + (kind == 0 ? c[j] : 0.0f);
    }
}
