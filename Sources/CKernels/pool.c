// A persistent pool of worker threads for the forward pass. A job is cut into many small
// chunks that threads claim one at a time, the caller included, so a worker that the OS has
// descheduled (another process on the core) never holds the step up: the others take its
// chunks. Workers spin briefly between jobs (a decode step runs a few hundred of them,
// microseconds apart), then sleep, so an idle engine costs no CPU.
//
// The claim word packs the job's generation, its chunk count and the next chunk, so a worker
// can only claim chunks of the job it saw published, and the job's description stays
// unchanged while any of its chunks is unfinished.
#include "lm_kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define LM_PAUSE() _mm_pause()
#else
#define LM_PAUSE() ((void)0)
#endif

enum { LM_SPIN = 1 << 12, LM_MATMUL_ROWS = 16, LM_MAX_JOBS = 4 };

#define GEN(c) ((c) >> 40)
#define TOTAL(c) (((c) >> 20) & 0xFFFFF)
#define NEXT(c) ((c) & 0xFFFFF)

typedef struct {
    int kind;  // 0: products, 1: attention
    int batch;
    int count;
    lm_matmul_job jobs[LM_MAX_JOBS];
    int first_chunk[LM_MAX_JOBS + 1];
    int chunk_rows[LM_MAX_JOBS];
    lm_attn_job attn;
} task;

struct lm_pool {
    int threads;
    pthread_t *ids;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int sleepers;
    _Atomic uint64_t claim;
    _Atomic int finished;
    _Atomic int stop;
    uint64_t generation;
    task t;
    _Atomic uint64_t busy_ns;  // time threads spent running chunks, summed over threads
};

typedef struct { lm_pool *pool; int index; } worker_arg;

