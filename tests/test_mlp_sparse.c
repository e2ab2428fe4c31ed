/* test_mlp_sparse.c — the sparse MLP path against the dense one:
 *  - the fused kernel's active lists: exactly the active entries, in order,
 *    and the kernel's other outputs (activations, counts, statistics)
 *    bit-identical with and without lists; auto's limit stops the lists;
 *  - the kernels (AVX-512 and portable): output and every gradient against
 *    the dense layers at densities 50%, 10%, 1%, on ragged shapes
 *    (norm-wise relative error <= 1e-5);
 *  - the whole model: loss, every gradient tensor and every metric count
 *    against the dense model, sparse and auto, at 50% / 10% / 1% density. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "activation.h"
#include "check.h"
#include "layers.h"
#include "metrics.h"
#include "mlp_sparse.h"
#include "model.h"
#include "rng.h"
#include "util.h"

static Rng rng;

static float *randn(size_t n, float sd) {
    float *p = xaligned_alloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++) p[i] = sd * rng_normal(&rng);
    return p;
}

/* ||a - b|| / ||b|| (0 when both are 0) */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* ---- the lists built by the fused kernel ---- */
static void test_lists(int B, int T, int F, double rho, int stats) {
    int N = B * T;
    size_t NF = (size_t)N * F;
    float *pre = randn(NF, 1.0f), *bias = randn((size_t)F, 0.3f);
    /* shift so that about a fraction rho is active; some exact zeros and -0 */
    for (size_t i = 0; i < NF; i++) pre[i] -= (float)(1.0 - 2.0 * rho) * 1.5f;
    pre[0] = -bias[0];
    if (NF > 3) pre[3] = -0.0f - bias[3 % F];
    float *a1 = xaligned_alloc(NF * 4), *a2 = xaligned_alloc(NF * 4);
    int64_t *u1 = xcalloc(usage_stride(F), 8), *u2 = xcalloc(usage_stride(F), 8);
    float *pm1 = xaligned_alloc((size_t)F * 4), *pm2 = xaligned_alloc((size_t)F * 4);
    double *ps1 = xcalloc((size_t)F, 8), *ps2 = xcalloc((size_t)F, 8);
    for (int f = 0; f < F; f++) pm1[f] = pm2[f] = -INFINITY;
    uint8_t *seen = xcalloc((size_t)F, 1);
    UsageCounts c1 = usage_view(u1, 0, F), c2 = usage_view(u2, 0, F);
    PreactStats s1 = {pm1, ps1}, s2 = {pm2, ps2};
    MlpSparse *sp = mlp_sparse_create(MLP_SPARSE, 1, N, F, 16);
    relu_count_forward(a1, pre, bias, B, T, F, &c1, stats ? &s1 : NULL, seen);
    ActiveList *al = mlp_sparse_lists(sp, 0, N);
    relu_count_forward_lists(a2, pre, bias, B, T, F, &c2, stats ? &s2 : NULL, seen, al);
    char what[128];
    snprintf(what, sizeof what, "lists B=%d T=%d F=%d rho=%.2f stats=%d", B, T, F, rho, stats);
    CHECK(!memcmp(a1, a2, NF * 4), "%s: activations differ with lists", what);
    CHECK(!memcmp(u1, u2, usage_stride(F) * 8), "%s: counts differ with lists", what);
    if (stats)
        CHECK(!memcmp(pm1, pm2, (size_t)F * 4) && !memcmp(ps1, ps2, (size_t)F * 8),
              "%s: statistics differ with lists", what);
    CHECK(mlp_sparse_active(sp, 0, N), "%s: lists not complete", what);
    int64_t k = 0, bad = 0;
    for (int n = 0; n < N && !bad; n++) {
        if (al->start[n] != k) bad = 1;
        for (int f = 0; f < F; f++)
            if (a1[(size_t)n * F + f] > 0.0f) {
                if (al->unit[k] != f || al->val[k] != a1[(size_t)n * F + f]) bad = 1;
                k++;
            }
    }
    CHECK(!bad && al->start[N] == k, "%s: lists are not the active entries in order", what);
    CHECK(fabs(mlp_sparse_density(sp, 0) - (double)k / NF) < 1e-12, "%s: density", what);
    mlp_sparse_free(sp);
    /* auto: above the crossover the lists stop and the layer stays dense */
    sp = mlp_sparse_create(MLP_AUTO, 1, N, F, 16);
    relu_count_forward_lists(a2, pre, bias, B, T, F, NULL, NULL, seen,
                             mlp_sparse_lists(sp, 0, N));
    int want = (double)k <= MLP_SPARSE_CROSSOVER * (double)NF;
    CHECK(mlp_sparse_active(sp, 0, N) == want, "%s: auto at density %.3f went %s", what,
          (double)k / NF, want ? "dense" : "sparse");
    CHECK(!memcmp(a1, a2, NF * 4), "%s: auto's activations differ", what);
    mlp_sparse_free(sp);
    free(pre); free(bias); free(a1); free(a2); free(u1); free(u2);
    free(pm1); free(pm2); free(ps1); free(ps2); free(seen);
}

