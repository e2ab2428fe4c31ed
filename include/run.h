/* run.h — train one run (one size × one seed) data-parallel over a group. */
#ifndef RELUSCOPE_RUN_H
#define RELUSCOPE_RUN_H
#include <signal.h>
#include "comm.h"
#include "config.h"
#include "resume.h"

/* Set by the SIGUSR1/SIGTERM handler: finish the step, checkpoint, exit. */
extern volatile sig_atomic_t g_stop_requested;

enum { RUN_FINISHED = 0, RUN_STOPPED = 1 };

/* Trains run `run` of the sweep from its newest valid checkpoint of its own
 * (resume.h; cp: the corpus fingerprints) or from scratch. Returns RUN_FINISHED, or RUN_STOPPED after a stop request
 * (checkpoint written). Fatal problems die() with a one-line message. */
int train_run(const Config *c, int run, const CorpusPrints *cp, Comm *comm);

#endif
