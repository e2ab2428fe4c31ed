/* model.c — the parameter table, build/free, init, forward and backward of
 * the transformer and its variants (docs/model.md). Parameters, gradients and
 * activations are each one allocation with named views; the layer math lives
 * in layers.c and attention.c, the MLP activation behind activation.h. */
#include "model.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "activation.h"
#include "layers.h"
#include "rng.h"
#include "util.h"

#define VIEW(field) offsetof(ParamTensors, field)
static int learned_pos(const ModelSize *s) { return s->pos == POS_LEARNED; }
static int mlp_bias(const ModelSize *s) { return !s->no_mlp_bias; }
static int untied(const ModelSize *s) { return s->untied; }

const ParamSpec PARAM_SPECS[NUM_PARAM_SPECS] = {
    /* name       ndim  dims                     decay init           view            present */
    {"wte",      2, {DIM_V, DIM_D},          1, INIT_NORMAL,   VIEW(wte),      NULL},
    {"wpe",      2, {DIM_T, DIM_D},          1, INIT_NORMAL,   VIEW(wpe),      learned_pos},
    {"ln1w",     2, {DIM_L, DIM_D},          0, INIT_ONE,      VIEW(ln1w),     NULL},
    {"ln1b",     2, {DIM_L, DIM_D},          0, INIT_ZERO,     VIEW(ln1b),     NULL},
    {"qkvw",     3, {DIM_L, DIM_D, DIM_3D},  1, INIT_NORMAL,   VIEW(qkvw),     NULL},
    {"qkvb",     2, {DIM_L, DIM_3D},         0, INIT_ZERO,     VIEW(qkvb),     NULL},
    {"attprojw", 3, {DIM_L, DIM_D, DIM_D},   1, INIT_RESIDUAL, VIEW(attprojw), NULL},
    {"attprojb", 2, {DIM_L, DIM_D},          0, INIT_ZERO,     VIEW(attprojb), NULL},
    {"ln2w",     2, {DIM_L, DIM_D},          0, INIT_ONE,      VIEW(ln2w),     NULL},
    {"ln2b",     2, {DIM_L, DIM_D},          0, INIT_ZERO,     VIEW(ln2b),     NULL},
    {"fcw",      3, {DIM_L, DIM_D, DIM_F},   1, INIT_NORMAL,   VIEW(fcw),      NULL},
    {"fcb",      2, {DIM_L, DIM_F},          0, INIT_ZERO,     VIEW(fcb),      mlp_bias},
    {"fcprojw",  3, {DIM_L, DIM_F, DIM_D},   1, INIT_RESIDUAL, VIEW(fcprojw),  NULL},
    {"fcprojb",  2, {DIM_L, DIM_D},          0, INIT_ZERO,     VIEW(fcprojb),  mlp_bias},
    {"lnfw",     1, {DIM_D},                 0, INIT_ONE,      VIEW(lnfw),     NULL},
    {"lnfb",     1, {DIM_D},                 0, INIT_ZERO,     VIEW(lnfb),     NULL},
    {"lmhead",   2, {DIM_D, DIM_V},          1, INIT_NORMAL,   VIEW(lmhead),   untied},
};

int param_tensors(const ModelSize *s, int spec[MAX_PARAM_TENSORS]) {
    int n = 0;
    for (int i = 0; i < NUM_PARAM_SPECS; i++)
        if (!PARAM_SPECS[i].present || PARAM_SPECS[i].present(s)) spec[n++] = i;
    return n;
}

int param_shape(const ModelSize *s, int spec, uint64_t dims[3]) {
    const ParamSpec *p = &PARAM_SPECS[spec];
    for (int k = 0; k < 3; k++) {
        uint64_t v = 0;
        if (k < p->ndim) switch (p->dims[k]) {
            case DIM_L: v = (uint64_t)s->L; break;
            case DIM_D: v = (uint64_t)s->d; break;
            case DIM_3D: v = 3 * (uint64_t)s->d; break;
            case DIM_F: v = (uint64_t)s->F; break;
            case DIM_T: v = (uint64_t)s->T; break;
            case DIM_V: v = (uint64_t)s->V; break;
        }
        dims[k] = v;
    }
    return p->ndim;
}

