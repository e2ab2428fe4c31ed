/* ncout_update.c — how the writer changes PATH without ever leaving it
 * half-written.
 *
 * HDF5 updates a file in place: a process killed inside nc_put/nc_sync can
 * leave a file that still opens but whose chunk indexes point at freed or
 * reused space (our kill tests saw both unreadable chunks and chunks that
 * decompress into another variable's numbers). So the file named PATH is
 * never written while it has that name. The writer keeps two copies open:
 * PATH and PATH.work, which lags PATH by one update. An update applies to
 * PATH.work the frames PATH got last time (prev) and the new ones
 * (unapplied), records the last frame's sequence number in it, nc_syncs and
 * fsyncs it, and swaps the two names with renameat2(RENAME_EXCHANGE): the
 * old PATH becomes the next working copy. Keeping both open lets HDF5 reuse
 * the space of rewritten chunks (reopening per update made the file grow
 * with every update). A synced copy that is not touched again is what a
 * kill -9 between flushes always left intact.
 *
 * Readers: a reader of PATH (xarray during the run) holds the copy it opened
 * until it closes it, and that copy becomes PATH.work at the next swap.
 * HDF5 readers take a shared flock on the file they open (unless they set
 * HDF5_USE_FILE_LOCKING=FALSE), so before writing PATH.work the writer
 * probes it with an exclusive flock; if a reader still holds it, the writer
 * leaves that copy to the reader and starts a fresh one from PATH. (The
 * writer's own HDF5 takes no locks: ncout.c turns them off at start.)
 *
 * The final update (close) closes the working copy before the swap, so a
 * finished PATH is a cleanly closed file, and closes the other one after.
 * Where names cannot be exchanged, PATH.work is renamed over PATH and the
 * next update copies PATH again (O(file size), absorbed by the budget).
 *
 * After the swap PATH holds every journal frame, so the journal is cut
 * back to its header: its size stays bounded by the records not yet
 * published. The catch-up after a kill replays what is left, skipping
 * frames PATH already holds by sequence number. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "ncout_impl.h"
#include "util.h"

#define REPLAY_BLOCK (16u << 20)

int fsync_path(const char *p) {
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void side_close(Side *s) {
    if (s->ncid >= 0) nc_close(s->ncid);
    schema_ids_free(&s->ids);
    memset(s, 0, sizeof *s);
    s->ncid = -1;
}

void ncout_drop_sides(Ncout *o) {
    side_close(&o->pub);
    side_close(&o->work);
}

static int side_open(Ncout *o, Side *s, const char *file, char *err, size_t errlen) {
    int st = nc_open(file, NC_WRITE, &s->ncid), dim;
    if (st) {
        s->ncid = -1;
        return nc_fail(st, file, "cannot open for writing", err, errlen);
    }
    if (schema_ids(s->ncid, &o->meta, &s->ids, o->path, err, errlen) != 0) return -1;
    size_t len = 0;
    if ((st = nc_inq_dimid(s->ncid, "step", &dim)) || (st = nc_inq_dimlen(s->ncid, dim, &len)))
        return nc_fail(st, file, "step dimension", err, errlen);
    s->ax = (ApplyCtx){&o->meta, &s->ids, o->path, (int64_t)len};
    return 0;
}

/* 1 unless a reader holds PATH.work open (a shared flock: see above). */
static int work_unread(const Ncout *o) {
    int fd = open(o->wpath, O_RDONLY | O_CLOEXEC), busy = 0;
    if (fd < 0) return 1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) busy = errno == EWOULDBLOCK;
    close(fd);                           /* releases the probe */
    return !busy;
}

static int work_copy(Ncout *o, char *err, size_t errlen) {
    side_close(&o->work);
    unlink(o->wpath);                    /* a reader keeps its copy alive */
    o->work_ok = 0;
    if (copy_file(o->path, o->wpath, err, errlen) != 0) return -1;
    o->work_seq = o->path_seq;
    o->prev.len = 0;
    o->work_ok = 1;
    return 0;
}

/* The working copy open: the previous PATH when no reader holds it, else a
 * fresh copy of PATH. */
static int work_ready(Ncout *o, char *err, size_t errlen) {
    int reused = o->work_ok && work_unread(o), rc = 0;
    if (!reused && work_copy(o, err, errlen) != 0) return -1;
    if (o->work.ncid < 0 && side_open(o, &o->work, o->wpath, err, errlen) != 0) {
        side_close(&o->work);            /* once more, on a fresh copy */
        rc = !reused || work_copy(o, err, errlen) != 0 ? -1
           : side_open(o, &o->work, o->wpath, err, errlen);
    }
    o->work.ax.ids = &o->work.ids;       /* the Side may have moved (swaps copy it) */
    return rc;
}

