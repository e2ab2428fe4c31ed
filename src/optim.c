/* optim.c — AdamW / SGD, the learning-rate schedule, gradient clipping. */
#include "optim.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

void build_optimizer(Optimizer *o, OptimizerKind kind, size_t n) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->n = n;
    o->m = xaligned_alloc(n * sizeof(float));
    o->v = xaligned_alloc(n * sizeof(float));
}

void free_optimizer(Optimizer *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

double lr_at(const Config *c, long step) {
    if (c->warmup_steps > 0 && step < c->warmup_steps)
        return c->lr * (double)(step + 1) / (double)c->warmup_steps;
    long decay_steps = c->steps - c->warmup_steps;
    if (decay_steps <= 0) return c->lr;
    double progress = (double)(step - c->warmup_steps) / (double)decay_steps;
    if (progress > 1.0) progress = 1.0;
    double cosine = 0.5 * (1.0 + cos(M_PI * progress));   /* 1 -> 0 */
    return c->lr_min + (c->lr - c->lr_min) * cosine;
}

double grad_norm(const float *g, size_t n) {
    double sum = 0.0;
    #pragma omp simd reduction(+:sum)
    for (size_t i = 0; i < n; i++) sum += (double)g[i] * g[i];
    return sqrt(sum);
}

float clip_factor(double norm, double max_norm) {
    if (max_norm <= 0.0 || !(norm > max_norm)) return 1.0f;
    return (float)(max_norm / norm);
}

/* One pass over the tensor: the clip factor is applied to each gradient as
 * it is read (a separate clip pass would read and write them all again). */
static void adamw_tensor(float *p, const float *g, float *m, float *v, size_t n,
                         float gscale, float lr, float b1, float b2, float eps, float wd,
                         float bc1, float bc2) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    }
}

void optimizer_step(Optimizer *o, Model *m, const Config *c, double lr, float gscale) {
    o->t++;
    float *p = m->params_memory, *g = m->grads_memory;
    float bc1 = 1.0f - powf((float)c->beta1, (float)o->t);
    float bc2 = 1.0f - powf((float)c->beta2, (float)o->t);
    size_t off = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        size_t n = m->param_sizes[i];
        float wd = model_param_decay(m, i) ? (float)c->weight_decay : 0.0f;
        if (o->kind == OPT_ADAMW) {
            adamw_tensor(p + off, g + off, o->m + off, o->v + off, n, gscale, (float)lr,
                         (float)c->beta1, (float)c->beta2, (float)c->eps, wd, bc1, bc2);
        } else {   /* plain SGD; weight decay (if any) decoupled as in AdamW */
            for (size_t j = off; j < off + n; j++)
                p[j] -= (float)lr * (g[j] * gscale + wd * p[j]);
        }
        off += n;
    }
}
