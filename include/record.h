/* record.h — what one run reports (per step, per held-out evaluation, per
 * snapshot), the one table of output variables those records fill, and
 * the one encoding of a record.
 *
 * The trainer fills the structs. record_encode turns one into the bytes
 * that both travel over MPI from a run's leader to job rank 0 (sink.c) and
 * are stored as a journal frame's payload (ncout_journal.c); record_decode
 * is the way back. Both walk OUT_VARS, as do the NetCDF schema, the writes
 * into the file, merge, the test sample and `reluscope schema` (which
 * tests/check_dataset.py reads): adding an output variable is a record
 * field, its computation and one row of OUT_VARS (src/record.c). */
#ifndef RELUSCOPE_RECORD_H
#define RELUSCOPE_RECORD_H
#include <stddef.h>
#include <stdint.h>
#include "metrics.h"
#include "util.h"

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
    LayerMetrics layers[MAX_LAYERS];     /* dead/turned/revived/hot unused (0) */
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
    int64_t *last_fire;                  /* -1 = never */
} SnapshotRecord;

/* The three kinds of record; also their journal frame types (1..3) and, in
 * sink.c, their MPI message tags. */
typedef enum { REC_STEP = 1, REC_EVAL = 2, REC_SNAPSHOT = 3 } RecKind;

/* Element types of the variables (ncout maps them to NetCDF types). */
typedef enum { VT_F64, VT_I64, VT_I32, VT_F32 } ValType;

/* What follows the record's own axis in a variable's dimensions:
 *   REC_STEP / REC_EVAL   (size, seed, step|eval [, layer [, quantile|sv]])
 *   REC_SNAPSHOT          (snapshot [, layer, unit]) in the run's group */
typedef enum {
    SH_ONE,        /* one value per record */
    SH_LAYER,      /* [L] */
    SH_QUANT,      /* [L][NUM_QUANTILES] */
    SH_SV,         /* [L][topk], through a pointer */
    SH_UNIT        /* [L][F], through a pointer */
} Shape;

typedef struct {
    const char *name;
    RecKind rec;
    Shape shape;
    ValType type;                /* derived from the record field (VT_OF) */
    const char *units, *long_name;
    size_t offset;               /* of the value; of layer 0's value(s); or of the pointer */
    size_t stride;               /* bytes from one layer's value(s) to the next (direct) */
} OutVar;

/* The table (src/record.c). Root-group variables first, then the
 * per-run snapshot group's, each in the order they are created. */
extern const OutVar OUT_VARS[];
extern const int N_OUT_VARS;
#define MAX_OUT_VARS 64

size_t valtype_size(ValType t);
const char *valtype_name(ValType t);          /* "double", "int64", "int32", "float" */
/* The values one record holds for v: 1, L, L*11, L*topk or L*F. */
size_t outvar_count(const OutVar *v, int L, int extra);
/* The record's values of v, layer-major, into dst (outvar_count elements). */
void outvar_gather(const OutVar *v, const void *rec, int L, int extra, void *dst);
/* The identifying fields of any record. extra: topk of an evaluation (0
 * without singular values), F of a snapshot, 0 for a step. */
typedef struct { int run, L, extra; int64_t step; } RecHead;
RecHead record_head(RecKind kind, const void *rec);

/* Encoding: a 24-byte head (u32 run, L, extra, 0; i64 step), then every
 * variable of the kind in table order, outvar_count values each, native
 * endian, each block zero-padded to 8 bytes (so decoded arrays stay
 * aligned). Appends to out. */
void record_encode(RecKind kind, const void *rec, Bytes *out);
/* The way back into *rec (a StepRecord, EvalRecord or SnapshotRecord by
 * kind); pointer fields point into p, which must be 8-byte aligned and
 * outlive rec. 0, or -1 when malformed (lengths, L, topk or F impossible). */
int  record_decode(RecKind kind, const unsigned char *p, size_t n, void *rec);
/* The head alone (from the first 24 bytes); -1 if too short. */
int  record_peek(const unsigned char *p, size_t n, RecHead *h);
/* CRC-32 of the table's names, kinds, shapes and types: two builds encode
 * records alike iff they agree (the journal header carries it). */
uint32_t record_table_fingerprint(void);

#endif
