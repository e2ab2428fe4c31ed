/* model.c — build/free, init, forward and backward of the ReLU transformer.
 * Parameters, gradients and activations are each one allocation with named
 * views; the layer math lives in layers.c. */
#include "model.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "layers.h"
#include "rng.h"
#include "util.h"

const char *const PARAM_NAMES[NUM_PARAM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

static void param_sizes(size_t *s, const ModelSize *c) {
    size_t L = c->L, d = c->d, F = c->F;
    size_t sizes[NUM_PARAM_TENSORS] = {
        (size_t)c->V * d, (size_t)c->T * d, L * d, L * d, L * d * 3 * d, L * 3 * d,
        L * d * d, L * d, L * d, L * d, L * d * F, L * F, L * F * d, L * d, d, d};
    memcpy(s, sizes, sizeof sizes);
}

/* Point the NUM_PARAM_TENSORS views of t into one buffer, in order. */
static void point_params(ParamTensors *t, float *mem, const size_t *sizes) {
    float **views[NUM_PARAM_TENSORS] = {
        &t->wte, &t->wpe, &t->ln1w, &t->ln1b, &t->qkvw, &t->qkvb, &t->attprojw,
        &t->attprojb, &t->ln2w, &t->ln2b, &t->fcw, &t->fcb, &t->fcprojw, &t->fcprojb,
        &t->lnfw, &t->lnfb};
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) { *views[i] = mem; mem += sizes[i]; }
}

int param_is_matrix(int i) {
    return i == 0 || i == 1 || i == 4 || i == 6 || i == 10 || i == 12;
}

static size_t act_sizes(size_t *s, const ModelSize *c, int B) {
    size_t L = c->L, d = c->d, F = c->F, N = (size_t)B * c->T;
    size_t sizes[NUM_ACT_TENSORS] = {
        N * d, L * N * d, L * N, L * N, L * N * 3 * d, L * N * d,
        L * B * c->h * (size_t)c->T, L * N * d, L * N * d, L * N, L * N,
        L * N * F, L * N * d, N * d, N, N, N * (size_t)c->V, N};
    size_t total = 0;
    for (int i = 0; i < NUM_ACT_TENSORS; i++) { s[i] = sizes[i]; total += sizes[i]; }
    return total;
}

static void point_acts(Activations *a, float *mem, const size_t *sizes) {
    float **views[NUM_ACT_TENSORS] = {
        &a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty, &a->att_lse,
        &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch, &a->residual3,
        &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->logits, &a->losses};
    for (int i = 0; i < NUM_ACT_TENSORS; i++) { *views[i] = mem; mem += sizes[i]; }
}

/* Scratch: dresidual[N][d] (the forward's projection outputs), dbuf[N][d],
 * dqkv[N][3d], dfch[N][F], then the attention's own scratch. */
static size_t scratch_floats(const ModelSize *c, int B) {
    size_t N = (size_t)B * c->T, d = c->d;
    return N * d * 2 + N * 3 * d + N * (size_t)c->F + attention_scratch_floats(c->T, c->d / c->h);
}

static float *attention_scratch(Model *m) {
    size_t N = (size_t)m->B * m->cfg.T, d = m->cfg.d;
    return m->scratch + N * d * 2 + N * 3 * d + N * (size_t)m->cfg.F;
}

void build_model(Model *m, const ModelSize *cfg, int B) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->B = B;
    param_sizes(m->param_sizes, cfg);
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) m->num_params += m->param_sizes[i];
    m->params_memory = xaligned_alloc(m->num_params * sizeof(float));
    m->grads_memory = xaligned_alloc(m->num_params * sizeof(float));
    point_params(&m->params, m->params_memory, m->param_sizes);
    point_params(&m->grads, m->grads_memory, m->param_sizes);
    size_t asz[NUM_ACT_TENSORS];
    size_t total = act_sizes(asz, cfg, B);
    m->acts_memory = xaligned_alloc(total * sizeof(float));
    point_acts(&m->acts, m->acts_memory, asz);
    m->scratch = xaligned_alloc(scratch_floats(cfg, B) * sizeof(float));
    m->seen_scratch = xcalloc((size_t)cfg->F, 1);
}

