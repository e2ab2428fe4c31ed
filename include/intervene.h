/* intervene.h — experiments that intervene in training, to test what makes
 * units die (docs/interventions.md):
 *
 *   forks       `fork_from = FILE` starts every run of the sweep that has no
 *               checkpoint of its own from FILE (parameters, AdamW m and v,
 *               step, tokens seen, death trackers); `data_seed` keys the
 *               batch sampler (-1: the run's own seed, which is what every
 *               run did before the key existed, bit for bit).
 *   resampling  `resample_dead = N`: after every N-th update, units off for
 *               at least dead_window steps get a fresh fc column, b_in entry
 *               and proj row, and zero AdamW moments (SAELens's method).
 *   planted     `debug_kill_step = s` (test-only): a gradient spike on the
 *   death       b_in of the first DEBUG_KILL_UNITS units of layer 0 that
 *               fire at step s, then b_in = DEBUG_KILL_BIAS after the update:
 *               a known death at a known outlier step, for the attribution
 *               test of analysis/interventions.py.
 *
 * Everything here is a pure function of (config, run seed, step, state):
 * every replica computes the same thing, so results do not depend on the
 * rank count. No MPI. */
#ifndef RELUSCOPE_INTERVENE_H
#define RELUSCOPE_INTERVENE_H
#include <stdint.h>
#include "checkpoint.h"
#include "config.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "record.h"

/* Exit status for a bad intervention setup (EX_USAGE). */
#define EXIT_USAGE 64

#define DEBUG_KILL_UNITS 4
#define DEBUG_KILL_SPIKE 1000.0f   /* added to each planted unit's b_in gradient */
#define DEBUG_KILL_BIAS (-1.0e4f)  /* b_in after the update: never fires again */

/* The checks of the intervention keys against each other and against the
 * fork's checkpoint (readable, verified, the shape of every size of the
 * sweep, a step before `steps`), made before anything is written. 0 ok;
 * -1 + one line naming the key and the problem in err. */
int intervene_check(const Config *c, char *err, size_t errlen);

/* The seed of the run's batch order: data_seed, or the run's seed if -1. */
uint64_t data_seed_of(const Config *c, uint64_t run_seed);

/* Loads c->fork_from into a run that has no checkpoint of its own. The run
 * keeps its own seed (rs->seed), so its own checkpoints are named and
 * checked as its own. Dies with one line if the file cannot be loaded. */
void fork_start(const Config *c, const ModelSize *ms, Model *m, Optimizer *o,
                RunState *rs, uint64_t run_seed);

/* 1 if resampling runs after the update of `step` ((step+1) % N == 0). */
int resample_due(const Config *c, int64_t step);

/* After the update of `step`: every unit off at `step` (step - last_fire >=
 * W) is re-initialized, in layer then unit order, from the run's RNG stream
 * (rs->rng_state, which checkpoints carry): fc column N(0, 0.02), b_in 0,
 * proj row N(0, 0.02/sqrt(2L)) (the init of SPEC §2), AdamW m and v of
 * those entries 0; its tracker starts afresh (last_fire = born = step).
 * rec->layers[l].resampled gets the counts. */
void resample_dead_units(const Config *c, Model *m, Optimizer *o, RunState *rs, int64_t step,
                         StepRecord *rec);

/* Test-only planted death (debug_kill_step). The units are picked from the
 * step's summed fire counts of layer 0 (the usage buffer), so every replica
 * picks the same ones. spike: after the gradient reduction, before the
 * norm; bias: after the update. */
void debug_kill_spike(const Config *c, Model *m, const int64_t *usage, int64_t step);
void debug_kill_bias(const Config *c, Model *m, const int64_t *usage, int64_t step);

#endif
