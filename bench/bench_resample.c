/* bench_resample.c — the training-side cost of the interventions
 * (include/intervene.h) against one rank's training step at a size:
 *   - resample_dead_units with a fraction of every layer's units off (each
 *     re-initialized unit draws 2d normals and clears 2d+1 moments), timed per
 *     call; per step it costs that divided by resample_dead;
 *   - the scan alone (no unit off): what a resampling step costs when
 *     nothing is dead;
 *   - death_tracker_step of every layer with resampled units turning off again
 *     (the born bookkeeping) against the same with no resampled unit.
 * Outlier attribution adds nothing per step: it reads the grad_norm, loss
 * and snapshot series every run records anyway (analysis/interventions.py).
 * usage: bench_resample L d h F T V B [reps [off_frac [every]]]
 *        (defaults 5 repetitions, 10% of units off, resample_dead = 100)
 * Output: '#' lines for people, then one line "RESULT key=value ...". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_stats.h"
#include "intervene.h"
#include "rng.h"
#include "util.h"

#define MAX_REPS 64

typedef struct {
    ModelSize s;
    int B;
    Model m;
    Optimizer o;
    Config c;
    RunState rs;
    uint16_t *tok;
    int64_t *usage;
} Bench;

static void bench_build(Bench *b) {
    build_model(&b->m, &b->s, b->B);
    model_init_params(&b->m, 1);
    build_optimizer(&b->o, OPT_ADAMW, b->m.num_params);
    memset(&b->c, 0, sizeof b->c);
    b->c.lr = 1e-4; b->c.beta1 = 0.9; b->c.beta2 = 0.95; b->c.eps = 1e-8;
    b->c.weight_decay = 0.1; b->c.grad_clip = 1.0; b->c.dead_window = 100;
    b->c.debug_kill_step = -1;
    memset(&b->rs, 0, sizeof b->rs);
    b->rs.trackers = xcalloc((size_t)b->s.L, sizeof(DeathTracker));
    for (int l = 0; l < b->s.L; l++) build_death_tracker(&b->rs.trackers[l], b->s.F, 100);
    run_state_init(&b->rs, 1);
    size_t n = (size_t)b->B * (b->s.T + 1);
    b->tok = xmalloc(n * sizeof *b->tok);
    Rng rng;
    rng_seed(&rng, 3, 0);
    for (size_t i = 0; i < n; i++) b->tok[i] = (uint16_t)rng_below(&rng, (uint64_t)b->s.V);
    b->usage = xcalloc((size_t)b->s.L * usage_stride(b->s.F), sizeof *b->usage);
}

/* One training step as the trainer runs it, without MPI. */
static double step_seconds(Bench *b, int64_t step) {
    double t0 = now_seconds();
    memset(b->usage, 0, (size_t)b->s.L * usage_stride(b->s.F) * sizeof *b->usage);
    model_forward(&b->m, b->tok, b->B, b->usage, NULL, NULL);
    model_zero_grad(&b->m);
    model_backward(&b->m, b->tok, b->B, 1.0f / ((float)b->B * b->s.T));
    debug_kill_spike(&b->c, &b->m, b->usage, step);
    double norm = grad_norm(b->m.grads_memory, b->m.num_params);
    optimizer_step(&b->o, &b->m, &b->c, 1e-4, clip_factor(norm, b->c.grad_clip));
    debug_kill_bias(&b->c, &b->m, b->usage, step);
    LayerMetrics lm;
    for (int l = 0; l < b->s.L; l++) {
        UsageCounts u = usage_view(b->usage, l, b->s.F);
        usage_summarize(&u, b->s.F, &lm);
        death_tracker_step(&b->rs.trackers[l], (long)step, u.fire_count,
                           (int64_t)b->B * b->s.T, &lm);
    }
    return now_seconds() - t0;
}

/* Every layer: units f with f % stride == 0 off at `step` (last fired long
 * ago), the others fired at `step`. */
static void set_off(Bench *b, int64_t step, int stride) {
    for (int l = 0; l < b->s.L; l++) {
        DeathTracker *t = &b->rs.trackers[l];
        for (int f = 0; f < t->F; f++) t->last_fire[f] = f % stride == 0 ? -1 : step;
    }
}

