/* metrics.c — sparsity instrumentation (SPEC §3): the fused bias + ReLU +
 * counting kernel, exact quantiles on integer histograms, the per-step
 * summary and the off/dead state of units across steps.
 * docs/metrics.md gives every definition with its conventions. */
#include "metrics.h"
#include <stdlib.h>
#include <string.h>
#include "mlp_sparse.h"
#include "util.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

const double QUANTILE_LEVELS[NUM_QUANTILES] = {
    0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0};
/* The exact form: the quantile rule needs ceil(q * N) without rounding error. */
const int QUANTILE_LEVELS_E4[NUM_QUANTILES] = {
    0, 100, 500, 1000, 2500, 5000, 7500, 9000, 9500, 9900, 10000};

UsageCounts usage_view(int64_t *buffer, int layer, int F) {
    int64_t *base = buffer + (size_t)layer * usage_stride(F);
    UsageCounts c = {base, base + F, base + 2 * (size_t)F + 1};
    return c;
}

/* ---- the fused kernel ----
 * While counting, seen_scratch[f] is a per-sequence byte counter: the low
 * 7 bits count the rows of the current sequence on which unit f fired since
 * the last flush, bit 7 records that it fired earlier in the sequence. A
 * flush every FLUSH_ROWS rows (before the low bits can carry into bit 7) and
 * at each sequence end moves the counts into the int64 fire_count. So the
 * per-element work touches one byte of state instead of an int64 counter,
 * and the distinct-units test at the sequence end is simply "byte != 0". */
enum { FLUSH_ROWS = 127 };
#define COUNT_BITS 0x7fu
#define SEEN_BIT 0x80u

/* Specialised copies (counting or not, stats or not, in place or not) are
 * produced by inlining with constant flags, so that no branch and no runtime
 * alias check is left in the vectorised loop over f. */
#define KERNEL static inline __attribute__((always_inline))

/* One row: bias + ReLU (strictly > 0 is active: NaN, -0 and 0 are not).
 * No restrict on act/pre: they may be the same row. Returns active units. */
KERNEL int relu_row(float *act, const float *pre, const float *restrict bias, int F,
                    uint8_t *restrict ctr, float *restrict premax,
                    double *restrict presum, const int count, const int stats) {
    int active = 0;
    for (int f = 0; f < F; f++) {
        float x = pre[f] + bias[f];
        int on = x > 0.0f;
        act[f] = on ? x : 0.0f;
        if (count) {
            ctr[f] = (uint8_t)(ctr[f] + on);
            active += on;
        }
        if (stats) {   /* a NaN x leaves premax unchanged (the comparison is false) */
            premax[f] = x > premax[f] ? x : premax[f];
            presum[f] += (double)x;
        }
    }
    return active;
}

/* Mid-sequence flush: counts to fire_count, keep only "seen" per unit. */
static void flush_counters(uint8_t *restrict ctr, int64_t *restrict fire_count, int F) {
    for (int f = 0; f < F; f++) {
        fire_count[f] += ctr[f] & COUNT_BITS;
        ctr[f] = ctr[f] ? SEEN_BIT : 0;
    }
}

/* Sequence end: final flush, number of distinct units that fired in the
 * sequence, and the counters cleared for the next sequence. */
static int close_sequence(uint8_t *restrict ctr, int64_t *restrict fire_count, int F) {
    int distinct = 0;
    for (int f = 0; f < F; f++) {
        fire_count[f] += ctr[f] & COUNT_BITS;
        distinct += ctr[f] != 0;
        ctr[f] = 0;
    }
    return distinct;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__)
/* One chunk of up to 16 units (lanes) at f0 of a row: relu_row's work in
 * AVX-512, and the chunk's active entries appended to unit/val from the
 * registers. Bit for bit relu_row's results (the same single add, the same
 * comparisons, the same double sums). Writes up to 16 entries
 * (ACTIVE_LIST_SLACK); returns how many are active. */
