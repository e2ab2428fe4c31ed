/* record.h — what one run reports, per step, per evaluation and per
 * snapshot. The trainer fills these; the NetCDF writer (ncout.h) stores them;
 * comm.c ships them from a run's leader to job rank 0 as flat byte buffers
 * (record_pack / record_unpack keep that in one place). */
#ifndef RELUSCOPE_RECORD_H
#define RELUSCOPE_RECORD_H
#include <stddef.h>
#include <stdint.h>
#include "metrics.h"

#define MAX_LAYERS 64

typedef struct {
    int run;                     /* index in the sweep: size_index * n_seeds + seed_index */
    int64_t step;
    double loss, lr, grad_norm, step_time;
    int64_t tokens_seen;
    int L;
    LayerMetrics layers[MAX_LAYERS];
} StepRecord;

typedef struct {
    int run;
    int64_t step;
    double loss;
    int64_t tokens;
    int L, topk;
    LayerMetrics layers[MAX_LAYERS];     /* dead/turned/revived unused (0) */
    /* spectra (spectrum.h); NaN where not computed */
    double eff_rank[MAX_LAYERS], participation[MAX_LAYERS];
    double stable_rank_fc[MAX_LAYERS], stable_rank_proj[MAX_LAYERS];
    double *singular_values;             /* [L][topk], NaN-padded; owned by filler */
} EvalRecord;

typedef struct {
    int run;
    int64_t step;
    int L, F;
    int64_t tokens_since;                /* tokens since the previous snapshot */
    /* each [L][F] */
    int64_t *fires_since;
    float *premax, *premean, *b_in, *fc_norm, *proj_norm;
    int64_t *last_fire;                  /* -1 = never fired */
} SnapshotRecord;

#endif
