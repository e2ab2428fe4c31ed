/* merge.c — the dataset commands. `reluscope schema` prints the table of
 * output variables (record.h) as JSON. `reluscope merge`: the datasets of a Slurm array's tasks (each
 * some sizes x seeds of one sweep) into one dataset of every size and seed,
 * laid out exactly as if one job had written it (the same schema code), so
 * that xarray sees one Dataset. Also `merge --repair` for a dataset left by
 * a killed writer that will not be resumed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "ncout_impl.h"
#include "util.h"

#define COPY_BLOCK_BYTES (8u << 20)

typedef struct {
    const char *path;
    int ncid;
    NcoutMeta m;                     /* owned */
    int size_map[MAX_RUN_SIZES];     /* input size index -> union size index */
    int seed_map[MAX_SEEDS];
} Input;

static int open_input(Input *in, const char *path, char *err, size_t errlen) {
    char journal[RS_PATH_MAX + 16];
    struct stat st;
    memset(in, 0, sizeof *in);
    in->path = path;
    in->ncid = -1;
    snprintf(journal, sizeof journal, "%s.journal", path);
    if (stat(journal, &st) == 0) {
        snprintf(err, errlen, "%s: still being written, or its writer was killed (%s exists): "
                 "wait for the job, resume it, or run `reluscope merge --repair %s`", path, journal,
                 path);
        return -1;
    }
    int s = nc_open(path, NC_NOWRITE, &in->ncid);
    if (s) {
        in->ncid = -1;
        return nc_fail(s, path, "cannot open", err, errlen);
    }
    if (schema_read_meta(in->ncid, path, &in->m, err, errlen) != 0) return -1;
    double q[NUM_QUANTILES];
    int v, dim;
    size_t nq = 0;
    if (nc_inq_dimid(in->ncid, "quantile", &dim) || nc_inq_dimlen(in->ncid, dim, &nq) ||
        nq != NUM_QUANTILES || nc_inq_varid(in->ncid, "quantile", &v) ||
        nc_get_var_double(in->ncid, v, q) || memcmp(q, QUANTILE_LEVELS, sizeof q) != 0) {
        snprintf(err, errlen, "%s: its quantile levels differ from this build's (0, 0.01, ..., 1)",
                 path);
        return -1;
    }
    return 0;
}

static void close_input(Input *in) {
    if (in->ncid >= 0) nc_close(in->ncid);
    if (in->m.config_text) meta_release(&in->m);
    in->ncid = -1;
}

/* Everything but the grid must agree with the first input. */
static int check_consistent(const Input *ins, int n, char *err, size_t errlen) {
    const NcoutMeta *a = &ins[0].m;
    char what[512];
    for (int i = 1; i < n; i++) {
        const NcoutMeta *b = &ins[i].m;
        if (config_text_diff(a->config_text, b->config_text, 1, what, sizeof what)) {
            snprintf(err, errlen, "%s and %s: configs differ beyond sizes and seeds (%s)",
                     ins[0].path, ins[i].path, what);
            return -1;
        }
        if (a->topk != b->topk || a->steps != b->steps || a->eval_every != b->eval_every ||
            a->snapshot_every != b->snapshot_every) {
            snprintf(err, errlen, "%s and %s: different steps, eval_every, snapshot_every or "
                     "spectrum_topk", ins[0].path, ins[i].path);
            return -1;
        }
    }
    return 0;
}

static int find_size(const NcoutMeta *u, const char *name) {
    for (int i = 0; i < u->n_sizes; i++) if (!strcmp(u->sizes[i].name, name)) return i;
    return -1;
}

static int find_seed(const NcoutMeta *u, uint64_t seed) {
    for (int i = 0; i < u->n_seeds; i++) if (u->seeds[i] == seed) return i;
    return -1;
}