static double resample_seconds(Bench *b, int64_t step, int stride, int *count) {
    StepRecord *rec = xcalloc(1, sizeof *rec);
    set_off(b, step, stride);
    double t0 = now_seconds();
    resample_dead_units(&b->c, &b->m, &b->o, &b->rs, step, rec);
    double t = now_seconds() - t0;
    *count = 0;
    for (int l = 0; l < b->s.L; l++) *count += rec->layers[l].resampled;
    free(rec);
    return t;
}

/* All trackers' step with the units of every `stride`-th index turning off
 * at `step`; born >= 0 for them when `resampled` (the redied bookkeeping). */
static double tracker_seconds(Bench *b, int64_t step, int stride, int resampled) {
    LayerMetrics lm;
    int64_t *fires = xcalloc((size_t)b->s.F, sizeof *fires);
    for (int l = 0; l < b->s.L; l++) {
        DeathTracker *t = &b->rs.trackers[l];
        for (int f = 0; f < t->F; f++) {
            int dies = f % stride == 0;
            t->last_fire[f] = dies ? step - b->c.dead_window : step - 1;
            t->born[f] = dies && resampled ? step - 2 * b->c.dead_window : -1;
            fires[f] = dies ? 0 : 1;
        }
    }
    double t0 = now_seconds();
    for (int l = 0; l < b->s.L; l++)
        death_tracker_step(&b->rs.trackers[l], (long)step, fires, 1, &lm);
    double t = now_seconds() - t0;
    free(fires);
    return t;
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: bench_resample L d h F T V B [reps [off_frac [every]]]\n");
        return 2;
    }
    Bench b;
    b.s = (ModelSize){"bench", atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                      atoi(argv[5]), atoi(argv[6]), .pos = POS_LEARNED};
    b.B = atoi(argv[7]);
    int reps = argc > 8 ? atoi(argv[8]) : 5;
    double off = argc > 9 ? atof(argv[9]) : 0.1;
    long every = argc > 10 ? atol(argv[10]) : 100;
    if (b.s.L < 1 || b.s.d < 1 || b.s.h < 1 || b.s.d % b.s.h || b.s.F < 1 || b.s.T < 1 ||
        b.s.V < 1 || b.s.V > 65536 || b.B < 1 || reps < 1 || reps >= MAX_REPS ||
        !(off > 0 && off <= 1) || every < 1) {
        fprintf(stderr, "bench_resample: bad arguments\n");
        return 2;
    }
    bench_build(&b);
    int stride = (int)lround(1.0 / off), n_off = 0, n_none = 0;
    double t_step[MAX_REPS], t_res[MAX_REPS], t_scan[MAX_REPS], t_born[MAX_REPS], t_plain[MAX_REPS];
    int64_t step = 1000;
    for (int r = 0; r <= reps; r++) {   /* r = 0: warm-up */
        double ts = step_seconds(&b, step++);
        double tr = resample_seconds(&b, step++, stride, &n_off);
        double tn = resample_seconds(&b, step++, b.s.F + 1, &n_none);
        step += 2 * b.c.dead_window;
        double tb = tracker_seconds(&b, step++, stride, 1);
        double tp = tracker_seconds(&b, step++, stride, 0);
        if (r == 0) continue;
        t_step[r - 1] = ts; t_res[r - 1] = tr; t_scan[r - 1] = tn;
        t_born[r - 1] = tb; t_plain[r - 1] = tp;
    }
    (void)n_none;
    double step_s = bench_median(t_step, reps), res_s = bench_median(t_res, reps);
    double scan_s = bench_median(t_scan, reps), born_s = bench_median(t_born, reps);
    double plain_s = bench_median(t_plain, reps);
    double per_step = res_s / (double)every + (born_s - plain_s);
    printf("# step %.1f ms; resampling %d units (%.0f%% of every layer) %.3f ms per call, "
           "scan alone %.3f ms; every %ld steps: %.4f%% of a step\n", 1e3 * step_s, n_off,
           100 * off, 1e3 * res_s, 1e3 * scan_s, every, 100 * res_s / every / step_s);
    printf("# tracker step with resampled units dying again %.4f ms vs %.4f ms without\n",
           1e3 * born_s, 1e3 * plain_s);
    printf("RESULT step_s=%.6e resample_s=%.6e scan_s=%.6e units=%d every=%ld "
           "tracker_born_s=%.6e tracker_plain_s=%.6e per_step_frac=%.6e\n", step_s, res_s,
           scan_s, n_off, every, born_s, plain_s, per_step / step_s);
    return 0;
}
