/* ncout_sample.h — the sample sweep of the dataset writer's tests
 * (test_ncout.c, test_ncout_kill.c): records whose every value is a pure
 * function of (size, seed, step, variable, layer, quantile), writers that
 * shuffle them across runs and steps, and a reader that checks every slot
 * of a file: it must hold that value or, where nothing was written, the
 * fill value. Header-only (each test is one C file); every function is
 * static and may go unused in one of them. */
#ifndef RELUSCOPE_NCOUT_SAMPLE_H
#define RELUSCOPE_NCOUT_SAMPLE_H
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "ncout_impl.h"
#include "util.h"

#define HELPER static __attribute__((unused))

static char g_dir[256] __attribute__((unused));

/* ---- the sample sweep: 2 sizes (L = 2 and 3) x 2 seeds ---- */

static const ModelSize SIZES[2] __attribute__((unused)) = {{"small", 2, 16, 2, 16, 8, 64, .pos = POS_LEARNED},
                                                            {"big", 3, 24, 3, 24, 8, 64, .pos = POS_LEARNED}};
static const uint64_t SEEDS[2] __attribute__((unused)) = {7, 11};
#define TOPK 4
#define EVAL_EVERY 10
#define SNAP_EVERY 20
static const char *CONFIG_TAIL __attribute__((unused)) =
    "size.small = L=2 d=16 h=2 F=16 T=8 V=64\nsize.big = L=3 d=24 h=3 F=24 T=8 V=64\n"
    "seeds = 7, 11\nlr = 0.001\nsteps = 40\neval_every = 10\nsnapshot_every = 20\n"
    "out_dir = runs/x\n";

typedef struct {
    NcoutMeta m;
    int gsi[MAX_RUN_SIZES];          /* size index -> index in SIZES */
    char config[1024];
} Sample;

/* sizes = "small", "big" or "small,big"; extra config lines appended */
HELPER void sample(Sample *s, const char *sizes, long steps, const char *extra) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 2; i++)
        if (strstr(sizes, SIZES[i].name)) {
            s->gsi[s->m.n_sizes] = i;
            s->m.sizes[s->m.n_sizes++] = SIZES[i];
        }
    s->m.n_seeds = 2;
    memcpy(s->m.seeds, SEEDS, sizeof SEEDS);
    s->m.topk = TOPK;
    s->m.steps = steps;
    s->m.eval_every = EVAL_EVERY;
    s->m.snapshot_every = SNAP_EVERY;
    snprintf(s->config, sizeof s->config, "# effective config\nsizes = %s\n%s%s", sizes,
             CONFIG_TAIL, extra ? extra : "");
    s->m.config_text = s->config;
    s->m.version = "test";
    s->m.git_commit = "0000000";
    s->m.mpi_layout = "1 rank, 1 group";
    s->m.command_line = "test_ncout";
    s->m.start_time = "2024-01-01T00:00:00Z";
}

HELPER int run_of(int gsi, int ki) { return gsi * 2 + ki; }

/* The value of variable vi of OUT_VARS at (global run, step, layer, k),
 * k = the quantile, singular value or unit index. Exact in every type. */
HELPER double expect(int vi, int grun, int64_t step, int l, int k) {
    const OutVar *v = &OUT_VARS[vi];
    switch (v->type) {
    case VT_I32: return (double)(vi * 1000000 + grun * 100000 + (int)step * 10 + l);
    case VT_I64:
        return v->shape == SH_UNIT ? (double)(step * 100000 + l * 1000 + k + grun * 7 + vi)
                                   : (double)(step * 512 + grun + vi);
    case VT_F32: return (double)grun + (double)step * 0.5 + l * 0.25 + k * 0.125 + vi;
    default: return vi * 1e6 + grun * 1e4 + (double)step + l * 0.125 + k * 0.0078125;
    }
}

/* Store `value` as element (l, k) of variable v in the record rec. */
HELPER void put_value(const OutVar *v, void *rec, int extra, int l, int k, double value) {
    char *p = (char *)rec + v->offset;
    size_t es = valtype_size(v->type);
    if (v->shape == SH_SV || v->shape == SH_UNIT) {
        memcpy(&p, p, sizeof p);                           /* the array it points to */
        p += ((size_t)l * (size_t)extra + (size_t)k) * es;
    } else if (v->shape != SH_ONE) {
        p += (size_t)l * v->stride + (size_t)k * es;
    }
    switch (v->type) {
    case VT_F64: { double x = value; memcpy(p, &x, 8); break; }
    case VT_I64: { int64_t x = (int64_t)value; memcpy(p, &x, 8); break; }
    case VT_I32: { int32_t x = (int32_t)value; memcpy(p, &x, 4); break; }
    case VT_F32: { float x = (float)value; memcpy(p, &x, 4); break; }
    }
}