/* Sizes and seeds in order of first appearance; maps of every input. */
static int union_grid(Input *ins, int n, NcoutMeta *u, const char **owner_of_size,
                      char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        const NcoutMeta *m = &ins[i].m;
        for (int s = 0; s < m->n_sizes; s++) {
            int k = find_size(u, m->sizes[s].name);
            if (k < 0 && u->n_sizes == MAX_RUN_SIZES) {
                snprintf(err, errlen, "%s: more than %d sizes in all", ins[i].path, MAX_RUN_SIZES);
                return -1;
            }
            if (k < 0) {
                k = u->n_sizes++;
                u->sizes[k] = m->sizes[s];
                owner_of_size[k] = ins[i].path;
            }
            const ModelSize *x = &u->sizes[k], *y = &m->sizes[s];
            if (x->L != y->L || x->d != y->d || x->h != y->h || x->F != y->F || x->T != y->T ||
                x->V != y->V) {
                snprintf(err, errlen, "%s and %s: size %s has different shapes", owner_of_size[k],
                         ins[i].path, y->name);
                return -1;
            }
            ins[i].size_map[s] = k;
        }
        for (int s = 0; s < m->n_seeds; s++) {
            int k = find_seed(u, m->seeds[s]);
            if (k < 0 && u->n_seeds == MAX_SEEDS) {
                snprintf(err, errlen, "%s: more than %d seeds in all", ins[i].path, MAX_SEEDS);
                return -1;
            }
            if (k < 0) { k = u->n_seeds++; u->seeds[k] = m->seeds[s]; }
            ins[i].seed_map[s] = k;
        }
    }
    return 0;
}

/* Refuse a run held by two inputs; warn about runs held by none. */
static int check_overlap(const Input *ins, int n, const NcoutMeta *u, char *err, size_t errlen) {
    int runs = meta_n_runs(u), rc = 0;
    int *owner = xmalloc((size_t)runs * sizeof *owner);
    for (int r = 0; r < runs; r++) owner[r] = -1;
    for (int i = 0; i < n && rc == 0; i++)
        for (int s = 0; s < ins[i].m.n_sizes && rc == 0; s++)
            for (int k = 0; k < ins[i].m.n_seeds && rc == 0; k++) {
                int r = ins[i].size_map[s] * u->n_seeds + ins[i].seed_map[k];
                if (owner[r] >= 0) {
                    snprintf(err, errlen, "%s and %s: both hold size %s seed %llu (overlapping "
                             "inputs)", ins[owner[r]].path, ins[i].path,
                             u->sizes[r / u->n_seeds].name,
                             (unsigned long long)u->seeds[r % u->n_seeds]);
                    rc = -1;
                }
                owner[r] = i;
            }
    for (int r = 0; r < runs && rc == 0; r++)
        if (owner[r] < 0)
            warn_msg("no input holds size %s seed %llu: its series are fill values",
                     u->sizes[r / u->n_seeds].name, (unsigned long long)u->seeds[r % u->n_seeds]);
    free(owner);
    return rc;
}

/* Copy an input variable whole: `nlead` leading indices fixed (size, seed of
 * a root series; none in a snapshot group), then the unlimited axis in blocks. */
static int copy_var(int inc, int ivar, int onc, int ovar, int nlead, const size_t *lin,
                    const size_t *lout, const char *inpath, const char *outpath, const char *name,
                    char *err, size_t errlen) {
    int nd, dimids[NC_MAX_VAR_DIMS], s;
    nc_type t;
    size_t tsize, len[NC_MAX_VAR_DIMS], per_slot;
    if ((s = nc_inq_var(inc, ivar, NULL, &t, &nd, dimids, NULL)) || nd > 5 ||
        (s = nc_inq_type(inc, t, NULL, &tsize)))
        return nc_fail(s ? s : NC_EMAXDIMS, inpath, name, err, errlen);
    per_slot = tsize;
    for (int d = 0; d < nd; d++) {
        if ((s = nc_inq_dimlen(inc, dimids[d], &len[d])))
            return nc_fail(s, inpath, name, err, errlen);
        if (d > nlead) per_slot *= len[d];
    }
    size_t block = COPY_BLOCK_BYTES / (per_slot ? per_slot : 1);
    if (block < 1) block = 1;
    void *buf = xmalloc((block < len[nlead] ? block : len[nlead] ? len[nlead] : 1) * per_slot);
    int rc = 0;
    for (size_t a = 0; a < len[nlead] && rc == 0; a += block) {
        size_t sin[5] = {0}, sout[5] = {0}, count[5];
        for (int d = 0; d < nd; d++) count[d] = len[d];
        for (int d = 0; d < nlead; d++) { sin[d] = lin[d]; sout[d] = lout[d]; count[d] = 1; }
        sin[nlead] = sout[nlead] = a;
        count[nlead] = len[nlead] - a < block ? len[nlead] - a : block;
        if ((s = nc_get_vara(inc, ivar, sin, count, buf)))
            rc = nc_fail(s, inpath, name, err, errlen);
        else if ((s = nc_put_vara(onc, ovar, sout, count, buf)))
            rc = nc_fail(s, outpath, name, err, errlen);
    }
    free(buf);
    return rc;
}

