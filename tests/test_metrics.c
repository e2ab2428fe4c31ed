/* test_metrics.c — the sparsity metrics (SPEC §3) against brute force:
 * the fused ReLU counting kernel on hand-built and random tensors, the exact
 * quantile rule against sorting, the per-step summary, and the off/dead
 * window rule against a direct reading of its definition. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "metrics.h"
#include "util.h"

/* ---- helpers ---- */

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t next_u64(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}
static double uniform01(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The rank of the q-quantile found by search: the smallest k >= 1 with
 * k >= q*N, i.e. k*10000 >= q_e4*N (no ceil formula to share a bug with). */
static int rank_by_search(int q_e4, int n) {
    int k = 1;
    while ((int64_t)k * 10000 < (int64_t)q_e4 * n) k++;
    return k;
}

/* The q-quantile of raw values by sorting. */
static int sorted_quantile(const int *values, int n, int q_e4) {
    if (n == 0) return 0;
    int *s = xmalloc((size_t)n * sizeof *s);
    memcpy(s, values, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_int);
    int v = s[rank_by_search(q_e4, n) - 1];
    free(s);
    return v;
}

static void to_hist(const int *values, int n, int F, int64_t *hist) {
    memset(hist, 0, (size_t)(F + 1) * sizeof *hist);
    for (int i = 0; i < n; i++) hist[values[i]]++;
}

/* Runs fn in a child process; 1 if it ended through die() (exit code 1). */
static int dies(void (*fn)(void)) {
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        fn();
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

/* ---- constants and layout ---- */

static void test_constants(void) {
    CHECK(QUANTILE_LEVELS[0] == 0.0 && QUANTILE_LEVELS[NUM_QUANTILES - 1] == 1.0,
          "quantile levels run from 0 to 1");
    CHECK(QUANTILE_LEVELS_E4[0] == 0 && QUANTILE_LEVELS_E4[NUM_QUANTILES - 1] == 10000,
          "E4 levels run from 0 to 10000");
    const double spec[NUM_QUANTILES] = {0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1};
    for (int i = 0; i < NUM_QUANTILES; i++) {
        CHECK(QUANTILE_LEVELS[i] == spec[i], "level %d is %g, SPEC says %g", i,
              QUANTILE_LEVELS[i], spec[i]);
        CHECK(QUANTILE_LEVELS_E4[i] == (int)lround(spec[i] * 10000), "E4 level %d is %d", i,
              QUANTILE_LEVELS_E4[i]);
    }
}

static void test_usage_view(void) {
    enum { F = 5, L = 3 };
    CHECK(usage_stride(F) == 3 * F + 2, "stride %zu", usage_stride(F));
    int64_t buf[L * (3 * F + 2)];
    for (int l = 0; l < L; l++) {
        UsageCounts u = usage_view(buf, l, F);
        int64_t *base = buf + l * (3 * F + 2);
        CHECK(u.fire_count == base, "layer %d fire_count offset", l);
        CHECK(u.token_hist == base + F, "layer %d token_hist offset", l);
        CHECK(u.seq_hist == base + 2 * F + 1, "layer %d seq_hist offset", l);
        /* seq_hist[F] is the layer's last slot: the next layer starts right after */
        CHECK(u.seq_hist + F + 1 == buf + (l + 1) * (3 * F + 2), "layer %d end", l);
    }
}

/* ---- hist_quantile ---- */

/* Every multiset of n values in 0..F (n <= 3, F = 3), every q in 0..1 in
 * steps of 1/10000, against sorting. */
static void test_quantile_small_n(void) {
    enum { F = 3 };
    int bad = 0, cases = 0;
    for (int n = 1; n <= 3; n++)
        for (int a = 0; a <= F; a++)
            for (int b = n >= 2 ? a : F; b <= F; b++)
                for (int c = n >= 3 ? b : F; c <= F; c++) {
                    int src[3] = {a, b, c}, v[3];
                    for (int i = 0; i < n; i++) v[i] = src[n - 1 - i];   /* unsorted on purpose */
                    int64_t hist[F + 1];
                    to_hist(v, n, F, hist);
                    for (int q = 0; q <= 10000; q++) {
                        int got = hist_quantile(hist, F, n, q);
                        if (got != sorted_quantile(v, n, q) && bad++ < 5)
                            fprintf(stderr, "n=%d {%d,%d,%d} q=%d: %d\n", n, a, b, c, q, got);
                    }
                    cases++;
                }
    CHECK(cases == 4 + 10 + 20, "enumerated %d multisets", cases);
    CHECK(bad == 0, "%d small-N quantiles differ from sorting", bad);
}

static void test_quantile_exact_cases(void) {
    /* values 0..9 once each: q = 0.7 gives k = 7 exactly, x(7) = 6; a
     * floating ceil(0.7 * 10) = ceil(7.000000000000001) would say 7 */
    int64_t h10[10];
    for (int i = 0; i < 10; i++) h10[i] = 1;
    CHECK(hist_quantile(h10, 9, 10, 7000) == 6, "q=0.7 of 0..9: %d", hist_quantile(h10, 9, 10, 7000));
    CHECK(hist_quantile(h10, 9, 10, 7001) == 7, "q=0.7001 of 0..9");
    CHECK(hist_quantile(h10, 9, 10, 0) == 0, "q=0 is the minimum");
    CHECK(hist_quantile(h10, 9, 10, 10000) == 9, "q=1 is the maximum");
    /* the worked example of docs/metrics.md: {0,0,1,3,3}, F = 4 */
    int64_t hw[5] = {2, 1, 0, 2, 0};
    const int want[NUM_QUANTILES] = {0, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3};
    for (int i = 0; i < NUM_QUANTILES; i++)
        CHECK(hist_quantile(hw, 4, 5, QUANTILE_LEVELS_E4[i]) == want[i], "worked example q=%g",
              QUANTILE_LEVELS[i]);
    CHECK(hist_quantile(hw, 4, 5, 4000) == 0, "q=0.4: k = 2 exactly, x(2) = 0");
    /* no items */
    int64_t empty[5] = {0};
    CHECK(hist_quantile(empty, 4, 0, 5000) == 0 && hist_quantile(empty, 4, 0, 10000) == 0,
          "total 0 gives 0");
    /* q_e4 * total overflows int64 here; the split computation must not */
    int64_t big[2] = {INT64_C(1) << 61, INT64_C(1) << 61};
    int64_t total = INT64_C(1) << 62;
    CHECK(hist_quantile(big, 1, total, 5000) == 0, "2^62 items, q=0.5 -> 0");
    CHECK(hist_quantile(big, 1, total, 5001) == 1, "2^62 items, q=0.5001 -> 1");
    CHECK(hist_quantile(big, 1, total, 10000) == 1, "2^62 items, q=1 -> 1");
    int64_t odd[2] = {INT64_C(1000000000000000), 7};
    CHECK(hist_quantile(odd, 1, INT64_C(1000000000000007), 9999) == 0, "1e15+7 items, q=.9999");
    CHECK(hist_quantile(odd, 1, INT64_C(1000000000000007), 10000) == 1, "1e15+7 items, q=1");
}

/* N distinct values 0..N-1 (x(k) = k-1, so any error in k shows), every
 * level in steps of 1/10000. Floating ceil(q*N) fails here, e.g. at N = 25,
 * q = 0.28 (7.000000000000001 -> 8); for the 11 reported levels it happens
 * to be right up to N = 1e5 at least, but the rule is exact for any q, N. */
static void test_quantile_distinct(void) {
    static int64_t hist[200];
    for (int i = 0; i < 200; i++) hist[i] = 1;
    int bad = 0;
    for (int n = 1; n <= 200; n++)
        for (int q = 0; q <= 10000; q++)
            bad += hist_quantile(hist, n - 1, n, q) != rank_by_search(q, n) - 1;
    CHECK(bad == 0, "%d quantiles of distinct values have the wrong rank", bad);
    CHECK(hist_quantile(hist, 24, 25, 2800) == 6, "N=25 q=0.28: x(7) = 6");
}

/* Tie-heavy and random multisets, larger N, against sorting. */
static void test_quantile_random(void) {
    int bad = 0;
    for (int trial = 0; trial < 400; trial++) {
        int F = 1 + (int)(next_u64() % 12), n = 1 + (int)(next_u64() % 60);
        int span = trial % 2 ? 2 : F + 1;   /* half the trials: only values 0 and 1 */
        int v[60];
        for (int i = 0; i < n; i++) v[i] = (int)(next_u64() % (uint64_t)span);
        int64_t hist[13];
        to_hist(v, n, F, hist);
        for (int i = 0; i < NUM_QUANTILES + 20; i++) {
            int q = i < NUM_QUANTILES ? QUANTILE_LEVELS_E4[i] : (int)(next_u64() % 10001);
            bad += hist_quantile(hist, F, n, q) != sorted_quantile(v, n, q);
        }
    }
    CHECK(bad == 0, "%d random quantiles differ from sorting", bad);
}

static void die_bad_level(void) { int64_t h[2] = {1, 1}; hist_quantile(h, 1, 2, 10001); }
static void die_negative_level(void) { int64_t h[2] = {1, 1}; hist_quantile(h, 1, 2, -1); }
static void die_short_hist(void) { int64_t h[2] = {1, 1}; hist_quantile(h, 1, 3, 10000); }

/* ---- relu_count_forward on a hand-built tensor ---- */

enum { HB = 2, HT = 3, HF = 4 };
static const float H_BIAS[HF] = {0.5f, -1.0f, -0.0f, 0.0f};
/* x = pre + bias; ties (x == 0), -0, NaN and a tiny positive value */
static const float h_pre[HB * HT * HF] = {
    -0.5f, 1.0f, 0.0f, 2.0f,        /* x {0, 0, 0, 2}: 1 active        */
    -1.0f, 2.5f, -0.0f, NAN,        /* x {-.5, 1.5, -0, NaN}: 1 active */
    0.25f, -2.0f, 1e-30f, -1.0f,    /* x {.75, -3, 1e-30, -1}: 2       */
    -0.5f, 1.0f, -5.0f, -1e-30f,    /* x {0, 0, -5, -1e-30}: 0         */
    -0.5f, 1.0f, -5.0f, 0.0f,       /* x {0, 0, -5, 0}: 0              */
    1.0f, 1.0f, -5.0f, 3.0f};       /* x {1.5, 0, -5, 3}: 2            */
static const float H_ACT[HB * HT * HF] = {
    0, 0, 0, 2,  0, 1.5f, 0, 0,  0.75f, 0, 1e-30f, 0,
    0, 0, 0, 0,  0, 0, 0, 0,     1.5f, 0, 0, 3};

static void check_hand_counts(const int64_t *u, int times, const char *what) {
    const int64_t fire[HF] = {2, 1, 1, 2}, tok[HF + 1] = {2, 2, 2, 0, 0};
    const int64_t seq[HF + 1] = {0, 0, 1, 0, 1};
    int bad = 0;
    for (int f = 0; f < HF; f++) bad += u[f] != times * fire[f];
    for (int k = 0; k <= HF; k++) bad += u[HF + k] != times * tok[k];
    for (int k = 0; k <= HF; k++) bad += u[2 * HF + 1 + k] != times * seq[k];
    CHECK(bad == 0, "%s: %d counts differ from the hand count", what, bad);
}

static void check_hand_stats(const float *premax, const double *presum, const char *what) {
    const float max_want[HF] = {1.5f, 1.5f, 1e-30f, 3.0f};
    const double sum_want[3] = {
        0.0 + -0.5 + 0.75 + 0.0 + 0.0 + 1.5, 0.0 + 1.5 + -3.0 + 0.0 + 0.0 + 0.0,
        ((((0.0 + -0.0) + (double)1e-30f) + -5.0) + -5.0) + -5.0};
    for (int f = 0; f < HF; f++) CHECK(premax[f] == max_want[f], "%s premax[%d] %g", what, f, premax[f]);
    for (int f = 0; f < 3; f++) CHECK(presum[f] == sum_want[f], "%s presum[%d] %.17g", what, f, presum[f]);
    CHECK(isnan(presum[3]), "%s: a NaN pre-activation makes presum NaN", what);
}

static void test_relu_hand(void) {
    for (int inplace = 0; inplace <= 1; inplace++) {
        const char *what = inplace ? "hand, in place" : "hand, separate";
        float act[HB * HT * HF], pre_copy[HB * HT * HF], premax[HF];
        double presum[HF] = {0};
        int64_t usage[3 * HF + 2] = {0};
        uint8_t seen[HF];
        memset(seen, 0xff, sizeof seen);   /* whatever the scratch holds must not matter */
        for (int f = 0; f < HF; f++) premax[f] = -INFINITY;
        memcpy(pre_copy, h_pre, sizeof h_pre);
        float *out = inplace ? pre_copy : act;
        UsageCounts u = usage_view(usage, 0, HF);
        PreactStats st = {premax, presum};
        relu_count_forward(out, pre_copy, H_BIAS, HB, HT, HF, &u, &st, seen);
        CHECK(memcmp(out, H_ACT, sizeof H_ACT) == 0, "%s: activations (bitwise, +0 for off)", what);
        if (!inplace) CHECK(memcmp(pre_copy, h_pre, sizeof h_pre) == 0, "%s: pre untouched", what);
        check_hand_counts(usage, 1, what);
        check_hand_stats(premax, presum, what);
        /* a second call (another chunk of the same batch) adds to the counts */
        memcpy(pre_copy, h_pre, sizeof h_pre);
        relu_count_forward(out, pre_copy, H_BIAS, HB, HT, HF, &u, NULL, seen);
        check_hand_counts(usage, 2, what);
    }
}

/* ---- relu_count_forward on random tensors against a naive recount ---- */

typedef struct {
    int B, T, F;
    float *pre, *bias;
    int64_t *usage;            /* naive counts, layout of usage_view */
    float *act, *premax;
    double *presum;
    int *tok_counts, *seq_counts;   /* raw per-token / per-sequence values */
} Naive;

/* Row by row for activations and token counts, column by column over each
 * sequence for the distinct units: a different path from the kernel's. */
static void naive_recount(Naive *z) {
    int B = z->B, T = z->T, F = z->F;
    UsageCounts u = usage_view(z->usage, 0, F);
    memset(z->usage, 0, usage_stride(F) * sizeof(int64_t));
    for (int f = 0; f < F; f++) { z->premax[f] = -INFINITY; z->presum[f] = 0.0; }
    for (int n = 0; n < B * T; n++) {
        int active = 0;
        for (int f = 0; f < F; f++) {
            float x = z->pre[(size_t)n * F + f] + z->bias[f];
            z->act[(size_t)n * F + f] = x > 0.0f ? x : 0.0f;
            if (x > 0.0f) { u.fire_count[f]++; active++; }
            if (x > z->premax[f]) z->premax[f] = x;
            z->presum[f] += x;
        }
        z->tok_counts[n] = active;
        u.token_hist[active]++;
    }
    for (int b = 0; b < B; b++) {
        int distinct = 0;
        for (int f = 0; f < F; f++) {
            int any = 0;
            for (int t = 0; t < T; t++) any |= z->act[((size_t)b * T + t) * F + f] > 0.0f;
            distinct += any;
        }
        z->seq_counts[b] = distinct;
        u.seq_hist[distinct]++;
    }
}

/* Random pre-activations with per-unit firing rates from ~0 to ~60%, exact
 * ties (pre = -bias), and planted units that fire only at rows 0, 126, 127
 * of each sequence or on every row (T > 255 overflows a byte counter). */
static void fill_random(Naive *z) {
    int F = z->F, N = z->B * z->T;
    for (int f = 0; f < F; f++) z->bias[f] = (float)(-1.0 + 1.3 * uniform01());
    for (int n = 0; n < N; n++) {
        int t = n % z->T;
        for (int f = 0; f < F; f++) {
            float p = (float)(2.0 * uniform01() - 1.0);
            if (next_u64() % 16 == 0) p = -z->bias[f];
            if (f < 3) p = t == (f == 0 ? 0 : 125 + f) ? 5.0f : -5.0f;
            if (f == 3) p = 5.0f;
            z->pre[(size_t)n * F + f] = p;
        }
    }
}

/* Slots of a that differ from b, or (b NULL) that are not zero. */
static int count_diffs(const int64_t *a, const int64_t *b, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != (b ? b[i] : 0);
    return d;
}

/* One shape, every code path of the kernel against the naive recount. */
static void check_random_shape(Naive *z, const char *tag) {
    int F = z->F;
    size_t n = (size_t)z->B * z->T * F, stride = usage_stride(F);
    float *work = xmalloc(n * sizeof(float)), *out = xmalloc(n * sizeof(float));
    float *premax = xmalloc((size_t)F * sizeof(float));
    double *presum = xmalloc((size_t)F * sizeof(double));
    int64_t *usage = xmalloc(stride * sizeof(int64_t));
    uint8_t *seen = xmalloc((size_t)F);
    for (int path = 0; path < 5; path++) {   /* counts+stats, counts, stats, none; path 4 separate */
        int count = path == 0 || path == 1 || path == 4, stats = path == 0 || path == 2 || path == 4;
        memcpy(work, z->pre, n * sizeof(float));
        memset(usage, 0, stride * sizeof(int64_t));
        memset(seen, 0xa5, (size_t)F);
        for (int f = 0; f < F; f++) { premax[f] = -INFINITY; presum[f] = 0.0; }
        UsageCounts u = usage_view(usage, 0, F);
        PreactStats st = {premax, presum};
        float *dst = path == 4 ? out : work;
        relu_count_forward(dst, work, z->bias, z->B, z->T, F, count ? &u : NULL,
                           stats ? &st : NULL, count ? seen : NULL);
        CHECK(memcmp(dst, z->act, n * sizeof(float)) == 0, "%s path %d: activations", tag, path);
        if (path == 4) CHECK(memcmp(work, z->pre, n * sizeof(float)) == 0, "%s: pre kept", tag);
        /* without counting the (zeroed) counts must stay untouched */
        int dc = count_diffs(usage, count ? z->usage : NULL, stride);
        CHECK(dc == 0, "%s path %d: %d count slots differ", tag, path, dc);
        if (!stats) continue;
        int bad = 0;
        for (int f = 0; f < F; f++)
            bad += premax[f] != z->premax[f] || presum[f] != z->presum[f];
        CHECK(bad == 0, "%s path %d: %d units' premax/presum differ", tag, path, bad);
    }
    free(work); free(out); free(premax); free(presum); free(usage); free(seen);
}

/* The summary of the kernel's counts against the raw per-token and
 * per-sequence values: means, sorted quantiles, batch use. */
static void check_summary_against_raw(const Naive *z, const char *tag) {
    int F = z->F, N = z->B * z->T, B = z->B;
    UsageCounts u = usage_view(z->usage, 0, F);
    LayerMetrics m;
    usage_summarize(&u, F, &m);
    int64_t tok_sum = 0, seq_sum = 0, used = 0, hot = 0;
    for (int n = 0; n < N; n++) tok_sum += z->tok_counts[n];
    for (int b = 0; b < B; b++) seq_sum += z->seq_counts[b];
    for (int f = 0; f < F; f++) {
        int any = 0, on = 0;
        for (int n = 0; n < N; n++) {
            any |= z->act[(size_t)n * F + f] > 0.0f;
            on += z->act[(size_t)n * F + f] > 0.0f;
        }
        used += any;
        hot += on > N - on;                  /* active on more than half of the tokens */
    }
    CHECK(m.token_use_mean == (double)tok_sum / ((double)N * F), "%s token_use_mean", tag);
    CHECK(m.seq_use_mean == (double)seq_sum / ((double)B * F), "%s seq_use_mean", tag);
    CHECK(m.batch_use == (double)used / F, "%s batch_use %g", tag, m.batch_use);
    CHECK(m.hot_frac == (double)hot / F, "%s hot_frac %g, brute force %g", tag, m.hot_frac,
          (double)hot / F);
    int bad = 0;
    for (int i = 0; i < NUM_QUANTILES; i++) {
        bad += m.token_use_q[i] != (double)sorted_quantile(z->tok_counts, N, QUANTILE_LEVELS_E4[i]) / F;
        bad += m.seq_use_q[i] != (double)sorted_quantile(z->seq_counts, B, QUANTILE_LEVELS_E4[i]) / F;
    }
    CHECK(bad == 0, "%s: %d quantiles differ from sorting the raw values", tag, bad);
}

static void test_relu_random(void) {
    const int shapes[][3] = {{1, 1, 1},   {1, 1, 130},  {3, 1, 17},   {1, 7, 64},
                             {2, 126, 33}, {2, 127, 65}, {1, 128, 16}, {2, 254, 40},
                             {1, 255, 97}, {2, 256, 5},  {1, 381, 71}, {3, 50, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        Naive z = {.B = shapes[s][0], .T = shapes[s][1], .F = shapes[s][2]};
        size_t n = (size_t)z.B * z.T * z.F;
        z.pre = xmalloc(n * sizeof(float)); z.act = xmalloc(n * sizeof(float));
        z.bias = xmalloc((size_t)z.F * sizeof(float)); z.premax = xmalloc((size_t)z.F * sizeof(float));
        z.presum = xmalloc((size_t)z.F * sizeof(double));
        z.usage = xmalloc(usage_stride(z.F) * sizeof(int64_t));
        z.tok_counts = xmalloc((size_t)z.B * z.T * sizeof(int));
        z.seq_counts = xmalloc((size_t)z.B * sizeof(int));
        fill_random(&z);
        naive_recount(&z);
        char tag[64];
        snprintf(tag, sizeof tag, "B=%d T=%d F=%d", z.B, z.T, z.F);
        check_random_shape(&z, tag);
        check_summary_against_raw(&z, tag);
        free(z.pre); free(z.act); free(z.bias); free(z.premax); free(z.presum);
        free(z.usage); free(z.tok_counts); free(z.seq_counts);
    }
}

/* All-zero and all-active layers, and the summary of each. */
static void test_relu_extremes(void) {
    enum { B = 3, T = 5, F = 67, N = B * T };
    static float pre[N * F];
    float bias[F];
    int64_t usage[3 * F + 2];
    uint8_t seen[F];
    for (int active = 0; active <= 1; active++) {
        for (int i = 0; i < N * F; i++) pre[i] = active ? 1.0f : -1.0f;
        for (int f = 0; f < F; f++) bias[f] = active ? 0.0f : 1.0f;   /* all-zero: exact ties */
        memset(usage, 0, sizeof usage);
        UsageCounts u = usage_view(usage, 0, F);
        relu_count_forward(pre, pre, bias, B, T, F, &u, NULL, seen);
        int bad = 0, want_tok = active ? F : 0;
        for (int f = 0; f < F; f++) bad += u.fire_count[f] != (active ? N : 0);
        for (int k = 0; k <= F; k++) bad += u.token_hist[k] != (k == want_tok ? N : 0);
        for (int k = 0; k <= F; k++) bad += u.seq_hist[k] != (k == want_tok ? B : 0);
        for (int i = 0; i < N * F; i++) bad += pre[i] != (active ? 1.0f : 0.0f);
        CHECK(bad == 0, "all-%s layer: %d wrong values", active ? "active" : "zero", bad);
        LayerMetrics m;
        usage_summarize(&u, F, &m);
        double w = active;
        CHECK(m.token_use_mean == w && m.seq_use_mean == w && m.batch_use == w,
              "all-%s means %g %g %g", active ? "active" : "zero", m.token_use_mean,
              m.seq_use_mean, m.batch_use);
        int qbad = 0;
        for (int i = 0; i < NUM_QUANTILES; i++) qbad += m.token_use_q[i] != w || m.seq_use_q[i] != w;
        CHECK(qbad == 0, "all-%s quantiles: %d wrong", active ? "active" : "zero", qbad);
    }
}

static float ov_buf[64];
static void die_partial_overlap(void) {
    float b[4] = {0};
    relu_count_forward(ov_buf + 4, ov_buf, b, 1, 4, 4, NULL, NULL, NULL);
}
static void die_no_scratch(void) {
    float b[4] = {0};
    int64_t usage[14] = {0};
    UsageCounts u = usage_view(usage, 0, 4);
    relu_count_forward(ov_buf, ov_buf, b, 1, 4, 4, &u, NULL, NULL);
}

/* ---- usage_summarize on hand-built counts ---- */

static void test_summarize_hand(void) {
    enum { F = 4 };
    /* tokens with 0, 2, 2, 4 active units; sequences with 3 and 4 */
    int64_t usage[3 * F + 2] = {3, 0, 1, 0,   1, 0, 2, 0, 1,   0, 0, 0, 1, 1};
    UsageCounts u = usage_view(usage, 0, F);
    LayerMetrics m;
    m.dead_frac = 0.125; m.turned_off = 7; m.revived = 9;
    usage_summarize(&u, F, &m);
    CHECK(m.token_use_mean == 0.5, "token_use_mean %g (8/16)", m.token_use_mean);
    CHECK(m.seq_use_mean == 0.875, "seq_use_mean %g (7/8)", m.seq_use_mean);
    CHECK(m.batch_use == 0.5, "batch_use %g (2 of 4 units)", m.batch_use);
    CHECK(m.hot_frac == 0.25, "hot_frac %g (unit 0 fires on 3 of 4 tokens; unit 2 on 1)",
          m.hot_frac);
    const double tq[NUM_QUANTILES] = {0, 0, 0, 0, 0, 0.5, 0.5, 1, 1, 1, 1};
    const double sq[NUM_QUANTILES] = {.75, .75, .75, .75, .75, .75, 1, 1, 1, 1, 1};
    for (int i = 0; i < NUM_QUANTILES; i++) {
        CHECK(m.token_use_q[i] == tq[i], "token_use_q[%d] %g want %g", i, m.token_use_q[i], tq[i]);
        CHECK(m.seq_use_q[i] == sq[i], "seq_use_q[%d] %g want %g", i, m.seq_use_q[i], sq[i]);
    }
    CHECK(m.dead_frac == 0.125 && m.turned_off == 7 && m.revived == 9,
          "usage_summarize leaves the death fields alone");
    /* more than 10000 tokens: q = 0.99 and q = 1 differ by one token */
    int64_t many[3 * F + 2] = {0, 0, 0, 1,   19999, 0, 0, 0, 1,   0, 19999, 0, 0, 1};
    u = usage_view(many, 0, F);
    usage_summarize(&u, F, &m);
    CHECK(m.token_use_q[NUM_QUANTILES - 1] == 1.0 && m.token_use_q[NUM_QUANTILES - 2] == 0.0,
          "20000 tokens: q=1 is the one full token (%g), q=.99 is 0 (%g)",
          m.token_use_q[NUM_QUANTILES - 1], m.token_use_q[NUM_QUANTILES - 2]);
    CHECK(m.seq_use_q[NUM_QUANTILES - 1] == 1.0 && m.seq_use_q[0] == 0.25,
          "20000 sequences: q=1 %g, q=0 %g", m.seq_use_q[NUM_QUANTILES - 1], m.seq_use_q[0]);
    CHECK(m.batch_use == 0.25, "one unit of four fired: batch_use %g", m.batch_use);
    int64_t zero[3 * F + 2] = {0};
    u = usage_view(zero, 0, F);
    memset(&m, 0xff, sizeof m);   /* NaN patterns: every field must be written */
    usage_summarize(&u, F, &m);
    int bad = m.token_use_mean != 0.0 || m.seq_use_mean != 0.0 || m.batch_use != 0.0;
    for (int i = 0; i < NUM_QUANTILES; i++) bad += m.token_use_q[i] != 0.0 || m.seq_use_q[i] != 0.0;
    CHECK(bad == 0, "empty counts summarize to zeros (%d fields wrong)", bad);
}

/* ---- the death tracker ---- */

/* Steps a one-unit tracker through a firing pattern; checks each step. */
static void run_single_unit(long W, const int *fires, const int *dead, const int *turned,
                            const int *revived, int steps, const char *what) {
    DeathTracker t;
    build_death_tracker(&t, 1, W);
    int bad = 0;
    for (int s = 0; s < steps; s++) {
        int64_t fc = fires[s] ? 3 : 0;
        LayerMetrics m;
        death_tracker_step(&t, s, &fc, 10, &m);
        if (m.dead_frac != dead[s] || m.turned_off != turned[s] || m.revived != revived[s]) {
            bad++;
            fprintf(stderr, "%s step %d: dead %g turned %d revived %d\n", what, s, m.dead_frac,
                    m.turned_off, m.revived);
        }
    }
    CHECK(bad == 0, "%s: %d steps wrong", what, bad);
    free_death_tracker(&t);
}

static void test_death_window(void) {
    /* W = 3: fires at 2 and 9. Off exactly at 2 + W = 5 (turned_off once),
     * off through 8, revived and on at 9, off again at 12. */
    const int f1[13] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    const int d1[13] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1};
    const int t1[13] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1};
    const int r1[13] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    run_single_unit(3, f1, d1, t1, r1, 13, "W=3 fire at 2 and 9");
    /* step-0 convention: on before step 0, so with W = 4 a unit that never
     * fires turns off at step 3 (as if it fired at step -1), counted once */
    const int f2[6] = {0}, d2[6] = {0, 0, 0, 1, 1, 1}, t2[6] = {0, 0, 0, 1, 0, 0}, r2[6] = {0};
    run_single_unit(4, f2, d2, t2, r2, 6, "W=4 never fires");
    /* W = 1: never firing -> off and turned_off at step 0 */
    const int d3[3] = {1, 1, 1}, t3[3] = {1, 0, 0};
    run_single_unit(1, f2, d3, t3, r2, 3, "W=1 never fires");
    /* W = 1: fires at 0 and 2 -> off at 1, revived at 2, off at 3 */
    const int f4[4] = {1, 0, 1, 0}, d4[4] = {0, 1, 0, 1}, t4[4] = {0, 1, 0, 1}, r4[4] = {0, 0, 1, 0};
    run_single_unit(1, f4, d4, t4, r4, 4, "W=1 fires at 0 and 2");
    /* always firing: never off */
    const int f5[5] = {1, 1, 1, 1, 1};
    run_single_unit(1, f5, r2, r2, r2, 5, "W=1 always fires");
}

/* off(s) read straight from the definition: no firing in the W steps
 * s-W+1 .. s, all of which exist (steps before 0 count as firing). */
static int brute_off(const uint8_t *fired, int s, long W) {
    if (s < 0) return 0;
    for (long j = s - W + 1; j <= s; j++)
        if (j < 0 || fired[j]) return 0;
    return 1;
}

static void test_death_random(void) {
    enum { F = 20, STEPS = 60 };
    const long windows[4] = {1, 2, 3, 7};
    for (int w = 0; w < 4; w++) {
        long W = windows[w];
        static uint8_t fired[F][STEPS];
        double rate[F];
        for (int f = 0; f < F; f++) rate[f] = f < 4 ? 0.0 : uniform01() * (f < 10 ? 0.3 : 1.0);
        DeathTracker t;
        build_death_tracker(&t, F, W);
        int bad = 0;
        for (int s = 0; s < STEPS; s++) {
            int64_t fc[F];
            for (int f = 0; f < F; f++) {
                fired[f][s] = uniform01() < rate[f] * (s > 40 && f % 3 == 0 ? 0.0 : 1.0);
                fc[f] = fired[f][s] ? 1 + (int64_t)(next_u64() % 5) : 0;
            }
            LayerMetrics m;
            death_tracker_step(&t, s, fc, 64, &m);
            int off = 0, turned = 0, revived = 0;
            for (int f = 0; f < F; f++) {
                int now = brute_off(fired[f], s, W), before = brute_off(fired[f], s - 1, W);
                off += now; turned += now && !before; revived += before && fired[f][s];
                int64_t last = -1;
                for (int j = 0; j <= s; j++) if (fired[f][j]) last = j;
                bad += t.last_fire[f] != last;
            }
            bad += m.dead_frac != (double)off / F || m.turned_off != turned || m.revived != revived;
        }
        CHECK(bad == 0, "W=%ld: %d mismatches against the definition", W, bad);
        free_death_tracker(&t);
    }
}

static void test_death_snapshot(void) {
    enum { F = 3 };
    DeathTracker t;
    build_death_tracker(&t, F, 5);
    CHECK(t.F == F && t.window == 5, "tracker shape");
    CHECK(t.last_fire[0] == -1 && t.last_fire[2] == -1 && t.fires_since_snap[1] == 0 &&
          t.tokens_since_snap == 0, "a new tracker: never fired, nothing accumulated");
    const int64_t fc[3][F] = {{4, 0, 1}, {2, 0, 0}, {0, 7, 0}};
    LayerMetrics m;
    death_tracker_step(&t, 0, fc[0], 100, &m);
    death_tracker_step(&t, 1, fc[1], 100, &m);
    CHECK(t.fires_since_snap[0] == 6 && t.fires_since_snap[1] == 0 && t.fires_since_snap[2] == 1,
          "fires since snapshot %lld %lld %lld", (long long)t.fires_since_snap[0],
          (long long)t.fires_since_snap[1], (long long)t.fires_since_snap[2]);
    CHECK(t.tokens_since_snap == 200, "tokens since snapshot %lld", (long long)t.tokens_since_snap);
    death_tracker_reset_snapshot(&t);
    CHECK(t.fires_since_snap[0] == 0 && t.fires_since_snap[2] == 0 && t.tokens_since_snap == 0,
          "reset zeroes the accumulators");
    CHECK(t.last_fire[0] == 1 && t.last_fire[1] == -1 && t.last_fire[2] == 0,
          "reset keeps last_fire (%lld %lld %lld)", (long long)t.last_fire[0],
          (long long)t.last_fire[1], (long long)t.last_fire[2]);
    death_tracker_step(&t, 2, fc[2], 50, &m);
    CHECK(t.fires_since_snap[1] == 7 && t.fires_since_snap[0] == 0 && t.tokens_since_snap == 50,
          "accumulating again after the reset");
    free_death_tracker(&t);
    CHECK(t.last_fire == NULL && t.fires_since_snap == NULL && t.F == 0, "free clears the tracker");
}

static void die_zero_window(void) { DeathTracker t; build_death_tracker(&t, 4, 0); }
static void die_repeated_step(void) {
    static DeathTracker t;   /* reachable at exit: no leak report in the child */
    build_death_tracker(&t, 1, 2);
    int64_t fc = 1;
    LayerMetrics m;
    death_tracker_step(&t, 3, &fc, 1, &m);
    death_tracker_step(&t, 3, &fc, 1, &m);
}

static void test_errors(void) {
    CHECK(dies(die_bad_level), "a quantile level above 1 is an error");
    CHECK(dies(die_negative_level), "a quantile level below 0 is an error");
    CHECK(dies(die_short_hist), "a histogram short of its total is an error");
    CHECK(dies(die_partial_overlap), "partially overlapping act/pre is an error");
    CHECK(dies(die_no_scratch), "counting without seen_scratch is an error");
    CHECK(dies(die_zero_window), "dead_window 0 is an error");
    CHECK(dies(die_repeated_step), "recording a step twice is an error");
}

int main(void) {
    test_constants();
    test_usage_view();
    test_quantile_small_n();
    test_quantile_exact_cases();
    test_quantile_distinct();
    test_quantile_random();
    test_relu_hand();
    test_relu_random();
    test_relu_extremes();
    test_summarize_hand();
    test_death_window();
    test_death_random();
    test_death_snapshot();
    test_errors();
    return test_done("test_metrics");
}
