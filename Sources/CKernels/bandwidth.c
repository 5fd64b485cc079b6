// The machine's memory read bandwidth, for the benchmarks' "share of bandwidth" figures: threads
// each sum their slice of a buffer far larger than the caches, with 256-bit loads (the widest
// the baseline has; a read is bound by memory, not by the load width), best of several passes.
#include "lm_kernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

typedef struct { const uint8_t *p; size_t bytes; double sink; pthread_barrier_t *start; } slice;

static void *read_slice(void *arg) {
    slice *s = arg;
    pthread_barrier_wait(s->start);
#if defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= s->bytes; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(s->p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(s->p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(s->p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(s->p + i + 96)));
    }
    int64_t out[4];
    _mm256_storeu_si256((__m256i *)out, _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    s->sink = (double)(out[0] + out[1] + out[2] + out[3]);
#else
    uint64_t acc = 0;
    for (size_t i = 0; i + 8 <= s->bytes; i += 8) { uint64_t v; memcpy(&v, s->p + i, 8); acc += v; }
    s->sink = (double)acc;
#endif
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double lm_read_bandwidth(int threads, size_t bytes, int passes) {
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    bytes = bytes / (128 * (size_t)threads) * 128 * (size_t)threads;
    uint8_t *buf = aligned_alloc(64, bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes; i += 4096) buf[i] = (uint8_t)i;  // fault every page in first
    memset(buf, 1, bytes);
    double best = 0;
    for (int pass = 0; pass < passes; pass++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
        slice s[64];
        pthread_t ids[64];
        size_t each = bytes / (size_t)threads;
        for (int t = 0; t < threads; t++) {
            s[t] = (slice){ buf + (size_t)t * each, each, 0, &start };
            pthread_create(&ids[t], NULL, read_slice, &s[t]);
        }
        pthread_barrier_wait(&start);
        double t0 = now();
        for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
        double rate = (double)bytes / (now() - t0) / 1e9;
        pthread_barrier_destroy(&start);
        if (rate > best) best = rate;
    }
    free(buf);
    return best;
}
