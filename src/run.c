/* run.c — one run's training loop: batch, forward with counting, backward,
 * reductions, metrics, update; evaluation, snapshots, checkpoints. */
#include "run.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "data.h"
#include "eval.h"
#include "intervene.h"
#include "model.h"
#include "optim.h"
#include "resume.h"
#include "sink.h"
#include "sweep.h"
#include "util.h"

volatile sig_atomic_t g_stop_requested = 0;

typedef struct {
    const Config *c;
    Comm *comm;
    int run, B_local, first_seq;
    ModelSize size;
    uint64_t seed;
    char ckpt_dir[RS_PATH_MAX + 128], name[96];
    TokenSet train;
    Sampler sampler;
    Model model;
    Optimizer opt;
    RunState state;
    RunExpect want;                /* what its checkpoints must be (resume.h) */
    Heldout heldout;               /* eval.h: this rank's held-out slice */
    uint16_t *tokens;              /* [B_local][T+1] */
    int64_t *usage;                /* L * usage_stride(F) */
    float *premax; double *presum; /* [L][F] on snapshot steps */
    double *seq_loss, *seq_loss_all;
    int *seq_counts;               /* sequences per rank */
} Run;

static void open_run(Run *r, const Config *c, int run, const CorpusPrints *cp, Comm *comm) {
    int si, ki;
    char err[1024];
    memset(r, 0, sizeof *r);
    r->c = c; r->comm = comm; r->run = run;
    run_size_seed(c, run, &si, &ki);
    r->size = c->sizes[si];
    r->seed = c->seeds[ki];
    run_name(c, run, r->name, sizeof r->name);
    run_checkpoint_dir(c, run, r->ckpt_dir, sizeof r->ckpt_dir);
    run_expect(c, run, cp, &r->want);
    r->B_local = c->batch_size / comm->size;
    r->first_seq = comm->rank * r->B_local;
    if (tokenset_open(&r->train, c->train_data, r->size.V, err, sizeof err) != 0)
        die("%s", err);
    if (build_sampler(&r->sampler, &r->train, r->size.T, c->batch_size, c->sampler,
                      data_seed_of(c, r->seed), err, sizeof err) != 0)
        die("%s", err);
    build_model(&r->model, &r->size, r->B_local);
    model_set_mlp_kernel(&r->model, (MlpKernel)c->mlp_kernel);
    build_optimizer(&r->opt, c->optimizer, r->model.num_params);
    int L = r->size.L, F = r->size.F, T = r->size.T;
    run_state_init(&r->state, r->seed);
    r->state.id = r->want.id;
    r->state.trackers = xcalloc((size_t)L, sizeof(DeathTracker));
    for (int l = 0; l < L; l++) build_death_tracker(&r->state.trackers[l], F, c->dead_window);
    r->tokens = xmalloc((size_t)r->B_local * (T + 1) * sizeof *r->tokens);
    r->usage = xmalloc((size_t)L * usage_stride(F) * sizeof *r->usage);
    r->premax = xmalloc((size_t)L * F * sizeof *r->premax);
    r->presum = xmalloc((size_t)L * F * sizeof *r->presum);
    r->seq_loss = xmalloc((size_t)r->B_local * sizeof *r->seq_loss);
    r->seq_loss_all = xmalloc((size_t)c->batch_size * sizeof *r->seq_loss_all);
    r->seq_counts = xmalloc((size_t)comm->size * sizeof *r->seq_counts);
    for (int k = 0; k < comm->size; k++) r->seq_counts[k] = r->B_local;
    build_heldout(&r->heldout, c, &r->size, comm);
}

static void close_run(Run *r) {
    for (int l = 0; l < r->size.L; l++) free_death_tracker(&r->state.trackers[l]);
    free(r->state.trackers);
    free_heldout(&r->heldout);
    free_model(&r->model);
    free_optimizer(&r->opt);
    free_sampler(&r->sampler);
    tokenset_close(&r->train);
    free(r->tokens); free(r->usage); free(r->premax); free(r->presum);
    free(r->seq_loss); free(r->seq_loss_all); free(r->seq_counts);
}

static uint32_t params_checksum(const Model *m) {
    return crc32_update(0, m->params_memory, m->num_params * sizeof(float));
}

static void check_replicas(Run *r, int64_t step) {
    if (!comm_all_equal_u32(r->comm, params_checksum(&r->model)))
        die("run %s: replicas diverged at step %lld (parameter checksums differ across ranks)",
            r->name, (long long)step);
}

/* Resume from the newest valid checkpoint of this run, or fork from
 * fork_from, or initialize from the seed. Job rank 0 has already refused or
 * moved aside checkpoints of other runs and reported damaged ones
 * (resume_check_all). */