/* Every variable of the record's kind set to its expected values; its
 * head (run, step, L, topk or F) and arrays already in place. */
HELPER void fill_record(RecKind kind, void *rec, int grun) {
    RecHead h = record_head(kind, rec);
    for (int vi = 0; vi < N_OUT_VARS; vi++) {
        const OutVar *v = &OUT_VARS[vi];
        if (v->rec != kind) continue;
        int nl = v->shape == SH_ONE ? 1 : h.L;
        size_t nk = v->shape == SH_ONE ? 1 : outvar_count(v, h.L, h.extra) / (size_t)h.L;
        for (int l = 0; l < nl; l++)
            for (size_t k = 0; k < nk; k++)
                put_value(v, rec, h.extra, l, (int)k, expect(vi, grun, h.step, l, (int)k));
    }
}

HELPER void make_step(StepRecord *r, const Sample *s, int run, int64_t step) {
    int si = run / 2;
    memset(r, 0, sizeof *r);
    r->run = run;
    r->step = step;
    r->L = s->m.sizes[si].L;
    fill_record(REC_STEP, r, run_of(s->gsi[si], run % 2));
}

HELPER void make_eval(EvalRecord *r, double *sv, const Sample *s, int run, int64_t step) {
    int si = run / 2;
    memset(r, 0, sizeof *r);
    r->run = run;
    r->step = step;
    r->L = s->m.sizes[si].L;
    r->topk = TOPK;
    r->singular_values = sv;
    fill_record(REC_EVAL, r, run_of(s->gsi[si], run % 2));
}

/* Snapshot arrays: one malloc'd block, freed by the caller (snapshot_free). */
HELPER void make_snapshot(SnapshotRecord *r, const Sample *s, int run, int64_t step) {
    int si = run / 2, L = s->m.sizes[si].L, F = s->m.sizes[si].F;
    size_t n = (size_t)L * F, off = 0;
    memset(r, 0, sizeof *r);
    r->run = run;
    r->step = step;
    r->L = L;
    r->F = F;
    char *blk = xmalloc(n * 8 * (size_t)N_OUT_VARS);
    for (int vi = 0; vi < N_OUT_VARS; vi++)          /* every array field points into blk */
        if (OUT_VARS[vi].rec == REC_SNAPSHOT && OUT_VARS[vi].shape == SH_UNIT) {
            void *p = blk + off;
            memcpy((char *)r + OUT_VARS[vi].offset, &p, sizeof p);
            off += n * 8;
        }
    fill_record(REC_SNAPSHOT, r, run_of(s->gsi[si], run % 2));
}

HELPER void snapshot_free(SnapshotRecord *r) {
    for (int vi = 0; vi < N_OUT_VARS; vi++)          /* the first array is the block */
        if (OUT_VARS[vi].rec == REC_SNAPSHOT && OUT_VARS[vi].shape == SH_UNIT) {
            void *p;
            memcpy(&p, (char *)r + OUT_VARS[vi].offset, sizeof p);
            free(p);
            return;
        }
}

/* Every record of steps [lo, hi) of every run, each block of `block` steps
 * shuffled across runs and steps, flushed after the block; then the end of
 * the block is written to ack_fd (if >= 0: the kill test's pipe). g_step_us:
 * a training step's time, slept per step (the kill test's writers). */
static long g_step_us __attribute__((unused)) = 0;

HELPER int write_records(Ncout *o, const Sample *s, int64_t lo, int64_t hi, int block,
                         unsigned seed, int ack_fd) {
    char err[1024];
    int runs = s->m.n_sizes * 2;
    int64_t *order = xmalloc((size_t)block * (size_t)runs * sizeof *order);
    StepRecord *r = xmalloc(sizeof *r);
    int rc = 0;
    for (int64_t b = lo; b < hi && rc == 0; b += block) {
        int n = 0;
        for (int64_t st = b; st < hi && st < b + block; st++)
            for (int run = 0; run < runs; run++) order[n++] = st * 64 + run;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rand_r(&seed) % (unsigned)(i + 1));
            int64_t t = order[i]; order[i] = order[j]; order[j] = t;
        }
        for (int i = 0; i < n && rc == 0; i++) {
            int run = (int)(order[i] % 64);
            int64_t st = order[i] / 64;
            make_step(r, s, run, st);
            rc = ncout_write_step(o, r, err, sizeof err);
            if (rc == 0 && st % EVAL_EVERY == 0) {
                EvalRecord e;
                double sv[MAX_LAYERS * TOPK];
                make_eval(&e, sv, s, run, st);
                rc = ncout_write_eval(o, &e, err, sizeof err);
            }
            if (rc == 0 && st % SNAP_EVERY == 0) {
                SnapshotRecord sn;
                make_snapshot(&sn, s, run, st);
                rc = ncout_write_snapshot(o, &sn, err, sizeof err);
                snapshot_free(&sn);
            }
        }
        if (g_step_us) usleep((useconds_t)(g_step_us * block));
        if (rc == 0) rc = ncout_flush(o, err, sizeof err);
        int64_t done = b + block < hi ? b + block : hi;
        if (rc == 0 && ack_fd >= 0 && write(ack_fd, &done, sizeof done) != sizeof done) rc = -1;
    }
    if (rc != 0 && ack_fd < 0) fprintf(stderr, "write_records: %s\n", err);
    free(order);
    free(r);
    return rc;
}

