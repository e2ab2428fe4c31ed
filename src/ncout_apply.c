/* ncout_apply.c — decoded journal frames into NetCDF hyperslabs. The same
 * code serves every update and the catch-up after a killed writer, so a
 * caught-up dataset holds exactly what the writer would have written.
 *
 * Step records are sorted by (run, step) and written one contiguous step
 * range of one run at a time: a flush of 10 steps of a run costs one
 * nc_put_vara per variable, whatever order the records arrived in. */
#include <stdlib.h>
#include <string.h>
#include "ncout_impl.h"
#include "util.h"

#define MAX_RANGE 4096               /* steps staged at once (bounds memory) */
#define PUT(call, what) do { int _s = (call); \
    if (_s != NC_NOERR) return nc_fail(_s, x->shown, what, err, errlen); } while (0)

typedef struct {
    int run;
    int64_t step;
    int seq;                         /* arrival order: the later record wins */
    const Frame *f;
} Ref;

static int cmp_ref(const void *a, const void *b) {
    const Ref *x = a, *y = b;
    if (x->run != y->run) return x->run < y->run ? -1 : 1;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int bad_record(ApplyCtx *x, const char *kind, int run, int64_t step, const char *why,
                      char *err, size_t errlen) {
    snprintf(err, errlen, "%s: %s record of run %d step %lld %s", x->shown, kind, run,
             (long long)step, why);
    return -1;
}

/* The dimensions after (size, seed, step|eval) of a variable's slab for
 * one record: layer [, quantile|sv]; returns the number of them. */
static int trail_dims(const OutVar *v, int L, int extra, size_t *count) {
    if (v->shape == SH_ONE) return 0;
    count[0] = (size_t)L;
    if (v->shape == SH_LAYER) return 1;
    count[1] = v->shape == SH_QUANT ? NUM_QUANTILES : (size_t)extra;
    return 2;
}

/* Every root variable of `kind`, for n consecutive slots of one run, from
 * stage[i] (n records' values each, slot-major). */
static int put_slab(ApplyCtx *x, RecKind kind, void *const *stage, int run, size_t first,
                    size_t n, int L, int extra, char *err, size_t errlen) {
    size_t start[5] = {(size_t)(run / x->m->n_seeds), (size_t)(run % x->m->n_seeds), first, 0, 0};
    size_t count[5] = {1, 1, n, 0, 0};
    for (int i = 0; i < N_OUT_VARS; i++) {
        const OutVar *v = &OUT_VARS[i];
        if (v->rec != kind || x->ids->var[i] < 0 || outvar_count(v, L, extra) == 0) continue;
        trail_dims(v, L, extra, count + 3);
        PUT(nc_put_vara(x->ids->ncid, x->ids->var[i], start, count, stage[i]), v->name);
    }
    return 0;
}

/* refs[0..n): one run, consecutive distinct steps. */
static int write_step_range(ApplyCtx *x, const Ref *refs, size_t n, char *err, size_t errlen) {
    int run = refs[0].run, L = x->m->sizes[run / x->m->n_seeds].L;
    void *stage[MAX_OUT_VARS] = {0};
    size_t bytes[MAX_OUT_VARS] = {0};
    for (int i = 0; i < N_OUT_VARS; i++)
        if (OUT_VARS[i].rec == REC_STEP) {
            bytes[i] = outvar_count(&OUT_VARS[i], L, 0) * valtype_size(OUT_VARS[i].type);
            stage[i] = xmalloc(n * bytes[i]);
        }
    StepRecord *r = xmalloc(sizeof *r);
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        if (record_decode(REC_STEP, refs[k].f->payload, refs[k].f->len, r) != 0 || r->L != L)
            rc = bad_record(x, "step", run, refs[k].step, "is malformed", err, errlen);
        for (int i = 0; i < N_OUT_VARS && rc == 0; i++)
            if (stage[i]) outvar_gather(&OUT_VARS[i], r, L, 0, (char *)stage[i] + k * bytes[i]);
    }
    if (rc == 0) rc = put_slab(x, REC_STEP, stage, run, (size_t)refs[0].step, n, L, 0, err, errlen);
    free(r);
    for (int i = 0; i < N_OUT_VARS; i++) free(stage[i]);
    return rc;
}

