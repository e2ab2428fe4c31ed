/* ncout_schema.c — the dataset's layout (docs/dataset.md is its prose
 * twin; SPEC §5 fixes the root names): dimensions, variables with CF
 * attributes, fill values, chunking and compression, the per-run snapshot
 * groups, the coordinate values; and the way back, from a file to its meta.
 *
 * Chunking serves the two common reads: a whole series of one run (chunks
 * span many steps of one size x seed, all layers) and one snapshot of one
 * run (chunk = one (layer, unit) plane). Deflate level 1 + shuffle: about
 * 8x on realistic series; level 4 saved 9% more, level 9 11% at 7x the CPU
 * (dataset.md), and level 1 keeps the writer's updates cheap. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "ncout_impl.h"
#include "util.h"

#define DEFLATE_LEVEL 1
#define CHUNK_TARGET_BYTES (256u << 10)
/* 2: hot_frac, eval/snapshot coordinate variables, units "1" for nats and
 * tokens. Adding a variable needs no new version: a resume or merge of a
 * file without it is refused by name (schema_ids). */
#define FORMAT_VERSION 2
int schema_format_version(void) { return FORMAT_VERSION; }
#define TRY(call, what) do { int _s = (call); \
    if (_s != NC_NOERR) return nc_fail(_s, shown, what, err, errlen); } while (0)

nc_type outvar_nc_type(const OutVar *v) {
    static const nc_type of[] = {[VT_F64] = NC_DOUBLE, [VT_I64] = NC_INT64, [VT_I32] = NC_INT,
                                 [VT_F32] = NC_FLOAT};
    return of[v->type];
}

int nc_fail(int status, const char *shown, const char *what, char *err, size_t errlen) {
    int e = errno;   /* "HDF error" alone does not say that the disk is full */
    int io = status == NC_EHDFERR && (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS ||
                                      e == EACCES || e == EFBIG);
    snprintf(err, errlen, "%s: %s: %s%s%s%s", shown, what, nc_strerror(status), io ? " (" : "",
             io ? strerror(e) : "", io ? ")" : "");
    return -1;
}

size_t schema_chunk_len(size_t bytes_per_slot, long n_expected) {
    size_t c = 1024;
    while (c > 16 && c * bytes_per_slot > CHUNK_TARGET_BYTES) c /= 2;
    while (c > 16 && (long)(c / 2) >= n_expected) c /= 2;   /* short runs: small chunks */
    return c;
}

static long n_evals(const NcoutMeta *m) {
    return m->eval_every > 0 ? m->steps / m->eval_every + 1 : 1;
}

static int put_text(int ncid, int varid, const char *name, const char *value) {
    return nc_put_att_text(ncid, varid, name, strlen(value ? value : ""), value ? value : "");
}

static int var_attrs(int ncid, int varid, const char *units, const char *long_name) {
    int s = units ? put_text(ncid, varid, "units", units) : NC_NOERR;
    return s ? s : put_text(ncid, varid, "long_name", long_name);
}

static int def_fill(int ncid, int varid, nc_type t) {
    static const double fd = NC_FILL_DOUBLE;
    static const float ff = NC_FILL_FLOAT;
    static const long long fl = NC_FILL_INT64;
    static const int fi = NC_FILL_INT;
    const void *v = t == NC_DOUBLE ? (const void *)&fd : t == NC_FLOAT ? (const void *)&ff
                  : t == NC_INT64 ? (const void *)&fl : (const void *)&fi;
    return nc_def_var_fill(ncid, varid, 0 /* fill on */, v);
}

/* A compressed, chunked variable. */
static int def_packed(int ncid, const char *name, nc_type t, int nd, const int *dims,
                      const size_t *chunk, int *varid) {
    int s = nc_def_var(ncid, name, t, nd, dims, varid);
    if (!s) s = nc_def_var_chunking(ncid, *varid, NC_CHUNKED, chunk);
    if (!s) s = nc_def_var_deflate(ncid, *varid, 1, 1, DEFLATE_LEVEL);
    return s;
}

typedef struct { int size, seed, step, layer, quantile, eval, sv; } Dims;