/* auto's limit is exact: one entry over the crossover and the layer is dense,
 * even when the excess comes with the last row */
static void test_auto_limit(void) {
    enum { N = 4, F = 16 };
    float pre[N * F], act[N * F], bias[F] = {0};
    int limit = (int)(MLP_SPARSE_CROSSOVER * N * F);
    for (int extra = 0; extra <= 1; extra++) {
        for (int i = 0; i < N * F; i++) pre[i] = -1.0f;
        for (int i = 0; i < limit + extra; i++)   /* the last rows fill up */
            pre[N * F - 1 - i] = 1.0f;
        MlpSparse *sp = mlp_sparse_create(MLP_AUTO, 1, N, F, 16);
        relu_count_forward_lists(act, pre, bias, 1, N, F, NULL, NULL, NULL,
                                 mlp_sparse_lists(sp, 0, N));
        CHECK(mlp_sparse_active(sp, 0, N) == !extra, "auto with %d entries, limit %d: %s",
              limit + extra, limit, extra ? "went sparse" : "stayed dense");
        mlp_sparse_free(sp);
    }
}

/* auto's early exit: 300 fully active rows first, then 1700 silent ones (15%
 * overall, below the crossover) stop the lists once the running density
 * shows; the same rows spread over the batch go sparse */
static void test_auto_early(void) {
    enum { N = 2000, F = 16 };
    static float pre[N * F], act[N * F];
    float bias[F] = {0};
    for (int spread = 0; spread <= 1; spread++) {
        for (int n = 0; n < N; n++) {
            int on = spread ? n % 20 < 3 : n < 300;
            for (int f = 0; f < F; f++) pre[n * F + f] = on ? 1.0f : -1.0f;
        }
        MlpSparse *sp = mlp_sparse_create(MLP_AUTO, 1, N, F, 16);
        relu_count_forward_lists(act, pre, bias, 1, N, F, NULL, NULL, NULL,
                                 mlp_sparse_lists(sp, 0, N));
        CHECK(mlp_sparse_active(sp, 0, N) == spread, "auto, 15%% active %s: went %s",
              spread ? "spread out" : "in the first rows",
              mlp_sparse_active(sp, 0, N) ? "sparse" : "dense");
        mlp_sparse_free(sp);
    }
}

/* the lists follow the need down: after a dense step and a sparse one they
 * are cut to 25% above the sparse step's entries, and still build right */
static void test_lists_shrink(void) {
    enum { N = 256, F = 2048 };
    float *pre = xaligned_alloc((size_t)N * F * 4), *act = xaligned_alloc((size_t)N * F * 4);
    float bias[F] = {0};
    MlpSparse *sp = mlp_sparse_create(MLP_SPARSE, 1, N, F, 16);
    size_t bytes[3];
    for (int round = 0; round < 3; round++) {   /* 50%, then 1% twice */
        for (size_t i = 0; i < (size_t)N * F; i++)
            pre[i] = (round == 0 ? i % 2 == 0 : i % 100 == 0) ? 1.0f : -1.0f;
        relu_count_forward_lists(act, pre, bias, 1, N, F, NULL, NULL, NULL,
                                 mlp_sparse_lists(sp, 0, N));
        CHECK(mlp_sparse_active(sp, 0, N) &&
              fabs(mlp_sparse_density(sp, 0) - (round == 0 ? 0.5 : 0.01)) < 1e-3,
              "shrink round %d: density %.4f", round, mlp_sparse_density(sp, 0));
        bytes[round] = mlp_sparse_bytes(sp);
    }
    /* round 1 built in the 50% lists; round 2 in lists cut to 65536 entries */
    CHECK(bytes[1] == bytes[0] && bytes[2] < bytes[0] / 3, "lists not cut to the need: %zu, "
          "%zu, %zu bytes", bytes[0], bytes[1], bytes[2]);
    mlp_sparse_free(sp);
    free(pre); free(act);
}

