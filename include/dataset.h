/* dataset.h — the trainer's view of the job's NetCDF dataset (job rank 0
 * only): OUT_DIR/dataset.nc through ncout.h. Errors die() with one line. */
#ifndef RELUSCOPE_DATASET_H
#define RELUSCOPE_DATASET_H
#include "config.h"
#include "record.h"

void dataset_open(const Config *c, const char *command_line, const char *start_time,
                  const char *layout);
void dataset_write_step(const StepRecord *r);
void dataset_write_eval(const EvalRecord *r);
void dataset_write_snapshot(const SnapshotRecord *r);
void dataset_flush(void);   /* records survive a killed process (journal) */
void dataset_sync(void);    /* ... and a crashed node (fsync): before checkpoints */
void dataset_close(void);
/* The first step in [from, upto) that run lacks in the dataset (upto: none). */
int64_t dataset_first_missing_step(int run, int64_t from, int64_t upto);

#endif
