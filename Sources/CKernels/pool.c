// A persistent pool of worker threads for the forward pass. A job is cut into many small
// chunks that threads claim one at a time, the caller included, so a worker that the OS has
// descheduled (another process on the core) never holds the step up: the others take its
// chunks. Workers spin briefly between jobs (a decode step runs a few hundred of them,
// microseconds apart), then sleep, so an idle engine costs no CPU.
//
// The claim word packs the job's generation, its chunk count and the next chunk, so a worker
// can only claim chunks of the job it saw published, and the job's description stays
// unchanged while any of its chunks is unfinished.
//
// A product's job can start with a prelude (the norm, the gated activation and the int8
// quantization of its input) cut into chunks of its own: chunks are claimed in order, so a
// thread that claims the first row chunk waits only until every prelude chunk is finished,
// with no second publication. Row chunks shrink as the job nears its end (each a share of
// what is left), so the last one to finish holds the others up for little time.
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

enum { LM_SPIN = 1 << 12, LM_MATMUL_ROWS = 16, LM_MAX_JOBS = 4, LM_MAX_CHUNKS = 4096 };

#define GEN(c) ((c) >> 40)
#define TOTAL(c) (((c) >> 20) & 0xFFFFF)
#define NEXT(c) ((c) & 0xFFFFF)

typedef struct {
    int kind;  // 0: products, 1: attention, 2: grouped attention, 3: the caller's items
    int batch;
    lm_matmul_job jobs[LM_MAX_JOBS];
    // Products: chunks [0, pre_chunks) run the prelude, pre_per_row of them a row; row chunk
    // i (after those) is rows [row0[i], row0[i + 1]) of job[i] (row0[i + 1] taken as that
    // job's end when the next chunk belongs to the next job).
    int pre_chunks, pre_per_row, pre_span;
    lm_prelude pre;
    int16_t job[LM_MAX_CHUNKS + 1];
    int32_t row0[LM_MAX_CHUNKS + 1];
    lm_attn_job attn;
    void (*fn)(void *ctx, int item, int thread);
    void *ctx;
} task;

// A thread's own running total, on a cache line of its own, so counting costs no traffic
// between cores; lm_pool_stats sums them.
typedef struct { _Alignas(64) _Atomic uint64_t ns; } busy_counter;

struct lm_pool {
    int threads;
    pthread_t *ids;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int sleepers;
    _Atomic int stop;
    uint64_t generation;
    // The claim word and the finished count are written by every thread for every chunk: a
    // cache line each, away from what threads only read.
    _Alignas(64) _Atomic uint64_t claim;
    _Alignas(64) _Atomic int finished;
    _Alignas(64) task t;
    busy_counter *busy;          // per thread: time spent running chunks
    _Atomic uint64_t inside_ns;  // time the calling thread spent in the pool's calls
};

typedef struct { lm_pool *pool; int index; } worker_arg;

// Prelude chunk c: a span of one token's row.
static void run_prelude_chunk(const task *t, int c) {
    int row = c / t->pre_per_row, e0 = (c % t->pre_per_row) * t->pre_span;
    int e1 = e0 + t->pre_span < t->pre.n ? e0 + t->pre_span : t->pre.n;
    lm_prelude_run(&t->pre, row, e0, e1);
}