/* ---- the kernels against the dense layers ---- */
static void test_kernels(int N, int d, int F, double rho, int portable) {
    size_t ND = (size_t)N * d, NF = (size_t)N * F, DF = (size_t)d * F;
    float *X = randn(ND, 1.0f), *W1 = randn(DF, 0.3f), *W2 = randn(DF, 0.3f);
    float *b1 = xaligned_alloc((size_t)F * 4), *b2 = randn((size_t)d, 0.1f);
    float *dY = randn(ND, 1.0f), *H = xaligned_alloc(NF * 4), *dH = xaligned_alloc(NF * 4);
    /* pre ~ N(0, 0.09 d): a bias of -z·σ leaves a fraction rho active */
    double sigma = 0.3 * sqrt((double)d), z = rho >= 0.5 ? 0.0 : rho >= 0.1 ? 1.2816 : 2.3263;
    for (int f = 0; f < F; f++) b1[f] = (float)(-z * sigma) + 0.05f * rng_normal(&rng);
    float *ref[6], *got[6];
    size_t sz[6] = {ND, ND, DF, (size_t)F, DF, (size_t)d};   /* Y dX dW1 db1 dW2 db2 */
    for (int i = 0; i < 6; i++) {
        ref[i] = randn(sz[i], 0.1f);   /* the same nonzero start: += is checked */
        got[i] = xaligned_alloc(sz[i] * 4 + 64);
        memcpy(got[i], ref[i], sz[i] * 4);
    }
    /* dense reference */
    matmul_forward(H, X, W1, NULL, N, d, F);
    relu_count_forward(H, H, b1, 1, N, F, NULL, NULL, NULL);
    matmul_forward(ref[0], H, W2, b2, N, F, d);
    matmul_backward(dH, ref[4], ref[5], dY, H, W2, N, F, d);
    relu_backward(dH, ref[3], dH, H, N, F);
    matmul_backward(ref[1], ref[2], NULL, dH, X, W1, N, d, F);
    /* sparse */
    MlpSparse *sp = mlp_sparse_create(MLP_SPARSE, 2, N, F, d);
    mlp_sparse_set_portable(portable);
    matmul_forward(H, X, W1, NULL, N, d, F);
    relu_count_forward_lists(H, H, b1, 1, N, F, NULL, NULL, NULL, mlp_sparse_lists(sp, 1, N));
    for (size_t i = 0; i < ND; i++) got[1][i] = NAN;   /* dX must be written */
    mlp_sparse_forward(sp, 1, got[0], W2, b2, N, d);
    mlp_sparse_backward(sp, 1, got[1], got[2], got[3], got[4], got[5], dY, X, W1, W2, N, d);
    mlp_sparse_set_portable(0);
    static const char *const names[6] = {"Y", "dX", "dW1", "db1", "dW2", "db2"};
    for (int i = 0; i < 6; i++) {
        double e = rel_err(got[i], ref[i], sz[i]);
        CHECK(e <= 1e-5, "%s N=%d d=%d F=%d density %.3f (target %.2f)%s: relative error %.3g",
              names[i], N, d, F, mlp_sparse_density(sp, 1), rho,
              portable ? " portable" : "", e);
    }
    double dens = mlp_sparse_density(sp, 1);
    if (NF >= 10000)   /* the tests above ran at the density they name */
        CHECK(dens > rho * 0.4 && dens < rho * 1.8, "density %.3f far from %.2f", dens, rho);
    mlp_sparse_free(sp);
    for (int i = 0; i < 6; i++) { free(ref[i]); free(got[i]); }
    free(X); free(W1); free(W2); free(b1); free(b2); free(dY); free(H); free(dH);
}

