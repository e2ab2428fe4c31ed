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

/* Staging arrays of one step range, variable-major as the file wants them. */
typedef struct {
    double *scalar[4];               /* loss, lr, grad_norm, step_time: [n] */
    long long *tokens;               /* [n] */
    double *layer[4];                /* token/seq mean, batch_use, dead_frac: [n][L] */
    int *count[2];                   /* turned_off, revived: [n][L] */
    double *q[2];                    /* token/seq quantiles: [n][L][Q] */
} Stage;

static void stage_alloc(Stage *s, size_t n, size_t L) {
    for (int i = 0; i < 4; i++) s->scalar[i] = xmalloc(n * sizeof(double));
    s->tokens = xmalloc(n * sizeof(long long));
    for (int i = 0; i < 4; i++) s->layer[i] = xmalloc(n * L * sizeof(double));
    for (int i = 0; i < 2; i++) s->count[i] = xmalloc(n * L * sizeof(int));
    for (int i = 0; i < 2; i++) s->q[i] = xmalloc(n * L * NUM_QUANTILES * sizeof(double));
}

static void stage_free(Stage *s) {
    for (int i = 0; i < 4; i++) { free(s->scalar[i]); free(s->layer[i]); }
    for (int i = 0; i < 2; i++) { free(s->count[i]); free(s->q[i]); }
    free(s->tokens);
}

static void stage_put(Stage *s, size_t i, const StepRecord *r) {
    double sc[4] = {r->loss, r->lr, r->grad_norm, r->step_time};
    for (int k = 0; k < 4; k++) s->scalar[k][i] = sc[k];
    s->tokens[i] = r->tokens_seen;
    size_t L = (size_t)r->L;
    for (size_t l = 0; l < L; l++) {
        const LayerMetrics *m = &r->layers[l];
        size_t j = i * L + l;
        s->layer[0][j] = m->token_use_mean;
        s->layer[1][j] = m->seq_use_mean;
        s->layer[2][j] = m->batch_use;
        s->layer[3][j] = m->dead_frac;
        s->count[0][j] = m->turned_off;
        s->count[1][j] = m->revived;
        memcpy(s->q[0] + j * NUM_QUANTILES, m->token_use_q, sizeof m->token_use_q);
        memcpy(s->q[1] + j * NUM_QUANTILES, m->seq_use_q, sizeof m->seq_use_q);
    }
}

static int put_stage(ApplyCtx *x, const Stage *s, int run, int64_t first, size_t n, int L,
                     char *err, size_t errlen) {
    const int *v = x->ids->var;
    int ncid = x->ids->ncid;
    size_t start[5] = {(size_t)(run / x->m->n_seeds), (size_t)(run % x->m->n_seeds),
                       (size_t)first, 0, 0};
    size_t count[5] = {1, 1, n, (size_t)L, NUM_QUANTILES};
    const int sc[4] = {V_LOSS, V_LR, V_GRAD_NORM, V_STEP_TIME};
    for (int k = 0; k < 4; k++)
        PUT(nc_put_vara_double(ncid, v[sc[k]], start, count, s->scalar[k]),
            NC_ROOT_VARS[sc[k]].name);
    PUT(nc_put_vara(ncid, v[V_TOKENS_SEEN], start, count, s->tokens), "tokens_seen");
    const int ly[4] = {V_TOKEN_USE_MEAN, V_SEQ_USE_MEAN, V_BATCH_USE, V_DEAD_FRAC};
    for (int k = 0; k < 4; k++)
        PUT(nc_put_vara_double(ncid, v[ly[k]], start, count, s->layer[k]),
            NC_ROOT_VARS[ly[k]].name);
    PUT(nc_put_vara_int(ncid, v[V_TURNED_OFF], start, count, s->count[0]), "turned_off");
    PUT(nc_put_vara_int(ncid, v[V_REVIVED], start, count, s->count[1]), "revived");
    PUT(nc_put_vara_double(ncid, v[V_TOKEN_USE_Q], start, count, s->q[0]), "token_use_q");
    PUT(nc_put_vara_double(ncid, v[V_SEQ_USE_Q], start, count, s->q[1]), "seq_use_q");
    return 0;
}

/* refs[0..n): one run, consecutive distinct steps. */
static int write_step_range(ApplyCtx *x, const Ref *refs, size_t n, char *err, size_t errlen) {
    int run = refs[0].run, L = x->m->sizes[run / x->m->n_seeds].L;
    Stage s;
    stage_alloc(&s, n, (size_t)L);
    StepRecord *r = xmalloc(sizeof *r);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (decode_step(refs[i].f, r) != 0 || r->L != L)
            rc = bad_record(x, "step", run, refs[i].step, "is malformed", err, errlen);
        else
            stage_put(&s, i, r);
    }
    if (rc == 0) rc = put_stage(x, &s, run, refs[0].step, n, L, err, errlen);
    free(r);
    stage_free(&s);
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