/* A variable of the root group: (size, seed, step|eval [, layer [, quantile|sv]]). */
static int def_root_var(int ncid, const NcoutMeta *m, const Dims *d, const OutVar *v,
                        const char *shown, char *err, size_t errlen) {
    int L = meta_lmax(m), step = v->rec == REC_STEP;
    int dims[5] = {d->size, d->seed, step ? d->step : d->eval};
    size_t chunk[5] = {1, 1, 0, (size_t)L, 0}, per_slot = 8;
    int nd = 3;
    if (v->shape != SH_ONE) { dims[nd++] = d->layer; per_slot *= (size_t)L; }
    if (v->shape == SH_QUANT) { dims[nd] = d->quantile; chunk[nd++] = NUM_QUANTILES; }
    if (v->shape == SH_SV) { dims[nd] = d->sv; chunk[nd++] = (size_t)m->topk; }
    if (nd == 5) per_slot *= chunk[4];
    chunk[2] = schema_chunk_len(per_slot, step ? m->steps : n_evals(m));
    int varid;
    nc_type t = outvar_nc_type(v);
    TRY(def_packed(ncid, v->name, t, nd, dims, chunk, &varid), v->name);
    TRY(def_fill(ncid, varid, t), v->name);
    TRY(var_attrs(ncid, varid, v->units, v->long_name), v->name);
    if (!step) TRY(put_text(ncid, varid, "coordinates", "eval_step"), v->name);
    return 0;
}

/* One coordinate (or other 1-D) variable with its attributes. */
static int def_coord(int ncid, const char *name, nc_type t, int dim, size_t chunk,
                     const char *units, const char *long_name, int *varid) {
    int s = chunk ? def_packed(ncid, name, t, 1, &dim, &chunk, varid)
                  : nc_def_var(ncid, name, t, 1, &dim, varid);
    return s ? s : var_attrs(ncid, *varid, units, long_name);
}

static int def_dims(int ncid, const NcoutMeta *m, Dims *d, const char *shown, char *err,
                    size_t errlen) {
    TRY(nc_def_dim(ncid, "size", (size_t)m->n_sizes, &d->size), "size dimension");
    TRY(nc_def_dim(ncid, "seed", (size_t)m->n_seeds, &d->seed), "seed dimension");
    TRY(nc_def_dim(ncid, "step", NC_UNLIMITED, &d->step), "step dimension");
    TRY(nc_def_dim(ncid, "layer", (size_t)meta_lmax(m), &d->layer), "layer dimension");
    TRY(nc_def_dim(ncid, "quantile", NUM_QUANTILES, &d->quantile), "quantile dimension");
    TRY(nc_def_dim(ncid, "eval", NC_UNLIMITED, &d->eval), "eval dimension");
    d->sv = -1;
    if (m->topk > 0) TRY(nc_def_dim(ncid, "sv", (size_t)m->topk, &d->sv), "sv dimension");
    return 0;
}

static const char *const SHAPE_VARS[6][2] = {
    {"n_layer", "transformer layers (L)"}, {"d_model", "model width (d)"},
    {"n_head", "attention heads (h)"}, {"n_hidden", "MLP hidden units per layer (F)"},
    {"n_ctx", "context length in tokens (T)"}, {"n_vocab", "vocabulary size (V)"}};

