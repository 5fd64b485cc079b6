// Quantized matrix products, paged attention and a thread pool for LMEngine (ggml block layouts).
// AVX2/FMA when compiled for it, portable C otherwise; both give the same integer sums.
#ifndef LM_KERNELS_H
#define LM_KERNELS_H
#include <stdint.h>
#include <stddef.h>
#include "lm_kquants.h"
#include "lm_amx.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Activations of 32 values quantized to int8 as ggml's AVX2 path quantizes them (scale
/// d = amax/127 rounded to F16, round half to even); s = d·Σq rounded to F16 (Q4_1 uses it).
typedef struct { float d; float s; int8_t qs[32]; } lm_act_q8;

/// x (n floats, n a multiple of 32) into n/32 activation blocks.
void lm_quantize_acts(const float *x, lm_act_q8 *y, int n);

/* y += B·(scale·A·x) for one token; A rank×in_dim, B transposed (rank×out_dim); scratch: rank floats. */
void lm_lora_apply(int in_dim, int rank, int out_dim, const float *a, const float *bt, float scale,
                   const float *x, float *y, float *scratch);

/// Weight kinds of lm_matmul: 0 = Q4_1, 1 = Q8_0, 2 = Q4_0, 7 = Q5_0 (activations lm_act_q8);
/// 3 = Q4_K, 4 = Q6_K (activations lm_block_q8_k); 5 = F16, 6 = F32 (activations F32).
/// F16/F32 are tiled here rather than handed to BLAS: a BLAS's summation order depends on the
/// batch's shape and the threads, and a token's numbers must not.
/// out[b * out_stride + r] = row r of w · activations of token b, for r in [r0, r1) and b < batch;
/// activations are `x_stride` bytes apart. Tiled: each pair of weight rows is read once for up
/// to four tokens. An element's value does not depend on batch, r0 or r1.
void lm_matmul(int kind, int n, const void *w, long row_bytes, const void *x, long x_stride, int batch,
               float *out, long out_stride, int r0, int r1);

/// The packed layout (packed.c): rows in groups of 16, each block's 16 rows side by side so a
/// vector holds the same four values of 8 or 16 rows, one row a lane. For kinds 0, 1, 2 and 7
/// (lm_pack_supported); it takes the same bytes as the original, rounded up to whole groups.
int lm_pack_supported(int kind);
long lm_pack_bytes(int kind, int n, int rows);
/// Packs groups [g0, g1) of a `rows` × n matrix (original blocks, rows row_bytes apart) into dst
/// (lm_pack_bytes long); groups are independent, so threads may pack different ones.
void lm_pack_rows(int kind, int n, const void *w, long row_bytes, int rows, int g0, int g1, void *dst);
/// Row `row` of a packed matrix back in the original block format (n / 32 blocks into dst).
void lm_unpack_row(int kind, int n, const void *packed, int row, void *dst);
/// lm_matmul on a packed matrix: the same arguments but the weights, the same bits as lm_matmul
/// on the original on every table.
void lm_matmul_packed(int kind, int n, const void *packed, const void *x, long x_stride, int batch,
                      float *out, long out_stride, int r0, int r1);

/// Attention of one head over positions [first, n_pos) of a paged F16 cache: position p is row
/// table[p / block] * block + p % block; rows are `stride` halves apart. softcap > 0: scores are
/// soft-capped, cap · tanh(s / cap), before the softmax (Gemma 2); 0: not. scores: n_pos - first floats.
void lm_attention_paged(const float *q, const uint16_t *k, const uint16_t *v, long stride, const int32_t *table,
                        int block, int first, int n_pos, int hd, float scale, float softcap, float *scores, float *out);

/// y = GELU(g) · u elementwise (tanh approximation, through an F16 table as ggml's CPU GeGLU); y may be g.
void lm_geglu(const float *g, const float *u, float *y, int n);

/// Values [c0, c1) of `rows` rows of a GGUF tensor of ggml type `type` (0 F32, 1 F16, 2 Q4_0,
/// 3 Q4_1, 6 Q5_0, 8 Q8_0, 12 Q4_K, 13 Q5_K, 14 Q6_K, 30 BF16) as float32: row r's blocks start
/// at w + r·row_bytes, its values go to out + r·ld. c0 and c1 are multiples of the type's block
/// size. Each value is GGUF's Dequantize.block's bit for bit. Returns 0, or -1 for a type or
/// span it cannot expand.
int lm_dequantize_rows(int type, const void *w, long row_bytes, int rows, int c0, int c1, float *out, long ld);
/// Values a block of ggml type `type` holds (0 for a type lm_dequantize_rows does not know).
int lm_dequant_block_size(int type);

