/* sink.c — records to the dataset on job rank 0, and the progress log.
 * Run leaders call sink_*; on rank 0 the records go straight to ncout, on
 * other ranks they are encoded (record_encode, the journal's own format)
 * and shipped to rank 0 (comm.h), which hands the bytes to ncout in
 * sink_poll between its own steps. See sink.h for why rank 0 also trains. */
#include "sink.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "comm.h"
#include "ncout.h"
#include "util.h"

const char *reluscope_version(void);   /* main.c */

/* Message tags to job rank 0: a record (TAG_RECORD + its RecKind), a flush
 * request (i64 run, step) and a group's end (int group); from rank 0, the
 * flush acknowledgement (i64 step). */
enum { TAG_RECORD = 10, TAG_FLUSH_REQ = 14, TAG_FLUSH_ACK = 15, TAG_RUN_DONE = 16 };
_Static_assert(TAG_RECORD + REC_SNAPSHOT < TAG_FLUSH_REQ, "record tags overlap the others");

static struct {
    const Config *c;
    Ncout *out;
    int is_writer;
    int steps_since_flush;
    int groups_done;
    double *time_sum;        /* [runs] seconds of the steps seen (ETA) */
    int64_t *steps_seen;     /* [runs] */
    Bytes msg;               /* an encoded record on its way */
} S;

/* ncout's int-returning calls: a failure ends the job with its one line. */
static void check(int rc, const char *err) {
    if (rc != 0) die("%s", err);
}

void sink_open(const Config *c, const SweepPlan *plan, const SinkMeta *meta) {
    memset(&S, 0, sizeof S);
    S.c = c;
    S.is_writer = comm_world_rank() == 0;
    if (!S.is_writer) return;
    S.time_sum = xcalloc((size_t)plan->n_runs, sizeof *S.time_sum);
    S.steps_seen = xcalloc((size_t)plan->n_runs, sizeof *S.steps_seen);
    NcoutMeta m;
    char err[1024], path[RS_PATH_MAX + 16];
    ncout_meta_from_config(&m, c);
    char *text = config_to_string(c);
    m.config_text = text;
    m.version = reluscope_version();
#ifdef RELUSCOPE_GIT
    m.git_commit = RELUSCOPE_GIT;
#else
    m.git_commit = "unknown";
#endif
    m.mpi_layout = meta->layout;
    m.command_line = meta->command_line;
    m.start_time = meta->start_time;
    snprintf(path, sizeof path, "%s/dataset.nc", c->out_dir);
    S.out = ncout_open(path, &m, c->overwrite, err, sizeof err);
    free(text);
    if (!S.out) die("%s", err);
}

/* Rank 0's progress line: step, loss, tokens/s, per-layer usage, ETA. */
static void log_step(const StepRecord *r) {
    const Config *c = S.c;
    S.time_sum[r->run] += r->step_time;
    S.steps_seen[r->run]++;
    if (c->log_every <= 0 || (r->step % c->log_every != 0 && r->step + 1 != c->steps)) return;
    char name[96];
    run_name(c, r->run, name, sizeof name);
    int si, ki;
    run_size_seed(c, r->run, &si, &ki);
    double tokens = (double)c->batch_size * c->sizes[si].T;
    double avg = S.time_sum[r->run] / (double)S.steps_seen[r->run];
    double eta = avg * (double)(c->steps - r->step - 1);
    printf("[%s] step %lld/%ld loss %.4f lr %.2e tok/s %.0f | batch_use", name,
           (long long)r->step, c->steps, r->loss, r->lr, tokens / r->step_time);
    for (int l = 0; l < r->L; l++) printf(" %.2f", r->layers[l].batch_use);
    printf(" | token_use");
    for (int l = 0; l < r->L; l++) printf(" %.3f", r->layers[l].token_use_mean);
    printf(" | ETA %.0fs\n", eta);
    fflush(stdout);
}

static void sync_now(void) {
    char err[1024];
    check(ncout_sync(S.out, err, sizeof err), err);
    S.steps_since_flush = 0;
}

