/* ncout_impl.h — internals shared by src/ncout*.c and src/merge.c (not an
 * API for other modules: use ncout.h).
 *   ncout_meta.c     owned copies of NcoutMeta, validation, config compare
 *   ncout_schema.c   the variables, dimensions, attributes; ids; meta back
 *   ncout_journal.c  journal frames and file, file copy (records: record.h)
 *   ncout_apply.c    decoded records -> NetCDF hyperslabs
 *   ncout.c          the writer: open / resume, buffered records, flush, close
 *   ncout_update.c   the writer's file updates: working copy, swap, catch-up */
#ifndef RELUSCOPE_NCOUT_IMPL_H
#define RELUSCOPE_NCOUT_IMPL_H
#include <netcdf.h>
#include <stddef.h>
#include <stdint.h>
#include "ncout.h"

/* ---- meta (ncout_meta.c) ---- */
/* An owned meta: its strings are malloc'd (never NULL after meta_copy). */
void meta_copy(NcoutMeta *dst, const NcoutMeta *src);
void meta_release(NcoutMeta *m);
int  meta_check(const NcoutMeta *m, const char *shown, char *err, size_t errlen);
int  meta_lmax(const NcoutMeta *m);
int  meta_n_runs(const NcoutMeta *m);
/* Key-by-key comparison of two config texts ('#' lines, blank lines and the
 * keys listed in ncout.h skipped; with ignore_grid also sizes, seeds and
 * size.* lines). 0 = same; 1 = differ, with e.g. "lr = 3e-3 stored, 1e-3 now". */
/* 0 when a and b describe the same grid and cadences; 1 + what otherwise. */
int  meta_grid_diff(const NcoutMeta *a, const NcoutMeta *b, char *what, size_t n);

/* ---- schema (ncout_schema.c) ---- */
/* The NetCDF type of a variable of OUT_VARS (record.h), and whether it
 * lives in the root group (step and eval records) or a run's group. */
nc_type outvar_nc_type(const OutVar *v);
int schema_format_version(void);             /* the reluscope_format attribute */
static inline int outvar_in_root(const OutVar *v) { return v->rec != REC_SNAPSHOT; }

/* The ids of an open dataset's variables (-1: absent). */
typedef struct {
    int ncid;
    int step_coord, eval_coord, eval_step;
    int var[MAX_OUT_VARS];           /* root variables of OUT_VARS (-1: other or absent) */
    int n_runs;
    int *grp, *snap_coord, *snap_step;   /* [n_runs] */
    int (*gvar)[MAX_OUT_VARS];       /* [n_runs]: group variables of OUT_VARS */
} NcIds;

/* "SHOWN: WHAT: <netcdf message>" into err; returns -1. */
int nc_fail(int status, const char *shown, const char *what, char *err, size_t errlen);
/* Create FILE (clobbering) with every dimension, variable, attribute and
 * coordinate value of m, then close it. Errors name SHOWN. dataset_id: a
 * random number that ties the file to its journal. */
int  schema_create(const char *file, const char *shown, const NcoutMeta *m, uint64_t dataset_id,
                   char *err, size_t errlen);
/* The writer's bookkeeping attributes: the dataset id and the sequence
 * number of the last journal frame the file holds. */
int  schema_get_state(int ncid, uint64_t *dataset_id, uint64_t *journal_seq);
int  schema_set_seq(int ncid, uint64_t journal_seq, const char *shown, char *err, size_t errlen);
uint64_t schema_new_id(void);
/* Look up every id of m's layout in the open ncid; sets write caches. */
int  schema_ids(int ncid, const NcoutMeta *m, NcIds *ids, const char *shown,
                char *err, size_t errlen);
void schema_ids_free(NcIds *ids);
/* Read the meta a dataset was created with (owned result). */
int  schema_read_meta(int ncid, const char *shown, NcoutMeta *owned, char *err, size_t errlen);
/* Read every variable of every group through (a damaged chunk fails);
 * 0, or -1 + "SHOWN: variable G/V does not read (...)". */
int  schema_check_readable(int ncid, const char *shown, char *err, size_t errlen);
/* Append one line to the global `history` attribute. */
int  schema_add_history(int ncid, const char *line, const char *shown, char *err, size_t errlen);
/* Chunk length along step / eval for a variable of bytes_per_slot bytes. */
size_t schema_chunk_len(size_t bytes_per_slot, long n_expected);

/* ---- journal (ncout_journal.c) ---- */
/* Frame types: a record (its RecKind, 1..3) or a history line. */
enum { FR_STEP = REC_STEP, FR_EVAL = REC_EVAL, FR_SNAPSHOT = REC_SNAPSHOT, FR_HISTORY = 4 };
#define FRAME_HEAD 24            /* magic, type, flags, stored/raw lengths, sequence number */
typedef struct {
    int type;
    uint64_t seq;                    /* increasing over the dataset's life */
    const unsigned char *payload;    /* raw (inflated) payload, 8-byte aligned */
    size_t len;
    unsigned char *owned;            /* set when inflated: free it */
} Frame;

