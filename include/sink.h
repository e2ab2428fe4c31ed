/* sink.h — where a run's records go. Job rank 0 owns the dataset (ncout.h)
 * and the progress log; other run leaders ship their records to it through
 * comm.h while they train. Rank 0 also trains: on a small allocation a
 * dedicated writer rank would idle most of the time (writing is < 1% of a
 * step), so it polls for records between its own steps instead. */
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
/* Rank 0: handle records that arrived from other runs (non-blocking). */
void sink_poll(void);
/* A group has finished its queue (or stopped): its leader tells rank 0. */
void sink_group_done(int group);
/* Rank 0: wait until every other group is done, flush, close. */
void sink_close(int n_groups);

/* Pack/unpack for messages (record.c). Returned buffers are malloc'd. */
void *pack_eval(const EvalRecord *r, size_t *bytes);
void  unpack_eval(EvalRecord *r, void *buf);          /* points into buf */
void *pack_snapshot(const SnapshotRecord *r, size_t *bytes);
void  unpack_snapshot(SnapshotRecord *r, void *buf);  /* points into buf */

#endif