HELPER int write_file(const char *path, const Sample *s, int64_t lo, int64_t hi, unsigned seed) {
    char err[1024];
    Ncout *o = ncout_open(path, &s->m, 0, err, sizeof err);
    if (!o) { fprintf(stderr, "open: %s\n", err); return -1; }
    int rc = write_records(o, s, lo, hi, 10, seed, -1);
    if (ncout_close(o, err, sizeof err) != 0) { fprintf(stderr, "close: %s\n", err); rc = -1; }
    return rc;
}

/* ---- reading back ---- */

typedef struct {
    int64_t lo, hi;      /* steps < lo must be there; steps >= hi must not */
    int strict, bad;     /* bad = missing + wrong */
    int missing, wrong;  /* required values absent; values neither right nor fill */
    int damaged;         /* variables or groups that do not read */
} Want;

HELPER double fill_of(nc_type t) {
    return t == NC_DOUBLE ? NC_FILL_DOUBLE : t == NC_FLOAT ? (double)NC_FILL_FLOAT
         : t == NC_INT ? (double)NC_FILL_INT : (double)NC_FILL_INT64;
}

HELPER void check_slot(Want *w, double got, double want, double fill, int64_t step, int pad,
                       const char *name, int run, size_t slot) {
    const char *why = NULL;
    if (pad || step >= w->hi) { if (got != fill) why = "should be fill"; }
    else if (got == fill) { if (step < w->lo) why = "missing"; }
    else if (got != want) why = "wrong value";
    if (!why) return;
    if (why[0] == 'm') w->missing++;
    else w->wrong++;
    if (w->strict && w->missing + w->wrong <= 5)
        fprintf(stderr, "  %s run %d slot %zu (step %lld): %s (got %.17g, want %.17g)\n", name, run,
                slot, (long long)step, why, got, want);
}

/* The whole variable as doubles; dimension lengths into len (5 entries, 1-padded). */
HELPER double *read_var(int ncid, int varid, size_t *len) {
    int nd, dims[NC_MAX_VAR_DIMS];
    size_t total = 1;
    nc_inq_varndims(ncid, varid, &nd);
    nc_inq_vardimid(ncid, varid, dims);
    for (int d = 0; d < 5; d++) len[d] = 1;
    for (int d = 0; d < nd; d++) { nc_inq_dimlen(ncid, dims[d], &len[d]); total *= len[d]; }
    double *v = xmalloc((total ? total : 1) * sizeof *v);
    if (total && nc_get_var_double(ncid, varid, v) != NC_NOERR) { free(v); return NULL; }
    return v;
}

HELPER void verify_root_var(int ncid, const Sample *s, int vi, Want *w) {
    const OutVar *rv = &OUT_VARS[vi];
    int varid;
    size_t len[5];
    if (rv->shape == SH_SV && s->m.topk <= 0) return;
    double *v = nc_inq_varid(ncid, rv->name, &varid) ? NULL : read_var(ncid, varid, len);
    if (!v) {
        w->damaged++;
        if (w->strict) fprintf(stderr, "  %s: unreadable\n", rv->name);
        return;
    }
    double fill = fill_of(outvar_nc_type(rv));
    size_t i = 0;
    for (size_t si = 0; si < len[0]; si++)
        for (size_t ki = 0; ki < len[1]; ki++)
            for (size_t slot = 0; slot < len[2]; slot++)
                for (size_t l = 0; l < len[3]; l++)
                    for (size_t q = 0; q < len[4]; q++, i++) {
                        int g = run_of(s->gsi[si], (int)ki);
                        int64_t step = rv->rec == REC_STEP ? (int64_t)slot
                                                           : (int64_t)slot * EVAL_EVERY;
                        int pad = rv->shape != SH_ONE && (int)l >= s->m.sizes[si].L;
                        check_slot(w, v[i], expect(vi, g, step, (int)l, (int)q), fill, step, pad,
                                   rv->name, g, slot);
                    }
    free(v);
}