static int def_root_coords(int ncid, const NcoutMeta *m, const Dims *d, const char *shown,
                           char *err, size_t errlen) {
    int v, dims2[2] = {d->size, d->seed};
    TRY(def_coord(ncid, "size", NC_STRING, d->size, 0, NULL, "model size name", &v), "size");
    TRY(def_coord(ncid, "seed", NC_UINT64, d->seed, 0, "1", "random seed of the run", &v), "seed");
    TRY(def_coord(ncid, "step", NC_INT64, d->step, schema_chunk_len(8, m->steps), "1",
                  "training step (the record's step number is its index)", &v), "step");
    TRY(def_coord(ncid, "layer", NC_INT, d->layer, 0, "1", "transformer layer (0 = first)", &v),
        "layer");
    TRY(def_coord(ncid, "quantile", NC_DOUBLE, d->quantile, 0, "1",
                  "quantile level q: the value x(max(1, ceil(q N))) of N sorted values", &v),
        "quantile");
    TRY(def_coord(ncid, "eval", NC_INT64, d->eval, schema_chunk_len(8, n_evals(m)), "1",
                  "index of the held-out evaluation: ceil(step / eval_every)", &v), "eval");
    TRY(def_coord(ncid, "eval_step", NC_INT64, d->eval, schema_chunk_len(8, n_evals(m)), "1",
                  "training step of the held-out evaluation", &v), "eval_step");
    if (m->topk > 0)
        TRY(def_coord(ncid, "sv", NC_INT, d->sv, 0, "1", "rank of the singular value (0 = largest)",
                      &v), "sv");
    for (int i = 0; i < 6; i++)
        TRY(def_coord(ncid, SHAPE_VARS[i][0], NC_INT, d->size, 0, "1", SHAPE_VARS[i][1], &v),
            SHAPE_VARS[i][0]);
    TRY(nc_def_var(ncid, "run_group", NC_STRING, 2, dims2, &v), "run_group");
    TRY(put_text(ncid, v, "long_name", "name of the run's snapshot group (empty: none)"),
        "run_group");
    return 0;
}

static int def_global_attrs(int ncid, const NcoutMeta *m, uint64_t dataset_id, const char *shown,
                            char *err, size_t errlen) {
    char source[512], history[8192];
    snprintf(source, sizeof source, "reluscope %s", m->version ? m->version : "");
    snprintf(history, sizeof history, "%s: %s", m->start_time ? m->start_time : "",
             m->command_line ? m->command_line : "");
    const char *text[][2] = {
        {"Conventions", "CF-1.8"},
        {"title", "reluscope: MLP activation sparsity of ReLU transformers over training"},
        {"source", source},
        {"references", "Wild & Anderson (2024), Uncovering layer-dependent activation sparsity "
                       "patterns in ReLU transformers; reluscope docs/dataset.md"},
        {"history", history},
        {"config", m->config_text}, {"reluscope_version", m->version},
        {"git_commit", m->git_commit}, {"mpi_layout", m->mpi_layout},
        {"command_line", m->command_line}, {"start_time", m->start_time}};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        TRY(put_text(ncid, NC_GLOBAL, text[i][0], text[i][1]), text[i][0]);
    long long ll[3] = {m->steps, m->eval_every, m->snapshot_every};
    const char *lname[3] = {"steps", "eval_every", "snapshot_every"};
    for (int i = 0; i < 3; i++)
        TRY(nc_put_att_longlong(ncid, NC_GLOBAL, lname[i], NC_INT64, 1, &ll[i]), lname[i]);
    unsigned long long state[2] = {dataset_id, 0};
    TRY(nc_put_att_ulonglong(ncid, NC_GLOBAL, "reluscope_dataset_id", NC_UINT64, 1, &state[0]),
        "reluscope_dataset_id");
    TRY(nc_put_att_ulonglong(ncid, NC_GLOBAL, "reluscope_journal_seq", NC_UINT64, 1, &state[1]),
        "reluscope_journal_seq");
    int ints[2] = {m->topk, FORMAT_VERSION};
    TRY(nc_put_att_int(ncid, NC_GLOBAL, "spectrum_topk", NC_INT, 1, &ints[0]), "spectrum_topk");
    TRY(nc_put_att_int(ncid, NC_GLOBAL, "reluscope_format", NC_INT, 1, &ints[1]),
        "reluscope_format");
    return 0;
}

