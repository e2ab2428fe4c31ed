/* record.c — the table of output variables and the record codec that walks
 * it (record.h). A row says where a variable's values sit in its record;
 * the element type is derived from the field itself (VT_OF), so a row
 * cannot disagree with the struct. */
#include "record.h"
#include <string.h>

#define VT_OF(x) _Generic((x), double: VT_F64, double *: VT_F64, int64_t: VT_I64, \
                          int64_t *: VT_I64, int32_t: VT_I32, int32_t *: VT_I32, float: VT_F32, \
                          float *: VT_F32)
#define FIELD(R, f) ((R *)0)->f

/* One value per record: field f of record struct R. */
#define ONE(R, f) .offset = offsetof(R, f), .type = VT_OF(FIELD(R, f))
/* Per layer, inside R's layers[] (a LayerMetrics field; an array field
 * gives its elements, contiguous, for every layer). */
#define IN_LAYERS(R, f) .offset = offsetof(R, layers[0].f), .stride = sizeof(LayerMetrics), \
                        .type = VT_OF(FIELD(R, layers[0].f))
/* Per layer, an array field a[MAX_LAYERS] of R. */
#define PER_LAYER(R, a) .offset = offsetof(R, a), .stride = sizeof(FIELD(R, a)[0]), \
                        .type = VT_OF(FIELD(R, a)[0])
/* Through a pointer field p of R ([L][topk] or [L][F] values). */
#define VIA(R, p) .offset = offsetof(R, p), .type = VT_OF(FIELD(R, p))

_Static_assert(sizeof(FIELD(LayerMetrics, token_use_q)) == NUM_QUANTILES * sizeof(double) &&
               sizeof(FIELD(LayerMetrics, seq_use_q)) == NUM_QUANTILES * sizeof(double),
               "SH_QUANT reads NUM_QUANTILES contiguous doubles per layer");