uint64_t param_count(const ModelSize *s, int spec) {
    uint64_t dims[3], n = 1;
    int nd = param_shape(s, spec, dims);
    for (int k = 0; k < nd; k++) n *= dims[k];
    return n;
}

uint64_t param_total(const ModelSize *s) {
    int spec[MAX_PARAM_TENSORS], n = param_tensors(s, spec);
    uint64_t total = 0;
    for (int k = 0; k < n; k++) total += param_count(s, spec[k]);
    return total;
}

const char *model_param_name(const Model *m, int k) { return PARAM_SPECS[m->tensor_spec[k]].name; }
int model_param_decay(const Model *m, int k) { return PARAM_SPECS[m->tensor_spec[k]].decay; }

/* Point the views of m's tensors into one buffer, in order (absent ones stay NULL). */
static void point_params(const Model *m, ParamTensors *t, float *mem) {
    memset(t, 0, sizeof *t);
    for (int k = 0; k < m->num_tensors; k++) {
        *(float **)(void *)((char *)t + PARAM_SPECS[m->tensor_spec[k]].view) = mem;
        mem += m->param_sizes[k];
    }
}

static size_t act_sizes(size_t *s, const ModelSize *c, int B) {
    size_t L = c->L, d = c->d, F = c->F, N = (size_t)B * c->T;
    size_t sizes[NUM_ACT_TENSORS] = {
        N * d, L * N * d, L * N, L * N, L * N * 3 * d, L * N * d,
        L * B * c->h * (size_t)c->T, L * N * d, L * N * d, L * N, L * N,
        L * N * d, N * d, N, N, N * (size_t)c->V, N,
        activation_of(c->act)->needs_pre ? L * N * F : 0};
    size_t total = 0;
    for (int i = 0; i < NUM_ACT_TENSORS; i++) { s[i] = sizes[i]; total += sizes[i]; }
    return total;
}

static void point_acts(Activations *a, float *mem, const size_t *sizes) {
    float **views[NUM_ACT_TENSORS] = {
        &a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty, &a->att_lse,
        &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->residual3,
        &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->logits, &a->losses, &a->fcpre};
    for (int i = 0; i < NUM_ACT_TENSORS; i++) { *views[i] = mem; mem += sizes[i]; }
}

/* Scratch: dresidual[N][d] (the forward's projection outputs), dbuf[N][d],
 * dqkv[N][3d], then the attention's own scratch. (The dense MLP backward's
 * dH [N][F] is a buffer of the H pool.) */
static size_t scratch_floats(const ModelSize *c, int B) {
    size_t N = (size_t)B * c->T, d = c->d;
    return N * d * 2 + N * 3 * d + attention_scratch_floats(c->T, c->d / c->h);
}

static float *attention_scratch(Model *m) {
    size_t N = (size_t)m->B * m->cfg.T, d = m->cfg.d;
    return m->scratch + N * d * 2 + N * 3 * d;
}

/* ---- the pool of [N][F] buffers: each layer's H, the dense backward's dH ---- */

static float *h_take(Model *m) {
    if (m->n_free > 0) return m->h_free[--m->n_free];
    return xaligned_alloc((size_t)m->B * m->cfg.T * m->cfg.F * sizeof(float));
}

static int h_held(const Model *m) {
    int held = 0;
    for (int l = 0; l < m->cfg.L; l++) held += m->h[l] != NULL;
    return held;
}

/* The budget: the buffers and the active lists together hold at most what
 * the dense path holds, L + 1 buffers (each layer's H and the backward's dH). */