static int put_eval_layers(ApplyCtx *x, const EvalRecord *r, const size_t *start, size_t *count,
                           char *err, size_t errlen) {
    int ncid = x->ids->ncid, L = r->L;
    const int *v = x->ids->var;
    double *buf = xmalloc((size_t)L * NUM_QUANTILES * sizeof *buf);
    const int scalar_vars[7] = {V_EVAL_TOKEN_USE_MEAN, V_EVAL_SEQ_USE_MEAN, V_EVAL_BATCH_USE,
                                V_EFF_RANK, V_PARTICIPATION, V_STABLE_RANK_FC, V_STABLE_RANK_PROJ};
    int s = NC_NOERR, k;
    for (k = 0; k < 7 && s == NC_NOERR; k++) {
        for (int l = 0; l < L; l++) {
            const LayerMetrics *m = &r->layers[l];
            double all[7] = {m->token_use_mean, m->seq_use_mean, m->batch_use, r->eff_rank[l],
                             r->participation[l], r->stable_rank_fc[l], r->stable_rank_proj[l]};
            buf[l] = all[k];
        }
        s = nc_put_vara_double(ncid, v[scalar_vars[k]], start, count, buf);
    }
    const char *what = s ? NC_ROOT_VARS[scalar_vars[k - 1]].name : "";
    for (k = 0; k < 2 && s == NC_NOERR; k++) {
        for (int l = 0; l < L; l++)
            memcpy(buf + (size_t)l * NUM_QUANTILES,
                   k ? r->layers[l].seq_use_q : r->layers[l].token_use_q,
                   NUM_QUANTILES * sizeof *buf);
        count[4] = NUM_QUANTILES;
        s = nc_put_vara_double(ncid, v[k ? V_EVAL_SEQ_USE_Q : V_EVAL_TOKEN_USE_Q], start, count,
                               buf);
        what = k ? "eval_seq_use_q" : "eval_token_use_q";
    }
    free(buf);
    PUT(s, what);
    return 0;
}

static int apply_eval(ApplyCtx *x, const Frame *f, char *err, size_t errlen) {
    EvalRecord r;
    if (decode_eval(f, &r) != 0) return bad_record(x, "eval", -1, -1, "is malformed", err, errlen);
    const NcoutMeta *m = x->m;
    if (r.run < 0 || r.run >= meta_n_runs(m) || r.L != m->sizes[r.run / m->n_seeds].L ||
        r.step < 0 || m->eval_every <= 0 || r.topk > m->topk)
        return bad_record(x, "eval", r.run, r.step, "does not fit the dataset", err, errlen);
    size_t slot = slot_of(r.step, m->eval_every);
    size_t start[5] = {(size_t)(r.run / m->n_seeds), (size_t)(r.run % m->n_seeds), slot, 0, 0};
    size_t count[5] = {1, 1, 1, (size_t)r.L, 0};
    int ncid = x->ids->ncid;
    long long tokens = r.tokens, step = r.step;
    PUT(nc_put_vara_double(ncid, x->ids->var[V_EVAL_LOSS], start, count, &r.loss), "eval_loss");
    PUT(nc_put_vara(ncid, x->ids->var[V_EVAL_TOKENS], start, count, &tokens), "eval_tokens");
    PUT(nc_put_var1(ncid, x->ids->eval_step, &slot, &step), "eval_step");
    if (put_eval_layers(x, &r, start, count, err, errlen) != 0) return -1;
    if (r.topk > 0 && r.singular_values) {
        count[4] = (size_t)r.topk;
        PUT(nc_put_vara_double(ncid, x->ids->var[V_SINGULAR_VALUES], start, count,
                               r.singular_values), "singular_values");
    }
    return 0;
}

static int apply_snapshot(ApplyCtx *x, const Frame *f, char *err, size_t errlen) {
    SnapshotRecord r;
    if (decode_snapshot(f, &r) != 0)
        return bad_record(x, "snapshot", -1, -1, "is malformed", err, errlen);
    const NcoutMeta *m = x->m;
    if (r.run < 0 || r.run >= meta_n_runs(m) || m->snapshot_every <= 0 || r.step < 0 ||
        r.L != m->sizes[r.run / m->n_seeds].L || r.F != m->sizes[r.run / m->n_seeds].F)
        return bad_record(x, "snapshot", r.run, r.step, "does not fit the dataset", err, errlen);
    int g = x->ids->grp[r.run];
    const int *gv = x->ids->gvar[r.run];
    size_t slot = slot_of(r.step, m->snapshot_every);
    size_t start[3] = {slot, 0, 0}, count[3] = {1, (size_t)r.L, (size_t)r.F};
    long long step = r.step, tokens = r.tokens_since;
    PUT(nc_put_var1(g, x->ids->snap_step[r.run], &slot, &step), "snapshot_step");
    PUT(nc_put_var1(g, gv[G_TOKENS_SINCE], &slot, &tokens), "tokens_since");
    PUT(nc_put_vara(g, gv[G_FIRES_SINCE], start, count, r.fires_since), "fires_since");
    PUT(nc_put_vara(g, gv[G_LAST_FIRE], start, count, r.last_fire), "last_fire");
    const float *fl[5] = {r.premax, r.premean, r.b_in, r.fc_norm, r.proj_norm};
    const int ids[5] = {G_PREMAX, G_PREMEAN, G_B_IN, G_FC_NORM, G_PROJ_NORM};
    for (int i = 0; i < 5; i++)
        PUT(nc_put_vara_float(g, gv[ids[i]], start, count, fl[i]), NC_GROUP_VARS[ids[i]].name);
    return 0;
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
        Cursor c = {fr[i].payload, fr[i].len, 0, 0};
        int run = (int)cur_u32(&c);
        cur_u32(&c);
        int64_t step = (int64_t)cur_u64(&c);
        if (c.bad || run < 0 || run >= meta_n_runs(x->m) || step < 0)
            rc = bad_record(x, "step", run, step, "does not fit the dataset", err, errlen);
        refs[n++] = (Ref){run, step, i, &fr[i]};
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