static int copy_groups(const Input *in, const NcIds *out, const NcoutMeta *u, const char *outpath,
                       char *err, size_t errlen) {
    const NcoutMeta *m = &in->m;
    for (int r = 0; r < meta_n_runs(m) && m->snapshot_every > 0; r++) {
        int si = r / m->n_seeds, ki = r % m->n_seeds, g, v;
        int ur = in->size_map[si] * u->n_seeds + in->seed_map[ki];
        char name[128];
        ncout_group_name(m->sizes[si].name, m->seeds[ki], name, sizeof name);
        int s = nc_inq_ncid(in->ncid, name, &g);
        if (s) return nc_fail(s, in->path, name, err, errlen);
        const char *coord[2] = {"snapshot", "snapshot_step"};
        const int ocoord[2] = {out->snap_coord[ur], out->snap_step[ur]};
        for (int i = 0; i < 2; i++) {
            if ((s = nc_inq_varid(g, coord[i], &v))) return nc_fail(s, in->path, name, err, errlen);
            if (copy_var(g, v, out->grp[ur], ocoord[i], 0, NULL, NULL, in->path, outpath, coord[i],
                         err, errlen) != 0)
                return -1;
        }
        for (int i = 0; i < N_OUT_VARS; i++) {
            const char *vn = OUT_VARS[i].name;
            if (outvar_in_root(&OUT_VARS[i])) continue;
            if ((s = nc_inq_varid(g, vn, &v))) return nc_fail(s, in->path, vn, err, errlen);
            if (copy_var(g, v, out->grp[ur], out->gvar[ur][i], 0, NULL, NULL, in->path, outpath,
                         vn, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

static int copy_input(const Input *in, const NcIds *out, const NcoutMeta *u, const char *outpath,
                      char *err, size_t errlen) {
    const NcoutMeta *m = &in->m;
    for (int i = 0; i < N_OUT_VARS; i++) {
        if (out->var[i] < 0) continue;
        int v, s = nc_inq_varid(in->ncid, OUT_VARS[i].name, &v);
        if (s) return nc_fail(s, in->path, OUT_VARS[i].name, err, errlen);
        for (int r = 0; r < meta_n_runs(m); r++) {
            size_t lin[2] = {(size_t)(r / m->n_seeds), (size_t)(r % m->n_seeds)};
            size_t lout[2] = {(size_t)in->size_map[lin[0]], (size_t)in->seed_map[lin[1]]};
            if (copy_var(in->ncid, v, out->ncid, out->var[i], 2, lin, lout, in->path, outpath,
                         OUT_VARS[i].name, err, errlen) != 0)
                return -1;
        }
    }
    return copy_groups(in, out, u, outpath, err, errlen);
}

/* step = 0..max-1; eval = 0..max-1; eval_step = the inputs' values where
 * they have one. */
static int write_axes(const Input *ins, int n, const NcIds *out, const char *outpath, char *err,
                      size_t errlen) {
    size_t nstep = 0, neval = 0, len;
    int dim, s;
    for (int i = 0; i < n; i++) {
        if (!nc_inq_dimid(ins[i].ncid, "step", &dim) && !nc_inq_dimlen(ins[i].ncid, dim, &len) &&
            len > nstep) nstep = len;
        if (!nc_inq_dimid(ins[i].ncid, "eval", &dim) && !nc_inq_dimlen(ins[i].ncid, dim, &len) &&
            len > neval) neval = len;
    }
    long long *v = xmalloc((nstep > neval ? nstep : neval) * sizeof *v + 8);
    long long *e = xmalloc((neval + 1) * sizeof *e);
    for (size_t i = 0; i < nstep; i++) v[i] = (long long)i;
    size_t zero = 0;
    s = nstep ? nc_put_vara(out->ncid, out->step_coord, &zero, &nstep, v) : NC_NOERR;
    for (size_t k = 0; k < neval; k++) e[k] = NC_FILL_INT64;
    for (int i = 0; i < n && !s; i++) {
        int ev;
        if (nc_inq_dimid(ins[i].ncid, "eval", &dim) || nc_inq_dimlen(ins[i].ncid, dim, &len) ||
            !len || nc_inq_varid(ins[i].ncid, "eval_step", &ev) ||
            nc_get_vara(ins[i].ncid, ev, &zero, &len, v))
            continue;
        for (size_t k = 0; k < len; k++) if (v[k] != NC_FILL_INT64) e[k] = v[k];
    }
    if (!s && neval) s = nc_put_vara(out->ncid, out->eval_step, &zero, &neval, e);
    for (size_t k = 0; k < neval; k++) v[k] = (long long)k;
    if (!s && neval) s = nc_put_vara(out->ncid, out->eval_coord, &zero, &neval, v);
    free(v);
    free(e);
    return s ? nc_fail(s, outpath, "step/eval/eval_step coordinates", err, errlen) : 0;
}

static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* The text attribute NAME of an input (malloc'd, "" when absent). */
static char *input_text(int ncid, const char *name) {
    size_t len = 0;
    if (nc_inq_attlen(ncid, NC_GLOBAL, name, &len) != NC_NOERR) len = 0;
    char *s = xcalloc(len + 1, 1);
    if (len && nc_get_att_text(ncid, NC_GLOBAL, name, s) != NC_NOERR) s[0] = '\0';
    return s;
}

/* history: every input's lines, each after "[INPUT] ", then the merge's
 * own line (schema_create wrote that one alone); merged_from: the inputs. */
static int finish_attrs(int onc, const Input *ins, int n, const char *out, char *err,
                        size_t errlen) {
    Bytes h = {0}, from = {0};
    for (int i = 0; i < n; i++) {
        char *old = input_text(ins[i].ncid, "history");
        for (char *line = strtok(old, "\n"); line; line = strtok(NULL, "\n")) {
            bytes_put(&h, "[", 1);
            bytes_put(&h, ins[i].path, strlen(ins[i].path));
            bytes_put(&h, "] ", 2);
            bytes_put(&h, line, strlen(line));
            bytes_put(&h, "\n", 1);
        }
        free(old);
        if (i) bytes_put(&from, "\n", 1);
        bytes_put(&from, ins[i].path, strlen(ins[i].path));
    }
    char *mine = input_text(onc, "history");
    bytes_put(&h, mine, strlen(mine));
    free(mine);
    int s = nc_put_att_text(onc, NC_GLOBAL, "history", h.len, (const char *)h.p);
    if (!s) s = nc_put_att_text(onc, NC_GLOBAL, "merged_from", from.len, (const char *)from.p);
    bytes_free(&h);
    bytes_free(&from);
    return s ? nc_fail(s, out, "history/merged_from attributes", err, errlen) : 0;
}

/* The inputs' MPI layouts, each once, "; " between (malloc'd). */
static char *union_layouts(const Input *ins, int n) {
    Bytes b = {0};
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < i; k++) seen |= !strcmp(ins[k].m.mpi_layout, ins[i].m.mpi_layout);
        if (seen) continue;
        if (b.len) bytes_put(&b, "; ", 2);
        bytes_put(&b, ins[i].m.mpi_layout, strlen(ins[i].m.mpi_layout));
    }
    bytes_put(&b, "", 1);
    return (char *)b.p;
}

/* Schema of the union into OUT.tmp.<pid>, every input copied, renamed. */
static int build_output(const Input *ins, int n, const NcoutMeta *u, const char *out,
                        char *err, size_t errlen) {
    char tmp[RS_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    int onc = -1, rc = schema_create(tmp, out, u, schema_new_id(), err, errlen), s;
    NcIds ids = {0};
    if (rc == 0 && (s = nc_open(tmp, NC_WRITE, &onc))) {
        onc = -1;
        rc = nc_fail(s, out, "cannot reopen the new file", err, errlen);
    }
    if (rc == 0) rc = schema_ids(onc, u, &ids, out, err, errlen);
    for (int i = 0; i < n && rc == 0; i++) rc = copy_input(&ins[i], &ids, u, out, err, errlen);
    if (rc == 0) rc = write_axes(ins, n, &ids, out, err, errlen);
    if (rc == 0) rc = finish_attrs(onc, ins, n, out, err, errlen);
    schema_ids_free(&ids);
    if (onc >= 0 && (s = nc_close(onc)) && rc == 0)
        rc = nc_fail(s, out, "cannot write", err, errlen);
    if (rc == 0) {
        FILE *fp = fopen(tmp, "rb");
        int ok = fp && fsync(fileno(fp)) == 0;
        if (fp) fclose(fp);
        if (!ok || rename(tmp, out) != 0) {
            snprintf(err, errlen, "%s: cannot put the merged file in place: %s", out,
                     strerror(errno));
            rc = -1;
        }
    }
    if (rc != 0) unlink(tmp);
    else fsync_dir_of(out);
    return rc;
}

int ncout_merge(int n, char *const *inputs, const char *out, int force, const char *command_line,
                char *err, size_t errlen) {
    struct stat st;
    if (n < 1) { snprintf(err, errlen, "%s: no input datasets to merge", out); return -1; }
    if (stat(out, &st) == 0 && !force) {
        snprintf(err, errlen, "%s: exists; pass --force to replace it", out);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (same_file(inputs[i], out) || !strcmp(inputs[i], out)) {
            snprintf(err, errlen, "%s: the output is also an input", out);
            return -1;
        }
    Input *ins = xcalloc((size_t)n, sizeof *ins);
    for (int i = 0; i < n; i++) ins[i].ncid = -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = open_input(&ins[i], inputs[i], err, errlen);
    if (rc == 0) rc = check_consistent(ins, n, err, errlen);
    NcoutMeta u;
    const char *owner_of_size[MAX_RUN_SIZES];
    memset(&u, 0, sizeof u);
    if (rc == 0) rc = union_grid(ins, n, &u, owner_of_size, err, errlen);
    if (rc == 0) rc = check_overlap(ins, n, &u, err, errlen);
    if (rc == 0) {
        const NcoutMeta *a = &ins[0].m;
        u.topk = a->topk;
        u.steps = a->steps;
        u.eval_every = a->eval_every;
        u.snapshot_every = a->snapshot_every;
        u.version = a->version;
        u.git_commit = a->git_commit;
        /* provenance of the merge itself: its command, time, the inputs' layouts */
        char when[64], *layouts = union_layouts(ins, n);
        time_t now = time(NULL);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        u.mpi_layout = layouts;
        u.command_line = command_line;
        u.start_time = when;
        char *config = config_text_with_grid(a->config_text, ins[0].path, u.sizes, u.n_sizes,
                                             u.seeds, u.n_seeds, err, errlen);
        u.config_text = config;
        rc = config ? build_output(ins, n, &u, out, err, errlen) : -1;
        free(config);
        free(layouts);
    }
    for (int i = 0; i < n; i++) close_input(&ins[i]);
    free(ins);
    return rc;
}

/* ---- the command ---- */

static void merge_usage(FILE *fp) {
    fprintf(fp,
        "usage: reluscope merge IN.nc [IN.nc ...] -o OUT.nc [--force]\n"
        "       reluscope merge --repair FILE.nc [FILE.nc ...]\n"
        "Combines the datasets of a sweep's Slurm array tasks (each some sizes x seeds of the\n"
        "same config) into one dataset of every size and seed, snapshot groups included.\n"
        "Sizes and seeds keep their order of first appearance: list the inputs in task order.\n"
        "Refuses inputs whose configs differ beyond `sizes` and `seeds`, a run held by two\n"
        "inputs, and inputs left by a killed writer (FILE.nc.journal next to it).\n"
        "OUT is written to OUT.tmp.<pid> and renamed into place; an existing OUT is\n"
        "replaced only with --force.\n"
        "--repair brings a FILE.nc left by a killed writer up to date from its journal (what\n"
        "resuming the job would do) and closes it cleanly. docs/dataset.md: the format.\n");
}

/* "reluscope merge IN ..." (the output is not named: jobs/ merge into a
 * temporary that they rename, and the file knows where it is). */
static char *merge_line(int n, char **inputs, int force) {
    size_t len = 64;
    for (int i = 0; i < n; i++) len += strlen(inputs[i]) + 1;
    char *s = xmalloc(len);
    strcpy(s, "reluscope merge");
    for (int i = 0; i < n; i++) { strcat(s, " "); strcat(s, inputs[i]); }
    if (force) strcat(s, " --force");
    return s;
}

/* After an error line: end without exit handlers. HDF5's would flush and
 * close a file whose writes failed (a full disk), and crash doing so. */
static void exit_after_error(void) {
    fflush(NULL);
    _exit(1);
}

static int repair_files(int n, char **files) {
    char err[2048];
    for (int i = 0; i < n; i++) {
        int repaired = 0;
        if (ncout_repair(files[i], &repaired, err, sizeof err) != 0) {
            fprintf(stderr, "reluscope: error: %s\n", err);
            exit_after_error();
        }
        printf("%s: %s\n", files[i], repaired ? "caught up from its journal and closed cleanly"
                                              : "closed cleanly already, nothing to repair");
    }
    return 0;
}

/* Options into *out, *force, *repair; the rest into inputs. 0 ok, 2 usage
 * error (reported), 1 = --help shown. */
static int parse_args(int argc, char **argv, char **inputs, int *n, const char **out, int *force,
                      int *repair) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            merge_usage(stdout);
            return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "reluscope: error: merge: %s needs a file name\n", a);
                return 2;
            }
            *out = argv[++i];
        } else if (!strcmp(a, "--force")) {
            *force = 1;
        } else if (!strcmp(a, "--repair")) {
            *repair = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "reluscope: error: merge: unknown option %s (see reluscope merge "
                    "--help)\n", a);
            return 2;
        } else {
            inputs[(*n)++] = argv[i];
        }
    }
    return 0;
}