static int def_group(int ncid, const NcoutMeta *m, int si, int ki, const char *shown,
                     char *err, size_t errlen) {
    const ModelSize *s = &m->sizes[si];
    char name[128];
    ncout_group_name(s->name, m->seeds[ki], name, sizeof name);
    int g, dsnap, dlayer, dunit, v;
    TRY(nc_def_grp(ncid, name, &g), name);
    TRY(put_text(g, NC_GLOBAL, "size", s->name), name);
    unsigned long long seed = m->seeds[ki];
    TRY(nc_put_att_ulonglong(g, NC_GLOBAL, "seed", NC_UINT64, 1, &seed), name);
    TRY(nc_def_dim(g, "snapshot", NC_UNLIMITED, &dsnap), name);
    TRY(nc_def_dim(g, "layer", (size_t)s->L, &dlayer), name);
    TRY(nc_def_dim(g, "unit", (size_t)s->F, &dunit), name);
    TRY(def_coord(g, "layer", NC_INT, dlayer, 0, "1", "transformer layer (0 = first)", &v), name);
    TRY(def_coord(g, "unit", NC_INT, dunit, 0, "1", "hidden unit of the layer's MLP", &v), name);
    long n_snap = m->snapshot_every > 0 ? m->steps / m->snapshot_every + 1 : 1;
    TRY(def_coord(g, "snapshot", NC_INT64, dsnap, schema_chunk_len(8, n_snap), "1",
                  "index of the snapshot: ceil(step / snapshot_every)", &v), name);
    TRY(def_coord(g, "snapshot_step", NC_INT64, dsnap, schema_chunk_len(8, n_snap), "1",
                  "training step of the snapshot (weights before its update)", &v), name);
    for (int i = 0; i < N_OUT_VARS; i++) {
        const OutVar *gv = &OUT_VARS[i];
        if (outvar_in_root(gv)) continue;
        int dims[3] = {dsnap, dlayer, dunit}, unit = gv->shape == SH_UNIT;
        size_t chunk[3] = {unit ? 1 : schema_chunk_len(8, n_snap), (size_t)s->L, (size_t)s->F};
        nc_type t = outvar_nc_type(gv);
        TRY(def_packed(g, gv->name, t, unit ? 3 : 1, dims, chunk, &v), gv->name);
        TRY(def_fill(g, v, t), gv->name);
        TRY(var_attrs(g, v, gv->units, gv->long_name), gv->name);
        TRY(put_text(g, v, "coordinates", "snapshot_step"), gv->name);
    }
    return 0;
}

static int put_int_range(int ncid, const char *name, int n, const char *shown, char *err,
                         size_t errlen) {
    int varid, *v = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = i;
    int s = nc_inq_varid(ncid, name, &varid);
    if (!s) s = nc_put_var_int(ncid, varid, v);
    free(v);
    TRY(s, name);
    return 0;
}

/* The values of every fixed coordinate (step/eval coordinates grow with the data). */
static int put_root_coords(int ncid, const NcoutMeta *m, const char *shown, char *err,
                           size_t errlen) {
    int v;
    const char *names[MAX_RUN_SIZES];
    for (int i = 0; i < m->n_sizes; i++) names[i] = m->sizes[i].name;
    TRY(nc_inq_varid(ncid, "size", &v), "size");
    TRY(nc_put_var_string(ncid, v, names), "size");
    unsigned long long seeds[MAX_SEEDS];
    for (int i = 0; i < m->n_seeds; i++) seeds[i] = m->seeds[i];
    TRY(nc_inq_varid(ncid, "seed", &v), "seed");
    TRY(nc_put_var_ulonglong(ncid, v, seeds), "seed");
    if (put_int_range(ncid, "layer", meta_lmax(m), shown, err, errlen) != 0) return -1;
    if (m->topk > 0 && put_int_range(ncid, "sv", m->topk, shown, err, errlen) != 0) return -1;
    TRY(nc_inq_varid(ncid, "quantile", &v), "quantile");
    TRY(nc_put_var_double(ncid, v, QUANTILE_LEVELS), "quantile");
    for (int k = 0; k < 6; k++) {
        int vals[MAX_RUN_SIZES];
        for (int i = 0; i < m->n_sizes; i++) {
            const ModelSize *s = &m->sizes[i];
            int all[6] = {s->L, s->d, s->h, s->F, s->T, s->V};
            vals[i] = all[k];
        }
        TRY(nc_inq_varid(ncid, SHAPE_VARS[k][0], &v), SHAPE_VARS[k][0]);
        TRY(nc_put_var_int(ncid, v, vals), SHAPE_VARS[k][0]);
    }
    return 0;
}

