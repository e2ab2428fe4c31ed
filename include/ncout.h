/* ncout.h — the job's NetCDF-4 dataset (layout: docs/dataset.md). Only job
 * rank 0 calls this module; it never calls MPI.
 *
 * Writing: ncout_write_* only check a record and append it, encoded
 * (record.h), to an in-memory buffer. ncout_flush appends the buffer to the
 * write-ahead journal PATH.journal (CRC-32 framed records): from then on
 * the records survive the process being killed. Once an update has put
 * every journal record into PATH, the journal is cut back to its header:
 * it holds only what PATH lacks. PATH itself is brought up to date
 * (journal fsync, records written, nc_sync) by ncout_sync, by ncout_close,
 * and by ncout_flush whenever the time since the last update allows it:
 * each update's cost c defers the next by c * (1/budget - 1), so updating
 * PATH takes at most `budget` (default 0.25%) of the wall time whatever the
 * step time, and PATH lags the journal by a few seconds at most when steps
 * are fast (every flush updates it when they are slow).
 *
 * Crash safety: the file named PATH is never written while it has that
 * name. An update writes a second copy, PATH.work, and swaps the two names
 * atomically (ncout_update.c). A kill -9 at any instant therefore leaves
 * PATH a complete, synced dataset holding every record up to its last
 * update, and the journal holding every flushed record; the next ncout_open
 * (or ncout_repair, `reluscope merge --repair`) applies the journal's newer
 * records, so no flushed record is lost. ncout_close leaves PATH complete
 * and cleanly closed and removes the journal and the copy: a finished job
 * leaves only PATH. Readers may open PATH at any time (docs/dataset.md).
 *
 * Indexing: a step record goes to step index = its step number; an eval
 * record to eval index ceil(step / eval_every); a snapshot to snapshot index
 * ceil(step / snapshot_every) (the trainer's records fall on multiples, so
 * index = step / every). Writing the same step again (after a resume)
 * overwrites the same slot: every step is stored exactly once. Records of
 * different runs may arrive interleaved and in any step order.
 *
 * Errors: every function returning int gives 0, or -1 with a one-line
 * message naming the file and the problem in err. After a failed flush the
 * handle refuses further writes (close it; the next open catches up). */
#ifndef RELUSCOPE_NCOUT_H
#define RELUSCOPE_NCOUT_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "record.h"

/* What the dataset holds: the sweep's grid and the attributes to store.
 * Strings are the caller's (copied by ncout_open); NULL reads as "". */
typedef struct {
    int n_sizes;
    ModelSize sizes[MAX_RUN_SIZES];   /* the size coordinate, in this order */
    int n_seeds;
    uint64_t seeds[MAX_SEEDS];        /* the seed coordinate, in this order */
    int topk;                         /* singular values per layer (0: no sv) */
    long steps;                       /* planned steps (chunk sizes, attribute) */
    long eval_every, snapshot_every;  /* 0: none (no snapshot groups) */
    const char *config_text;          /* the full effective config */
    const char *version, *git_commit; /* of the program */
    const char *mpi_layout;           /* ranks and groups of the job */
    const char *command_line, *start_time;
} NcoutMeta;

typedef struct Ncout Ncout;

/* The grid, topk, steps and cadences from a validated config; the string
 * fields are set to NULL for the caller to fill. */
void ncout_meta_from_config(NcoutMeta *m, const Config *c);

/* Create PATH (schema written to PATH.tmp.<pid>, then renamed into place),
 * or resume it: it must hold a dataset of the same config (config_text_diff
 * of config.h: the keys that change results, sizes and seeds), else it is
 * refused unless `overwrite`, which replaces it.
 * Every variable of PATH is read through first (a damaged chunk is refused,
 * naming the variable). The records a killed writer left in the journal
 * are applied first (a damaged record with valid ones after it is refused,
 * the journal kept: see ncout_repair). A second writer of the same PATH is
 * refused (flock on PATH.lock).
 * Returns NULL + err on failure. */
Ncout *ncout_open(const char *path, const NcoutMeta *meta, int overwrite,
                  char *err, size_t errlen);

/* Buffer one record (no I/O). Refuses records that do not fit the grid:
 * unknown run, L or F unlike the run's size, negative step, ... */
int ncout_write_step(Ncout *o, const StepRecord *r, char *err, size_t errlen);
int ncout_write_eval(Ncout *o, const EvalRecord *r, char *err, size_t errlen);
int ncout_write_snapshot(Ncout *o, const SnapshotRecord *r, char *err, size_t errlen);
/* The same for a record already encoded (record_encode; p 8-byte aligned),
 * as run leaders ship them to job rank 0. */
int ncout_write_encoded(Ncout *o, RecKind kind, const unsigned char *p, size_t n, char *err,
                        size_t errlen);

/* Every buffered record into the journal: it survives a kill of this
 * process from now on, and reaches PATH at the next update (see above).
 * Also happens by itself when the buffer grows past NCOUT_AUTOFLUSH_BYTES. */
#define NCOUT_AUTOFLUSH_BYTES (64u << 20)
int ncout_flush(Ncout *o, char *err, size_t errlen);

/* Flush, fsync the journal and update PATH now: the records also survive a
 * crash of the node, and PATH shows them. Call before writing a checkpoint
 * (a checkpoint must never be ahead of the durable dataset). */
int ncout_sync(Ncout *o, char *err, size_t errlen);

/* The share of wall time PATH updates may take (1 = update at every flush). */
#define NCOUT_DEFAULT_BUDGET 0.0025
void ncout_set_budget(Ncout *o, double fraction);

/* Update PATH a last time, cleanly closed; remove the journal, the working
 * copy and the lock; frees o (also on failure, when the journal is kept
 * for the next open to catch up). */
int ncout_close(Ncout *o, char *err, size_t errlen);

/* Bring a PATH left by a killed writer up to date from its journal and
 * republish it cleanly closed. *repaired = 1 if there was a journal. A
 * damaged record in the journal's middle is skipped with a warning (the
 * valid records after it are applied); crafted records (outside the grid,
 * sequence numbers going backwards) are refused. */
int ncout_repair(const char *path, int *repaired, char *err, size_t errlen);

/* The first step in [from, upto) whose record PATH lacks for run (loss at
 * its fill value; upto when PATH holds them all). For a resume: a checkpoint
 * at step k needs every step of the run before k in the dataset (from the
 * fork's first step for a fork). 0, or -1 + err. */
int ncout_first_missing_step(Ncout *o, int run, int64_t from, int64_t upto, int64_t *missing,
                             char *err, size_t errlen);

/* Combine datasets of the same sweep that hold disjoint runs (Slurm array
 * tasks) into OUT: all sizes (in order of first appearance) x all seeds
 * (likewise), snapshot groups included; written to OUT.tmp.<pid> and
 * renamed into place. Refuses: inputs left by a killed writer (journal
 * present), configs that differ in more than sizes/seeds, different
 * quantile levels or cadences, a size name with two shapes, a run present
 * in two inputs, an existing OUT unless `force`. */
int ncout_merge(int n_inputs, char *const *inputs, const char *out, int force,
                const char *command_line, char *err, size_t errlen);

/* The snapshot group of a run: "run_<size>_seed<seed>" (characters other
 * than letters, digits, '_', '-', '.' in the size name become '_'). */
void ncout_group_name(const char *size_name, uint64_t seed, char *out, size_t outlen);

#endif
