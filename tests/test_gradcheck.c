/* test_gradcheck.c — every layer's backward and every parameter tensor of a
 * tiny model against central finite differences. Objectives are summed in
 * double; tolerances are set by float32 rounding of the forward pass. */
#include <stdlib.h>
#include <string.h>
#include "activation.h"
#include "check.h"
#include "layers.h"
#include "model.h"
#include "rng.h"
#include "variant.h"

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

/* ---- every activation through its interface: forward (with counting) and
 * backward against differences; the counts against a brute-force a > 0 ---- */
static const Activation *act_unit;
static float ac_pre[N * C], ac_kept[N * C], ac_b[C], ac_out[N * C], ac_r[N * C];
static double ac_J(void *ctx) {
    (void)ctx;
    float *pre = act_unit->needs_pre ? ac_kept : ac_out;
    memcpy(pre, ac_pre, sizeof ac_pre);
    act_unit->forward(ac_out, pre, ac_b, 1, N, C, NULL, NULL, re_seen, NULL);
    return dot(ac_out, ac_r, N * C);
}
static void test_activations(void) {
    for (int kind = 0; kind < variant_num_values(3); kind++) {
        act_unit = activation_of(kind);
        CHECK(act_unit && !strcmp(act_unit->name, variant_value_name(3, kind)),
              "activation %d is not the act variant value '%s'", kind, variant_value_name(3, kind));
        if (!act_unit) continue;
        fill(ac_pre, N * C, 1.0f); fill(ac_b, C, 0.1f); fill(ac_r, N * C, 1.0f);
        for (int i = 0; i < N * C; i++)
            if (fabsf(ac_pre[i]) < 0.3f) ac_pre[i] = ac_pre[i] < 0 ? -0.3f : 0.3f;
        ac_pre[0] = 1e-30f - ac_b[0];   /* x ~ 1e-30: g(x) may not round to 0 */
        int64_t usage[3 * C + 2] = {0};
        UsageCounts u = usage_view(usage, 0, C);
        float *pre = act_unit->needs_pre ? ac_kept : ac_out;
        memcpy(pre, ac_pre, sizeof ac_pre);
        act_unit->forward(ac_out, pre, ac_b, 1, N, C, &u, NULL, re_seen, NULL);
        int bad = 0;
        for (int f = 0; f < C; f++) {
            int64_t fires = 0;
            for (int n = 0; n < N; n++) fires += ac_out[n * C + f] > 0.0f;
            bad += fires != u.fire_count[f];
        }
        CHECK(bad == 0, "%s: %d units' fire counts differ from the count of a > 0", act_unit->name, bad);
        ac_pre[0] = 0.5f;
        float din[N * C], db[C] = {0};
        ac_J(NULL);
        act_unit->backward(din, db, ac_r, ac_out, act_unit->needs_pre ? ac_kept : NULL, N, C);
        char what[64];
        snprintf(what, sizeof what, "%s dpre", act_unit->name);
        check_grad(what, ac_pre, din, N * C, ac_J, NULL, 1e-2f);
        snprintf(what, sizeof what, "%s dbias", act_unit->name);
        check_grad(what, ac_b, db, C, ac_J, NULL, 1e-2f);
        float din2[N * C];   /* no bias gradient wanted: same dpre */
        ac_J(NULL);
        act_unit->backward(din2, NULL, ac_r, ac_out, act_unit->needs_pre ? ac_kept : NULL, N, C);
        CHECK(!memcmp(din, din2, sizeof din), "%s: dpre differs without dbias", act_unit->name);
    }
}

/* ---- rotary embedding: a pure rotation (norms kept), position 0 unturned,
 * and the backward against differences ---- */
enum { RB = 2, RT = 5, RC = 8, RNH = 2 };
static float ro_qkv[RB * RT * 3 * RC], ro_out[RB * RT * 3 * RC], ro_r[RB * RT * 3 * RC];
static float ro_cos[RT * RC], ro_sin[RT * RC];
static double ro_J(void *ctx) {
    (void)ctx;
    memcpy(ro_out, ro_qkv, sizeof ro_qkv);
    rope_forward(ro_out, ro_cos, ro_sin, RB, RT, RC, RNH);
    return dot(ro_out, ro_r, sizeof ro_out / sizeof *ro_out);
}
static void test_rope(void) {
    enum { NQ = RB * RT * 3 * RC };
    rope_tables(ro_cos, ro_sin, RT, RC / RNH);
    fill(ro_qkv, NQ, 1.0f); fill(ro_r, NQ, 1.0f);
    ro_J(NULL);
    double n0 = dot(ro_qkv, ro_qkv, NQ), n1 = dot(ro_out, ro_out, NQ);
    CHECK(fabs(n0 - n1) < 1e-4 * n0, "rope changes the norm: %g -> %g", n0, n1);
    CHECK(!memcmp(ro_out, ro_qkv, 3 * RC * sizeof(float)), "rope turns position 0");
    int moved = 0, v_moved = 0;
    for (int i = 3 * RC; i < NQ; i++) {
        moved += ro_out[i] != ro_qkv[i];
        v_moved += (i % (3 * RC)) >= 2 * RC && ro_out[i] != ro_qkv[i];
    }
    CHECK(moved > 0 && v_moved == 0, "rope: %d values turned, %d of v (want >0, 0)", moved, v_moved);
    float g[NQ];
    memcpy(g, ro_r, sizeof g);
    rope_backward(g, ro_cos, ro_sin, RB, RT, RC, RNH);
    check_grad("rope dqkv", ro_qkv, g, NQ, ro_J, NULL, 1e-2f);
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

/* ---- whole model: every parameter tensor of every variant ---- */
static Model model;
static uint16_t *mtok;
static double model_J(void *ctx) { (void)ctx; return model_forward(&model, mtok, model.B, NULL, NULL, NULL); }

static const char *const VARIANTS[] = {
    "", "pos=none", "pos=rope", "tie=0", "mlp_bias=0", "act=relu2",
    "pos=rope tie=0 mlp_bias=0 act=relu2"};
#define N_VARIANTS (int)(sizeof VARIANTS / sizeof *VARIANTS)

static void variant_size(ModelSize *ms, const char *spec) {
    *ms = (ModelSize){"grad", 2, 16, 2, 24, 8, 13, .pos = POS_LEARNED};
    unsigned seen = 0;
    char why[256];
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, " ");
        CHECK(variant_parse(ms, p, len, &seen, why, sizeof why) == 0, "variant '%s'", spec);
        p += len + (p[len] == ' ');
    }
}

