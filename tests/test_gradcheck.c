/* test_gradcheck.c — every layer's backward and every parameter tensor of a
 * tiny model against central finite differences. Objectives are summed in
 * double; tolerances are set by float32 rounding of the forward pass. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "layers.h"
#include "model.h"
#include "rng.h"

static Rng rng;
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(&rng);
}
static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Generic check: J(x) = <r, f(x)>; analytic gradient g of J wrt x given.
 * Compares every element (n small) by central differences. */
typedef double (*Objective)(void *ctx);
static void check_grad_kinks(const char *what, float *x, const float *g, size_t n,
                             Objective J, void *ctx, float eps, size_t allowed) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + eps; double jp = J(ctx);
        x[i] = keep - eps; double jm = J(ctx);
        x[i] = keep;
        double fd = (jp - jm) / (2.0 * eps), err = fabs(fd - g[i]);
        double tol = 2e-3 + 2e-2 * fabs(fd);
        if (err > tol) bad++;
        if (err > worst) worst = err;
    }
    CHECK((size_t)bad <= allowed, "%s: %d of %zu elements off (worst abs error %.3g)",
          what, bad, n, worst);
}
static void check_grad(const char *what, float *x, const float *g, size_t n,
                       Objective J, void *ctx, float eps) {
    check_grad_kinks(what, x, g, n, J, ctx, eps, 0);
}

/* ---- layernorm ---- */
enum { N = 6, C = 8 };
static float ln_in[N * C], ln_w[C], ln_b[C], ln_out[N * C], ln_mean[N], ln_rstd[N], ln_r[N * C];
static double ln_J(void *ctx) {
    (void)ctx;
    layernorm_forward(ln_out, ln_mean, ln_rstd, ln_in, ln_w, ln_b, N, C);
    return dot(ln_out, ln_r, N * C);
}
static void test_layernorm(void) {
    fill(ln_in, N * C, 1.0f); fill(ln_w, C, 1.0f); fill(ln_b, C, 1.0f); fill(ln_r, N * C, 1.0f);
    float din[N * C] = {0}, dw[C] = {0}, db[C] = {0};
    ln_J(NULL);
    layernorm_backward(din, dw, db, ln_r, ln_in, ln_w, ln_mean, ln_rstd, N, C);
    check_grad("layernorm dinp", ln_in, din, N * C, ln_J, NULL, 1e-2f);
    check_grad("layernorm dw", ln_w, dw, C, ln_J, NULL, 1e-2f);
    check_grad("layernorm db", ln_b, db, C, ln_J, NULL, 1e-2f);
}

/* ---- matmul ---- */
enum { IC = 5, OC = 7 };
static float mm_in[N * IC], mm_w[IC * OC], mm_b[OC], mm_out[N * OC], mm_r[N * OC];
static double mm_J(void *ctx) {
    (void)ctx;
    matmul_forward(mm_out, mm_in, mm_w, mm_b, N, IC, OC);
    return dot(mm_out, mm_r, N * OC);
}
static void test_matmul(void) {
    fill(mm_in, N * IC, 1.0f); fill(mm_w, IC * OC, 1.0f); fill(mm_b, OC, 1.0f); fill(mm_r, N * OC, 1.0f);
    float din[N * IC], dw[IC * OC] = {0}, db[OC] = {0};
    for (int i = 0; i < N * IC; i++) din[i] = NAN;   /* dinp is overwritten */
    matmul_backward(din, dw, db, mm_r, mm_in, mm_w, N, IC, OC);
    check_grad("matmul dinp", mm_in, din, N * IC, mm_J, NULL, 1e-2f);
    check_grad("matmul dw", mm_w, dw, IC * OC, mm_J, NULL, 1e-2f);
    check_grad("matmul dbias", mm_b, db, OC, mm_J, NULL, 1e-2f);
}

/* ---- attention (T = 70: several 8-row blocks, 16-key chunks and a partial
 * block of each; head size 4 padded to 16 inside the kernels) ---- */
enum { AB = 2, AT = 70, AC = 8, ANH = 2 };
static float *at_qkv, *at_out, *at_lse, *at_r, *at_scratch;
static double at_J(void *ctx) {
    (void)ctx;
    attention_forward(at_out, at_lse, at_qkv, at_scratch, AB, AT, AC, ANH);
    return dot(at_out, at_r, (size_t)AB * AT * AC);
}
static void test_attention(void) {
    size_t nq = (size_t)AB * AT * 3 * AC, no = (size_t)AB * AT * AC;
    at_qkv = malloc(nq * 4); at_out = malloc(no * 4); at_r = malloc(no * 4);
    at_lse = malloc((size_t)AB * ANH * AT * 4);   /* log-sum-exp per query row */
    at_scratch = malloc(attention_scratch_floats(AT, AC / ANH) * 4);
    float *dqkv = calloc(nq, 4), *scratch = at_scratch;
    fill(at_qkv, nq, 1.0f); fill(at_r, no, 1.0f);
    at_J(NULL);
    attention_backward(dqkv, at_r, at_qkv, at_lse, scratch, AB, AT, AC, ANH);
    check_grad("attention dqkv", at_qkv, dqkv, nq, at_J, NULL, 1e-2f);
    free(at_qkv); free(at_out); free(at_r); free(at_lse); free(dqkv); free(at_scratch);
}