static void run_chunk(const task *t, int chunk, int thread) {
    if (t->kind == 0) {
        if (chunk < t->pre_chunks) { run_prelude_chunk(t, chunk); return; }
        int i = chunk - t->pre_chunks;
        const lm_matmul_job *job = &t->jobs[t->job[i]];
        int r0 = t->row0[i], r1 = t->job[i + 1] == t->job[i] ? t->row0[i + 1] : job->rows;
        if (job->packed) lm_matmul_packed(job->kind, job->n, job->w, job->x, job->x_stride, t->batch, job->out, job->out_stride, r0, r1);
        else lm_matmul(job->kind, job->n, job->w, job->row_bytes, job->x, job->x_stride, t->batch, job->out, job->out_stride, r0, r1);
    } else if (t->kind == 3) {
        t->fn(t->ctx, chunk, thread);
    } else if (t->kind == 2) {
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
        // One item per (token, key/value head): the query heads of a group together.
        const lm_attn_job *a = &t->attn;
        const lm_attn_slot *s = &a->slots[chunk / a->kv_heads];
        int kvh = chunk % a->kv_heads, group = a->heads / a->kv_heads;
        lm_attention_group64(s->q + (long)kvh * group * 64, group, a->k + (long)kvh * 64, a->v + (long)kvh * 64, a->stride,
                             s->table, a->block, s->first, s->n_pos, a->scale, a->softcap, a->scores + (long)thread * a->max_pos, s->out + (long)kvh * group * 64);
#endif
    } else {
        const lm_attn_job *a = &t->attn;
        const lm_attn_slot *s = &a->slots[chunk / a->heads];
        int h = chunk % a->heads, kvh = h / (a->heads / a->kv_heads);
        lm_attention_paged(s->q + (long)h * a->hd, a->k + (long)kvh * a->hd, a->v + (long)kvh * a->hd, a->stride, s->table,
                           a->block, s->first, s->n_pos, a->hd, a->scale, a->softcap, a->scores + (long)thread * a->max_pos, s->out + (long)h * a->hd);
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
        int chunk = (int)NEXT(c);
        if (p->t.kind == 0 && chunk >= p->t.pre_chunks && p->t.pre_chunks) {
            // Every prelude chunk was claimed before this one: wait (not counted as busy) for
            // the last of them to finish.
            int spins = 0;
            while (atomic_load_explicit(&p->finished, memory_order_acquire) < p->t.pre_chunks) {
                if (++spins < LM_SPIN) LM_PAUSE(); else sched_yield();
            }
        }
        uint64_t t0 = now_ns();
        run_chunk(&p->t, chunk, thread);
        atomic_store_explicit(&p->busy[thread].ns, atomic_load_explicit(&p->busy[thread].ns, memory_order_relaxed) + (now_ns() - t0),
                              memory_order_relaxed);
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
    lm_pool *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
    memset(p, 0, sizeof *p);
    p->threads = threads < 1 ? 1 : threads;
    p->busy = aligned_alloc(64, (size_t)p->threads * sizeof(busy_counter));
    memset(p->busy, 0, (size_t)p->threads * sizeof(busy_counter));
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

void lm_pool_stats(lm_pool *p, uint64_t *busy_ns, uint64_t *inside_ns) {
    uint64_t busy = 0;
    for (int i = 0; i < p->threads; i++) busy += atomic_load_explicit(&p->busy[i].ns, memory_order_relaxed);
    *busy_ns = busy;
    *inside_ns = atomic_load_explicit(&p->inside_ns, memory_order_relaxed);
}

// Publishes p->t as a new generation of `total` chunks, takes part, and waits for the rest.
static void run(lm_pool *p, int total) {
    if (total <= 0) return;
    uint64_t entered = now_ns();
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
    atomic_fetch_add_explicit(&p->inside_ns, now_ns() - entered, memory_order_relaxed);
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
    free(p->busy);
    free(p);
}

// A row chunk is a share of the rows the job has left, so chunks shrink towards its end, and
// a multiple of 16 rows (the AMX tiles take 16 rows at a time, the one-token tile 8).
// At most `limit` chunks: the last takes whatever is left.
static int add_row_chunks(task *t, int n, int limit, int j, int rows, int threads, int min_rows) {
    for (int r = 0; r < rows; ) {
        int size = (rows - r + 2 * threads - 1) / (2 * threads);
        size = size < min_rows ? min_rows : (size + 15) & ~15;
        if (n == limit - 1) size = rows - r;
        t->job[n] = (int16_t)j; t->row0[n] = r;
        n++; r += size;
    }
    return n;
}

void lm_pool_matmul(lm_pool *p, const lm_prelude *pre, const lm_matmul_job *jobs, int count, int batch) {
    while (count > LM_MAX_JOBS) {
        lm_pool_matmul(p, pre, jobs, LM_MAX_JOBS, batch);
        pre = NULL;
        jobs += LM_MAX_JOBS; count -= LM_MAX_JOBS;
    }
    task *t = &p->t;
    t->kind = 0; t->batch = batch;
    t->pre_chunks = 0;
    if (pre) {
        t->pre = *pre;
        // A row a chunk for the norm (it reduces the whole row); otherwise spans of whole
        // quantization blocks, enough for every thread to have some.
        if (pre->op == LM_PRE_RMS_NORM) {
            t->pre_per_row = 1; t->pre_span = pre->n;
        } else {
            int unit = pre->q8k ? 256 : 32, units = pre->n / unit;
            int want = (2 * p->threads + batch - 1) / batch;
            int per = (units + want - 1) / want;
            if (per < 1) per = 1;
            t->pre_span = per * unit;
            t->pre_per_row = (pre->n + t->pre_span - 1) / t->pre_span;
        }
        t->pre_chunks = t->pre_per_row * batch;
        if (p->threads == 1 || count == 0) {
            // Nothing to share (or nothing after it): the calling thread runs the prelude alone.
            for (int c = 0; c < t->pre_chunks; c++) run_prelude_chunk(t, c);
            t->pre_chunks = 0;
        }
    }
    int n = 0;
    for (int j = 0; j < count; j++) {
        t->jobs[j] = jobs[j];
        n = add_row_chunks(t, n, n + (LM_MAX_CHUNKS - n) / (count - j), j, jobs[j].rows, p->threads, LM_MATMUL_ROWS);
    }
    t->job[n] = -1;
    run(p, t->pre_chunks + n);
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

void lm_pool_for(lm_pool *p, int count, void (*fn)(void *ctx, int item, int thread), void *ctx) {
    p->t.kind = 3; p->t.fn = fn; p->t.ctx = ctx;
    run(p, count);
}
