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

/* Scale so that the norm is at most max_norm (0 = off); returns the factor. */
double clip_grads(float *g, size_t n, double norm, double max_norm);

/* One update of every parameter. Weight decay applies to the 2-D
 * weight matrices only (param_is_matrix), decoupled (AdamW). */
void optimizer_step(Optimizer *o, Model *m, const Config *c, double lr);

#endif
