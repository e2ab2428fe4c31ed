/* dataset.c — the trainer's use of ncout: OUT_DIR/dataset.nc on job rank 0,
 * with every failure a one-line fatal error (the checkpoints stay intact). */
#include "dataset.h"
#include <stdio.h>
#include <stdlib.h>
#include "ncout.h"
#include "util.h"

const char *reluscope_version(void);   /* main.c */

static Ncout *out = NULL;
static char path[RS_PATH_MAX + 16];

void dataset_open(const Config *c, const char *command_line, const char *start_time,
                  const char *layout) {
    char err[1024];
    NcoutMeta meta;
    ncout_meta_from_config(&meta, c);
    char *text = config_to_string(c);
    meta.config_text = text;
    meta.version = reluscope_version();
#ifdef RELUSCOPE_GIT
    meta.git_commit = RELUSCOPE_GIT;
#else
    meta.git_commit = "unknown";
#endif
    meta.mpi_layout = layout;
    meta.command_line = command_line;
    meta.start_time = start_time;
    snprintf(path, sizeof path, "%s/dataset.nc", c->out_dir);
    out = ncout_open(path, &meta, c->overwrite, err, sizeof err);
    free(text);
    if (!out) die("%s", err);
}

static void check(int rc, const char *err) {
    if (rc != 0) die("%s", err);
}

void dataset_write_step(const StepRecord *r) {
    char err[1024];
    check(ncout_write_step(out, r, err, sizeof err), err);
}

void dataset_write_eval(const EvalRecord *r) {
    char err[1024];
    check(ncout_write_eval(out, r, err, sizeof err), err);
}

void dataset_write_snapshot(const SnapshotRecord *r) {
    char err[1024];
    check(ncout_write_snapshot(out, r, err, sizeof err), err);
}

void dataset_flush(void) {
    char err[1024];
    check(ncout_flush(out, err, sizeof err), err);
}

void dataset_sync(void) {
    char err[1024];
    check(ncout_sync(out, err, sizeof err), err);
}

int64_t dataset_first_missing_step(int run, int64_t from, int64_t upto) {
    char err[1024];
    int64_t missing;
    check(ncout_first_missing_step(out, run, from, upto, &missing, err, sizeof err), err);
    return missing;
}

void dataset_close(void) {
    char err[1024];
    if (!out) return;
    int rc = ncout_close(out, err, sizeof err);
    out = NULL;
    check(rc, err);
}
