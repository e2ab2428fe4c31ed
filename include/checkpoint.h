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

typedef struct {
    int64_t step;            /* next step to run */
    int64_t tokens_seen;
    uint64_t seed;
    uint64_t rng_state[4];   /* the run's RNG (xoshiro256** words): whatever draws
                              * random numbers during training draws from it */
    DeathTracker *trackers;  /* [L] */
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

/* Verify and load. The file's size must equal ms (else a clear error). */
int checkpoint_load(const char *path, const ModelSize *ms, Model *m, Optimizer *opt,
                    RunState *rs, char *err, size_t errlen);

/* Read only the header's size and seed (for `eval`, which builds the model). */
int checkpoint_peek(const char *path, ModelSize *ms, uint64_t *seed, int64_t *step,
                    char *err, size_t errlen);

/* Newest checkpoint in dir that passes verification; damaged ones are named
 * on stderr and skipped. Returns 1 found (path filled), 0 none. */
int checkpoint_find_latest(const char *dir, char *path, size_t pathlen);

#endif
