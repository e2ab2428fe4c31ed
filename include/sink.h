/* sink.h — where a run's records go. Job rank 0 owns the dataset
 * (OUT_DIR/dataset.nc through ncout.h) and the progress log; other run
 * leaders ship their records to it while they train, encoded as the
 * journal encodes them (record_encode), as tagged messages (comm.h; the
 * tags are sink.c's). Rank 0 also trains: on a small allocation a
 * dedicated writer rank would idle most of the time (writing is < 1% of a
 * step), so it polls for records between its own steps instead. Every
 * failure to write is a one-line fatal error (the checkpoints stay intact:
 * a checkpoint is never ahead of the durable dataset). */
#ifndef RELUSCOPE_SINK_H
#define RELUSCOPE_SINK_H
#include "config.h"
#include "record.h"
#include "sweep.h"

typedef struct {
    const char *command_line;
    const char *start_time;
    const char *layout;        /* "ranks per run" description */
} SinkMeta;

/* On job rank 0: open (or resume) the dataset; elsewhere nothing. */
void sink_open(const Config *c, const SweepPlan *plan, const SinkMeta *meta);
/* Called by a run's leader (group rank 0) for each record. */
void sink_step(const StepRecord *r);
void sink_eval(const EvalRecord *r);
void sink_snapshot(const SnapshotRecord *r);
/* Before a checkpoint at `step`: every record of the run so far is durable. */
void sink_make_durable(int run, int64_t step);
/* Rank 0: the first step in [from, upto) that run lacks in the dataset
 * (upto: none), for the resume check (resume.c). */
int64_t sink_first_missing_step(int run, int64_t from, int64_t upto);
/* Rank 0: handle records that arrived from other runs (non-blocking). */
void sink_poll(void);
/* A group has finished its queue (or stopped): its leader tells rank 0. */
void sink_group_done(int group);
/* Rank 0: wait until every other group is done, flush, close. */
void sink_close(int n_groups);
/* Rank 0, when the job ends before training (a refused resume): close the
 * dataset without waiting for the groups; elsewhere nothing. */
void sink_close_now(void);

#endif