static void run_chunk(const task *t, int chunk, int thread) {
    if (t->kind == 0) {
        int j = 0;
        while (chunk >= t->first_chunk[j + 1]) j++;
        const lm_matmul_job *job = &t->jobs[j];
        int r0 = (chunk - t->first_chunk[j]) * t->chunk_rows[j];
        int r1 = r0 + t->chunk_rows[j] < job->rows ? r0 + t->chunk_rows[j] : job->rows;
        lm_matmul(job->kind, job->n, job->w, job->row_bytes, job->x, job->x_stride, t->batch, job->out, job->out_stride, r0, r1);
    } else if (t->kind == 2) {
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
        // One item per (token, key/value head): the query heads of a group together.
        const lm_attn_job *a = &t->attn;
        const lm_attn_slot *s = &a->slots[chunk / a->kv_heads];
        int kvh = chunk % a->kv_heads, group = a->heads / a->kv_heads;
        lm_attention_group64(s->q + (long)kvh * group * 64, group, a->k + (long)kvh * 64, a->v + (long)kvh * 64, a->stride,
                             s->table, a->block, s->first, s->n_pos, a->scale, a->scores + (long)thread * a->max_pos, s->out + (long)kvh * group * 64);
#endif
    } else {
        const lm_attn_job *a = &t->attn;
        const lm_attn_slot *s = &a->slots[chunk / a->heads];
        int h = chunk % a->heads, kvh = h / (a->heads / a->kv_heads);
        lm_attention_paged(s->q + (long)h * a->hd, a->k + (long)kvh * a->hd, a->v + (long)kvh * a->hd, a->stride, s->table,
                           a->block, s->first, s->n_pos, a->hd, a->scale, a->scores + (long)thread * a->max_pos, s->out + (long)h * a->hd);
    }
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Claims and runs chunks of generation `gen` until none is left.
static void work(lm_pool *p, uint64_t gen, int thread) {
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if (GEN(c) != gen || NEXT(c) >= TOTAL(c)) return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        uint64_t t0 = now_ns();
        run_chunk(&p->t, (int)NEXT(c), thread);
        atomic_fetch_add_explicit(&p->busy_ns, now_ns() - t0, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->finished, 1, memory_order_release);
        c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *worker(void *arg_) {
    worker_arg *arg = arg_;
    lm_pool *p = arg->pool;
    int index = arg->index;
    free(arg);
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        uint64_t gen;
        while ((gen = GEN(atomic_load_explicit(&p->claim, memory_order_acquire))) == seen) {
            if (++spins < LM_SPIN) { LM_PAUSE(); continue; }
            pthread_mutex_lock(&p->mutex);
            p->sleepers++;
            while (GEN(atomic_load_explicit(&p->claim, memory_order_acquire)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mutex);
            p->sleepers--;
            pthread_mutex_unlock(&p->mutex);
            if (atomic_load(&p->stop)) return NULL;
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = gen;
        work(p, gen, index);
    }
}

lm_pool *lm_pool_create(int threads) {
    lm_pool *p = calloc(1, sizeof *p);
    p->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->ids = calloc((size_t)p->threads, sizeof(pthread_t));
    for (int i = 1; i < p->threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        a->pool = p; a->index = i;
        pthread_create(&p->ids[i], NULL, worker, a);
    }
    return p;
}

int lm_pool_threads(const lm_pool *p) { return p->threads; }

uint64_t lm_pool_busy_ns(lm_pool *p) { return atomic_load_explicit(&p->busy_ns, memory_order_relaxed); }

// Publishes p->t as a new generation of `total` chunks, takes part, and waits for the rest.
static void run(lm_pool *p, int total) {
    if (total <= 0) return;
    uint64_t gen = (p->generation + 1) & 0xFFFFFF;
    if (gen == 0) gen = 1;
    p->generation = gen;
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (gen << 40) | ((uint64_t)total << 20), memory_order_release);
    if (p->threads > 1 && total > 1) {
        pthread_mutex_lock(&p->mutex);
        if (p->sleepers) pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    work(p, gen, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->finished, memory_order_acquire) < total) {
        if (++spins < LM_SPIN) LM_PAUSE(); else sched_yield();
    }
}

void lm_pool_destroy(lm_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->claim, (uint64_t)1 << 40);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 1; i < p->threads; i++) pthread_join(p->ids[i], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p->ids);
    free(p);
}

void lm_pool_matmul(lm_pool *p, const lm_matmul_job *jobs, int count, int batch) {
    while (count > LM_MAX_JOBS) {
        lm_pool_matmul(p, jobs, LM_MAX_JOBS, batch);
        jobs += LM_MAX_JOBS; count -= LM_MAX_JOBS;
    }
    task *t = &p->t;
    t->kind = 0; t->batch = batch; t->count = count;
    t->first_chunk[0] = 0;
    for (int j = 0; j < count; j++) {
        t->jobs[j] = jobs[j];
        // About four chunks per thread: long contiguous runs of weight rows for the prefetcher,
        // and enough chunks that a descheduled thread's share is taken by the others.
        int rows = jobs[j].rows / (4 * p->threads);
        rows = rows < LM_MATMUL_ROWS ? LM_MATMUL_ROWS : (rows + 1) & ~1;
        t->chunk_rows[j] = rows;
        t->first_chunk[j + 1] = t->first_chunk[j] + (jobs[j].rows + rows - 1) / rows;
    }
    run(p, t->first_chunk[count]);
}

void lm_pool_attention(lm_pool *p, const lm_attn_job *job) {
    p->t.attn = *job;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    // Grouped when there are enough (token, key/value head) items to share among the threads;
    // both ways give identical numbers.
    int group = job->heads / job->kv_heads;
    if (job->hd == 64 && group > 1 && group <= 8 && job->count * job->kv_heads >= 4 * p->threads) {
        p->t.kind = 2;
        run(p, job->count * job->kv_heads);
        return;
    }
#endif
    p->t.kind = 1;
    run(p, job->count * job->heads);
}
