/* ncout.c — the dataset writer of ncout.h: open (create or resume),
 * buffered records, flush through the journal, close. How PATH itself is
 * changed lives in ncout_update.c.
 *
 * Files next to PATH (all but PATH removed by a clean close):
 *   PATH.lock      flock'd by the one writer of PATH
 *   PATH.journal   write-ahead log: the flushed records PATH lacks, CRC-32 framed
 *   PATH.work      the working copy an update writes before swapping it in
 *   *.tmp.<pid>    files being built, renamed into place when complete
 * PATH is always a complete, synced dataset (cleanly closed once the writer
 * is done) holding the journal frames up to its reluscope_journal_seq
 * attribute; the frames after that are applied by the next update, or,
 * after a kill, by the next open (or ncout_repair). */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ncout_impl.h"
#include "util.h"

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int set_paths(Ncout *o, const char *path, char *err, size_t errlen) {
    if (strlen(path) + 16 >= RS_PATH_MAX) {
        snprintf(err, errlen, "%.200s...: path too long", path);
        return -1;
    }
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->jpath, sizeof o->jpath, "%s.journal", path);
    snprintf(o->wpath, sizeof o->wpath, "%s.work", path);
    snprintf(o->lpath, sizeof o->lpath, "%s.lock", path);
    return 0;
}

/* ---- the one-writer lock ---- */

static int take_lock(Ncout *o, char *err, size_t errlen) {
    for (int attempt = 0; attempt < 8; attempt++) {
        /* O_NOFOLLOW: a lock that is a symlink must not get its target truncated */
        int fd = open(o->lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "%s: cannot create files next to it (%s: %s)", o->path,
                     o->lpath, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK) {   /* no flock here (ENOLCK, EOPNOTSUPP, ...): go on, loudly */
                warn_msg("%s: cannot lock %s (%s): this file system has no working flock, so "
                         "nothing stops a second job writing the same dataset at once; make "
                         "sure only one job uses this out_dir (docs/reliability.md)", o->path,
                         o->lpath, strerror(errno));
                o->lock_fd = fd;
                return 0;
            }
            char pid[32] = "";
            ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            snprintf(err, errlen, "%s: another process (pid %s) is writing this dataset",
                     o->path, pid[0] ? pid : "?");
            close(fd);
            return -1;
        }
        struct stat a, b;   /* the file we locked may have been unlinked by its releaser */
        if (fstat(fd, &a) == 0 && stat(o->lpath, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) { /* advisory only */ }
            o->lock_fd = fd;
            return 0;
        }
        close(fd);
    }
    snprintf(err, errlen, "%s: cannot lock %s (it keeps being replaced)", o->path, o->lpath);
    return -1;
}

static void drop_lock(Ncout *o) {
    if (o->lock_fd < 0) return;
    unlink(o->lpath);            /* while still holding it: no one sees a stale lock */
    close(o->lock_fd);
    o->lock_fd = -1;
}

/* Leftover temporaries of killed writers (we hold the lock: none is live). */
static void remove_stale_temps(const Ncout *o) {
    if (strpbrk(o->path, "*?[\\")) return;
    const char *bases[3] = {o->path, o->jpath, o->wpath};
    for (int i = 0; i < 3; i++) {
        char pattern[RS_PATH_MAX + 16];
        snprintf(pattern, sizeof pattern, "%s.tmp.*", bases[i]);
        glob_t g;
        if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0)
            for (size_t k = 0; k < g.gl_pathc; k++) unlink(g.gl_pathv[k]);
        globfree(&g);
    }
    unlink(o->wpath);            /* a working copy is never trusted across sessions */
}

/* HDF5 locks the files it opens (exclusively when writing) and reads this
 * variable once, when the library starts, so it is set before main(). The
 * writer needs no HDF5 locks: PATH.lock keeps other writers out, and PATH is
 * never written. With them, a reader of the running job's dataset would fail
 * ("unable to lock file") and a reader could make the writer's open fail. */
__attribute__((constructor)) static void no_hdf5_file_locks(void) {
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
}

static Ncout *new_handle(const char *path, char *err, size_t errlen) {
    Ncout *o = xcalloc(1, sizeof *o);
    o->lock_fd = o->jfd = -1;
    o->pub.ncid = o->work.ncid = -1;
    o->exchange = 1;
    o->next_seq = 1;
    o->budget = NCOUT_DEFAULT_BUDGET;
    if (set_paths(o, path, err, errlen) != 0 || take_lock(o, err, errlen) != 0) {
        free(o);
        return NULL;
    }
    remove_stale_temps(o);
    return o;
}

