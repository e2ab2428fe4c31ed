/* model.h — the GPT-2-layout ReLU transformer of SPEC §2, float32.
 *
 * Parameters, gradients and activations each live in ONE contiguous
 * allocation with named views (llm.c habit): syncing gradients is one
 * reduction, a checkpoint is one write. Tensor order = checkpoint order.
 * Weights are stored [in][out]: y = x · W.
 */
#ifndef RELUSCOPE_MODEL_H
#define RELUSCOPE_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "metrics.h"
#include "mlp_sparse.h"
#include "record.h"   /* MAX_LAYERS */

/* Views of the parameter tensors (and of their gradients); a tensor the
 * size's variant does not have is NULL. */
typedef struct {
    float *wte;       /* [V][d]   token embedding; the output head unless untied */
    float *wpe;       /* [T][d]   position embedding (pos=learned only) */
    float *ln1w;      /* [L][d] */
    float *ln1b;      /* [L][d] */
    float *qkvw;      /* [L][d][3d] */
    float *qkvb;      /* [L][3d] */
    float *attprojw;  /* [L][d][d] */
    float *attprojb;  /* [L][d] */
    float *ln2w;      /* [L][d] */
    float *ln2b;      /* [L][d] */
    float *fcw;       /* [L][d][F]  column f = unit f's input weights */
    float *fcb;       /* [L][F]     b_in (mlp_bias=1 only) */
    float *fcprojw;   /* [L][F][d]  row f = unit f's output weights */
    float *fcprojb;   /* [L][d]     (mlp_bias=1 only) */
    float *lnfw;      /* [d] */
    float *lnfb;      /* [d] */
    float *lmhead;    /* [d][V]     output head (tie=0 only) */
} ParamTensors;

/* The parameter tensors, described once: allocation, init, the optimizer's
 * weight decay and the checkpoint's tensor table all walk PARAM_SPECS. A
 * variant adds or drops a tensor through `present`. Row order is buffer
 * order, checkpoint order and the order of the init's random draws. */
typedef enum { DIM_L, DIM_D, DIM_3D, DIM_F, DIM_T, DIM_V } ParamDim;
typedef enum {
    INIT_NORMAL,     /* N(0, 0.02) */
    INIT_RESIDUAL,   /* N(0, 0.02/sqrt(2L)): the residual output projections */
    INIT_ONE,        /* LayerNorm gains */
    INIT_ZERO        /* biases */
} ParamInit;
typedef struct {
    const char *name;
    int ndim;
    ParamDim dims[3];
    int decay;                            /* decoupled weight decay applies */
    ParamInit init;
    size_t view;                          /* offsetof(ParamTensors, the view) */
    int (*present)(const ModelSize *);    /* NULL: in every variant */
} ParamSpec;

#define NUM_PARAM_SPECS 17
#define MAX_PARAM_TENSORS NUM_PARAM_SPECS
extern const ParamSpec PARAM_SPECS[NUM_PARAM_SPECS];

/* The tensors of size s, in order: fills spec[] with PARAM_SPECS rows,
 * returns how many. */
int param_tensors(const ModelSize *s, int spec[MAX_PARAM_TENSORS]);
/* Shape of PARAM_SPECS row `spec` at size s: ndim, dims (unused ones 0). */
int param_shape(const ModelSize *s, int spec, uint64_t dims[3]);
uint64_t param_count(const ModelSize *s, int spec);
/* Parameters of every present tensor. */
uint64_t param_total(const ModelSize *s);

/* Activations kept for the backward pass (N = B*T tokens of this rank). */
typedef struct {
    float *encoded;   /* [N][d] */
    float *ln1;       /* [L][N][d] */
    float *ln1_mean;  /* [L][N] */
    float *ln1_rstd;  /* [L][N] */
    float *qkv;       /* [L][N][3d] */
    float *atty;      /* [L][N][d] */
    float *att_lse;   /* [L][B][h][T] log-sum-exp of each query's scaled scores */
    float *residual2; /* [L][N][d] */
    float *ln2;       /* [L][N][d] */
    float *ln2_mean;  /* [L][N] */
    float *ln2_rstd;  /* [L][N] */
    float *residual3; /* [L][N][d] */
    float *lnf;       /* [N][d] */
    float *lnf_mean;  /* [N] */
    float *lnf_rstd;  /* [N] */
    float *logits;    /* [N][V] becomes dlogits in the backward pass */
    float *losses;    /* [N] per-token cross-entropy */
    float *fcpre;     /* [L][N][F] kept for the activation's backward if it
                       * needs_pre (include/activation.h); else empty */
} Activations;