void free_model(Model *m) {
    free(m->params_memory);
    free(m->grads_memory);
    free(m->acts_memory);
    free(m->scratch);
    free(m->seen_scratch);
    mlp_sparse_free(m->mlp);
    memset(m, 0, sizeof *m);
}

void model_set_mlp_kernel(Model *m, MlpKernel kind) {
    mlp_sparse_free(m->mlp);
    m->mlp = mlp_sparse_create(kind, m->cfg.L, m->B * m->cfg.T, m->cfg.F, m->cfg.d);
}

void model_init_params(Model *m, uint64_t seed) {
    const ModelSize *c = &m->cfg;
    Rng rng;
    rng_seed(&rng, seed, 0x1417);   /* stream 0x1417: parameter init */
    float resid_std = 0.02f / sqrtf(2.0f * c->L);
    float *p = m->params_memory;
    for (int i = 0; i < NUM_PARAM_TENSORS; i++) {
        size_t n = m->param_sizes[i];
        int is_gain = (i == 2 || i == 8 || i == 14);
        float std = (i == 6 || i == 12) ? resid_std : 0.02f;
        for (size_t j = 0; j < n; j++)
            p[j] = param_is_matrix(i) ? std * rng_normal(&rng) : (is_gain ? 1.0f : 0.0f);
        p += n;
    }
}

void model_zero_grad(Model *m) {
    memset(m->grads_memory, 0, m->num_params * sizeof(float));
}

/* One transformer block, forward: residual -> residual3[l]. */
static void block_forward(Model *m, int l, const float *residual, int nb,
                          UsageCounts *counts, PreactStats *stats) {
    const ModelSize *c = &m->cfg;
    const ParamTensors *p = &m->params;
    Activations *a = &m->acts;
    int T = c->T, d = c->d, F = c->F, N = nb * T;
    size_t ND = (size_t)m->B * T * d, NF = (size_t)m->B * T * F, Nn = (size_t)m->B * T;
    float *ln1 = a->ln1 + l * ND, *qkv = a->qkv + l * ND * 3, *atty = a->atty + l * ND;
    float *res2 = a->residual2 + l * ND, *ln2 = a->ln2 + l * ND;
    float *fch = a->fch + l * NF, *res3 = a->residual3 + l * ND;
    float *att_lse = a->att_lse + (size_t)l * m->B * c->h * T;
    float *tmp = m->scratch;   /* [N][d] projection outputs before the residual add */

    layernorm_forward(ln1, a->ln1_mean + l * Nn, a->ln1_rstd + l * Nn, residual,
                      p->ln1w + l * d, p->ln1b + l * d, N, d);
    matmul_forward(qkv, ln1, p->qkvw + (size_t)l * d * 3 * d, p->qkvb + l * 3 * d, N, d, 3 * d);
    attention_forward(atty, att_lse, qkv, attention_scratch(m), nb, T, d, c->h);
    matmul_forward(tmp, atty, p->attprojw + (size_t)l * d * d, p->attprojb + l * d, N, d, d);
    residual_forward(res2, residual, tmp, (size_t)N * d);
    layernorm_forward(ln2, a->ln2_mean + l * Nn, a->ln2_rstd + l * Nn, res2,
                      p->ln2w + l * d, p->ln2b + l * d, N, d);
    matmul_forward(fch, ln2, p->fcw + (size_t)l * d * F, NULL, N, d, F);
    /* bias + ReLU + sparsity counting in one sweep, in place; for the sparse
     * MLP path also the per-token lists of active units */
    relu_count_forward_lists(fch, fch, p->fcb + (size_t)l * F, nb, T, F, counts, stats,
                             m->seen_scratch, mlp_sparse_lists(m->mlp, l, N));
    if (mlp_sparse_active(m->mlp, l, N))
        mlp_sparse_forward(m->mlp, l, tmp, p->fcprojw + (size_t)l * F * d,
                           p->fcprojb + l * d, N, d);
    else
        matmul_forward(tmp, fch, p->fcprojw + (size_t)l * F * d, p->fcprojb + l * d, N, F, d);
    residual_forward(res3, res2, tmp, (size_t)N * d);
}