/// log Σ exp(x[i]) over n values: the maximum taken out, the exponentials summed in double.
float lm_log_sum_exp(const float *x, int n);
/// Whether the processor and the OS allow kernel table `table` here: 0 AVX2/FMA/F16C (on other
/// architectures, the portable C), 1 AVX-512 (F, DQ, BW, VL, VNNI, with the ZMM state enabled),
/// 2 AMX (AMX-TILE, -INT8, -BF16 and AVX-512; asking it asks Linux for the tile data state with
/// arch_prctl(ARCH_REQ_XCOMP_PERM), without which tile instructions raise SIGILL).
int lm_isa_available(int table);
/// The quantized products' table: 0 AVX2 (or portable C), 1 AVX-512 (VPDPBUSD tiles), 2 AMX
/// (tile multiplies for batches of 8 tokens or more, the AVX-512 tile below that); all give
/// bit-identical results. The best the machine has, unless PRS_ISA=avx2|avx512 forces one.
int lm_q8_isa(void);
/// Switches the products to `isa` (each only where the machine has it, else the best below);
/// returns the previous one.
int lm_q8_set_isa(int isa);
/// A seeded draw from softmax(x · inv_temp) over all n tokens, min-p applied (0: off); u in [0, 1).
int lm_draw_full(const float *x, int n, float inv_temp, float min_p, double u, float *scratch);

/// The `group` query heads (64 wide, consecutive in q and out) sharing one key/value head;
/// identical results to lm_attention_paged per head. scores: group × (n_pos - first) floats.
void lm_attention_group64(const float *q, int group, const uint16_t *k, const uint16_t *v, long stride,
                          const int32_t *table, int block, int first, int n_pos, float scale, float softcap,
                          float *scores, float *out);

/// The memory read bandwidth with `threads` threads, in GB/s (10^9 bytes): each sums its share
/// of a `bytes` buffer, best of `passes` passes.
double lm_read_bandwidth(int threads, size_t bytes, int passes);

float lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);

// ---- Thread pool ----
typedef struct lm_pool lm_pool;
lm_pool *lm_pool_create(int threads);
void lm_pool_destroy(lm_pool *pool);
int lm_pool_threads(const lm_pool *pool);
/// Nanoseconds the pool's threads (the caller included) have spent running chunks, summed over
/// threads, and the calling thread has spent inside the pool's calls. Against threads × wall
/// time, busy is the computing, wall - inside the caller's own serial work, the rest waiting.
void lm_pool_stats(lm_pool *pool, uint64_t *busy_ns, uint64_t *inside_ns);

/// y = x / sqrt(mean(x²) + eps) · w over n values, the sum of squares in double (ggml's order).
void lm_rms_norm(const float *x, const float *w, float eps, float *y, int n);

/// What a product's input goes through before the product, run by the pool as part of the
/// product's job. Every op ends by quantizing the input, y, into q8 and/or q8k (either may be
/// NULL; token b's blocks at q8 + b·n/32 and q8k + b·n/256).
enum {
    LM_PRE_QUANTIZE = 0,  // y as it is
    LM_PRE_RMS_NORM = 1,  // x += add (when add is not NULL), then y = rms_norm(x) · w
    LM_PRE_SILU = 2,      // y = silu(y) · up
    LM_PRE_GEGLU = 3,     // y = gelu(y) · up (lm_geglu)
};
typedef struct {
    int op; int n;
    float *y; float *x; const float *add; const float *up; const float *w; float eps;
    lm_act_q8 *q8; void *q8k;  // lm_block_q8_k (lm_kquants.h)
} lm_prelude;
/// The prelude for token `row`, elements [e0, e1) (whole quantization blocks; the whole row
/// for LM_PRE_RMS_NORM). Rows are n apart in every array.
void lm_prelude_run(const lm_prelude *pre, int row, int e0, int e1);

/// One weight matrix's product for a batch: rows split among the pool's threads.
typedef struct {
    int kind; int n; const void *w; long row_bytes; const void *x; long x_stride;
    float *out; long out_stride; int rows;
    int packed;  // w is lm_pack_rows's layout (row_bytes unused)
} lm_matmul_job;
/// Runs `pre` (when not NULL) for `batch` tokens, then each job; threads claim chunks of the
/// prelude, then chunks of rows that shrink towards each job's end, until none is left.
void lm_pool_matmul(lm_pool *pool, const lm_prelude *pre, const lm_matmul_job *jobs, int count, int batch);

/// One token's attention: its queries (heads × hd), its page table, the positions it attends to
/// ([first, n_pos): first > 0 on a sliding-window layer), its output.
typedef struct { const float *q; const int32_t *table; int n_pos; float *out; int first; } lm_attn_slot;
typedef struct {
    const lm_attn_slot *slots; int count; int heads; int kv_heads; int hd;
    const uint16_t *k; const uint16_t *v; long stride; int block; float scale; float softcap;
    float *scores; int max_pos;  // scratch: threads × max_pos floats (max_pos ≥ heads/kv_heads × positions)
} lm_attn_job;
/// Attention for every (slot, head); threads claim them one at a time. scores: threads × max_pos floats.
void lm_pool_attention(lm_pool *pool, const lm_attn_job *job);

/// fn(ctx, item, thread) for every item in [0, count), items claimed one at a time by the
/// pool's threads (thread in [0, threads), 0 the caller); returns when all are done.
void lm_pool_for(lm_pool *pool, int count, void (*fn)(void *ctx, int item, int thread), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
