// AVX2 helpers shared by kernels.c and packed.c (included where __AVX2__ is defined).
#ifndef LM_AVX2_BITS_H
#define LM_AVX2_BITS_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/// 32 bits (bit j for byte j; Q5_0's fifth bits) -> 32 bytes, 0x10 where the bit is set.
static inline __m256i lm_fifth_bits(const uint8_t *p) {
    uint32_t bits; memcpy(&bits, p, 4);
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i mask = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), pick), mask);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, mask), _mm256_set1_epi8(0x10));
}

#endif
