/* optim.h — AdamW and plain SGD over the contiguous parameter buffer,
 * the learning-rate schedule, and global gradient-norm clipping. */
#ifndef RELUSCOPE_OPTIM_H
#define RELUSCOPE_OPTIM_H
#include <stddef.h>
#include "config.h"
#include "model.h"

typedef struct {
    OptimizerKind kind;
    size_t n;
    float *m;         /* [n] first moment (AdamW) */
    float *v;         /* [n] second moment (AdamW) */
    long t;           /* updates applied */
} Optimizer;

void build_optimizer(Optimizer *o, OptimizerKind kind, size_t n);
void free_optimizer(Optimizer *o);

/* Linear warmup over warmup_steps to lr, then cosine decay to lr_min at steps. */
double lr_at(const Config *c, long step);

/* L2 norm of the gradient buffer (accumulated in double). */
double grad_norm(const float *g, size_t n);

/* The factor that scales a gradient of this norm to at most max_norm
 * (1 if max_norm is 0, i.e. clipping off, or the norm is already below). */
float clip_factor(double norm, double max_norm);

/* One update of every parameter, with each gradient multiplied by gscale
 * (the clip factor) as it is read; the gradient buffer is left unchanged.
 * Weight decay applies to the 2-D weight matrices only (PARAM_SPECS .decay, model.c),
 * decoupled (AdamW). */
void optimizer_step(Optimizer *o, Model *m, const Config *c, double lr, float gscale);

#endif
