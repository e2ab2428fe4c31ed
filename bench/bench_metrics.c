/* bench_metrics.c — the cost of sparsity counting in the fused ReLU kernel.
 * Times, on one MLP layer's pre-activations (B*T rows x F, in place, as the
 * model calls it), a plain bias + ReLU loop against relu_count_forward with
 * no counting, with counting (every training step) and with counting plus
 * pre-activation stats (snapshot steps). The difference to the plain loop is
 * the marginal cost of recording the metrics.
 * usage: bench_metrics [B T F [reps]]   (default 32 256 4096 9: 8192 x 4096)
 * build: mpicc -Iinclude $(CFLAGS) bench/bench_metrics.c build/libreluscope.a -lz -lm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_stats.h"
#include "metrics.h"
#include "util.h"

enum { V_PLAIN, V_NOCOUNT, V_COUNT, V_STATS, NV };
static const char *const NAMES[NV] = {
    "plain bias+ReLU loop", "kernel, no counting", "kernel, counting", "kernel, counting+stats"};

/* The reference: what the model would run without any instrumentation. */
static __attribute__((noinline)) void plain_relu(float *a, const float *restrict bias,
                                                 size_t rows, int F) {
    for (size_t n = 0; n < rows; n++) {
        float *row = a + n * (size_t)F;
        for (int f = 0; f < F; f++) {
            float x = row[f] + bias[f];
            row[f] = x > 0.0f ? x : 0.0f;
        }
    }
}

/* uniform in [-1, 1): with the bias below about half the units fire,
 * which makes no difference to a branch-free kernel but keeps it honest */
static void fill_uniform(float *x, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 4503599627370496.0 - 1.0);
    }
}

int main(int argc, char **argv) {
    int B = argc > 3 ? atoi(argv[1]) : 32, T = argc > 3 ? atoi(argv[2]) : 256;
    int F = argc > 3 ? atoi(argv[3]) : 4096, reps = argc > 4 ? atoi(argv[4]) : 9;
    if (B < 1 || T < 1 || F < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: bench_metrics [B T F [reps]]  (reps 1..100)\n");
        return 2;
    }
    size_t rows = (size_t)B * T, n = rows * F;
    float *src = xaligned_alloc(n * sizeof(float)), *a = xaligned_alloc(n * sizeof(float));
    float *bias = xaligned_alloc((size_t)F * sizeof(float));
    float *premax = xaligned_alloc((size_t)F * sizeof(float));
    double *presum = xaligned_alloc((size_t)F * sizeof(double));
    int64_t *usage = xaligned_alloc(usage_stride(F) * sizeof(int64_t));
    uint8_t *seen = xaligned_alloc((size_t)F);
    fill_uniform(src, n, 1);
    fill_uniform(bias, (size_t)F, 2);
    for (int f = 0; f < F; f++) bias[f] *= 0.1f;
    UsageCounts counts = usage_view(usage, 0, F);
    PreactStats stats = {premax, presum};
    double t[NV][100];
    /* variants interleaved within each repetition so that drift in the
     * machine's load hits all of them alike; the input is rewritten before
     * every call, as the fc matmul writes it before the real kernel runs */
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < NV; v++) {
            memcpy(a, src, n * sizeof(float));
            for (int f = 0; f < F; f++) { premax[f] = -INFINITY; presum[f] = 0.0; }
            double t0 = now_seconds();
            if (v == V_PLAIN) plain_relu(a, bias, rows, F);
            else relu_count_forward(a, a, bias, B, T, F, v >= V_COUNT ? &counts : NULL,
                                    v == V_STATS ? &stats : NULL, seen);
            t[v][r] = now_seconds() - t0;
        }
    printf("relu_count_forward, %d x %d rows of F=%d in place, median of %d\n", B, T, F, reps);
    printf("%-26s %10s %10s %16s\n", "variant", "ms/call", "ns/elem", "marginal ns/elem");
    double base = 0.0;
    for (int v = 0; v < NV; v++) {
        qsort(t[v], (size_t)reps, sizeof(double), bench_cmp_double);
        double med = t[v][reps / 2], ns = med / (double)n * 1e9;
        if (v == V_PLAIN) base = ns;
        printf("%-26s %10.3f %10.4f %+16.4f\n", NAMES[v], med * 1e3, ns, ns - base);
    }
    /* the counts are used, so no part of the work can be optimised away */
    int64_t check = 0;
    for (int k = 0; k <= F; k++) check += counts.token_hist[k];
    printf("(%lld tokens counted)\n", (long long)check);
    free(src); free(a); free(bias); free(premax); free(presum); free(usage); free(seen);
    return 0;
}