static int h_over_budget(const Model *m) {
    size_t buf = (size_t)m->B * m->cfg.T * m->cfg.F * sizeof(float);
    size_t bytes = (size_t)(h_held(m) + m->n_free) * buf + mlp_sparse_bytes(m->mlp);
    return bytes > (size_t)(m->cfg.L + 1) * buf;
}

/* Free spare buffers beyond `keep` (at least one stays), and beyond the budget. */
static void h_fit(Model *m, int keep) {
    while (m->n_free > 1 && (m->n_free > keep || h_over_budget(m)))
        free(m->h_free[--m->n_free]);
}

static void h_give(Model *m, float *buf) {
    if (m->n_free > m->cfg.L) die("internal error: the H pool holds more than L + 1 buffers");
    m->h_free[m->n_free++] = buf;
    h_fit(m, m->cfg.L + 1);
}

/* After a forward: keep one spare buffer, plus those the previous forward
 * held beyond this one's while the budget allows (a layer that switches
 * between the paths from step to step does not free and reallocate B·T·F
 * floats each time); free the rest. */
static void h_trim(Model *m) {
    int held = h_held(m);
    h_fit(m, 1 + (m->h_prev_held > held ? m->h_prev_held - held : 0));
    m->h_prev_held = held;
}

static void h_free_all(Model *m) {
    for (int l = 0; l < m->cfg.L; l++) free(m->h[l]);
    while (m->n_free > 0) free(m->h_free[--m->n_free]);
}

const float *model_layer_h(const Model *m, int l) {
    if (l < 0 || l >= m->cfg.L || !m->h[l])
        die("model_layer_h: layer %d kept no post-activation values (set keep_h)", l);
    return m->h[l];
}

void build_model(Model *m, const ModelSize *cfg, int B) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->B = B;
    m->act = activation_of(cfg->act);
    if (!m->act) die("internal error: no activation number %d", cfg->act);
    m->num_tensors = param_tensors(cfg, m->tensor_spec);
    for (int k = 0; k < m->num_tensors; k++) {
        m->param_sizes[k] = (size_t)param_count(cfg, m->tensor_spec[k]);
        m->num_params += m->param_sizes[k];
    }
    m->params_memory = xaligned_alloc(m->num_params * sizeof(float));
    m->grads_memory = xaligned_alloc(m->num_params * sizeof(float));
    point_params(m, &m->params, m->params_memory);
    point_params(m, &m->grads, m->grads_memory);
    size_t asz[NUM_ACT_TENSORS];
    size_t total = act_sizes(asz, cfg, B);
    m->acts_memory = xaligned_alloc(total * sizeof(float));
    point_acts(&m->acts, m->acts_memory, asz);
    m->scratch = xaligned_alloc(scratch_floats(cfg, B) * sizeof(float));
    m->seen_scratch = xcalloc((size_t)cfg->F, 1);
    if (cfg->no_mlp_bias) m->zero_bias = xcalloc((size_t)cfg->F, sizeof(float));
    if (cfg->pos == POS_ROPE) {
        int hs = cfg->d / cfg->h;
        size_t n = (size_t)cfg->T * (hs / 2) + 1;
        m->rope_cos = xmalloc(n * sizeof(float));
        m->rope_sin = xmalloc(n * sizeof(float));
        rope_tables(m->rope_cos, m->rope_sin, cfg->T, hs);
    }
}

void free_model(Model *m) {
    free(m->params_memory);
    free(m->grads_memory);
    free(m->acts_memory);
    free(m->scratch);
    h_free_all(m);
    free(m->seen_scratch);
    mlp_sparse_free(m->mlp);
    free(m->zero_bias);
    free(m->rope_cos);
    free(m->rope_sin);
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
    int k = 0;   /* next tensor of the model */
    for (int i = 0; i < NUM_PARAM_SPECS; i++) {
        const ParamSpec *s = &PARAM_SPECS[i];
        int here = k < m->num_tensors && m->tensor_spec[k] == i;
        size_t n = (size_t)param_count(c, i);
        float std = s->init == INIT_RESIDUAL ? resid_std : 0.02f;
        int random = s->init == INIT_NORMAL || s->init == INIT_RESIDUAL;
        if (!here) {   /* absent in this variant: its draws are skipped over */
            for (size_t j = 0; random && j < n; j++) (void)rng_normal(&rng);
            continue;
        }
        for (size_t j = 0; j < n; j++)
            p[j] = random ? std * rng_normal(&rng) : (s->init == INIT_ONE ? 1.0f : 0.0f);
        p += n;
        k++;
    }
}