/* ---- the whole model ---- */
static void model_run(Model *m, const uint16_t *tok, int B, int64_t *usage) {
    memset(usage, 0, (size_t)m->cfg.L * usage_stride(m->cfg.F) * 8);
    model_forward(m, tok, B, usage, NULL, NULL);
    model_zero_grad(m);
    model_backward(m, tok, B, 1.0f / ((float)B * m->cfg.T));
}

/* The H pool (model.h): a layer on the sparse path gives its [N][F] buffer
 * back; with keep_h every layer takes the dense path and keeps its H. */
static void test_model_h(Model *ms3[3], const uint16_t *tok, int B, const char *label) {
    const Model *md = ms3[0];
    int L = md->cfg.L;
    size_t NF = (size_t)B * md->cfg.T * md->cfg.F;
    for (int k = 0; k < 3; k++) {
        int held = 0, sparse = 0;
        for (int l = 0; l < L; l++) {
            held += ms3[k]->h[l] != NULL;
            sparse += mlp_sparse_density(ms3[k]->mlp, l) >= 0;
        }
        CHECK(held == L - sparse, "%s kernel %d: %d layers hold an H, %d went dense", label, k,
              held, L - sparse);
        CHECK(ms3[k]->n_free == 1, "%s kernel %d: %d spare buffers, not 1", label, k,
              ms3[k]->n_free);
    }
    {   /* auto holds lists for its sparse layers and one spare at most */
        const Model *ma = ms3[2];
        size_t rows = (size_t)B * ma->cfg.T, F = (size_t)ma->cfg.F, sparse = 0;
        for (int l = 0; l < L; l++) sparse += mlp_sparse_density(ma->mlp, l) >= 0;
        size_t most = (size_t)(MLP_SPARSE_CROSSOVER * (double)(rows * F)) + F + ACTIVE_LIST_SLACK;
        size_t bound = (sparse + 1) * most * 6 + (size_t)L * (rows + 1) * 8;
        CHECK(mlp_sparse_bytes(ma->mlp) <= bound, "%s: auto's lists hold %zu bytes, more than "
              "%zu sparse layers and a spare (%zu)", label, mlp_sparse_bytes(ma->mlp), sparse,
              bound);
    }
    for (int k = 1; k < 3; k++) {   /* an evaluation's forward: every H kept */
        ms3[k]->keep_h = 1;
        model_forward(ms3[k], tok, B, NULL, NULL, NULL);
        ms3[k]->keep_h = 0;
        /* keep_h runs the dense path in every layer: dense's bits */
        CHECK(mlp_sparse_bytes(ms3[k]->mlp) == (size_t)L * (B * md->cfg.T + 1) * 8,
              "%s kernel %d: lists not freed for keep_h", label, k);
        CHECK(ms3[k]->mean_loss == md->mean_loss, "%s kernel %d: keep_h loss %.9g, dense %.9g",
              label, k, ms3[k]->mean_loss, md->mean_loss);
        for (int l = 0; l < L; l++)
            CHECK(!memcmp(model_layer_h(ms3[k], l), model_layer_h(md, l), NF * 4),
                  "%s kernel %d: layer %d H kept with keep_h differs from dense", label, k, l);
        for (int r = 0; r < 2; r++) model_forward(ms3[k], tok, B, NULL, NULL, NULL);
        int held = 0;
        for (int l = 0; l < L; l++) held += ms3[k]->h[l] != NULL;
        CHECK(ms3[k]->n_free == 1 && held + ms3[k]->n_free <= L + 1,
              "%s kernel %d: after the evaluation %d buffers held, %d spare", label, k, held,
              ms3[k]->n_free);
    }
}