int cmd_merge(int argc, char **argv) {
    const char *out = NULL;
    int force = 0, repair = 0, n = 0;
    char **inputs = xmalloc((size_t)(argc > 0 ? argc : 1) * sizeof *inputs);
    int rc = parse_args(argc, argv, inputs, &n, &out, &force, &repair);
    const char *missing = rc != 0 ? NULL
                        : n == 0 ? "no input datasets (see reluscope merge --help)"
                        : repair && out ? "--repair works in place: no -o"
                        : !repair && !out ? "no output: give -o OUT.nc" : NULL;
    if (missing && argc <= 1) {
        merge_usage(stderr);
        rc = 2;
    } else if (missing) {
        fprintf(stderr, "reluscope: error: merge: %s\n", missing);
        rc = 2;
    } else if (rc == 0 && repair) {
        rc = repair_files(n, inputs);
    } else if (rc == 0) {
        char err[2048], *cmdline = merge_line(n, inputs, force);
        if (ncout_merge(n, inputs, out, force, cmdline, err, sizeof err) != 0) {
            fprintf(stderr, "reluscope: error: %s\n", err);
            exit_after_error();
        } else {
            printf("merged %d dataset(s) into %s\n", n, out);
        }
        free(cmdline);
    } else if (rc == 1) {
        rc = 0;
    }
    free(inputs);
    return rc;
}