static int put_groups(int ncid, const NcoutMeta *m, const char *shown, char *err, size_t errlen) {
    int n = meta_n_runs(m), rc = 0, st, rv;
    char (*names)[128] = xcalloc((size_t)n, sizeof *names);
    const char **ptrs = xmalloc((size_t)n * sizeof *ptrs);
    for (int r = 0; r < n && rc == 0; r++) {
        ptrs[r] = names[r];                 /* "" when there are no snapshot groups */
        if (m->snapshot_every <= 0) continue;
        const ModelSize *s = &m->sizes[r / m->n_seeds];
        ncout_group_name(s->name, m->seeds[r % m->n_seeds], names[r], sizeof names[r]);
        int g;
        if ((st = nc_inq_ncid(ncid, names[r], &g)) != NC_NOERR)
            rc = nc_fail(st, shown, names[r], err, errlen);
        else if (put_int_range(g, "layer", s->L, shown, err, errlen) != 0 ||
                 put_int_range(g, "unit", s->F, shown, err, errlen) != 0)
            rc = -1;
    }
    if (rc == 0) {
        st = nc_inq_varid(ncid, "run_group", &rv);
        if (!st) st = nc_put_var_string(ncid, rv, ptrs);
        if (st) rc = nc_fail(st, shown, "run_group", err, errlen);
    }
    free(names);
    free(ptrs);
    return rc;
}

static int define_all(int ncid, const NcoutMeta *m, uint64_t id, const char *shown, char *err,
                      size_t errlen) {
    Dims d;
    if (def_dims(ncid, m, &d, shown, err, errlen) != 0 ||
        def_root_coords(ncid, m, &d, shown, err, errlen) != 0)
        return -1;
    for (int i = 0; i < N_OUT_VARS; i++) {
        const OutVar *v = &OUT_VARS[i];
        if (!outvar_in_root(v) || (v->shape == SH_SV && m->topk <= 0)) continue;
        if (def_root_var(ncid, m, &d, v, shown, err, errlen) != 0) return -1;
    }
    if (def_global_attrs(ncid, m, id, shown, err, errlen) != 0) return -1;
    if (m->snapshot_every > 0)
        for (int r = 0; r < meta_n_runs(m); r++)
            if (def_group(ncid, m, r / m->n_seeds, r % m->n_seeds, shown, err, errlen) != 0)
                return -1;
    return 0;
}

int schema_create(const char *file, const char *shown, const NcoutMeta *m, uint64_t dataset_id,
                  char *err, size_t errlen) {
    int ncid, fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {                /* HDF5's own message would not say why (nor rightly) */
        snprintf(err, errlen, "%s: cannot create %s: %s", shown, file, strerror(errno));
        return -1;
    }
    close(fd);
    errno = 0;
    TRY(nc_create(file, NC_NETCDF4 | NC_CLOBBER, &ncid), "cannot create");
    int rc = define_all(ncid, m, dataset_id, shown, err, errlen);
    int s = rc ? NC_NOERR : nc_enddef(ncid);
    if (!rc && s) rc = nc_fail(s, shown, "cannot write the schema", err, errlen);
    if (!rc) rc = put_root_coords(ncid, m, shown, err, errlen);
    if (!rc) rc = put_groups(ncid, m, shown, err, errlen);
    s = nc_close(ncid);
    if (!rc && s) rc = nc_fail(s, shown, "cannot write the schema", err, errlen);
    return rc;
}

/* ---- ids and caches of an open dataset ---- */

/* Room for one chunk per run in flight (cap 32 MiB): a flush then rewrites
 * each touched chunk once instead of re-reading evicted ones. */
static void set_cache(int ncid, int varid, int n_runs, int one_chunk) {
    size_t chunk[5] = {1, 1, 1, 1, 1}, bytes = 8;
    int nd, type;
    if (nc_inq_varndims(ncid, varid, &nd) || nc_inq_var_chunking(ncid, varid, &type, chunk)) return;
    if (type != NC_CHUNKED) return;
    for (int i = 0; i < nd && i < 5; i++) bytes *= chunk[i];
    size_t want = one_chunk ? bytes + 64 : (size_t)n_runs * bytes + (bytes >> 2) + 4096;
    if (want > (32u << 20)) want = 32u << 20;
    nc_set_var_chunk_cache(ncid, varid, want, one_chunk ? 13 : 1009, 0.75f);
}

