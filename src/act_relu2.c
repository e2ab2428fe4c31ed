/* act_relu2.c — squared ReLU, g(x) = max(x, 0)² (act=relu2).
 *
 * Forward: the fused bias + ReLU + counting kernel writes r = max(x, 0) into
 * the kept buffer `pre` (counting x > 0 and the pre-activation statistics of
 * x, exactly as for ReLU), then a second pass writes g = r². A unit counts as
 * active iff x > 0, and SPEC §3 says active iff g(x) > 0: the two agree
 * because g is never rounded to zero for x > 0 — where r² underflows
 * (0 < x < 2^-75) g is the smallest positive float instead (off by < 1.5e-45).
 * Backward: g'(x) = 2r, from the kept r. */
#include "activation.h"
#include <float.h>
#include <stddef.h>

static void relu2_forward(float *act, float *pre, const float *bias, int B, int T, int F,
                          UsageCounts *counts, PreactStats *stats, uint8_t *seen,
                          struct ActiveList *lists) {
    (void)lists;   /* sparse_ok = 0: never given any */
    relu_count_forward(pre, pre, bias, B, T, F, counts, stats, seen);
    size_t n = (size_t)B * T * F;
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float r = pre[i], g = r * r;
        act[i] = r > 0.0f && g < FLT_TRUE_MIN ? FLT_TRUE_MIN : g;
    }
}

static void relu2_backward(float *dpre, float *dbias, const float *dact, const float *act,
                           const float *pre, int N, int F) {
    (void)act;
    for (int n = 0; n < N; n++) {
        const float *d = dact + (size_t)n * F, *r = pre + (size_t)n * F;
        float *dp = dpre + (size_t)n * F;
        #pragma omp simd
        for (int f = 0; f < F; f++) dp[f] = 2.0f * r[f] * d[f];
        if (dbias)
            for (int f = 0; f < F; f++) dbias[f] += dp[f];
    }
}

/* not sparse_ok: the sparse path's backward is ReLU's (g' = 1), not 2r */
const Activation ACTIVATION_RELU2 = {"relu2", 1, 0, relu2_forward, relu2_backward};