#define NUM_ACT_TENSORS 18

typedef struct {
    ModelSize cfg;
    int num_tensors;                           /* present tensors */
    int tensor_spec[MAX_PARAM_TENSORS];        /* their PARAM_SPECS rows */
    size_t param_sizes[MAX_PARAM_TENSORS];     /* their lengths, buffer order */
    size_t num_params;
    float *params_memory;  ParamTensors params;
    float *grads_memory;   ParamTensors grads;
    int B;                 /* sequences this replica processes per step */
    float *acts_memory;    Activations acts;
    float *scratch;        /* backward scratch: see model.c */
    uint8_t *seen_scratch; /* [F] for per-sequence counting */
    const struct Activation *act;   /* the MLP's activation (act=) */
    float *zero_bias;      /* [F] zeros: b_in of mlp_bias=0 for the fused kernel */
    float *rope_cos, *rope_sin;     /* [T][hs/2] rotary tables (pos=rope) */
    double mean_loss;      /* of the last forward with targets */
    MlpSparse *mlp;        /* sparse MLP state (mlp_sparse.h); NULL = dense */
    /* The MLP's post-activation values H, [N][F] per layer (ReLU: in place
     * over X·W1), in a pool of buffers (model.c): h[l] is layer l's after a
     * forward, or NULL when the layer took the sparse path (its H is in the
     * active lists; the backward does not read the dense one) and keep_h is
     * 0. The pool keeps one spare buffer (the next layer's X·W1, the dense
     * backward's dH) and frees the rest, so a sparse model holds one [N][F]
     * buffer instead of L + 1. */
    float *h[MAX_LAYERS];
    float *h_free[MAX_LAYERS + 1];
    int n_free, h_prev_held;
    int keep_h;            /* 1 (an evaluation, no backward follows): every layer takes
                            * the dense path and keeps its H (readers of model_layer_h),
                            * and the active lists are freed for it (mlp_sparse_drop) */
} Model;

/* Allocate for cfg and batch B (sequences per replica); parameters zeroed. */
void build_model(Model *m, const ModelSize *cfg, int B);
void free_model(Model *m);
/* Choose the MLP kernels (`mlp_kernel`): dense (the default), sparse or auto. */
void model_set_mlp_kernel(Model *m, MlpKernel kind);

/* SPEC §2 init from the seed: N(0,0.02), residual projections
 * N(0, 0.02/sqrt(2L)), biases 0, LayerNorm gains 1. The draws go in
 * PARAM_SPECS order and a tensor the variant lacks still consumes its draws,
 * so variants share the initial values of every tensor they have in common. */
void model_init_params(Model *m, uint64_t seed);

/* Name of the model's k-th tensor, and whether it gets weight decay (the
 * 2-D weight matrices do; biases and LayerNorm parameters do not). */
const char *model_param_name(const Model *m, int k);
int model_param_decay(const Model *m, int k);

/* Forward over B sequences (tokens[b] = row of T+1: inputs 0..T-1,
 * targets 1..T; nb <= m->B). Fills acts.losses; returns the mean loss.
 * usage: int64 buffer of L*usage_stride(F) to ADD counts into (or NULL);
 * pre: snapshot pre-activation stats to update (or NULL). */
double model_forward(Model *m, const uint16_t *tokens, int nb,
                     int64_t *usage, float *premax, double *presum);

/* Layer l's H [nb·T][F] of the last forward: every layer's when keep_h is
 * set (the forward was then dense everywhere: the H and the outputs are the
 * dense path's bits); without it a layer that took the sparse MLP path has
 * none (dies). */
const float *model_layer_h(const Model *m, int l);

/* Backward of the last forward. grad_scale = 1/(global tokens), so that
 * summing the replicas' gradients gives the gradient of the global mean
 * loss. Accumulates into grads (call model_zero_grad first). */
void model_backward(Model *m, const uint16_t *tokens, int nb, float grad_scale);
void model_zero_grad(Model *m);

/* Sum of per-token losses of sequence b of the last forward (double). */
double model_sequence_loss(const Model *m, int b);

/* FLOPs of one forward+backward per token (matmuls + attention). */
double model_flops_per_token(const ModelSize *cfg);

#endif