static void free_handle(Ncout *o) {
    ncout_drop_sides(o);
    if (o->jfd >= 0) close(o->jfd);
    drop_lock(o);
    meta_release(&o->meta);
    free(o->history);
    bytes_free(&o->pending);
    bytes_free(&o->prev);
    bytes_free(&o->unapplied);
    bytes_free(&o->scratch);
    free(o);
}

/* ---- open: resume or create ---- */

enum { KEEP = 0, REPLACE = 1, FAILED = -1 };

static int refuse_other(const Ncout *o, const char *what, int overwrite, char *err, size_t errlen) {
    if (overwrite) return REPLACE;
    snprintf(err, errlen, "%s: holds a dataset of another config (%s); pass overwrite=1 to "
             "replace it, or use another out_dir", o->path, what);
    return FAILED;
}

static char *history_line(const NcoutMeta *m, const char *how) {
    size_t n = strlen(m->command_line ? m->command_line : "") + 512;
    char *s = xmalloc(n);
    snprintf(s, n, "%s: %s (%s; reluscope %s, git %s, %s)", m->start_time ? m->start_time : "",
             m->command_line ? m->command_line : "", how, m->version ? m->version : "",
             m->git_commit ? m->git_commit : "", m->mpi_layout ? m->mpi_layout : "");
    return s;
}

/* PATH's meta and bookkeeping into o; 0, or -1 + err naming what is wrong.
 * check_values: also read every variable through (a resume must not build
 * on a damaged file). */
static int read_existing(Ncout *o, NcoutMeta *stored, int check_values, char *err,
                         size_t errlen) {
    int ncid, s = nc_open(o->path, NC_NOWRITE, &ncid);
    if (s) {
        snprintf(err, errlen, "%s: exists but is not a readable NetCDF-4 file (%s)", o->path,
                 nc_strerror(s));
        return -1;
    }
    int rc = schema_read_meta(ncid, o->path, stored, err, errlen);
    if (rc == 0 && check_values && schema_check_readable(ncid, o->path, err, errlen) != 0) {
        meta_release(stored);
        rc = -1;
    }
    if (rc == 0 && schema_get_state(ncid, &o->dataset_id, &o->path_seq) != NC_NOERR) {
        snprintf(err, errlen, "%s: not written by this reluscope (no reluscope_dataset_id)",
                 o->path);
        meta_release(stored);
        rc = -1;
    }
    nc_close(ncid);
    return rc;
}

/* PATH exists: resume it if it holds this config; catch up a killed writer. */
static int resume(Ncout *o, const NcoutMeta *meta, int overwrite, char *err, size_t errlen) {
    NcoutMeta stored;
    char what[512];
    if (read_existing(o, &stored, 1, err, errlen) != 0) {
        if (overwrite) return REPLACE;
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, "; pass overwrite=1 to replace it");
        return FAILED;
    }
    int rc = KEEP;
    if (config_text_diff(stored.config_text, meta->config_text, 0, what, sizeof what) ||
        meta_grid_diff(&stored, meta, what, sizeof what))
        rc = refuse_other(o, what, overwrite, err, errlen);
    if (rc != KEEP) {
        meta_release(&stored);
        return rc;
    }
    o->meta = stored;
    o->history = history_line(meta, "resumed");
    long applied;
    return ncout_catch_up(o, 0, &applied, err, errlen) == 0 ? KEEP : FAILED;
}