static void start_run(Run *r) {
    char err[1024];
    CkptFile *f = NULL;
    int n = checkpoint_scan(r->ckpt_dir, &r->size, &r->want, &f), own = -1;
    for (int i = 0; i < n && own < 0; i++) {
        if (f[i].verdict == CKPT_OK) own = i;
        else if (f[i].verdict != CKPT_DAMAGED) die("%s: %s", f[i].path, f[i].why);
    }
    if (own >= 0) {
        if (checkpoint_load(f[own].path, &r->size, &r->want, &r->model, &r->opt, &r->state, err,
                            sizeof err) != 0)
            die("%s", err);
        if (r->comm->rank == 0)
            printf("[%s] resuming from %s (step %lld)\n", r->name, f[own].path,
                   (long long)r->state.step);
    } else if (r->c->fork_from[0] != '\0') {
        fork_start(r->c, &r->size, &r->model, &r->opt, &r->state, r->seed);
        if (r->comm->rank == 0)
            printf("[%s] forked from %s (step %lld), data seed %llu\n", r->name, r->c->fork_from,
                   (long long)r->state.step, (unsigned long long)data_seed_of(r->c, r->seed));
    } else {
        model_init_params(&r->model, r->seed);
        r->state.step = 0;
    }
    free(f);
    check_replicas(r, r->state.step);
}

/* Loss of the global batch, summed in sequence order: the same bits for any
 * rank count. */
static double global_loss(Run *r) {
    for (int b = 0; b < r->B_local; b++) r->seq_loss[b] = model_sequence_loss(&r->model, b);
    comm_allgatherv_f64(r->comm, r->seq_loss, r->B_local, r->seq_loss_all, r->seq_counts);
    double sum = 0.0;
    for (int b = 0; b < r->c->batch_size; b++) sum += r->seq_loss_all[b];
    return sum / ((double)r->c->batch_size * r->size.T);
}

static void summarize_step(Run *r, int64_t step, StepRecord *rec) {
    int F = r->size.F;
    int64_t tokens = (int64_t)r->c->batch_size * r->size.T;
    rec->L = r->size.L;
    for (int l = 0; l < r->size.L; l++) {
        UsageCounts u = usage_view(r->usage, l, F);
        usage_summarize(&u, F, &rec->layers[l]);
        death_tracker_step(&r->state.trackers[l], (long)step, u.fire_count, tokens,
                           &rec->layers[l]);
    }
}

/* The forward/backward half of a step on the global batch of `step`:
 * gradients and counts summed over the group, metrics into rec. */
static void step_compute(Run *r, int64_t step, int snapshot, StepRecord *rec) {
    const Config *c = r->c;
    int L = r->size.L, F = r->size.F;
    size_t n_usage = (size_t)L * usage_stride(F), n_pre = (size_t)L * F;
    double t0 = now_seconds();
    char err[1024];
    if (sampler_fill(&r->sampler, step, r->first_seq, r->B_local, r->tokens, err, sizeof err) != 0)
        die("run %s step %lld: %s", r->name, (long long)step, err);
    memset(r->usage, 0, n_usage * sizeof *r->usage);
    if (snapshot) {
        for (size_t i = 0; i < n_pre; i++) { r->premax[i] = -INFINITY; r->presum[i] = 0.0; }
    }
    model_forward(&r->model, r->tokens, r->B_local, r->usage,
                  snapshot ? r->premax : NULL, snapshot ? r->presum : NULL);
    model_zero_grad(&r->model);
    model_backward(&r->model, r->tokens, r->B_local,
                   1.0f / (float)((double)c->batch_size * r->size.T));
    comm_allreduce_sum_f32(r->comm, r->model.grads_memory, r->model.num_params);
    comm_allreduce_sum_i64(r->comm, r->usage, n_usage);
    if (snapshot) {
        comm_allreduce_max_f32(r->comm, r->premax, n_pre);
        comm_allreduce_sum_f64(r->comm, r->presum, n_pre);
    }
    double loss = global_loss(r);
    if (step == c->debug_nan_step) loss = NAN;   /* test-only fault injection */
    debug_kill_spike(c, &r->model, r->usage, step);   /* test-only planted death */
    double norm = grad_norm(r->model.grads_memory, r->model.num_params);
    if (!isfinite(loss) || !isfinite(norm))
        die("run %s: the loss or gradient is not finite at step %lld (loss %g, grad norm %g); "
            "stopped before the update, the last checkpoint is intact",
            r->name, (long long)step, loss, norm);
    summarize_step(r, step, rec);
    rec->run = r->run;
    rec->step = step;
    rec->loss = loss;
    rec->grad_norm = norm;
    rec->step_time = now_seconds() - t0;
}

/* The update half: clip, schedule, optimizer. */
static void step_update(Run *r, int64_t step, StepRecord *rec) {
    double t0 = now_seconds();
    double lr = lr_at(r->c, (long)step);
    optimizer_step(&r->opt, &r->model, r->c, lr, clip_factor(rec->grad_norm, r->c->grad_clip));
    r->state.tokens_seen += (int64_t)r->c->batch_size * r->size.T;
    r->state.step = step + 1;
    rec->lr = lr;
    rec->tokens_seen = r->state.tokens_seen;
    rec->step_time += now_seconds() - t0;
}

/* Per-unit evidence (SPEC §3), with the weights of this step's forward:
 * call between step_compute and step_update. */