/* ---- relu (bias + ReLU through the fused counting kernel) and crossentropy ---- */
static float re_pre[N * C], re_b[C], re_act[N * C], re_r[N * C];
static uint8_t re_seen[C];
static double re_J(void *ctx) {
    (void)ctx;
    relu_count_forward(re_act, re_pre, re_b, 1, N, C, NULL, NULL, re_seen);
    return dot(re_act, re_r, N * C);
}
static void test_relu(void) {
    fill(re_pre, N * C, 1.0f); fill(re_b, C, 0.1f); fill(re_r, N * C, 1.0f);
    for (int i = 0; i < N * C; i++)   /* keep away from the kink for differences */
        if (fabsf(re_pre[i]) < 0.3f) re_pre[i] = re_pre[i] < 0 ? -0.3f : 0.3f;
    float din[N * C] = {0}, db[C] = {0};
    re_J(NULL);
    relu_backward(din, db, re_r, re_act, N, C);
    check_grad("relu dinp", re_pre, din, N * C, re_J, NULL, 1e-2f);
    check_grad("relu dbias", re_b, db, C, re_J, NULL, 1e-2f);
}

enum { CV = 11, CT = 5 };
static float ce_logits[CT * CV], ce_probs[CT * CV], ce_losses[CT];
static uint16_t ce_tokens[CT + 1];
static double ce_J(void *ctx) {
    (void)ctx;
    memcpy(ce_probs, ce_logits, sizeof ce_logits);
    crossentropy_forward(ce_probs, ce_losses, ce_tokens + 1, CT + 1, 1, CT, CV);
    double s = 0;
    for (int i = 0; i < CT; i++) s += ce_losses[i];
    return s / CT;
}
static void test_crossentropy(void) {
    fill(ce_logits, CT * CV, 2.0f);
    for (int i = 0; i <= CT; i++) ce_tokens[i] = (uint16_t)rng_below(&rng, CV);
    ce_J(NULL);
    crossentropy_backward(ce_probs, ce_tokens + 1, CT + 1, 1, CT, CV, 1.0f / CT);
    float g[CT * CV];   /* ce_J overwrites ce_probs: keep the gradient apart */
    memcpy(g, ce_probs, sizeof g);
    check_grad("crossentropy dlogits", ce_logits, g, CT * CV, ce_J, NULL, 1e-2f);
}

/* ---- whole model: every parameter tensor ---- */
static Model model;
static uint16_t *mtok;
static double model_J(void *ctx) { (void)ctx; return model_forward(&model, mtok, model.B, NULL, NULL, NULL); }
static void test_model(MlpKernel kind) {
    ModelSize ms = {"grad", 2, 16, 2, 24, 8, 13};
    int B = 2;
    build_model(&model, &ms, B);
    model_set_mlp_kernel(&model, kind);   /* dense, or the sparse MLP path */
    model_init_params(&model, 7);
    /* larger weights than the real init so that every path carries gradient */
    for (size_t i = 0; i < model.num_params; i++) model.params_memory[i] += 0.2f * rng_normal(&rng);
    mtok = malloc((size_t)B * (ms.T + 1) * sizeof *mtok);
    for (int i = 0; i < B * (ms.T + 1); i++) mtok[i] = (uint16_t)rng_below(&rng, ms.V);
    model_J(NULL);
    model_zero_grad(&model);
    model_backward(&model, mtok, B, 1.0f / (B * ms.T));
    size_t off = 0;
    for (int t = 0; t < NUM_PARAM_TENSORS; t++) {
        char what[64];
        snprintf(what, sizeof what, "model%s d%s", kind == MLP_SPARSE ? " (sparse MLP)" : "",
                 PARAM_NAMES[t]);
        /* a difference step may cross a ReLU kink: allow 1 element in 200 */
        check_grad_kinks(what, model.params_memory + off, model.grads_memory + off,
                         model.param_sizes[t], model_J, NULL, 2e-3f, model.param_sizes[t] / 200);
        off += model.param_sizes[t];
    }
    /* the gradient must not be trivially zero anywhere */
    double gn = dot(model.grads_memory, model.grads_memory, model.num_params);
    CHECK(gn > 1e-6, "model gradient norm^2 %.3g is ~0", gn);
    free(mtok);
    free_model(&model);
}

int main(void) {
    rng_seed(&rng, 1234, 0);
    test_layernorm();
    test_matmul();
    test_attention();
    test_relu();
    test_crossentropy();
    test_model(MLP_DENSE);
    test_model(MLP_SPARSE);
    return test_done("gradcheck");
}