/* A new PATH: schema into PATH.tmp.<pid>, renamed into place when complete. */
static int create(Ncout *o, const NcoutMeta *meta, char *err, size_t errlen) {
    char tmp[RS_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", o->path, (long)getpid());
    o->dataset_id = schema_new_id();
    if (schema_create(tmp, o->path, meta, o->dataset_id, err, errlen) != 0 ||
        fsync_path(tmp) != 0) {
        if (!err[0]) snprintf(err, errlen, "%s: cannot write: %s", o->path, strerror(errno));
        unlink(tmp);
        return FAILED;
    }
    unlink(o->jpath);            /* a replaced dataset's journal (another id: ignored anyway) */
    if (rename(tmp, o->path) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", o->path, strerror(errno));
        unlink(tmp);
        return FAILED;
    }
    fsync_dir_of(o->path);
    meta_copy(&o->meta, meta);
    o->path_seq = 0;
    o->next_seq = 1;
    return KEEP;
}

Ncout *ncout_open(const char *path, const NcoutMeta *meta, int overwrite, char *err,
                  size_t errlen) {
    if (errlen) err[0] = '\0';
    if (meta_check(meta, path, err, errlen) != 0) return NULL;
    Ncout *o = new_handle(path, err, errlen);
    if (!o) return NULL;
    int rc = exists(o->path) ? resume(o, meta, overwrite, err, errlen) : REPLACE;
    if (rc == REPLACE) {
        if (errlen) err[0] = '\0';
        rc = create(o, meta, err, errlen);
    }
    if (rc != KEEP) {
        free_handle(o);
        return NULL;
    }
    return o;
}

/* ---- buffered writes ---- */

static int check_record(Ncout *o, const char *kind, int run, int L, int64_t step, char *err,
                        size_t errlen) {
    const NcoutMeta *m = &o->meta;
    if (o->broken) {
        snprintf(err, errlen, "%s: refusing more records after a failed flush (reopen to catch up)",
                 o->path);
        return -1;
    }
    if (run < 0 || run >= meta_n_runs(m)) {
        snprintf(err, errlen, "%s: %s record of run %d, but the dataset has runs 0..%d", o->path,
                 kind, run, meta_n_runs(m) - 1);
        return -1;
    }
    const ModelSize *s = &m->sizes[run / m->n_seeds];
    if (L != s->L) {
        snprintf(err, errlen, "%s: %s record of run %d step %lld has %d layers (size %s has %d)",
                 o->path, kind, run, (long long)step, L, s->name, s->L);
        return -1;
    }
    /* steps run 0..steps-1; an evaluation or snapshot may also see the final weights */
    int64_t last = strcmp(kind, "step") ? m->steps : m->steps - 1;
    if (step < 0 || (m->steps > 0 && step > last)) {
        snprintf(err, errlen, "%s: %s record of run %d at step %lld, outside the sweep's steps "
                 "0..%lld", o->path, kind, run, (long long)step, (long long)last);
        return -1;
    }
    return 0;
}

static int buffer_frame(Ncout *o, int type, char *err, size_t errlen) {
    frame_append(&o->pending, type, o->next_seq++, &o->scratch);
    o->scratch.len = 0;
    if (o->pending.len >= NCOUT_AUTOFLUSH_BYTES) return ncout_flush(o, err, errlen);
    return 0;
}

/* A record that fits the grid (its arrays present), encoded into a frame. */
static int write_record(Ncout *o, RecKind kind, const void *rec, char *err, size_t errlen) {
    static const char *const what[] = {[REC_STEP] = "step", [REC_EVAL] = "eval",
                                       [REC_SNAPSHOT] = "snapshot"};
    RecHead h = record_head(kind, rec);
    if (check_record(o, what[kind], h.run, h.L, h.step, err, errlen) != 0) return -1;
    const NcoutMeta *m = &o->meta;
    const ModelSize *s = &m->sizes[h.run / m->n_seeds];
    int fits = kind == REC_STEP ? 1
             : kind == REC_EVAL ? m->eval_every > 0 && h.extra <= m->topk
             : m->snapshot_every > 0 && h.extra == s->F;
    for (int i = 0; i < N_OUT_VARS && fits; i++) {
        const OutVar *v = &OUT_VARS[i];
        const void *ptr = NULL;
        if (v->rec != kind || (v->shape != SH_SV && v->shape != SH_UNIT)) continue;
        memcpy(&ptr, (const char *)rec + v->offset, sizeof ptr);
        fits = ptr != NULL || outvar_count(v, h.L, h.extra) == 0;
    }
    if (!fits) {
        snprintf(err, errlen, "%s: %s record of run %d step %lld does not fit (eval_every %ld, "
                 "%d of %d singular values; snapshot_every %ld, F %d of %d; or an array "
                 "missing)", o->path, what[kind], h.run, (long long)h.step, m->eval_every,
                 kind == REC_EVAL ? h.extra : 0, m->topk, m->snapshot_every,
                 kind == REC_SNAPSHOT ? h.extra : s->F, s->F);
        return -1;
    }
    record_encode(kind, rec, &o->scratch);
    return buffer_frame(o, (int)kind, err, errlen);
}

int ncout_write_step(Ncout *o, const StepRecord *r, char *err, size_t errlen) {
    return write_record(o, REC_STEP, r, err, errlen);
}
int ncout_write_eval(Ncout *o, const EvalRecord *r, char *err, size_t errlen) {
    return write_record(o, REC_EVAL, r, err, errlen);
}
int ncout_write_snapshot(Ncout *o, const SnapshotRecord *r, char *err, size_t errlen) {
    return write_record(o, REC_SNAPSHOT, r, err, errlen);
}

int ncout_write_encoded(Ncout *o, RecKind kind, const unsigned char *p, size_t n, char *err,
                        size_t errlen) {
    static _Alignas(8) union { StepRecord s; EvalRecord e; SnapshotRecord n; } rec;
    if (kind < REC_STEP || kind > REC_SNAPSHOT || record_decode(kind, p, n, &rec) != 0) {
        snprintf(err, errlen, "%s: a malformed record (kind %d, %zu bytes)", o->path, (int)kind, n);
        return -1;
    }
    return write_record(o, kind, &rec, err, errlen);
}

/* ---- flush ---- */

/* First flush of the session: the journal, and the history line. */
static int arm(Ncout *o, char *err, size_t errlen) {
    o->jfd = journal_create(o->jpath, o->dataset_id, err, errlen);
    if (o->jfd < 0) return -1;
    if (o->history) {
        bytes_put(&o->scratch, o->history, strlen(o->history));
        frame_append(&o->pending, FR_HISTORY, o->next_seq++, &o->scratch);
        o->scratch.len = 0;
    }
    o->armed = 1;
    return 0;
}

static int flush(Ncout *o, int force, char *err, size_t errlen) {
    if (o->broken) {
        snprintf(err, errlen, "%s: an earlier flush failed (reopen to catch up)", o->path);
        return -1;
    }
    if (o->pending.len == 0 && (!force || o->unapplied.len == 0)) return 0;
    int rc = o->armed ? 0 : arm(o, err, errlen);
    if (rc == 0 && o->pending.len) rc = journal_append(o->jfd, o->jpath, &o->pending, err, errlen);
    if (rc == 0) {
        bytes_put(&o->unapplied, o->pending.p, o->pending.len);
        o->pending.len = 0;
        if (force || now_seconds() >= o->next_update || o->unapplied.len >= NCOUT_AUTOFLUSH_BYTES)
            rc = ncout_update(o, 0, err, errlen);
    }
    if (rc != 0) o->broken = 1;
    return rc;
}

int ncout_flush(Ncout *o, char *err, size_t errlen) { return flush(o, 0, err, errlen); }
int ncout_sync(Ncout *o, char *err, size_t errlen) { return flush(o, 1, err, errlen); }

void ncout_set_budget(Ncout *o, double fraction) {
    o->budget = fraction > 1e-6 ? (fraction < 1.0 ? fraction : 1.0) : 1e-6;
}

int ncout_close(Ncout *o, char *err, size_t errlen) {
    if (!o) return 0;
    int rc = flush(o, 0, err, errlen);
    /* the last update closes the copy it publishes: PATH ends cleanly closed */
    if (rc == 0 && (o->unapplied.len || o->pub.ncid >= 0)) rc = ncout_update(o, 1, err, errlen);
    if (rc == 0 && o->armed) {
        unlink(o->jpath);        /* PATH holds every record and is durable */
        fsync_dir_of(o->path);
    }
    free_handle(o);
    return rc;
}

int ncout_repair(const char *path, int *repaired, char *err, size_t errlen) {
    *repaired = 0;
    if (errlen) err[0] = '\0';
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: cannot repair it: %s", path, strerror(errno));
        return -1;
    }
    Ncout *o = new_handle(path, err, errlen);
    if (!o) return -1;
    long applied = -1;
    int rc = read_existing(o, &o->meta, 0, err, errlen);
    if (rc == 0) rc = ncout_catch_up(o, 1, &applied, err, errlen);
    *repaired = applied >= 0;
    free_handle(o);
    return rc;
}