void model_zero_grad(Model *m) {
    memset(m->grads_memory, 0, m->num_params * sizeof(float));
}

/* Layer l's MLP projection and backward take the sparse path (mlp_sparse.h):
 * only behind an activation whose backward is ReLU's (the path computes
 * ReLU's derivative itself), when its last forward built complete lists. */
static int sparse_layer(const Model *m, int l, int N) {
    return m->act->sparse_ok && mlp_sparse_active(m->mlp, l, N);
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
    if (!m->h[l]) m->h[l] = h_take(m);
    float *fch = m->h[l], *res3 = a->residual3 + l * ND;
    /* the fc output goes where the activation's backward will read it */
    float *pre = m->act->needs_pre ? a->fcpre + l * NF : fch;
    float *att_lse = a->att_lse + (size_t)l * m->B * c->h * T;
    float *tmp = m->scratch;   /* [N][d] projection outputs before the residual add */

    layernorm_forward(ln1, a->ln1_mean + l * Nn, a->ln1_rstd + l * Nn, residual,
                      p->ln1w + l * d, p->ln1b + l * d, N, d);
    matmul_forward_seq(qkv, ln1, p->qkvw + (size_t)l * d * 3 * d, p->qkvb + l * 3 * d, nb, T,
                       d, 3 * d);
    if (c->pos == POS_ROPE) rope_forward(qkv, m->rope_cos, m->rope_sin, nb, T, d, c->h);
    attention_forward(atty, att_lse, qkv, attention_scratch(m), nb, T, d, c->h);
    matmul_forward_seq(tmp, atty, p->attprojw + (size_t)l * d * d, p->attprojb + l * d, nb, T,
                       d, d);
    residual_forward(res2, residual, tmp, (size_t)N * d);
    layernorm_forward(ln2, a->ln2_mean + l * Nn, a->ln2_rstd + l * Nn, res2,
                      p->ln2w + l * d, p->ln2b + l * d, N, d);
    matmul_forward_seq(pre, ln2, p->fcw + (size_t)l * d * F, NULL, nb, T, d, F);
    /* bias + activation + sparsity counting (ReLU: one fused sweep, in place,
     * which also builds the sparse MLP path's per-token lists of active units) */
    const float *b_in = p->fcb ? p->fcb + (size_t)l * F : m->zero_bias;
    const float *b_out = p->fcprojb ? p->fcprojb + l * d : NULL;
    ActiveList *lists = m->act->sparse_ok && !m->keep_h ? mlp_sparse_lists(m->mlp, l, N) : NULL;
    m->act->forward(fch, pre, b_in, nb, T, F, counts, stats, m->seen_scratch, lists);
    if (lists) mlp_sparse_release(m->mlp, l);   /* auto gave up: the storage moves on */
    if (sparse_layer(m, l, N)) {
        mlp_sparse_forward(m->mlp, l, tmp, p->fcprojw + (size_t)l * F * d, b_out, N, d);
        h_give(m, m->h[l]);   /* nothing reads this H again: its values are in the lists */
        m->h[l] = NULL;
    } else
        matmul_forward_seq(tmp, fch, p->fcprojw + (size_t)l * F * d, b_out, nb, T, F, d);
    residual_forward(res3, res2, tmp, (size_t)N * d);
}