const OutVar OUT_VARS[] = {
    /* ---- per training step: (size, seed, step [, layer [, quantile]]) ---- */
    {.name = "loss", .rec = REC_STEP, .shape = SH_ONE, ONE(StepRecord, loss), .units = "1",
     .long_name = "training loss in nats: mean cross-entropy over the global batch, weights "
                  "before the update"},
    {.name = "lr", .rec = REC_STEP, .shape = SH_ONE, ONE(StepRecord, lr), .units = "1",
     .long_name = "learning rate of the step's update"},
    {.name = "grad_norm", .rec = REC_STEP, .shape = SH_ONE, ONE(StepRecord, grad_norm),
     .units = "1", .long_name = "global L2 norm of the gradient before clipping"},
    {.name = "tokens_seen", .rec = REC_STEP, .shape = SH_ONE, ONE(StepRecord, tokens_seen),
     .units = "1", .long_name = "training tokens consumed up to and including the step"},
    {.name = "step_time", .rec = REC_STEP, .shape = SH_ONE, ONE(StepRecord, step_time),
     .units = "s", .long_name = "wall-clock time of the step"},
    {.name = "token_use_mean", .rec = REC_STEP, .shape = SH_LAYER,
     IN_LAYERS(StepRecord, token_use_mean), .units = "1",
     .long_name = "fraction of hidden units active on a token, mean over the batch's tokens"},
    {.name = "seq_use_mean", .rec = REC_STEP, .shape = SH_LAYER,
     IN_LAYERS(StepRecord, seq_use_mean), .units = "1",
     .long_name = "fraction of hidden units active on at least one token of a sequence, mean "
                  "over sequences"},
    {.name = "batch_use", .rec = REC_STEP, .shape = SH_LAYER, IN_LAYERS(StepRecord, batch_use),
     .units = "1",
     .long_name = "fraction of hidden units active on at least one token of the global batch"},
    {.name = "dead_frac", .rec = REC_STEP, .shape = SH_LAYER, IN_LAYERS(StepRecord, dead_frac),
     .units = "1",
     .long_name = "fraction of hidden units off (not fired in the last dead_window steps)"},
    {.name = "turned_off", .rec = REC_STEP, .shape = SH_LAYER, IN_LAYERS(StepRecord, turned_off),
     .units = "1", .long_name = "hidden units that became off at the step"},
    {.name = "revived", .rec = REC_STEP, .shape = SH_LAYER, IN_LAYERS(StepRecord, revived),
     .units = "1", .long_name = "hidden units off at the previous step that fire at the step"},
    {.name = "hot_frac", .rec = REC_STEP, .shape = SH_LAYER, IN_LAYERS(StepRecord, hot_frac),
     .units = "1",
     .long_name = "fraction of hidden units active on more than half of the global batch's "
                  "tokens"},
    {.name = "token_use_q", .rec = REC_STEP, .shape = SH_QUANT,
     IN_LAYERS(StepRecord, token_use_q), .units = "1",
     .long_name = "quantiles over tokens of the fraction of hidden units active on a token"},
    {.name = "seq_use_q", .rec = REC_STEP, .shape = SH_QUANT, IN_LAYERS(StepRecord, seq_use_q),
     .units = "1",
     .long_name = "quantiles over sequences of the fraction of hidden units active in a "
                  "sequence"},
    /* resample_dead (docs/interventions.md): 0 at every step when it is off */
    {.name = "resampled", .rec = REC_STEP, .shape = SH_LAYER, IN_LAYERS(StepRecord, resampled),
     .units = "1", .long_name = "hidden units off for dead_window steps re-initialized after the "
                                "step's update (resample_dead)"},
    {.name = "redied", .rec = REC_STEP, .shape = SH_LAYER, IN_LAYERS(StepRecord, redied),
     .units = "1", .long_name = "re-initialized hidden units that became off again at the step"},
    {.name = "redied_life", .rec = REC_STEP, .shape = SH_LAYER,
     IN_LAYERS(StepRecord, redied_life), .units = "1",
     .long_name = "sum over the units counted in redied of the steps from their "
                  "re-initialization to their last firing"},
    /* ---- per held-out evaluation: (size, seed, eval [, layer [, quantile|sv]]) ---- */
    {.name = "eval_loss", .rec = REC_EVAL, .shape = SH_ONE, ONE(EvalRecord, loss), .units = "1",
     .long_name = "held-out loss in nats: mean cross-entropy"},
    {.name = "eval_tokens", .rec = REC_EVAL, .shape = SH_ONE, ONE(EvalRecord, tokens),
     .units = "1", .long_name = "held-out tokens evaluated"},
    {.name = "eval_token_use_mean", .rec = REC_EVAL, .shape = SH_LAYER,
     IN_LAYERS(EvalRecord, token_use_mean), .units = "1",
     .long_name = "held-out: fraction of hidden units active on a token, mean over tokens"},
    {.name = "eval_seq_use_mean", .rec = REC_EVAL, .shape = SH_LAYER,
     IN_LAYERS(EvalRecord, seq_use_mean), .units = "1",
     .long_name = "held-out: fraction of hidden units active in a sequence, mean over "
                  "sequences"},
    {.name = "eval_batch_use", .rec = REC_EVAL, .shape = SH_LAYER,
     IN_LAYERS(EvalRecord, batch_use), .units = "1",
     .long_name = "held-out: fraction of hidden units active on at least one held-out token"},
    {.name = "eval_token_use_q", .rec = REC_EVAL, .shape = SH_QUANT,
     IN_LAYERS(EvalRecord, token_use_q), .units = "1",
     .long_name = "held-out: quantiles over tokens of the fraction of hidden units active on "
                  "a token"},
    {.name = "eval_seq_use_q", .rec = REC_EVAL, .shape = SH_QUANT,
     IN_LAYERS(EvalRecord, seq_use_q), .units = "1",
     .long_name = "held-out: quantiles over sequences of the fraction of hidden units active "
                  "in a sequence"},
    {.name = "eff_rank", .rec = REC_EVAL, .shape = SH_LAYER, PER_LAYER(EvalRecord, eff_rank),
     .units = "1",
     .long_name = "effective rank exp(H(p)), p_i = s_i^2 / sum s^2, of the centred held-out "
                  "activations"},
    {.name = "participation_ratio", .rec = REC_EVAL, .shape = SH_LAYER,
     PER_LAYER(EvalRecord, participation), .units = "1",
     .long_name = "participation ratio (sum s^2)^2 / sum s^4 of the centred held-out "
                  "activations"},
    {.name = "stable_rank_fc", .rec = REC_EVAL, .shape = SH_LAYER,
     PER_LAYER(EvalRecord, stable_rank_fc), .units = "1",
     .long_name = "stable rank (squared Frobenius over squared spectral norm) of the layer's "
                  "fc weight"},
    {.name = "stable_rank_proj", .rec = REC_EVAL, .shape = SH_LAYER,
     PER_LAYER(EvalRecord, stable_rank_proj), .units = "1",
     .long_name = "stable rank (squared Frobenius over squared spectral norm) of the layer's "
                  "proj weight"},
    {.name = "singular_values", .rec = REC_EVAL, .shape = SH_SV,
     VIA(EvalRecord, singular_values), .units = "1",
     .long_name = "largest singular values of the centred held-out activation matrix, "
                  "descending"},
    /* ---- per snapshot, in the run's group: (snapshot [, layer, unit]) ---- */
    {.name = "tokens_since", .rec = REC_SNAPSHOT, .shape = SH_ONE,
     ONE(SnapshotRecord, tokens_since), .units = "1",
     .long_name = "training tokens since the previous snapshot"},
    {.name = "fires_since", .rec = REC_SNAPSHOT, .shape = SH_UNIT,
     VIA(SnapshotRecord, fires_since), .units = "1",
     .long_name = "tokens on which the unit fired since the previous snapshot"},
    {.name = "last_fire", .rec = REC_SNAPSHOT, .shape = SH_UNIT, VIA(SnapshotRecord, last_fire),
     .units = "1", .long_name = "last step at which the unit fired (-1: never)"},
    {.name = "premax", .rec = REC_SNAPSHOT, .shape = SH_UNIT, VIA(SnapshotRecord, premax),
     .units = "1",
     .long_name = "maximum pre-activation over the snapshot step's global batch"},
    {.name = "premean", .rec = REC_SNAPSHOT, .shape = SH_UNIT, VIA(SnapshotRecord, premean),
     .units = "1", .long_name = "mean pre-activation over the snapshot step's global batch"},
    {.name = "b_in", .rec = REC_SNAPSHOT, .shape = SH_UNIT, VIA(SnapshotRecord, b_in),
     .units = "1", .long_name = "the unit's fc bias"},
    {.name = "fc_norm", .rec = REC_SNAPSHOT, .shape = SH_UNIT, VIA(SnapshotRecord, fc_norm),
     .units = "1", .long_name = "L2 norm of the unit's input column of fc"},
    {.name = "proj_norm", .rec = REC_SNAPSHOT, .shape = SH_UNIT, VIA(SnapshotRecord, proj_norm),
     .units = "1", .long_name = "L2 norm of the unit's output row of proj"},
};
const int N_OUT_VARS = (int)(sizeof OUT_VARS / sizeof OUT_VARS[0]);
_Static_assert(sizeof OUT_VARS / sizeof OUT_VARS[0] <= MAX_OUT_VARS, "raise MAX_OUT_VARS");

