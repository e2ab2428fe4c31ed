/* checkpoint.h — atomic, checksummed checkpoints (byte layout: docs/checkpoint.md).
 * A checkpoint holds one run: its size, seed, the config text, step,
 * tokens seen, every parameter tensor, optimizer state, the death trackers
 * and snapshot accumulators, and a CRC-32 of everything before it. */
#ifndef RELUSCOPE_CHECKPOINT_H
#define RELUSCOPE_CHECKPOINT_H
#include <stdint.h>
#include "config.h"
#include "model.h"
#include "optim.h"
#include "metrics.h"

/* What makes a checkpoint one run's own (docs/checkpoint.md, "Identity"):
 * a resume uses only a checkpoint whose seed, config fingerprint and corpus
 * fingerprints equal the run's. */
typedef struct {
    uint64_t config;         /* config_fingerprint(config, size) */
    uint64_t train_corpus;   /* tokenset fingerprint of train_data */
    uint64_t val_corpus;     /* of val_data (0: no held-out set) */
    int64_t steps;           /* the run's planned steps: a checkpoint's step is at most this */
} RunIdentity;

typedef struct {
    int64_t step;            /* next step to run */
    int64_t tokens_seen;
    uint64_t seed;
    uint64_t rng_state[4];   /* the run's RNG (xoshiro256** words): whatever draws
                              * random numbers during training draws from it */
    DeathTracker *trackers;  /* [L] */
    RunIdentity id;          /* the run's: written by a save, kept by a load */
} RunState;

/* The run's RNG stream: rng_seed(seed, RUN_RNG_STREAM) at step 0. */
#define RUN_RNG_STREAM 0x52554Eull   /* "RUN" */

/* A new run's state at step 0: its seed and its RNG seeded from it. */
void run_state_init(RunState *rs, uint64_t seed);

/* Write "<dir>/ckpt_<step:08>.bin" atomically; keeps the newest `keep` files
 * and removes older ones. 0 ok, -1 + err (nothing damaged left behind). */
int checkpoint_save(const char *dir, const ModelSize *ms, const char *config_text,
                    const Model *m, const Optimizer *opt, const RunState *rs,
                    int keep, char *err, size_t errlen);

/* What a resume expects of its checkpoint; NULL to accept any run's
 * (`eval`). tokens_per_step = B*T: tokens seen must be step times it. */
typedef struct {
    uint64_t seed;
    RunIdentity id;
    int64_t tokens_per_step;
    const char *config_text;   /* the run's printed config, or NULL: names the
                                  differing key when the fingerprints differ */
} RunExpect;

/* Verify and load. The file's size must equal ms (else a clear error); with
 * want, the file must also be that run's (seed, fingerprints) and its
 * counters must agree with the run (step <= steps, tokens = step*B*T).
 * Returns 0, -1 (damaged or refused), or CKPT_FOREIGN (another run's). */
#define CKPT_FOREIGN (-2)
int checkpoint_load(const char *path, const ModelSize *ms, const RunExpect *want, Model *m,
                    Optimizer *opt, RunState *rs, char *err, size_t errlen);

/* Read only the header's size and seed (for `eval`, which builds the model). */
int checkpoint_peek(const char *path, ModelSize *ms, uint64_t *seed, int64_t *step,
                    char *err, size_t errlen);

/* The config text a verified checkpoint was written with (malloc'd, NUL
 * terminated; a fork compares it with its own), or NULL + "PATH: problem". */
char *checkpoint_config_text(const char *path, char *err, size_t errlen);

/* Newest checkpoint in dir that passes verification; damaged ones are named
 * on stderr and skipped. Returns 1 found (path filled), 0 none. */
int checkpoint_find_latest(const char *dir, char *path, size_t pathlen);

/* Every checkpoint of dir, newest first, each verified and, with want,
 * compared with the run: CKPT_OK, CKPT_DAMAGED (fails a check: why says
 * which), CKPT_OTHER_RUN (valid, but of another seed, config, size or
 * corpus: why names it) or CKPT_UNREADABLE (cannot be opened: permissions).
 * Returns the count (files malloc'd), or -1 with errno when dir cannot be
 * listed (ENOENT: no folder, nothing to resume). */
typedef enum { CKPT_OK = 0, CKPT_DAMAGED = 1, CKPT_OTHER_RUN = 2, CKPT_UNREADABLE = 3 } CkptVerdict;
typedef struct {
    char path[RS_PATH_MAX];
    int64_t step;
    CkptVerdict verdict;
    char why[512];
} CkptFile;
int checkpoint_scan(const char *dir, const ModelSize *ms, const RunExpect *want, CkptFile **files);

/* Leftover "ckpt_*.bin.tmp.PID" of dead processes in dir: removed (a live
 * PID's temporary is kept). Returns how many were removed. */
int checkpoint_remove_stale_temps(const char *dir);

#endif
