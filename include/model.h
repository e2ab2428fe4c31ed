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

#define NUM_PARAM_TENSORS 16
extern const char *const PARAM_NAMES[NUM_PARAM_TENSORS];

typedef struct {
    float *wte;       /* [V][d]   token embedding, tied to the output */
    float *wpe;       /* [T][d]   position embedding */
    float *ln1w;      /* [L][d] */
    float *ln1b;      /* [L][d] */
    float *qkvw;      /* [L][d][3d] */
    float *qkvb;      /* [L][3d] */
    float *attprojw;  /* [L][d][d] */
    float *attprojb;  /* [L][d] */
    float *ln2w;      /* [L][d] */
    float *ln2b;      /* [L][d] */
    float *fcw;       /* [L][d][F]  column f = unit f's input weights */
    float *fcb;       /* [L][F]     b_in */
    float *fcprojw;   /* [L][F][d]  row f = unit f's output weights */
    float *fcprojb;   /* [L][d] */
    float *lnfw;      /* [d] */
    float *lnfb;      /* [d] */
} ParamTensors;

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
    float *fch;       /* [L][N][F] post-ReLU activations (ReLU done in place) */
    float *residual3; /* [L][N][d] */
    float *lnf;       /* [N][d] */
    float *lnf_mean;  /* [N] */
    float *lnf_rstd;  /* [N] */
    float *logits;    /* [N][V] becomes dlogits in the backward pass */
    float *losses;    /* [N] per-token cross-entropy */
} Activations;

#define NUM_ACT_TENSORS 18

typedef struct {
    ModelSize cfg;
    size_t param_sizes[NUM_PARAM_TENSORS];
    size_t num_params;
    float *params_memory;  ParamTensors params;
    float *grads_memory;   ParamTensors grads;
    int B;                 /* sequences this replica processes per step */
    float *acts_memory;    Activations acts;
    float *scratch;        /* backward scratch: see model.c */
    uint8_t *seen_scratch; /* [F] for per-sequence counting */
    double mean_loss;      /* of the last forward with targets */
    MlpSparse *mlp;        /* sparse MLP state (mlp_sparse.h); NULL = dense */
} Model;

/* Allocate for cfg and batch B (sequences per replica); parameters zeroed. */
void build_model(Model *m, const ModelSize *cfg, int B);
void free_model(Model *m);
/* Choose the MLP kernels (`mlp_kernel`): dense (the default), sparse or auto. */
void model_set_mlp_kernel(Model *m, MlpKernel kind);

/* SPEC §2 init from the seed: N(0,0.02), residual projections
 * N(0, 0.02/sqrt(2L)), biases 0, LayerNorm gains 1. */
void model_init_params(Model *m, uint64_t seed);

/* Which tensors get decoupled weight decay (the 2-D weight matrices). */
int param_is_matrix(int tensor_index);

/* Forward over B sequences (tokens[b] = row of T+1: inputs 0..T-1,
 * targets 1..T; nb <= m->B). Fills acts.losses; returns the mean loss.
 * usage: int64 buffer of L*usage_stride(F) to ADD counts into (or NULL);
 * pre: snapshot pre-activation stats to update (or NULL). */
double model_forward(Model *m, const uint16_t *tokens, int nb,
                     int64_t *usage, float *premax, double *presum);

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
