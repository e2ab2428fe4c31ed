/* bench_model.c — tokens/s and model FLOP/s of one training step (forward,
 * backward, AdamW) at a size, against single-thread cblas_sgemm FLOP/s
 * measured in the same process. usage: bench_model L d h F T V B [reps] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "util.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sgemm FLOP/s on the shapes that dominate the model: [B*T x d] · [d x F] */
static double sgemm_flops(int M, int N, int K) {
    float *a = xaligned_alloc((size_t)M * K * 4), *b = xaligned_alloc((size_t)K * N * 4);
    float *c = xaligned_alloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        double f = 2.0 * M * N * K / (now_seconds() - t0);
        if (f > best) best = f;
    }
    free(a); free(b); free(c);
    return best;
}

int main(int argc, char **argv) {
    if (argc < 8) { fprintf(stderr, "usage: bench_model L d h F T V B [reps]\n"); return 2; }
    ModelSize s = {"bench", atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                   atoi(argv[5]), atoi(argv[6])};
    int B = atoi(argv[7]), reps = argc > 8 ? atoi(argv[8]) : 5;
    Model m;
    build_model(&m, &s, B);
    model_init_params(&m, 1);
    Optimizer o;
    build_optimizer(&o, OPT_ADAMW, m.num_params);
    Config c;
    memset(&c, 0, sizeof c);
    c.lr = 1e-4; c.beta1 = 0.9; c.beta2 = 0.95; c.eps = 1e-8; c.weight_decay = 0.1;
    uint16_t *tok = xmalloc((size_t)B * (s.T + 1) * 2);
    Rng rng; rng_seed(&rng, 3, 0);
    for (int i = 0; i < B * (s.T + 1); i++) tok[i] = (uint16_t)rng_below(&rng, s.V);
    size_t nu = (size_t)s.L * usage_stride(s.F);
    int64_t *usage = xcalloc(nu, 8);
    double t[64], tm[64];
    for (int r = 0; r < reps + 1 && r < 64; r++) {
        double t0 = now_seconds();
        memset(usage, 0, nu * 8);
        model_forward(&m, tok, B, usage, NULL, NULL);
        model_zero_grad(&m);
        model_backward(&m, tok, B, 1.0f / (B * s.T));
        double t1 = now_seconds();
        optimizer_step(&o, &m, &c, 1e-4);
        t[r] = now_seconds() - t0;
        tm[r] = t1 - t0;
    }
    qsort(t + 1, reps, sizeof *t, cmp);
    qsort(tm + 1, reps, sizeof *tm, cmp);
    double step = t[1 + reps / 2], tokens = (double)B * s.T;
    double model_flops = model_flops_per_token(&s) * tokens / step;
    double peak = sgemm_flops(B * s.T, s.F, s.d);
    printf("tokens/s %.0f step_ms %.1f fwdbwd_ms %.1f model_GFLOPs %.2f sgemm_GFLOPs %.2f ratio %.3f\n",
           tokens / step, 1e3 * step, 1e3 * tm[1 + reps / 2], model_flops / 1e9, peak / 1e9,
           model_flops / peak);
    free(tok); free(usage);
    free_optimizer(&o); free_model(&m);
    return 0;
}