/* Sorted refs: drop the earlier of duplicates, cut into contiguous ranges. */
static int write_steps(ApplyCtx *x, Ref *refs, size_t n, int64_t *max_step, char *err,
                       size_t errlen) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && refs[m - 1].run == refs[i].run && refs[m - 1].step == refs[i].step)
            refs[m - 1] = refs[i];
        else
            refs[m++] = refs[i];
    }
    for (size_t a = 0; a < m;) {
        size_t b = a + 1;
        while (b < m && b - a < MAX_RANGE && refs[b].run == refs[a].run &&
               refs[b].step == refs[b - 1].step + 1)
            b++;
        if (write_step_range(x, refs + a, b - a, err, errlen) != 0) return -1;
        if (refs[b - 1].step > *max_step) *max_step = refs[b - 1].step;
        a = b;
    }
    return 0;
}

/* The step coordinate is the step number: fill it up to the last step. */
static int extend_step_coord(ApplyCtx *x, int64_t max_step, char *err, size_t errlen) {
    if (max_step < x->step_coord_done) return 0;
    size_t first = (size_t)x->step_coord_done, n = (size_t)(max_step + 1) - first;
    long long *v = xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (long long)(first + i);
    int s = nc_put_vara(x->ids->ncid, x->ids->step_coord, &first, &n, v);
    free(v);
    PUT(s, "step");
    x->step_coord_done = max_step + 1;
    return 0;
}

static size_t slot_of(int64_t step, long every) {
    return (size_t)((step + every - 1) / every);       /* ceil: unique per interval */
}

/* One record's values of every variable of its kind (root: put_slab) or
 * into the run's snapshot group. */
static int put_record(ApplyCtx *x, RecKind kind, const void *rec, size_t slot, char *err,
                      size_t errlen) {
    RecHead h = record_head(kind, rec);
    void *stage[MAX_OUT_VARS] = {0};
    for (int i = 0; i < N_OUT_VARS; i++)
        if (OUT_VARS[i].rec == kind) {
            stage[i] = xmalloc(outvar_count(&OUT_VARS[i], h.L, h.extra) *
                                   valtype_size(OUT_VARS[i].type) + 8);
            outvar_gather(&OUT_VARS[i], rec, h.L, h.extra, stage[i]);
        }
    int rc = 0;
    if (kind == REC_EVAL) {
        rc = put_slab(x, kind, stage, h.run, slot, 1, h.L, h.extra, err, errlen);
    } else {
        int g = x->ids->grp[h.run], st;
        size_t start[3] = {slot, 0, 0}, count[3] = {1, (size_t)h.L, (size_t)h.extra};
        for (int i = 0; i < N_OUT_VARS && rc == 0; i++)
            if (stage[i] && (st = nc_put_vara(g, x->ids->gvar[h.run][i], start, count, stage[i])))
                rc = nc_fail(st, x->shown, OUT_VARS[i].name, err, errlen);
    }
    for (int i = 0; i < N_OUT_VARS; i++) free(stage[i]);
    return rc;
}

/* An evaluation or snapshot slot's coordinates: its index and its step. */
static int put_slot_coords(ApplyCtx *x, int ncid, int index_var, int step_var, size_t slot,
                           int64_t step, const char *what, char *err, size_t errlen) {
    long long index = (long long)slot, st = step;
    PUT(nc_put_var1(ncid, index_var, &slot, &index), what);
    PUT(nc_put_var1(ncid, step_var, &slot, &st), what);
    return 0;
}

static int apply_eval(ApplyCtx *x, const Frame *f, char *err, size_t errlen) {
    EvalRecord r;
    if (record_decode(REC_EVAL, f->payload, f->len, &r) != 0)
        return bad_record(x, "eval", -1, -1, "is malformed", err, errlen);
    const NcoutMeta *m = x->m;
    if (r.run < 0 || r.run >= meta_n_runs(m) || r.L != m->sizes[r.run / m->n_seeds].L ||
        r.step < 0 || (m->steps > 0 && r.step > m->steps) || m->eval_every <= 0 || r.topk > m->topk)
        return bad_record(x, "eval", r.run, r.step, "does not fit the dataset", err, errlen);
    size_t slot = slot_of(r.step, m->eval_every);
    if (put_slot_coords(x, x->ids->ncid, x->ids->eval_coord, x->ids->eval_step, slot, r.step,
                        "eval/eval_step", err, errlen) != 0)
        return -1;
    return put_record(x, REC_EVAL, &r, slot, err, errlen);
}