static void handle_step(const StepRecord *r) {
    char err[1024];
    check(ncout_write_step(S.out, r, err, sizeof err), err);
    log_step(r);
    if (S.c->flush_every > 0 && ++S.steps_since_flush >= S.c->flush_every) {
        check(ncout_flush(S.out, err, sizeof err), err);
        S.steps_since_flush = 0;
    }
}

/* A leader's record: written here on rank 0, else encoded and shipped. */
static void ship(RecKind kind, const void *rec) {
    S.msg.len = 0;
    record_encode(kind, rec, &S.msg);
    comm_send_async(0, TAG_RECORD + (int)kind, S.msg.p, S.msg.len);
}

void sink_step(const StepRecord *r) {
    if (S.is_writer) handle_step(r);
    else ship(REC_STEP, r);
}

void sink_eval(const EvalRecord *r) {
    char err[1024];
    if (S.is_writer) check(ncout_write_eval(S.out, r, err, sizeof err), err);
    else ship(REC_EVAL, r);
}

void sink_snapshot(const SnapshotRecord *r) {
    char err[1024];
    if (S.is_writer) check(ncout_write_snapshot(S.out, r, err, sizeof err), err);
    else ship(REC_SNAPSHOT, r);
}

int64_t sink_first_missing_step(int run, int64_t from, int64_t upto) {
    char err[1024];
    int64_t missing;
    check(ncout_first_missing_step(S.out, run, from, upto, &missing, err, sizeof err), err);
    return missing;
}

void sink_make_durable(int run, int64_t step) {
    if (S.is_writer) { sink_poll(); sync_now(); return; }
    int64_t msg[2] = {run, step}, acked;
    comm_send_async(0, TAG_FLUSH_REQ, msg, sizeof msg);
    comm_recv_from(0, TAG_FLUSH_ACK, &acked, sizeof acked);
}

static void handle_message(int tag, int source, const unsigned char *buf, size_t bytes) {
    char err[1024];
    if (tag == TAG_RECORD + REC_STEP) {
        static StepRecord r;       /* big: not on the stack */
        if (record_decode(REC_STEP, buf, bytes, &r) != 0)
            die("a malformed step record (%zu bytes) from rank %d", bytes, source);
        handle_step(&r);
    } else if (tag == TAG_RECORD + REC_EVAL || tag == TAG_RECORD + REC_SNAPSHOT) {
        check(ncout_write_encoded(S.out, (RecKind)(tag - TAG_RECORD), buf, bytes, err,
                                  sizeof err), err);
    } else if (tag == TAG_FLUSH_REQ && bytes == 2 * sizeof(int64_t)) {
        /* MPI keeps messages from one sender in order: its records are in */
        sync_now();
        int64_t step;
        memcpy(&step, buf + sizeof(int64_t), sizeof step);
        comm_send(source, TAG_FLUSH_ACK, &step, sizeof step);
    } else if (tag == TAG_RUN_DONE) {
        S.groups_done++;
    } else {
        die("an unexpected message (tag %d, %zu bytes) from rank %d", tag, bytes, source);
    }
}

void sink_poll(void) {
    if (!S.is_writer) return;
    int tag, source;
    void *buf;
    size_t bytes;
    while (comm_recv_any(0, &tag, &source, &buf, &bytes)) {
        handle_message(tag, source, buf, bytes);
        free(buf);
    }
}

void sink_group_done(int group) {
    if (S.is_writer) return;
    int g = group;
    comm_send_async(0, TAG_RUN_DONE, &g, sizeof g);
}

void sink_close(int n_groups) {
    if (!S.is_writer) { comm_drain_sends(); bytes_free(&S.msg); return; }
    int tag, source;
    void *buf;
    size_t bytes;
    while (S.groups_done < n_groups - 1 && comm_recv_any(1, &tag, &source, &buf, &bytes)) {
        handle_message(tag, source, buf, bytes);
        free(buf);
    }
    sink_poll();
    sink_close_now();
}

void sink_close_now(void) {
    if (!S.is_writer || !S.out) return;
    char err[1024];
    Ncout *o = S.out;
    S.out = NULL;
    free(S.time_sum);
    free(S.steps_seen);
    check(ncout_close(o, err, sizeof err), err);
}