double model_forward(Model *m, const uint16_t *tokens, int nb,
                     int64_t *usage, float *premax, double *presum) {
    const ModelSize *c = &m->cfg;
    Activations *a = &m->acts;
    int T = c->T, d = c->d, F = c->F, L = c->L, N = nb * T;
    size_t ND = (size_t)m->B * T * d;
    if (nb > m->B) die("model_forward: %d sequences exceed the allocated %d", nb, m->B);
    if (m->keep_h) mlp_sparse_drop(m->mlp);   /* dense everywhere: the lists' memory back */
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
    if (c->untied)   /* logits[N][V] = lnf · lmhead */
        matmul_forward_seq(a->logits, a->lnf, m->params.lmhead, NULL, nb, T, d, c->V);
    else             /* logits[N][V] = lnf · wteᵀ (tied embedding) */
        matmul_forward_seq_t(a->logits, a->lnf, m->params.wte, nb, T, d, c->V);
    crossentropy_forward(a->logits, a->losses, tokens + 1, T + 1, nb, T, c->V);
    h_trim(m);
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
    float *fch = m->h[l];
    const float *pre = m->act->needs_pre ? a->fcpre + l * NF : NULL;

    /* MLP: residual3 = residual2 + proj(act(fc(ln2(residual2)))) */
    float *dfcb = g->fcb ? g->fcb + (size_t)l * F : NULL;
    float *dfcprojb = g->fcprojb ? g->fcprojb + l * d : NULL;
    if (sparse_layer(m, l, N)) {
        mlp_sparse_backward(m->mlp, l, dbuf, g->fcw + (size_t)l * d * F, dfcb,
                            g->fcprojw + (size_t)l * F * d, dfcprojb, dres,
                            a->ln2 + l * ND, p->fcw + (size_t)l * d * F,
                            p->fcprojw + (size_t)l * F * d, N, d);
    } else {
        if (!fch) die("internal error: layer %d has no H for the dense MLP backward", l);
        float *dfch = h_take(m);   /* [N][F] */
        matmul_backward(dfch, g->fcprojw + (size_t)l * F * d, dfcprojb, dres, fch,
                        p->fcprojw + (size_t)l * F * d, N, F, d);
        m->act->backward(dfch, dfcb, dfch, fch, pre, N, F);
        matmul_backward(dbuf, g->fcw + (size_t)l * d * F, NULL, dfch, a->ln2 + l * ND,
                        p->fcw + (size_t)l * d * F, N, d, F);
        h_give(m, dfch);
    }
    layernorm_backward(dres, g->ln2w + l * d, g->ln2b + l * d, dbuf, a->residual2 + l * ND,
                       p->ln2w + l * d, a->ln2_mean + l * Nn, a->ln2_rstd + l * Nn, N, d);
    /* attention: residual2 = residual + attproj(attn(qkv(ln1(residual)))) */
    matmul_backward(dbuf, g->attprojw + (size_t)l * d * d, g->attprojb + l * d, dres,
                    a->atty + l * ND, p->attprojw + (size_t)l * d * d, N, d, d);
    attention_backward(dqkv, dbuf, a->qkv + l * ND * 3,
                       a->att_lse + (size_t)l * m->B * c->h * T, attention_scratch(m), nb, T,
                       d, c->h);
    if (c->pos == POS_ROPE) rope_backward(dqkv, m->rope_cos, m->rope_sin, nb, T, d, c->h);
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
    if (c->untied) {   /* dlnf = dlogits · lmheadᵀ; dlmhead += lnfᵀ · dlogits */
        matmul_backward(dbuf, m->grads.lmhead, NULL, a->logits, a->lnf, m->params.lmhead, N, d,
                        c->V);
    } else {           /* dlnf = dlogits · wte; dwte += dlogitsᵀ · lnf */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, d, c->V, 1.0f, a->logits,
                    c->V, m->params.wte, d, 0.0f, dbuf, d);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->V, d, N, 1.0f, a->logits,
                    c->V, a->lnf, d, 1.0f, m->grads.wte, d);
    }
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