static int apply_snapshot(ApplyCtx *x, const Frame *f, char *err, size_t errlen) {
    SnapshotRecord r;
    if (record_decode(REC_SNAPSHOT, f->payload, f->len, &r) != 0)
        return bad_record(x, "snapshot", -1, -1, "is malformed", err, errlen);
    const NcoutMeta *m = x->m;
    if (r.run < 0 || r.run >= meta_n_runs(m) || m->snapshot_every <= 0 || r.step < 0 ||
        (m->steps > 0 && r.step > m->steps) || r.L != m->sizes[r.run / m->n_seeds].L ||
        r.F != m->sizes[r.run / m->n_seeds].F)
        return bad_record(x, "snapshot", r.run, r.step, "does not fit the dataset", err, errlen);
    size_t slot = slot_of(r.step, m->snapshot_every);
    if (put_slot_coords(x, x->ids->grp[r.run], x->ids->snap_coord[r.run],
                        x->ids->snap_step[r.run], slot, r.step, "snapshot/snapshot_step", err,
                        errlen) != 0)
        return -1;
    return put_record(x, REC_SNAPSHOT, &r, slot, err, errlen);
}

static int apply_history(ApplyCtx *x, const Frame *f, char *err, size_t errlen) {
    char *line = xmalloc(f->len + 1);
    memcpy(line, f->payload, f->len);
    line[f->len] = '\0';
    int rc = schema_add_history(x->ids->ncid, line, x->shown, err, errlen);
    free(line);
    return rc;
}

/* Step refs first (sorted, ranged), then the rest in arrival order. */
int apply_frame_list(ApplyCtx *x, const Frame *fr, int nf, char *err, size_t errlen) {
    Ref *refs = xmalloc((size_t)(nf > 0 ? nf : 1) * sizeof *refs);
    size_t n = 0;
    int rc = 0;
    for (int i = 0; i < nf && rc == 0; i++) {
        if (fr[i].type != FR_STEP) continue;
        RecHead h = {-1, 0, 0, -1};
        if (record_peek(fr[i].payload, fr[i].len, &h) != 0 || h.run < 0 ||
            h.run >= meta_n_runs(x->m) || h.step < 0 || (x->m->steps > 0 && h.step >= x->m->steps))
            rc = bad_record(x, "step", h.run, h.step, "does not fit the dataset", err, errlen);
        refs[n++] = (Ref){h.run, h.step, i, &fr[i]};
    }
    int64_t max_step = -1;
    if (rc == 0 && n > 0) {
        qsort(refs, n, sizeof *refs, cmp_ref);
        rc = write_steps(x, refs, n, &max_step, err, errlen);
    }
    free(refs);
    for (int i = 0; i < nf && rc == 0; i++) {
        if (fr[i].type == FR_EVAL) rc = apply_eval(x, &fr[i], err, errlen);
        else if (fr[i].type == FR_SNAPSHOT) rc = apply_snapshot(x, &fr[i], err, errlen);
        else if (fr[i].type == FR_HISTORY) rc = apply_history(x, &fr[i], err, errlen);
    }
    if (rc == 0) rc = extend_step_coord(x, max_step, err, errlen);
    return rc;
}

int apply_frames(ApplyCtx *x, const unsigned char *p, size_t n, char *err, size_t errlen) {
    Frame *fr;
    size_t used;
    int corrupt;
    int nf = frames_parse(p, n, &fr, &used, &corrupt);
    int rc = 0;
    if (used != n) {
        snprintf(err, errlen, "%s: internal error: %zu of %zu buffered bytes are not valid frames",
                 x->shown, n - used, n);
        rc = -1;
    }
    if (rc == 0) rc = apply_frame_list(x, fr, nf, err, errlen);
    frames_free(fr, nf);
    return rc;
}