static void emit_snapshot(Run *r, int64_t step) {
    int L = r->size.L, F = r->size.F, d = r->size.d;
    size_t n = (size_t)L * F;
    SnapshotRecord s = {.run = r->run, .step = step, .L = L, .F = F};
    s.fires_since = xmalloc(n * sizeof(int64_t));
    s.last_fire = xmalloc(n * sizeof(int64_t));
    float *f32 = xmalloc(5 * n * sizeof(float));
    s.premax = f32; s.premean = f32 + n; s.b_in = f32 + 2 * n;
    s.fc_norm = f32 + 3 * n; s.proj_norm = f32 + 4 * n;
    const ParamTensors *p = &r->model.params;
    DeathTracker *tr = r->state.trackers;
    s.tokens_since = tr[0].tokens_since_snap;
    for (int l = 0; l < L; l++)
        for (int f = 0; f < F; f++) {
            size_t i = (size_t)l * F + f;
            const float *col = p->fcw + (size_t)l * d * F + f, *row = p->fcprojw + i * d;
            double in2 = 0, out2 = 0;
            for (int k = 0; k < d; k++) {
                in2 += (double)col[(size_t)k * F] * col[(size_t)k * F];
                out2 += (double)row[k] * row[k];
            }
            s.fires_since[i] = tr[l].fires_since_snap[f];
            s.last_fire[i] = tr[l].last_fire[f];
            s.premax[i] = r->premax[i];
            s.premean[i] = (float)(r->presum[i] / ((double)r->c->batch_size * r->size.T));
            s.b_in[i] = p->fcb ? p->fcb[i] : 0.0f;   /* mlp_bias=0: no b_in, i.e. 0 */
            s.fc_norm[i] = (float)sqrt(in2);
            s.proj_norm[i] = (float)sqrt(out2);
        }
    for (int l = 0; l < L; l++) death_tracker_reset_snapshot(&tr[l]);
    if (r->comm->rank == 0) sink_snapshot(&s);
    free(s.fires_since); free(s.last_fire); free(f32);
}

static void save_checkpoint(Run *r) {
    char err[1024];
    if (r->comm->rank != 0) return;   /* replicas are identical: the leader writes */
    sink_make_durable(r->run, r->state.step - 1);
    char *text = config_to_string(r->c);
    if (mkdir_p(r->ckpt_dir) != 0) die("%s: cannot create the checkpoint folder", r->ckpt_dir);
    /* two kept while training (one survives a damaged newest); a finished run
     * needs only its final one (checkpoint_final_only, docs/config.md) */
    int keep = (r->state.step == r->c->steps && r->c->checkpoint_final_only) ? 1 : 2;
    if (checkpoint_save(r->ckpt_dir, &r->size, text, &r->model, &r->opt, &r->state, keep,
                        err, sizeof err) != 0)
        die("%s", err);
    free(text);
}

static int due(int64_t step, long every) { return every > 0 && step % every == 0; }

/* Snapshots fall on multiples of snapshot_every, plus the last step, so the
 * dataset holds every unit's state at the end (its slot, ceil(step / every),
 * is one of its own: no later grid snapshot exists). */
static int snapshot_due(const Config *c, int64_t step) {
    return due(step, c->snapshot_every) || (c->snapshot_every > 0 && step == c->steps - 1);
}

int train_run(const Config *c, int run, const CorpusPrints *cp, Comm *comm) {
    Run r;
    open_run(&r, c, run, cp, comm);
    start_run(&r);
    int status = RUN_FINISHED;
    for (int64_t step = r.state.step; step < c->steps; step++) {
        StepRecord rec;
        memset(&rec, 0, sizeof rec);
        step_compute(&r, step, snapshot_due(c, step), &rec);
        if (snapshot_due(c, step)) emit_snapshot(&r, step);
        if (due(step, c->eval_every)) run_heldout_eval(&r.heldout, &r.model, comm, run, step);
        step_update(&r, step, &rec);
        if (step == c->debug_diverge_step && comm->rank == 1) r.model.params_memory[0] += 1e-3f;
        debug_kill_bias(c, &r.model, r.usage, step);
        if (resample_due(c, step)) {
            double t0 = now_seconds();
            resample_dead_units(c, &r.model, &r.opt, &r.state, step, &rec);
            rec.step_time += now_seconds() - t0;   /* part of the step's time */
        }
        if (comm->rank == 0) sink_step(&rec);
        sink_poll();
        if (due(step + 1, c->check_every)) check_replicas(&r, step + 1);
        int stop = comm_group_any(comm, g_stop_requested != 0) ||
                   (c->stop_at_step >= 0 && step + 1 == c->stop_at_step);
        if (due(step + 1, c->checkpoint_every) || step + 1 == c->steps || stop) {
            check_replicas(&r, step + 1);   /* a diverged replica never reaches a checkpoint */
            save_checkpoint(&r);
        }
        if (stop) { status = RUN_STOPPED; break; }
    }
    /* The final weights, evaluated at step = steps (slot ceil(steps / eval_every),
     * after every grid evaluation). A resume of a finished run repeats it: same
     * weights, same record, same slot. */
    if (status == RUN_FINISHED && c->eval_every > 0)
        run_heldout_eval(&r.heldout, &r.model, comm, run, c->steps);
    close_run(&r);
    return status;
}
