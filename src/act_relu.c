/* act_relu.c — ReLU, g(x) = max(x, 0): the SPEC §2 activation. Its forward
 * is the fused bias + ReLU + counting kernel (relu_count_forward_lists,
 * metrics.c), in place, which also builds the sparse MLP path's lists; the
 * backward needs only g(x): g'(x) = 1 exactly where g(x) > 0. */
#include "activation.h"
#include <stddef.h>

static void relu_forward(float *act, float *pre, const float *bias, int B, int T, int F,
                         UsageCounts *counts, PreactStats *stats, uint8_t *seen,
                         struct ActiveList *lists) {
    relu_count_forward_lists(act, pre, bias, B, T, F, counts, stats, seen, lists);
}

void relu_backward(float *dinp, float *dbias, const float *dout, const float *act,
                   int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *a = act + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        if (dbias) {
            for (int c = 0; c < C; c++) {
                float g = a[c] > 0.0f ? d[c] : 0.0f;
                di[c] = g;
                dbias[c] += g;
            }
        } else {
            for (int c = 0; c < C; c++) di[c] = a[c] > 0.0f ? d[c] : 0.0f;
        }
    }
}

static void relu_backward_unit(float *dpre, float *dbias, const float *dact, const float *act,
                               const float *pre, int N, int F) {
    (void)pre;
    relu_backward(dpre, dbias, dact, act, N, F);
}

const Activation ACTIVATION_RELU = {"relu", 0, 1, relu_forward, relu_backward_unit};