KERNEL int relu_chunk_emit(float *act, const float *pre, const float *restrict bias, int f0,
                           __mmask16 lanes, uint8_t *restrict ctr, float *restrict premax,
                           double *restrict presum, const int count, const int stats,
                           uint16_t *restrict unit, float *restrict val) {
    __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, pre + f0),
                             _mm512_maskz_loadu_ps(lanes, bias + f0));
    __mmask16 on = _mm512_mask_cmp_ps_mask(lanes, x, _mm512_setzero_ps(), _CMP_GT_OQ);
    __m512 a = _mm512_maskz_mov_ps(on, x);
    _mm512_mask_storeu_ps(act + f0, lanes, a);
    if (count) {
        __m128i c = _mm_maskz_loadu_epi8(lanes, ctr + f0);
        _mm_mask_storeu_epi8(ctr + f0, lanes, _mm_mask_add_epi8(c, on, c, _mm_set1_epi8(1)));
    }
    if (stats) {   /* a NaN x leaves premax unchanged (the comparison is false) */
        __m512 pm = _mm512_maskz_loadu_ps(lanes, premax + f0);
        _mm512_mask_storeu_ps(premax + f0, _mm512_mask_cmp_ps_mask(lanes, x, pm, _CMP_GT_OQ), x);
        __mmask8 lo = (__mmask8)lanes, hi = (__mmask8)(lanes >> 8);
        __m512d xl = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
        __m512d xh = _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1));
        _mm512_mask_storeu_pd(presum + f0, lo,
                              _mm512_add_pd(_mm512_maskz_loadu_pd(lo, presum + f0), xl));
        _mm512_mask_storeu_pd(presum + f0 + 8, hi,
                              _mm512_add_pd(_mm512_maskz_loadu_pd(hi, presum + f0 + 8), xh));
    }
    __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(f0), _mm512_setr_epi32(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    /* register-form compress + a plain store: the memory form of vcompress
     * is microcoded and slow on some CPUs (AMD Zen 4) */
    _mm512_storeu_ps(val, _mm512_maskz_compress_ps(on, a));
    _mm256_storeu_si256((__m256i *)(void *)unit,   /* 16-bit units (F <= 65536) */
                        _mm512_cvtepi32_epi16(_mm512_maskz_compress_epi32(on, idx)));
    return __builtin_popcount((unsigned)on);
}
#endif

/* One row as relu_row, also appending its active entries to unit/val in
 * the same sweep (each chunk of 16 from registers): the lists cost no extra
 * pass over the activations. *emitted = entries appended. */
KERNEL int relu_row_emit(float *act, const float *pre, const float *restrict bias, int F,
                         uint8_t *restrict ctr, float *restrict premax,
                         double *restrict presum, const int count, const int stats,
                         uint16_t *restrict unit, float *restrict val, int *emitted) {
    int k = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__)
    int f0 = 0;
    for (; f0 + 16 <= F; f0 += 16)   /* whole chunks: a constant mask, plain loads */
        k += relu_chunk_emit(act, pre, bias, f0, (__mmask16)0xffffu, ctr, premax, presum,
                             count, stats, unit + k, val + k);
    if (f0 < F)
        k += relu_chunk_emit(act, pre, bias, f0, (__mmask16)((1u << (F - f0)) - 1u), ctr,
                             premax, presum, count, stats, unit + k, val + k);
    *emitted = k;
    return count ? k : 0;
#else
    int active = relu_row(act, pre, bias, F, ctr, premax, presum, count, stats);
    for (int f = 0; f < F; f++) {   /* branch-free append, the row still in L1 */
        unit[k] = (uint16_t)f;
        val[k] = act[f];
        k += act[f] > 0.0f;
    }
    *emitted = k;
    return active;
#endif
}

/* emit: also build `lists` (mlp_sparse.h), until its limit says stop. */
KERNEL void relu_sweep(float *act, const float *pre, const float *restrict bias,
                       int B, int T, int F, const UsageCounts *c, const PreactStats *s,
                       uint8_t *restrict ctr, ActiveList *lists, const int count,
                       const int stats, const int emit) {
    float *premax = stats ? s->premax : NULL;
    double *presum = stats ? s->presum : NULL;
    size_t used = 0;
    int building = emit;
    if (count) memset(ctr, 0, (size_t)F);
    for (int b = 0; b < B; b++) {
        int since_flush = 0;
        for (int t = 0; t < T; t++) {
            size_t row = (size_t)b * T + t, off = row * (size_t)F;
            int active;
            if (building && !active_list_reserve_row(lists, used, (int)row)) building = 0;
            if (building) {
                int k;
                lists->start[row] = (int64_t)used;
                active = relu_row_emit(act + off, pre + off, bias, F, ctr, premax, presum,
                                       count, stats, lists->unit + used, lists->val + used, &k);
                used += (size_t)k;
            } else {
                active = relu_row(act + off, pre + off, bias, F, ctr, premax, presum,
                                  count, stats);
            }
            if (!count) continue;
            c->token_hist[active]++;
            if (++since_flush == FLUSH_ROWS) {
                flush_counters(ctr, c->fire_count, F);
                since_flush = 0;
            }
        }
        if (count) c->seq_hist[close_sequence(ctr, c->fire_count, F)]++;
    }
    if (emit) {
        lists->rows = B * T;
        lists->consumed = 0;
        lists->complete = building && used <= lists->limit;
        if (building) lists->start[(size_t)B * T] = (int64_t)used;
    }
}