/* ---- what PATH holds (for the trainer's resume check) ---- */

int ncout_first_missing_step(Ncout *o, int run, int64_t from, int64_t upto, int64_t *missing,
                             char *err, size_t errlen) {
    *missing = upto;
    if (from < 0) from = 0;
    if (upto <= from) return 0;
    if (run < 0 || run >= meta_n_runs(&o->meta))
        return fail_msg(err, errlen, "%s: no run %d in this dataset", o->path, run);
    int ncid, varid, dims[3], s = nc_open(o->path, NC_NOWRITE, &ncid);
    if (s) return nc_fail(s, o->path, "cannot read", err, errlen);
    size_t len = 0;
    s = nc_inq_varid(ncid, "loss", &varid);
    if (!s) s = nc_inq_vardimid(ncid, varid, dims);
    if (!s) s = nc_inq_dimlen(ncid, dims[2], &len);
    size_t end = (uint64_t)upto < len ? (size_t)upto : len;
    size_t n = end > (size_t)from ? end - (size_t)from : 0;
    double *v = xmalloc((n ? n : 1) * sizeof *v);
    size_t start[3] = {(size_t)(run / o->meta.n_seeds), (size_t)(run % o->meta.n_seeds),
                       (size_t)from};
    size_t count[3] = {1, 1, n};
    if (!s && n) s = nc_get_vara_double(ncid, varid, start, count, v);
    nc_close(ncid);
    if (!s) {
        *missing = from + (int64_t)n;
        for (size_t i = 0; i < n; i++)
            if (v[i] == NC_FILL_DOUBLE || v[i] != v[i]) { *missing = from + (int64_t)i; break; }
    }
    free(v);
    return s ? nc_fail(s, o->path, "cannot read loss", err, errlen) : 0;
}