double model_forward(Model *m, const uint16_t *tokens, int nb,
                     int64_t *usage, float *premax, double *presum) {
    const ModelSize *c = &m->cfg;
    Activations *a = &m->acts;
    int T = c->T, d = c->d, F = c->F, L = c->L, N = nb * T;
    size_t ND = (size_t)m->B * T * d;
    if (nb > m->B) die("model_forward: %d sequences exceed the allocated %d", nb, m->B);
    encoder_forward(a->encoded, tokens, T + 1, m->params.wte, m->params.wpe, nb, T, d);
    for (int l = 0; l < L; l++) {
        const float *residual = l == 0 ? a->encoded : a->residual3 + (l - 1) * ND;
        UsageCounts counts, *cp = NULL;
        PreactStats stats, *sp = NULL;
        if (usage) { counts = usage_view(usage, l, F); cp = &counts; }
        if (premax) {
            stats.premax = premax + (size_t)l * F;
            stats.presum = presum + (size_t)l * F;
            sp = &stats;
        }
        block_forward(m, l, residual, nb, cp, sp);
    }
    layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, a->residual3 + (L - 1) * ND,
                      m->params.lnfw, m->params.lnfb, N, d);
    /* logits[N][V] = lnf · wteᵀ (tied embedding) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, c->V, d, 1.0f, a->lnf, d,
                m->params.wte, d, 0.0f, a->logits, c->V);
    crossentropy_forward(a->logits, a->losses, tokens + 1, T + 1, nb, T, c->V);
    double sum = 0.0;
    for (int n = 0; n < N; n++) sum += a->losses[n];
    m->mean_loss = sum / N;
    return m->mean_loss;
}

/* One block, backward. dres: on entry d(loss)/d(residual3[l]); on exit
 * d(loss)/d(block input). Gradients accumulate into m->grads. */