KERNEL void relu_dispatch(float *act, const float *pre, const float *restrict bias,
                          int B, int T, int F, const UsageCounts *c, const PreactStats *s,
                          uint8_t *restrict ctr, ActiveList *l) {
    if (l) {
        if (c && s) relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 1, 1, 1);
        else if (c) relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 1, 0, 1);
        else if (s) relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 0, 1, 1);
        else relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 0, 0, 1);
    } else {
        if (c && s) relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 1, 1, 0);
        else if (c) relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 1, 0, 0);
        else if (s) relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 0, 1, 0);
        else relu_sweep(act, pre, bias, B, T, F, c, s, ctr, l, 0, 0, 0);
    }
}

/* In place: one pointer, so the compiler sees each element read then
 * written at the same index and needs no alias check. Both entry points stay
 * out of line: inlined into relu_count_forward, relu_copy's restrict
 * qualifiers are lost and the loop gets a runtime alias test. */
static __attribute__((noinline)) void relu_inplace(float *a, const float *restrict bias, int B, int T, int F,
                         const UsageCounts *c, const PreactStats *s, uint8_t *restrict ctr,
                         ActiveList *l) {
    relu_dispatch(a, a, bias, B, T, F, c, s, ctr, l);
}

static __attribute__((noinline)) void relu_copy(float *restrict act, const float *restrict pre,
                      const float *restrict bias, int B, int T, int F,
                      const UsageCounts *c, const PreactStats *s, uint8_t *restrict ctr,
                      ActiveList *l) {
    relu_dispatch(act, pre, bias, B, T, F, c, s, ctr, l);
}

void relu_count_forward(float *act, const float *pre, const float *bias,
                        int B, int T, int F, UsageCounts *counts,
                        PreactStats *pre_stats, uint8_t *seen_scratch) {
    relu_count_forward_lists(act, pre, bias, B, T, F, counts, pre_stats, seen_scratch, NULL);
}

void relu_count_forward_lists(float *act, const float *pre, const float *bias,
                              int B, int T, int F, UsageCounts *counts,
                              PreactStats *pre_stats, uint8_t *seen_scratch,
                              ActiveList *lists) {
    if (B <= 0 || T <= 0 || F <= 0) return;
    if (counts && !seen_scratch) die("relu_count_forward: counting needs seen_scratch");
    if (lists && (lists->F != F || (size_t)B * T > (size_t)lists->max_rows))
        die("relu_count_forward: active lists for %d rows of %d units, not %d x %d",
            lists->max_rows, lists->F, B * T, F);
    if (act == pre) {
        relu_inplace(act, bias, B, T, F, counts, pre_stats, seen_scratch, lists);
        return;
    }
    /* relu_copy promises the compiler the two tensors are disjoint. */
    uintptr_t a = (uintptr_t)act, p = (uintptr_t)pre;
    uintptr_t bytes = (uintptr_t)((size_t)B * T * F * sizeof(float));
    if (a < p + bytes && p < a + bytes)
        die("relu_count_forward: act and pre overlap without being the same tensor");
    relu_copy(act, pre, bias, B, T, F, counts, pre_stats, seen_scratch, lists);
}

/* ---- quantiles and the per-step summary ---- */

int hist_quantile(const int64_t *hist, int F, int64_t total, int q_e4) {
    if (q_e4 < 0 || q_e4 > 10000) die("hist_quantile: level %d/10000 is outside [0, 1]", q_e4);
    if (total <= 0) return 0;   /* no items: no order statistic; 0 by convention */
    /* k = ceil(q_e4 * total / 10000) without forming q_e4 * total, which
     * overflows int64 once total exceeds ~9.2e14: split total = 10000 h + r. */
    int64_t k = (total / 10000) * q_e4 + ((total % 10000) * q_e4 + 9999) / 10000;
    if (k < 1) k = 1;
    int64_t cum = 0;
    for (int v = 0; v <= F; v++) {
        cum += hist[v];
        if (cum >= k) return v;
    }
    die("hist_quantile: the histogram holds %lld items, fewer than its total %lld",
        (long long)cum, (long long)total);
}

