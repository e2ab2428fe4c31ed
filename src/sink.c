/* sink.c — records to the dataset on job rank 0, and the progress log.
 * Run leaders call sink_*; on rank 0 the records go straight to ncout, on
 * other ranks they are shipped to rank 0 (comm.h), which handles them in
 * sink_poll between its own steps. See sink.h for why rank 0 also trains. */
#include "sink.h"
#include <stdlib.h>
#include <string.h>
#include "comm.h"
#include "dataset.h"
#include "util.h"

static struct {
    const Config *c;
    int is_writer;
    int steps_since_flush;
    int groups_done;
    double *time_sum;        /* [runs] seconds of the steps seen (ETA) */
    int64_t *steps_seen;     /* [runs] */
} S;

void sink_open(const Config *c, const SweepPlan *plan, const SinkMeta *meta) {
    memset(&S, 0, sizeof S);
    S.c = c;
    S.is_writer = comm_world_rank() == 0;
    if (!S.is_writer) return;
    S.time_sum = xcalloc((size_t)plan->n_runs, sizeof *S.time_sum);
    S.steps_seen = xcalloc((size_t)plan->n_runs, sizeof *S.steps_seen);
    dataset_open(c, meta->command_line, meta->start_time, meta->layout);
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

static void handle_step(const StepRecord *r) {
    dataset_write_step(r);
    log_step(r);
    if (S.c->flush_every > 0 && ++S.steps_since_flush >= S.c->flush_every) {
        dataset_flush();
        S.steps_since_flush = 0;
    }
}

void sink_step(const StepRecord *r) {
    if (S.is_writer) handle_step(r);
    else comm_send_to_writer(TAG_STEP, r, sizeof *r);
}

void sink_eval(const EvalRecord *r) {
    if (S.is_writer) { dataset_write_eval(r); return; }
    size_t bytes;
    void *buf = pack_eval(r, &bytes);
    comm_send_to_writer(TAG_EVAL, buf, bytes);
    free(buf);
}

void sink_snapshot(const SnapshotRecord *r) {
    if (S.is_writer) { dataset_write_snapshot(r); return; }
    size_t bytes;
    void *buf = pack_snapshot(r, &bytes);
    comm_send_to_writer(TAG_SNAPSHOT, buf, bytes);
    free(buf);
}

void sink_make_durable(int run, int64_t step) {
    if (S.is_writer) { sink_poll(); dataset_sync(); S.steps_since_flush = 0; return; }
    int64_t msg[2] = {run, step}, acked;
    comm_send_to_writer(TAG_FLUSH_REQ, msg, sizeof msg);
    comm_wait_flush_ack(&acked);
}

static void handle_message(int tag, int source, void *buf) {
    if (tag == TAG_STEP) {
        handle_step((const StepRecord *)buf);
    } else if (tag == TAG_EVAL) {
        EvalRecord r;
        unpack_eval(&r, buf);
        dataset_write_eval(&r);
    } else if (tag == TAG_SNAPSHOT) {
        SnapshotRecord r;
        unpack_snapshot(&r, buf);
        dataset_write_snapshot(&r);
    } else if (tag == TAG_FLUSH_REQ) {
        /* MPI keeps messages from one sender in order: its records are in */
        dataset_sync();
        S.steps_since_flush = 0;
        comm_send_flush_ack(source, ((const int64_t *)buf)[1]);
    } else if (tag == TAG_RUN_DONE) {
        S.groups_done++;
    }
}

void sink_poll(void) {
    if (!S.is_writer) return;
    int tag, source;
    void *buf;
    size_t bytes;
    while (comm_recv_at_writer(0, &tag, &source, &buf, &bytes)) {
        handle_message(tag, source, buf);
        free(buf);
    }
}

void sink_group_done(int group) {
    if (S.is_writer) return;
    int g = group;
    comm_send_to_writer(TAG_RUN_DONE, &g, sizeof g);
}

void sink_close(int n_groups) {
    if (!S.is_writer) { comm_drain_sends(); return; }
    int tag, source;
    void *buf;
    size_t bytes;
    while (S.groups_done < n_groups - 1 && comm_recv_at_writer(1, &tag, &source, &buf, &bytes)) {
        handle_message(tag, source, buf);
        free(buf);
    }
    sink_poll();
    dataset_close();
    free(S.time_sum);
    free(S.steps_seen);
}