static void block_backward(Model *m, int l, const float *residual, int nb, float *dres) {
    const ModelSize *c = &m->cfg;
    const ParamTensors *p = &m->params;
    ParamTensors *g = &m->grads;
    Activations *a = &m->acts;
    int T = c->T, d = c->d, F = c->F, N = nb * T;
    size_t ND = (size_t)m->B * T * d, NF = (size_t)m->B * T * F, Nn = (size_t)m->B * T;
    float *dbuf = m->scratch + (size_t)m->B * T * d;        /* [N][d] */
    float *dqkv = dbuf + (size_t)m->B * T * d;              /* [N][3d] */
    float *dfch = dqkv + (size_t)m->B * T * 3 * d;          /* [N][F] */
    float *fch = a->fch + l * NF;

    /* MLP: residual3 = residual2 + proj(relu(fc(ln2(residual2)))) */
    if (mlp_sparse_active(m->mlp, l, N)) {
        mlp_sparse_backward(m->mlp, l, dbuf, g->fcw + (size_t)l * d * F, g->fcb + (size_t)l * F,
                            g->fcprojw + (size_t)l * F * d, g->fcprojb + l * d, dres,
                            a->ln2 + l * ND, p->fcw + (size_t)l * d * F,
                            p->fcprojw + (size_t)l * F * d, N, d);
    } else {
        matmul_backward(dfch, g->fcprojw + (size_t)l * F * d, g->fcprojb + l * d, dres, fch,
                        p->fcprojw + (size_t)l * F * d, N, F, d);
        relu_backward(dfch, g->fcb + (size_t)l * F, dfch, fch, N, F);
        matmul_backward(dbuf, g->fcw + (size_t)l * d * F, NULL, dfch, a->ln2 + l * ND,
                        p->fcw + (size_t)l * d * F, N, d, F);
    }
    layernorm_backward(dres, g->ln2w + l * d, g->ln2b + l * d, dbuf, a->residual2 + l * ND,
                       p->ln2w + l * d, a->ln2_mean + l * Nn, a->ln2_rstd + l * Nn, N, d);
    /* attention: residual2 = residual + attproj(attn(qkv(ln1(residual)))) */
    matmul_backward(dbuf, g->attprojw + (size_t)l * d * d, g->attprojb + l * d, dres,
                    a->atty + l * ND, p->attprojw + (size_t)l * d * d, N, d, d);
    attention_backward(dqkv, dbuf, a->qkv + l * ND * 3,
                       a->att_lse + (size_t)l * m->B * c->h * T, attention_scratch(m), nb, T,
                       d, c->h);
    matmul_backward(dbuf, g->qkvw + (size_t)l * d * 3 * d, g->qkvb + l * 3 * d, dqkv,
                    a->ln1 + l * ND, p->qkvw + (size_t)l * d * 3 * d, N, d, 3 * d);
    layernorm_backward(dres, g->ln1w + l * d, g->ln1b + l * d, dbuf, residual,
                       p->ln1w + l * d, a->ln1_mean + l * Nn, a->ln1_rstd + l * Nn, N, d);
}

void model_backward(Model *m, const uint16_t *tokens, int nb, float grad_scale) {
    const ModelSize *c = &m->cfg;
    Activations *a = &m->acts;
    int T = c->T, d = c->d, L = c->L, N = nb * T;
    size_t ND = (size_t)m->B * T * d;
    float *dres = m->scratch;                        /* [N][d] */
    float *dbuf = m->scratch + ND;                   /* [N][d] */

    crossentropy_backward(a->logits, tokens + 1, T + 1, nb, T, c->V, grad_scale);
    /* dlnf = dlogits · wte; dwte += dlogitsᵀ · lnf */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, d, c->V, 1.0f, a->logits,
                c->V, m->params.wte, d, 0.0f, dbuf, d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->V, d, N, 1.0f, a->logits,
                c->V, a->lnf, d, 1.0f, m->grads.wte, d);
    memset(dres, 0, (size_t)N * d * sizeof(float));
    layernorm_backward(dres, m->grads.lnfw, m->grads.lnfb, dbuf, a->residual3 + (L - 1) * ND,
                       m->params.lnfw, a->lnf_mean, a->lnf_rstd, N, d);
    for (int l = L - 1; l >= 0; l--) {
        const float *residual = l == 0 ? a->encoded : a->residual3 + (l - 1) * ND;
        block_backward(m, l, residual, nb, dres);
    }
    encoder_backward(m->grads.wte, m->grads.wpe, dres, tokens, T + 1, nb, T, d);
}

double model_sequence_loss(const Model *m, int b) {
    const float *l = m->acts.losses + (size_t)b * m->cfg.T;
    double sum = 0.0;
    for (int t = 0; t < m->cfg.T; t++) sum += l[t];
    return sum;
}

double model_flops_per_token(const ModelSize *c) {
    /* forward: 2 FLOPs per weight per token for qkv, attproj, fc, fcproj and
     * the tied logits; attention QKᵀ and AV: 2·2·T·d per token per layer
     * counted over the causal half (T/2 keys on average); backward = 2x forward */
    double d = c->d, F = c->F, T = c->T, L = c->L, V = c->V;
    double per_layer = 2.0 * (3 * d * d + d * d + 2 * d * F) + 2.0 * 2.0 * (T / 2.0) * d;
    return 3.0 * (L * per_layer + 2.0 * d * V);
}
