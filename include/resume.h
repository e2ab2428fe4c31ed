/* resume.h — which checkpoint each run of a sweep may continue from.
 *
 * A run resumes only from a checkpoint of its own: same seed, same config
 * fingerprint (the keys that change results, and the size) and the same
 * corpora (checkpoint.h, RunIdentity). Before any run starts, job rank 0,
 * with the dataset open, checks every run's checkpoint folder:
 *   - a checkpoint of another run (seed, config, size or corpus) is refused
 *     by name, or with overwrite = 1 moved aside into a "replaced-<time>"
 *     folder next to it (and said so);
 *   - the newest own checkpoint, at step k, needs the dataset to hold every
 *     step 0..k-1 of the run; otherwise it is refused (the dataset was
 *     replaced or lost), or with overwrite = 1 the run's checkpoints are
 *     moved aside and the run retrains from step 0;
 *   - a checkpoint that cannot be read (permissions) is refused as such;
 *     damaged ones are reported and skipped, as before;
 *   - temporaries of dead processes (ckpt_*.bin.tmp.PID) are removed.
 * Every rank then finds the same checkpoint (train_run). */
#ifndef RELUSCOPE_RESUME_H
#define RELUSCOPE_RESUME_H
#include <stdint.h>
#include "checkpoint.h"
#include "config.h"

typedef struct {
    uint64_t train, val;     /* TokenSet fingerprints (val 0: no held-out set) */
} CorpusPrints;

/* What run `run` of c expects of its checkpoints. */
void run_expect(const Config *c, int run, const CorpusPrints *cp, RunExpect *want);
/* OUT_DIR/checkpoints/<run name> into dir. */
void run_checkpoint_dir(const Config *c, int run, char *dir, size_t n);

/* Job rank 0, dataset open: the checks above for every run. 0, or -1 after
 * printing one error line. */
int resume_check_all(const Config *c, const CorpusPrints *cp);

#endif
