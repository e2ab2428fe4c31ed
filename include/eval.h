/* eval.h — the fixed held-out batch: loss and usage metrics (SPEC §3), shared
 * by training-time evaluation and the `eval` command so both give the same
 * numbers for the same weights and tokens. */
#ifndef RELUSCOPE_EVAL_H
#define RELUSCOPE_EVAL_H
#include <stdint.h>
#include "comm.h"
#include "config.h"
#include "model.h"
#include "record.h"

typedef struct Spectrum Spectrum;
typedef struct Selectivity Selectivity;

typedef struct {
    int n_seq;            /* sequences of the whole held-out batch (all ranks) */
    int first, count;     /* this rank's slice */
    int T;
    uint16_t *tokens;     /* [count][T+1] */
    int *counts;          /* sequences per rank (for the gather) */
    int topk;             /* singular values kept per layer */
    Spectrum *spectrum;   /* the run's BLACS grid (NULL: no held-out set) */
    float *rows;          /* [L][count*T][F] activations of this rank's slice */
} Heldout;

/* The first eval_tokens/T windows of val_data (or none if eval is off),
 * and the run's spectrum grid (collective over the group). */
void build_heldout(Heldout *h, const Config *c, const ModelSize *s, Comm *comm);
void free_heldout(Heldout *h);

/* Loss and per-layer usage over the held-out tokens, through the model in
 * chunks of m->B sequences; counts summed over the group. rec->layers filled.
 * rows (or NULL): receives each layer's post-ReLU activations [L][count*T][F].
 * sel (or NULL): records which token ids each unit fires for (selectivity.h;
 * this rank's tokens only). */
void evaluate_tokens(Model *m, Comm *comm, const uint16_t *tokens, int count,
                     const int *counts, int n_seq_total, EvalRecord *rec, float *rows,
                     Selectivity *sel);

/* Training-time evaluation of a run at `step`: usage, loss, and the spectra
 * of every layer (spectrum.h); fills and sinks an EvalRecord. */
void run_heldout_eval(Heldout *h, Model *m, Comm *comm, int run, int64_t step);

/* Build m for the checkpoint's size (batch B) and load its weights, with every
 * check of checkpoint_load; dies with one line naming the file on failure.
 * (Used by the `eval` and `export` commands.) */
void eval_load_model(const char *path, Model *m, int B);

#endif