static int group_ids(int ncid, const NcoutMeta *m, NcIds *ids, int r, const char *shown,
                     char *err, size_t errlen) {
    char name[128];
    ncout_group_name(m->sizes[r / m->n_seeds].name, m->seeds[r % m->n_seeds], name, sizeof name);
    TRY(nc_inq_ncid(ncid, name, &ids->grp[r]), name);
    TRY(nc_inq_varid(ids->grp[r], "snapshot", &ids->snap_coord[r]), name);
    TRY(nc_inq_varid(ids->grp[r], "snapshot_step", &ids->snap_step[r]), name);
    for (int i = 0; i < N_OUT_VARS; i++) {
        ids->gvar[r][i] = -1;
        if (outvar_in_root(&OUT_VARS[i])) continue;
        TRY(nc_inq_varid(ids->grp[r], OUT_VARS[i].name, &ids->gvar[r][i]), name);
        /* a snapshot is written once: keep no more than the chunk in hand */
        set_cache(ids->grp[r], ids->gvar[r][i], 1, 1);
    }
    return 0;
}

int schema_ids(int ncid, const NcoutMeta *m, NcIds *ids, const char *shown, char *err,
               size_t errlen) {
    memset(ids, 0, sizeof *ids);
    ids->ncid = ncid;
    ids->n_runs = meta_n_runs(m);
    TRY(nc_inq_varid(ncid, "step", &ids->step_coord), "step");
    TRY(nc_inq_varid(ncid, "eval", &ids->eval_coord), "eval");
    TRY(nc_inq_varid(ncid, "eval_step", &ids->eval_step), "eval_step");
    for (int i = 0; i < N_OUT_VARS; i++) {
        const OutVar *v = &OUT_VARS[i];
        ids->var[i] = -1;
        if (!outvar_in_root(v) || (v->shape == SH_SV && m->topk <= 0)) continue;
        TRY(nc_inq_varid(ncid, v->name, &ids->var[i]), v->name);
        set_cache(ncid, ids->var[i], ids->n_runs, 0);
    }
    ids->grp = xmalloc((size_t)ids->n_runs * sizeof *ids->grp);
    ids->snap_coord = xmalloc((size_t)ids->n_runs * sizeof *ids->snap_coord);
    ids->snap_step = xmalloc((size_t)ids->n_runs * sizeof *ids->snap_step);
    ids->gvar = xmalloc((size_t)ids->n_runs * sizeof *ids->gvar);
    for (int r = 0; r < ids->n_runs; r++) {
        ids->grp[r] = -1;
        if (m->snapshot_every > 0 && group_ids(ncid, m, ids, r, shown, err, errlen) != 0) {
            schema_ids_free(ids);
            return -1;
        }
    }
    return 0;
}

void schema_ids_free(NcIds *ids) {
    free(ids->grp);
    free(ids->snap_coord);
    free(ids->snap_step);
    free(ids->gvar);
    ids->grp = ids->snap_coord = ids->snap_step = NULL;
    ids->gvar = NULL;
}

/* ---- from a file back to its meta ---- */

static char *get_text_att(int ncid, const char *name) {
    size_t len = 0;
    if (nc_inq_attlen(ncid, NC_GLOBAL, name, &len) != NC_NOERR) len = 0;
    char *s = xcalloc(len + 1, 1);
    if (len && nc_get_att_text(ncid, NC_GLOBAL, name, s) != NC_NOERR) s[0] = '\0';
    return s;
}