size_t valtype_size(ValType t) { return t == VT_F64 || t == VT_I64 ? 8 : 4; }

const char *valtype_name(ValType t) {
    return t == VT_F64 ? "double" : t == VT_I64 ? "int64" : t == VT_I32 ? "int32" : "float";
}

size_t outvar_count(const OutVar *v, int L, int extra) {
    switch (v->shape) {
    case SH_ONE: return 1;
    case SH_LAYER: return (size_t)L;
    case SH_QUANT: return (size_t)L * NUM_QUANTILES;
    default: return (size_t)L * (size_t)extra;          /* SH_SV, SH_UNIT */
    }
}

static int via_pointer(const OutVar *v) { return v->shape == SH_SV || v->shape == SH_UNIT; }

/* Bytes of one layer's values of a direct per-layer variable. */
static size_t layer_bytes(const OutVar *v) {
    return (v->shape == SH_QUANT ? NUM_QUANTILES : 1) * valtype_size(v->type);
}

void outvar_gather(const OutVar *v, const void *rec, int L, int extra, void *dst) {
    const char *r = rec;
    size_t n = outvar_count(v, L, extra) * valtype_size(v->type);
    if (via_pointer(v)) {
        const void *src;
        memcpy(&src, r + v->offset, sizeof src);
        if (n) memcpy(dst, src, n);
    } else if (v->shape == SH_ONE) {
        memcpy(dst, r + v->offset, n);
    } else {
        for (int l = 0; l < L; l++)
            memcpy((char *)dst + (size_t)l * layer_bytes(v), r + v->offset + (size_t)l * v->stride,
                   layer_bytes(v));
    }
}

/* ---- the fields every record has, by kind ---- */