/* ---- `reluscope schema`: the variable table for scripts ---- */

/* The dimensions of a variable, as the file has them. */
static int outvar_dims(const OutVar *v, const char **dims) {
    static const char *const axis[] = {[REC_STEP] = "step", [REC_EVAL] = "eval",
                                       [REC_SNAPSHOT] = "snapshot"};
    int n = 0;
    if (outvar_in_root(v)) { dims[n++] = "size"; dims[n++] = "seed"; }
    dims[n++] = axis[v->rec];
    if (v->shape != SH_ONE) dims[n++] = "layer";
    if (v->shape == SH_QUANT) dims[n++] = "quantile";
    if (v->shape == SH_SV) dims[n++] = "sv";
    if (v->shape == SH_UNIT) dims[n++] = "unit";
    return n;
}

int cmd_schema(int argc, char **argv) {
    if (argc != 2 || strcmp(argv[1], "--json") != 0) {
        fprintf(argc > 1 && strcmp(argv[1], "--help") ? stderr : stdout,
                "usage: reluscope schema --json\n"
                "Prints every data variable of the dataset (docs/dataset.md) as JSON: name, group\n"
                "(\"root\", or \"run\" for each run's snapshot group), record (step, eval,\n"
                "snapshot), dims, type, units, long_name; in the order the file creates them.\n");
        return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 64;
    }
    printf("{\"format\": %d, \"variables\": [\n", schema_format_version());
    for (int i = 0; i < N_OUT_VARS; i++) {
        const OutVar *v = &OUT_VARS[i];
        static const char *const rec[] = {[REC_STEP] = "step", [REC_EVAL] = "eval",
                                          [REC_SNAPSHOT] = "snapshot"};
        const char *dims[6];
        int nd = outvar_dims(v, dims);
        printf("  {\"name\": ");
        json_string(v->name, stdout);
        printf(", \"group\": \"%s\", \"record\": \"%s\", \"dims\": [",
               outvar_in_root(v) ? "root" : "run", rec[v->rec]);
        for (int d = 0; d < nd; d++) printf("%s\"%s\"", d ? ", " : "", dims[d]);
        printf("], \"type\": \"%s\", \"units\": ", valtype_name(v->type));
        json_string(v->units, stdout);
        printf(", \"long_name\": ");
        json_string(v->long_name, stdout);
        printf("}%s\n", i + 1 < N_OUT_VARS ? "," : "");
    }
    printf("]}\n");
    return 0;
}