/* Append a framed payload (deflated when large) to b. */
void frame_append(Bytes *b, int type, uint64_t seq, const Bytes *payload);
/* Parse frames from p[0..n): stops at the first incomplete or corrupt frame;
 * *used = bytes of whole valid frames, *corrupt = 1 if it stopped at a bad
 * one. Returns the count (frames malloc'd in *out: frames_free). */
int  frames_parse(const unsigned char *p, size_t n, Frame **out, size_t *used, int *corrupt);
void frames_free(Frame *f, int n);
/* After a damaged frame: the offset >= from (a multiple of 8 from p) of the
 * next valid frame (*found = 1), or of the first place one may still start
 * once more bytes arrive (*found = 0; at_eof: no more will: all is junk). */
size_t frame_resync(const unsigned char *p, size_t n, size_t from, int at_eof, int *found);

/* PATH.journal: a header naming the dataset (its random id), then frames.
 * journal_create writes the header to a temporary, fsyncs, renames it into
 * place, and returns an fd open for appending; -1 + err. */
int  journal_create(const char *jpath, uint64_t dataset_id, char *err, size_t errlen);
/* The dataset id and the offset of the first frame; -1 + err. */
int  journal_read_head(int fd, const char *jpath, uint64_t *dataset_id, uint64_t *data_start,
                       char *err, size_t errlen);
#define JOURNAL_HEAD 32
/* Every frame is in the published PATH: cut the journal back to its header
 * (so it holds only what PATH lacks, and stays bounded). */
int  journal_reset(int fd, const char *jpath, char *err, size_t errlen);
/* write (no fsync: the caller decides when); on failure the journal is
 * truncated back to its old end. */
int  journal_append(int fd, const char *jpath, const Bytes *b, char *err, size_t errlen);
/* Copy SRC to DST through DST.tmp.<pid> (fsync, rename). */
int  copy_file(const char *src, const char *dst, char *err, size_t errlen);

/* ---- apply (ncout_apply.c) ---- */
typedef struct {
    const NcoutMeta *m;
    NcIds *ids;
    const char *shown;           /* the path errors name */
    int64_t step_coord_done;     /* the step coordinate holds [0, done) */
} ApplyCtx;
/* Write every frame of p[0..n) (whole valid frames) into the dataset; later
 * frames win over earlier ones for the same slot. */
int apply_frames(ApplyCtx *x, const unsigned char *p, size_t n, char *err, size_t errlen);
/* The same for frames already parsed (frames_parse). */
int apply_frame_list(ApplyCtx *x, const Frame *fr, int nf, char *err, size_t errlen);

/* ---- the writer (ncout.c, ncout_update.c) ---- */
/* One of the two copies of the dataset, open for writing (ncid -1: not open). */
typedef struct {
    int ncid;
    NcIds ids;
    ApplyCtx ax;
} Side;

struct Ncout {
    char path[RS_PATH_MAX], jpath[RS_PATH_MAX], wpath[RS_PATH_MAX], lpath[RS_PATH_MAX];
    NcoutMeta meta;             /* owned: what the file holds */
    char *history;              /* this session's history line (resumes only) */
    int lock_fd, jfd;
    uint64_t dataset_id;        /* PATH's and its journal's */
    uint64_t next_seq;          /* of the next journal frame */
    uint64_t path_seq;          /* PATH holds the frames up to this one */
    uint64_t work_seq;          /* PATH.work holds the frames up to this one ... */
    int work_ok;                /* ... if it exists and is a clean copy */
    Side pub, work;             /* handles of the files named PATH and PATH.work */
    int exchange;               /* renameat2(RENAME_EXCHANGE) works here */
    int armed;                  /* the journal of this session exists */
    int broken;                 /* a flush failed: refuse more */
    Bytes pending;              /* frames not yet in the journal */
    Bytes prev;                 /* frames in (work_seq, path_seq] */
    Bytes unapplied;            /* frames in the journal, newer than path_seq */
    Bytes scratch;
    double budget;              /* share of wall time updates may take */
    double next_update;         /* monotonic time of the next allowed update */
};

/* fsync the journal, apply prev + unapplied to the working copy, swap it in
 * as PATH. final: close it cleanly first (and drop the other copy). */
int  ncout_update(Ncout *o, int final, char *err, size_t errlen);
/* After a killed writer: apply the journal's frames newer than PATH,
 * republish PATH cleanly closed, remove the journal. *applied = frames
 * applied, or -1 when there was no journal of this dataset (nothing done).
 * A damaged frame followed by valid ones: with resync, skipped with a
 * warning; without, refused (the journal is kept). Sequence numbers that
 * do not increase and records outside the grid are refused. */
int  ncout_catch_up(Ncout *o, int resync, long *applied, char *err, size_t errlen);
/* Close both copies' handles without publishing anything (error paths). */
void ncout_drop_sides(Ncout *o);
int  fsync_path(const char *path);

#endif