/* Larger weights than the real init, so that every path carries gradient:
 * each tensor gets its own stream (by its PARAM_SPECS row), so variants
 * perturb the tensors they share alike. */
static void perturb(Model *m) {
    float *p = m->params_memory;
    for (int k = 0; k < m->num_tensors; k++) {
        Rng r;
        rng_seed(&r, 5, (uint64_t)m->tensor_spec[k]);
        for (size_t i = 0; i < m->param_sizes[k]; i++) p[i] += 0.2f * rng_normal(&r);
        p += m->param_sizes[k];
    }
}

/* Checks every tensor's gradient of variant `spec` with the dense or the
 * sparse MLP path; returns the loss at the perturbed seed-7 init. */
static double test_model(const char *spec, MlpKernel kind) {
    ModelSize ms;
    variant_size(&ms, spec);
    int B = 2;
    build_model(&model, &ms, B);
    model_set_mlp_kernel(&model, kind);   /* dense, or the sparse MLP path */
    model_init_params(&model, 7);
    mtok = malloc((size_t)B * (ms.T + 1) * sizeof *mtok);
    Rng trng;   /* the same tokens for every variant */
    rng_seed(&trng, 99, 0);
    for (int i = 0; i < B * (ms.T + 1); i++) mtok[i] = (uint16_t)rng_below(&trng, ms.V);
    perturb(&model);
    double loss0 = model_J(NULL);
    model_zero_grad(&model);
    model_backward(&model, mtok, B, 1.0f / (B * ms.T));
    size_t off = 0;
    for (int t = 0; t < model.num_tensors; t++) {
        char what[128];
        snprintf(what, sizeof what, "model [%s]%s d%s", spec,
                 kind == MLP_SPARSE ? " (sparse MLP)" : "", model_param_name(&model, t));
        /* a difference step may cross a ReLU kink: allow 1 element in 200 */
        check_grad_kinks(what, model.params_memory + off, model.grads_memory + off,
                         model.param_sizes[t], model_J, NULL, 2e-3f, model.param_sizes[t] / 200);
        /* every tensor of the variant carries gradient */
        double gn = dot(model.grads_memory + off, model.grads_memory + off, model.param_sizes[t]);
        CHECK(gn > 1e-12, "%s: gradient norm^2 %.3g is ~0", what, gn);
        off += model.param_sizes[t];
    }
    free(mtok);
    free_model(&model);
    return loss0;
}

/* Each variant is a different model (a variant flag that changed nothing
 * would pass the gradient check), with the tensors it shares with the
 * default initialised to the same values. */
static void test_variants(void) {
    double loss[N_VARIANTS];
    for (int v = 0; v < N_VARIANTS; v++) {
        loss[v] = test_model(VARIANTS[v], MLP_DENSE);
        test_model(VARIANTS[v], MLP_SPARSE);   /* relu2 keeps the dense path */
    }
    for (int v = 1; v < N_VARIANTS; v++)
        CHECK(loss[v] != loss[0], "variant '%s' has the default's loss %.9g", VARIANTS[v], loss[0]);
    CHECK(loss[1] != loss[2], "pos=none and pos=rope give the same loss");
    Model a, b;
    ModelSize sa, sb;
    variant_size(&sa, "");
    variant_size(&sb, "pos=none tie=0 mlp_bias=0");
    build_model(&a, &sa, 1); build_model(&b, &sb, 1);
    model_init_params(&a, 7); model_init_params(&b, 7);
    CHECK(b.params.wpe == NULL && b.params.fcb == NULL && b.params.fcprojb == NULL &&
          b.params.lmhead != NULL && a.params.lmhead == NULL, "views of absent tensors");
    size_t nq = (size_t)sa.L * sa.d * 3 * sa.d, nf = (size_t)sa.L * sa.F * sa.d;
    CHECK(!memcmp(a.params.wte, b.params.wte, (size_t)sa.V * sa.d * sizeof(float)) &&
          !memcmp(a.params.qkvw, b.params.qkvw, nq * sizeof(float)) &&
          !memcmp(a.params.fcprojw, b.params.fcprojw, nf * sizeof(float)),
          "variants do not share the initial values of common tensors");
    free_model(&a); free_model(&b);
}

int main(void) {
    rng_seed(&rng, 1234, 0);
    test_layernorm();
    test_matmul();
    test_attention();
    test_relu();
    test_activations();
    test_rope();
    test_crossentropy();
    test_variants();
    return test_done("gradcheck");
}