/* A coordinate along step, eval or snapshot: value k * every, or k itself
 * (index); slots of steps >= w->hi must be fill. */
HELPER void verify_axis(int ncid, const char *name, long every, int index, Want *w) {
    int varid;
    size_t len[5];
    double *v = nc_inq_varid(ncid, name, &varid) ? NULL : read_var(ncid, varid, len);
    if (!v) { w->damaged++; return; }
    for (size_t k = 0; k < len[0]; k++)
        check_slot(w, v[k], index ? (double)k : (double)((int64_t)k * every),
                   (double)NC_FILL_INT64, (int64_t)k * every, 0, name, -1, k);
    free(v);
}

HELPER void verify_groups(int ncid, const Sample *s, Want *w) {
    for (int r = 0; r < s->m.n_sizes * 2; r++) {
        int si = r / 2, g = run_of(s->gsi[si], r % 2), grp, varid;
        char name[128];
        ncout_group_name(s->m.sizes[si].name, s->m.seeds[r % 2], name, sizeof name);
        if (nc_inq_ncid(ncid, name, &grp)) { w->damaged++; continue; }
        verify_axis(grp, "snapshot_step", SNAP_EVERY, 0, w);
        verify_axis(grp, "snapshot", SNAP_EVERY, 1, w);
        for (int gi = 0; gi < N_OUT_VARS; gi++) {
            const OutVar *ov = &OUT_VARS[gi];
            size_t len[5];
            if (outvar_in_root(ov)) continue;
            double *v = nc_inq_varid(grp, ov->name, &varid) ? NULL : read_var(grp, varid, len);
            if (!v) { w->damaged++; continue; }
            double fill = fill_of(outvar_nc_type(ov));
            for (size_t k = 0, i = 0; k < len[0]; k++)
                for (size_t l = 0; l < len[1]; l++)
                    for (size_t f = 0; f < len[2]; f++, i++)
                        check_slot(w, v[i], expect(gi, g, (int64_t)k * SNAP_EVERY, (int)l, (int)f),
                                   fill, (int64_t)k * SNAP_EVERY, 0, ov->name, g, k);
            free(v);
        }
    }
}

/* Reads PATH back; the counts into *res (if given). Returns the number of
 * bad slots (0 = all good), or -1 if the file does not open. */
HELPER int verify_ex(const char *path, const Sample *s, int64_t lo, int64_t hi, int strict,
                     Want *res) {
    int ncid, st = nc_open(path, NC_NOWRITE, &ncid);
    if (st) {
        if (strict) fprintf(stderr, "  %s: %s\n", path, nc_strerror(st));
        return -1;
    }
    Want w = {lo, hi, strict, 0, 0, 0, 0};
    for (int vi = 0; vi < N_OUT_VARS; vi++)
        if (outvar_in_root(&OUT_VARS[vi])) verify_root_var(ncid, s, vi, &w);
    verify_axis(ncid, "step", 1, 0, &w);
    verify_axis(ncid, "eval_step", EVAL_EVERY, 0, &w);
    verify_axis(ncid, "eval", EVAL_EVERY, 1, &w);
    verify_groups(ncid, s, &w);
    int dim;
    size_t n = 0;
    nc_inq_dimid(ncid, "step", &dim);
    nc_inq_dimlen(ncid, dim, &n);
    if ((int64_t)n > hi || (int64_t)n < lo) {
        if (strict) fprintf(stderr, "  step dimension %zu outside [%lld, %lld]\n", n, (long long)lo,
                            (long long)hi);
        if ((int64_t)n > hi) w.wrong++;
        else w.missing += (int)(lo - (int64_t)n);     /* steps past the end are missing too */
    }
    nc_close(ncid);
    w.bad = w.missing + w.wrong + w.damaged;
    if (res) *res = w;
    return w.bad;
}

HELPER int verify(const char *path, const Sample *s, int64_t lo, int64_t hi, int strict) {
    return verify_ex(path, s, lo, hi, strict, NULL);
}

HELPER int one_line(const char *err, const char *must_contain) {
    return err[0] && !strchr(err, '\n') && strstr(err, must_contain) != NULL;
}

HELPER int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* HDF5's superblock (version 2, at offset 0 in our files) has a "file is
 * open for writing" flag at byte 11; a cleanly closed file has it clear. */
HELPER int closed_cleanly(const char *path) {
    unsigned char sb[12] = {0};
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(sb, 1, sizeof sb, fp) : 0;
    if (fp) fclose(fp);
    return n == sizeof sb && !memcmp(sb, "\x89HDF\r\n\x1a\n", 8) && (sb[8] < 2 || sb[11] == 0);
}

HELPER void path_in(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", g_dir, name);
}

#endif