/* Working copy stamped, durable, and swapped in as PATH. */
static int work_publish(Ncout *o, uint64_t seq, int final, char *err, size_t errlen) {
    int rc = schema_set_seq(o->work.ncid, seq, o->wpath, err, errlen), s;
    if (rc == 0 && final) {
        s = nc_close(o->work.ncid);
        o->work.ncid = -1;
        if (s) rc = nc_fail(s, o->wpath, "cannot write", err, errlen);
    } else if (rc == 0 && (s = nc_sync(o->work.ncid)) != 0) {
        rc = nc_fail(s, o->wpath, "cannot write", err, errlen);
    }
    if (rc == 0 && fsync_path(o->wpath) != 0) {
        snprintf(err, errlen, "%s: cannot fsync: %s", o->wpath, strerror(errno));
        rc = -1;
    }
    if (rc != 0) return -1;
    if (o->exchange && renameat2(AT_FDCWD, o->wpath, AT_FDCWD, o->path, RENAME_EXCHANGE) == 0) {
        Side t = o->pub;                 /* PATH.work is now the previous PATH */
        o->pub = o->work;
        o->work = t;
        o->work_seq = o->path_seq;
    } else {
        o->exchange = 0;                 /* not supported here: replace instead */
        if (rename(o->wpath, o->path) != 0) {
            snprintf(err, errlen, "%s: cannot put the updated copy in place: %s", o->path,
                     strerror(errno));
            return -1;
        }
        side_close(&o->pub);             /* the replaced file, now nameless */
        o->pub = o->work;
        memset(&o->work, 0, sizeof o->work);
        o->work.ncid = -1;
        o->work_ok = 0;
    }
    fsync_dir_of(o->path);
    o->path_seq = seq;
    return 0;
}

/* After a failure: the working copy may be half-written, never trust it. */
static void work_abandon(Ncout *o) {
    side_close(&o->work);
    o->work_ok = 0;
    unlink(o->wpath);
}

/* final: the other copy (PATH.work now) is closed and removed. */
static void finish(Ncout *o) {
    side_close(&o->work);
    side_close(&o->pub);
    o->work_ok = 0;
    unlink(o->wpath);
}

int ncout_update(Ncout *o, int final, char *err, size_t errlen) {
    double t0 = now_seconds();
    if (o->jfd >= 0 && fsync(o->jfd) != 0) {
        snprintf(err, errlen, "%s: cannot fsync: %s", o->jpath, strerror(errno));
        return -1;
    }
    uint64_t last = o->next_seq - 1;
    errno = 0;                           /* for nc_fail's hint */
    int rc = work_ready(o, err, errlen);
    if (rc == 0 && o->prev.len) rc = apply_frames(&o->work.ax, o->prev.p, o->prev.len, err, errlen);
    if (rc == 0 && o->unapplied.len)
        rc = apply_frames(&o->work.ax, o->unapplied.p, o->unapplied.len, err, errlen);
    if (rc == 0) rc = work_publish(o, last, final, err, errlen);
    if (rc != 0) {
        work_abandon(o);
        return -1;
    }
    /* PATH holds every journal frame now: cut the journal back, so that it
     * holds only what PATH lacks (a kill before the cut leaves frames that
     * the next catch-up skips by their sequence numbers) */
    if (!final && o->jfd >= 0 && journal_reset(o->jfd, o->jpath, err, errlen) != 0) return -1;
    Bytes t = o->prev;                   /* prev := what PATH got now; PATH.work lacks it */
    o->prev = o->unapplied;
    o->unapplied = t;
    o->unapplied.len = 0;
    if (!o->work_ok) o->prev.len = 0;
    if (final) finish(o);
    double t1 = now_seconds();
    o->next_update = t1 + (t1 - t0) * (1.0 / o->budget - 1.0);
    return 0;
}

/* Apply the frames of f newer than PATH (opening a working copy at the
 * first); refuses sequence numbers that do not increase (a crafted or
 * spliced journal). */
static int apply_newer(Ncout *o, Frame *f, int nf, uint64_t *last, long *applied, char *err,
                       size_t errlen) {
    int n = 0;
    for (int i = 0; i < nf; i++) {
        if (f[i].seq <= *last) {
            snprintf(err, errlen, "%s: record sequence numbers go backwards (%llu after %llu): "
                     "not one writer's journal; move it away to use %s as it is", o->jpath,
                     (unsigned long long)f[i].seq, (unsigned long long)*last, o->path);
            return -1;
        }
        *last = f[i].seq;
        if (f[i].seq > o->path_seq) f[n++] = f[i];
    }
    if (n == 0) return 0;
    if (work_ready(o, err, errlen) != 0) return -1;
    *applied += n;
    return apply_frame_list(&o->work.ax, f, n, err, errlen);
}

/* The replay's position in the journal and what it skipped. */
typedef struct {
    Bytes buf;                   /* unconsumed bytes, starting at file offset `at` */
    uint64_t at, last;           /* last: sequence number of the last valid frame */
    int in_gap;                  /* after a damaged frame, looking for the next valid one */
    size_t scan_from;            /* where in buf the search goes on */
    uint64_t gap_at, gap_after;  /* the damaged frame's offset; the seq before it */
} Replay;