static void test_model(double shift, const char *label) {
    ModelSize ms = {"sp", 3, 48, 3, 200, 16, 37, .pos = POS_LEARNED};
    int B = 3;
    Model md, msp, mau;
    build_model(&md, &ms, B);
    build_model(&msp, &ms, B);
    build_model(&mau, &ms, B);
    model_init_params(&md, 11);
    /* larger weights so the MLP carries gradient; the fc bias sets the density */
    for (size_t i = 0; i < md.num_params; i++) md.params_memory[i] += 0.05f * rng_normal(&rng);
    for (size_t i = 0; i < (size_t)ms.L * ms.F; i++) md.params.fcb[i] -= (float)shift;
    memcpy(msp.params_memory, md.params_memory, md.num_params * 4);
    memcpy(mau.params_memory, md.params_memory, md.num_params * 4);
    model_set_mlp_kernel(&msp, MLP_SPARSE);
    model_set_mlp_kernel(&mau, MLP_AUTO);
    uint16_t tok[3 * 17];
    for (int i = 0; i < B * (ms.T + 1); i++) tok[i] = (uint16_t)rng_below(&rng, ms.V);
    size_t nu = (size_t)ms.L * usage_stride(ms.F);
    int64_t *u[3] = {xcalloc(nu, 8), xcalloc(nu, 8), xcalloc(nu, 8)};
    Model *ms3[3] = {&md, &msp, &mau};
    for (int k = 0; k < 3; k++) model_run(ms3[k], tok, B, u[k]);
    for (int k = 1; k < 3; k++) {
        const char *kind = k == 1 ? "sparse" : "auto";
        CHECK(fabs(ms3[k]->mean_loss - md.mean_loss) <= 1e-5 * fabs(md.mean_loss),
              "%s %s: loss %.9g vs dense %.9g", label, kind, ms3[k]->mean_loss, md.mean_loss);
        CHECK(!memcmp(u[k], u[0], nu * 8), "%s %s: metric counts differ from dense", label, kind);
        size_t off = 0;
        for (int t = 0; t < md.num_tensors; t++) {
            double e = rel_err(ms3[k]->grads_memory + off, md.grads_memory + off, md.param_sizes[t]);
            CHECK(e <= 1e-5, "%s %s: gradient of %s relative error %.3g", label, kind,
                  model_param_name(&md, t), e);
            off += md.param_sizes[t];
        }
    }
    for (int l = 0; l < ms.L; l++) {
        double dens = mlp_sparse_density(msp.mlp, l);
        /* after the backward the lists are consumed: a density >= 0 says the
         * layer's last forward went sparse */
        int auto_sparse = mlp_sparse_density(mau.mlp, l) >= 0;
        CHECK(dens >= 0, "%s: sparse layer %d stayed dense", label, l);
        CHECK(!mlp_sparse_active(msp.mlp, l, B * ms.T), "%s: layer %d's lists not consumed",
              label, l);
        CHECK(auto_sparse == (dens <= MLP_SPARSE_CROSSOVER),
              "%s: auto layer %d at density %.3f chose wrongly", label, l, dens);
        printf("%s: layer %d density %.3f, auto %s\n", label, l, dens,
               auto_sparse ? "sparse" : "dense");
    }
    test_model_h(ms3, tok, B, label);
    for (int k = 0; k < 3; k++) { free(u[k]); free_model(ms3[k]); }
}

int main(void) {
    rng_seed(&rng, 99, 0);
    for (int stats = 0; stats < 2; stats++) {
        test_lists(2, 8, 2048, 0.05, stats);
        test_lists(3, 5, 37, 0.5, stats);    /* ragged: a 5-unit tail chunk */
        test_lists(1, 7, 1, 0.5, stats);
        test_lists(2, 3, 16, 0.99, stats);   /* nearly all active: auto gives up */
        test_lists(4, 4, 100, 0.01, stats);
        test_lists(1, 8, MLP_SPARSE_MAX_F, 0.5, stats);   /* up to unit 65535 */
    }
    test_auto_limit();
    test_auto_early();
    test_lists_shrink();
    static const int shapes[][3] = {{64, 64, 256}, {37, 24, 100}, {50, 80, 33}, {9, 16, 17},
                                    {20, 130, 70}};
    static const double rhos[] = {0.5, 0.1, 0.01};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int r = 0; r < 3; r++)
            for (int p = 0; p < 2; p++)
                test_kernels(shapes[s][0], shapes[s][1], shapes[s][2], rhos[r], p);
    test_model(0.0, "model ~50%");
    test_model(0.47, "model ~10%");
    test_model(0.9, "model ~1%");
    return test_done("mlp_sparse");
}