static int read_grid(int ncid, NcoutMeta *m, const char *shown, char *err, size_t errlen) {
    int dim, v;
    size_t ns, nk;
    TRY(nc_inq_dimid(ncid, "size", &dim), "size dimension");
    TRY(nc_inq_dimlen(ncid, dim, &ns), "size dimension");
    TRY(nc_inq_dimid(ncid, "seed", &dim), "seed dimension");
    TRY(nc_inq_dimlen(ncid, dim, &nk), "seed dimension");
    if (ns < 1 || ns > MAX_RUN_SIZES || nk < 1 || nk > MAX_SEEDS) {
        snprintf(err, errlen, "%s: %zu sizes x %zu seeds is beyond this build's limits (%d x %d)",
                 shown, ns, nk, MAX_RUN_SIZES, MAX_SEEDS);
        return -1;
    }
    m->n_sizes = (int)ns;
    m->n_seeds = (int)nk;
    char *names[MAX_RUN_SIZES];
    TRY(nc_inq_varid(ncid, "size", &v), "size");
    TRY(nc_get_var_string(ncid, v, names), "size");
    for (size_t i = 0; i < ns; i++) snprintf(m->sizes[i].name, SIZE_NAME_MAX, "%s", names[i]);
    nc_free_string(ns, names);
    unsigned long long seeds[MAX_SEEDS];
    TRY(nc_inq_varid(ncid, "seed", &v), "seed");
    TRY(nc_get_var_ulonglong(ncid, v, seeds), "seed");
    for (size_t i = 0; i < nk; i++) m->seeds[i] = seeds[i];
    for (int k = 0; k < 6; k++) {
        int vals[MAX_RUN_SIZES];
        TRY(nc_inq_varid(ncid, SHAPE_VARS[k][0], &v), SHAPE_VARS[k][0]);
        TRY(nc_get_var_int(ncid, v, vals), SHAPE_VARS[k][0]);
        for (size_t i = 0; i < ns; i++) {
            ModelSize *s = &m->sizes[i];
            int *field[6] = {&s->L, &s->d, &s->h, &s->F, &s->T, &s->V};
            *field[k] = vals[i];
        }
    }
    return 0;
}

int schema_read_meta(int ncid, const char *shown, NcoutMeta *m, char *err, size_t errlen) {
    int format = 0;
    memset(m, 0, sizeof *m);
    if (nc_get_att_int(ncid, NC_GLOBAL, "reluscope_format", &format) != NC_NOERR ||
        format != FORMAT_VERSION) {
        if (format > 0)
            snprintf(err, errlen, "%s: a reluscope dataset of format %d; this build reads format "
                     "%d (docs/dataset.md)", shown, format, FORMAT_VERSION);
        else
            snprintf(err, errlen, "%s: not a reluscope dataset (no reluscope_format attribute)",
                     shown);
        return -1;
    }
    if (read_grid(ncid, m, shown, err, errlen) != 0) return -1;
    long long ll[3] = {0, 0, 0};
    const char *lname[3] = {"steps", "eval_every", "snapshot_every"};
    for (int i = 0; i < 3; i++)
        TRY(nc_get_att_longlong(ncid, NC_GLOBAL, lname[i], &ll[i]), lname[i]);
    m->steps = (long)ll[0];
    m->eval_every = (long)ll[1];
    m->snapshot_every = (long)ll[2];
    TRY(nc_get_att_int(ncid, NC_GLOBAL, "spectrum_topk", &m->topk), "spectrum_topk");
    m->config_text = get_text_att(ncid, "config");
    m->version = get_text_att(ncid, "reluscope_version");
    m->git_commit = get_text_att(ncid, "git_commit");
    m->mpi_layout = get_text_att(ncid, "mpi_layout");
    m->command_line = get_text_att(ncid, "command_line");
    m->start_time = get_text_att(ncid, "start_time");
    return meta_check(m, shown, err, errlen) == 0 ? 0 : (meta_release(m), -1);
}

int schema_add_history(int ncid, const char *line, const char *shown, char *err, size_t errlen) {
    char *old = get_text_att(ncid, "history");
    size_t n = strlen(old) + strlen(line) + 2;
    char *all = xmalloc(n);
    snprintf(all, n, "%s%s%s", old, old[0] ? "\n" : "", line);
    int s = put_text(ncid, NC_GLOBAL, "history", all);
    free(old);
    free(all);
    TRY(s, "cannot update the history attribute");
    return 0;
}

/* ---- every value readable ---- */

#define CHECK_BLOCK_BYTES (8u << 20)