RecHead record_head(RecKind kind, const void *rec) {
    RecHead h = {0, 0, 0, 0};
    if (kind == REC_STEP) {
        const StepRecord *r = rec;
        h = (RecHead){r->run, r->L, 0, r->step};
    } else if (kind == REC_EVAL) {
        const EvalRecord *r = rec;
        h = (RecHead){r->run, r->L, r->singular_values ? r->topk : 0, r->step};
    } else if (kind == REC_SNAPSHOT) {
        const SnapshotRecord *r = rec;
        h = (RecHead){r->run, r->L, r->F, r->step};
    }
    return h;
}

static size_t record_size(RecKind kind) {
    return kind == REC_STEP ? sizeof(StepRecord) : kind == REC_EVAL ? sizeof(EvalRecord)
                                                                    : sizeof(SnapshotRecord);
}

static void set_head(RecKind kind, void *rec, const RecHead *h) {
    if (kind == REC_STEP) {
        StepRecord *r = rec;
        r->run = h->run; r->L = h->L; r->step = h->step;
    } else if (kind == REC_EVAL) {
        EvalRecord *r = rec;
        r->run = h->run; r->L = h->L; r->topk = h->extra; r->step = h->step;
    } else {
        SnapshotRecord *r = rec;
        r->run = h->run; r->L = h->L; r->F = h->extra; r->step = h->step;
    }
}

/* ---- the codec ---- */

#define HEAD_BYTES 24

void record_encode(RecKind kind, const void *rec, Bytes *out) {
    RecHead h = record_head(kind, rec);
    bytes_put_u32(out, (uint32_t)h.run);
    bytes_put_u32(out, (uint32_t)h.L);
    bytes_put_u32(out, (uint32_t)h.extra);
    bytes_put_u32(out, 0);
    bytes_put_u64(out, (uint64_t)h.step);
    for (int i = 0; i < N_OUT_VARS; i++) {
        const OutVar *v = &OUT_VARS[i];
        if (v->rec != kind) continue;
        size_t n = outvar_count(v, h.L, h.extra) * valtype_size(v->type);
        bytes_reserve(out, n);
        outvar_gather(v, rec, h.L, h.extra, out->p + out->len);
        out->len += n;
        bytes_pad8(out);
    }
}

int record_peek(const unsigned char *p, size_t n, RecHead *h) {
    Cursor c = {p, n, 0, 0};
    h->run = (int)cur_u32(&c);
    h->L = (int)cur_u32(&c);
    h->extra = (int)cur_u32(&c);
    cur_u32(&c);
    h->step = (int64_t)cur_u64(&c);
    return c.bad ? -1 : 0;
}

int record_decode(RecKind kind, const unsigned char *p, size_t n, void *rec) {
    RecHead h;
    if (kind < REC_STEP || kind > REC_SNAPSHOT || record_peek(p, n, &h) != 0) return -1;
    int extra_max = kind == REC_STEP ? 0 : kind == REC_EVAL ? 65536 : 1 << 24;
    if (h.L < 1 || h.L > MAX_LAYERS || h.extra < 0 || h.extra > extra_max ||
        (kind == REC_SNAPSHOT && h.extra < 1))
        return -1;
    memset(rec, 0, record_size(kind));
    set_head(kind, rec, &h);
    Cursor c = {p, n, HEAD_BYTES, 0};
    char *r = rec;
    for (int i = 0; i < N_OUT_VARS && !c.bad; i++) {
        const OutVar *v = &OUT_VARS[i];
        if (v->rec != kind) continue;
        size_t bytes = outvar_count(v, h.L, h.extra) * valtype_size(v->type);
        const char *src = cur_take(&c, bytes);
        cur_take(&c, (8 - bytes % 8) % 8);
        if (!src) break;
        if (via_pointer(v)) {
            const void *ptr = bytes ? src : NULL;
            memcpy(r + v->offset, &ptr, sizeof ptr);
        } else if (v->shape == SH_ONE) {
            memcpy(r + v->offset, src, bytes);
        } else {
            for (int l = 0; l < h.L; l++)
                memcpy(r + v->offset + (size_t)l * v->stride, src + (size_t)l * layer_bytes(v),
                       layer_bytes(v));
        }
    }
    return c.bad || c.off != c.n ? -1 : 0;
}

uint32_t record_table_fingerprint(void) {
    uint32_t crc = 0;
    for (int i = 0; i < N_OUT_VARS; i++) {
        const OutVar *v = &OUT_VARS[i];
        int code[3] = {(int)v->rec, (int)v->shape, (int)v->type};
        crc = crc32_update(crc, v->name, strlen(v->name) + 1);
        crc = crc32_update(crc, code, sizeof code);
    }
    return crc;
}