/* Items, and the sum of item values, of a histogram over values 0..F. */
static void hist_sums(const int64_t *hist, int F, int64_t *items, int64_t *value_sum) {
    int64_t n = 0, sum = 0;
    for (int k = 0; k <= F; k++) {
        n += hist[k];
        sum += (int64_t)k * hist[k];
    }
    *items = n;
    *value_sum = sum;
}

void usage_summarize(const UsageCounts *c, int F, LayerMetrics *out) {
    if (F < 1) die("usage_summarize: a layer needs at least one hidden unit (F = %d)", F);
    int64_t N, S, token_units, seq_units, used = 0, hot = 0;
    hist_sums(c->token_hist, F, &N, &token_units);
    hist_sums(c->seq_hist, F, &S, &seq_units);
    for (int f = 0; f < F; f++) {
        used += c->fire_count[f] > 0;
        hot += 2 * c->fire_count[f] > N;     /* on more than half of the N tokens */
    }
    /* every result is one division of exact integers: the same bits on any
     * rank count, since the integers are summed exactly across ranks */
    out->token_use_mean = N > 0 ? (double)token_units / ((double)N * F) : 0.0;
    out->seq_use_mean = S > 0 ? (double)seq_units / ((double)S * F) : 0.0;
    out->batch_use = (double)used / F;
    out->hot_frac = (double)hot / F;
    for (int i = 0; i < NUM_QUANTILES; i++) {
        int q = QUANTILE_LEVELS_E4[i];
        out->token_use_q[i] = (double)hist_quantile(c->token_hist, F, N, q) / F;
        out->seq_use_q[i] = (double)hist_quantile(c->seq_hist, F, S, q) / F;
    }
}

/* ---- the off/dead state across steps ---- */

void build_death_tracker(DeathTracker *t, int F, long window) {
    if (F < 1) die("death tracker: a layer needs at least one hidden unit (F = %d)", F);
    if (window < 1) die("dead_window must be at least 1 step (got %ld)", window);
    t->F = F;
    t->window = window;
    t->last_fire = xmalloc((size_t)F * sizeof *t->last_fire);
    for (int f = 0; f < F; f++) t->last_fire[f] = -1;
    t->fires_since_snap = xcalloc((size_t)F, sizeof *t->fires_since_snap);
    t->tokens_since_snap = 0;
    t->born = xmalloc((size_t)F * sizeof *t->born);
    for (int f = 0; f < F; f++) t->born[f] = -1;
}

void free_death_tracker(DeathTracker *t) {
    free(t->last_fire);
    free(t->fires_since_snap);
    free(t->born);
    memset(t, 0, sizeof *t);
}

void death_tracker_reset_snapshot(DeathTracker *t) {
    memset(t->fires_since_snap, 0, (size_t)t->F * sizeof *t->fires_since_snap);
    t->tokens_since_snap = 0;
}

/* Off at step s iff s - last_fire >= W, last_fire being the last step <= s
 * with a firing (-1 if none). "Off at s-1" uses last_fire before this
 * step's update; at s = 0 that gives -1 - (-1) = 0 < W, i.e. every unit is
 * on before step 0, with no special case. */
void death_tracker_step(DeathTracker *t, long step, const int64_t *fire_count,
                        int64_t tokens, LayerMetrics *m) {
    int64_t s = step, W = t->window, off = 0;
    int32_t turned_off = 0, revived = 0, redied = 0;
    int64_t redied_life = 0;
    for (int f = 0; f < t->F; f++) {
        int64_t last = t->last_fire[f];
        /* a repeated or backwards step would double-count and corrupt the state */
        if (last >= s)
            die("death tracker: step %ld is not after step %lld, already recorded",
                step, (long long)last);
        int fired = fire_count[f] > 0;
        int was_off = (s - 1) - last >= W;
        if (fired) last = s;
        int now_off = s - last >= W;
        turned_off += now_off && !was_off;
        revived += was_off && fired;
        if (now_off && !was_off && t->born[f] >= 0) {   /* a resampled unit died again */
            redied++;
            redied_life += last - t->born[f];
            t->born[f] = -1;
        }
        off += now_off;
        t->last_fire[f] = last;
        t->fires_since_snap[f] += fire_count[f];
    }
    t->tokens_since_snap += tokens;
    m->dead_frac = (double)off / t->F;
    m->turned_off = turned_off;
    m->revived = revived;
    m->redied = redied;
    m->redied_life = redied_life;
}