/* Read variable v of group g whole, in blocks along its first dimension. */
static int read_through(int g, int v, const char *gname, const char *shown, char *err,
                        size_t errlen) {
    char name[NC_MAX_NAME + 1];
    int nd, dims[NC_MAX_VAR_DIMS], s;
    nc_type t;
    size_t tsize, len[NC_MAX_VAR_DIMS], slot = 1;
    if ((s = nc_inq_var(g, v, name, &t, &nd, dims, NULL)) || (s = nc_inq_type(g, t, NULL, &tsize)))
        return nc_fail(s, shown, "cannot list its variables", err, errlen);
    for (int d = 0; d < nd; d++) {
        if ((s = nc_inq_dimlen(g, dims[d], &len[d])))
            return nc_fail(s, shown, name, err, errlen);
        if (d > 0) slot *= len[d];
    }
    size_t n0 = nd ? len[0] : 1, block = CHECK_BLOCK_BYTES / (slot * tsize > 0 ? slot * tsize : 1);
    if (block < 1) block = 1;
    void *buf = xmalloc((block < n0 ? block : n0 ? n0 : 1) * slot * tsize);
    for (size_t a = 0; a < n0 && s == NC_NOERR; a += block) {
        size_t start[NC_MAX_VAR_DIMS] = {0}, count[NC_MAX_VAR_DIMS];
        for (int d = 0; d < nd; d++) count[d] = len[d];
        if (nd) { start[0] = a; count[0] = n0 - a < block ? n0 - a : block; }
        s = nc_get_vara(g, v, start, count, buf);
        if (!s && t == NC_STRING) nc_free_string(nd ? count[0] * slot : 1, buf);
    }
    free(buf);
    if (s) {
        snprintf(err, errlen, "%s: variable %s%s%s does not read (%s): the file is damaged",
                 shown, gname, gname[0] ? "/" : "", name, nc_strerror(s));
        return -1;
    }
    return 0;
}

int schema_check_readable(int ncid, const char *shown, char *err, size_t errlen) {
    int ng = 0, nv = 0, s;
    if ((s = nc_inq_grps(ncid, &ng, NULL)) || (s = nc_inq_varids(ncid, &nv, NULL)))
        return nc_fail(s, shown, "cannot list its groups and variables", err, errlen);
    int *grps = xmalloc((size_t)(ng + 1) * sizeof *grps), *vars = NULL, rc = 0;
    grps[0] = ncid;
    nc_inq_grps(ncid, NULL, grps + 1);
    for (int i = 0; i <= ng && rc == 0; i++) {
        char gname[NC_MAX_NAME + 1] = "";
        if (i > 0) nc_inq_grpname(grps[i], gname);
        if ((s = nc_inq_varids(grps[i], &nv, NULL))) { rc = nc_fail(s, shown, gname, err, errlen); break; }
        vars = realloc(vars, (size_t)(nv + 1) * sizeof *vars);
        if (!vars) die("out of memory checking %s", shown);
        nc_inq_varids(grps[i], NULL, vars);
        for (int k = 0; k < nv && rc == 0; k++)
            rc = read_through(grps[i], vars[k], gname, shown, err, errlen);
    }
    free(vars);
    free(grps);
    return rc;
}

/* ---- the writer's bookkeeping ---- */

int schema_get_state(int ncid, uint64_t *dataset_id, uint64_t *journal_seq) {
    unsigned long long id = 0, seq = 0;
    int s = nc_get_att_ulonglong(ncid, NC_GLOBAL, "reluscope_dataset_id", &id);
    if (!s) s = nc_get_att_ulonglong(ncid, NC_GLOBAL, "reluscope_journal_seq", &seq);
    *dataset_id = id;
    *journal_seq = seq;
    return s;
}

int schema_set_seq(int ncid, uint64_t journal_seq, const char *shown, char *err, size_t errlen) {
    unsigned long long seq = journal_seq;
    TRY(nc_put_att_ulonglong(ncid, NC_GLOBAL, "reluscope_journal_seq", NC_UINT64, 1, &seq),
        "reluscope_journal_seq");
    return 0;
}

/* Random enough to tell two datasets at one path apart. */
uint64_t schema_new_id(void) {
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint64_t)time(NULL) * 6364136223846793005ull ^ (uint64_t)getpid() ^ (uint64_t)clock();
    return id ? id : 1;
}