static void consume(Replay *r, size_t n) {
    if (n == 0) return;   /* buf.p may still be NULL (memmove's arguments must not be) */
    memmove(r->buf.p, r->buf.p + n, r->buf.len - n);
    r->buf.len -= n;
    r->at += n;
}

/* Past a damaged frame: 1 = at the next valid frame, 0 = need more bytes
 * (or none follow), -1 = refused (resync off). */
static int skip_damage(Ncout *o, Replay *r, int eof, int resync, char *err, size_t errlen) {
    int found;
    size_t off = frame_resync(r->buf.p, r->buf.len, r->scan_from, eof, &found);
    consume(r, off);
    r->scan_from = 0;
    if (!found) return 0;
    r->in_gap = 0;
    if (!resync) {
        snprintf(err, errlen, "%s: a damaged record at byte %llu, valid ones after it (seq > %llu): "
                 "`reluscope merge --repair %s` applies every valid record and reports the gap; "
                 "the journal is kept", o->jpath, (unsigned long long)r->gap_at,
                 (unsigned long long)r->gap_after, o->path);
        return -1;
    }
    warn_msg("%s: skipped %llu damaged bytes at byte %llu (the records after seq %llu, before "
             "the next valid one, are lost)", o->jpath, (unsigned long long)(r->at - r->gap_at),
             (unsigned long long)r->gap_at, (unsigned long long)r->gap_after);
    return 1;
}

/* Stream the journal from `start` into the working copy. resync: go on
 * after a damaged frame (merge --repair) instead of refusing (resume). */
static int replay(Ncout *o, int jfd, uint64_t start, int resync, uint64_t *newest, long *applied,
                  char *err, size_t errlen) {
    Replay r = {{0}, start, 0, 0, 0, 0, 0};
    unsigned char *block = xmalloc(REPLAY_BLOCK);
    int rc = 0, done = lseek(jfd, (off_t)start, SEEK_SET) < 0;
    while (!done && rc == 0) {
        ssize_t got = read(jfd, block, REPLAY_BLOCK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", o->jpath, strerror(errno));
            rc = -1;
            break;
        }
        done = got == 0;
        bytes_put(&r.buf, block, (size_t)got);
        for (int more = 1; more && rc == 0;) {
            if (r.in_gap && (more = skip_damage(o, &r, done, resync, err, errlen)) != 1) {
                rc = more < 0 ? -1 : 0;
                break;
            }
            Frame *fr;
            size_t used;
            int corrupt, nf = frames_parse(r.buf.p, r.buf.len, &fr, &used, &corrupt);
            rc = apply_newer(o, fr, nf, &r.last, applied, err, errlen);
            frames_free(fr, nf);
            consume(&r, used);
            more = corrupt;
            if (corrupt) {
                r.in_gap = 1;
                r.scan_from = 8;
                r.gap_at = r.at;
                r.gap_after = r.last;
            }
        }
    }
    if (newest && r.last > *newest) *newest = r.last;
    if (rc == 0 && r.buf.len)
        warn_msg("%s: ignored %zu bytes after the last complete record (an append cut short by a "
                 "kill; never reported as flushed)", o->jpath, r.buf.len);
    free(block);
    bytes_free(&r.buf);
    return rc;
}

int ncout_catch_up(Ncout *o, int resync, long *applied, char *err, size_t errlen) {
    *applied = -1;
    int jfd = open(o->jpath, O_RDONLY | O_CLOEXEC);
    if (jfd < 0) return 0;               /* no journal: PATH is complete */
    uint64_t id, start, newest = o->path_seq;
    int rc = journal_read_head(jfd, o->jpath, &id, &start, err, errlen);
    if (rc == 0 && id == o->dataset_id) {
        *applied = 0;
        o->work_ok = 0;                  /* always a fresh copy of PATH */
        rc = replay(o, jfd, start, resync, &newest, applied, err, errlen);
        /* republished even with nothing new: the dead writer may have had PATH
         * open, which leaves HDF5's "open for writing" flag in it */
        if (rc == 0) rc = work_ready(o, err, errlen);
        if (rc == 0) rc = work_publish(o, newest, 1, err, errlen);
        if (rc != 0) work_abandon(o);
        else finish(o);
    } else if (rc != 0) {
        size_t n = strlen(err);          /* PATH is intact, only the tail is unreadable */
        snprintf(err + n, errlen - n, " (move it away to use %s as it is)", o->path);
    }
    close(jfd);
    if (rc == 0) {
        unlink(o->jpath);                /* PATH holds all of it (or it was another dataset's) */
        fsync_dir_of(o->path);
        o->next_seq = (newest > o->path_seq ? newest : o->path_seq) + 1;
    }
    return rc;
}
