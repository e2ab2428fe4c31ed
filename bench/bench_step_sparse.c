/* bench_step_sparse.c — the whole training step from a trained state, with
 * the dense, sparse and auto MLP kernels side by side (mlp_sparse.h).
 *
 * Each path gets its own model and AdamW state loaded from the same
 * checkpoint; every round runs one full step per path (forward with every
 * metric counted, backward, norm + clip + AdamW, per-layer summaries) on the
 * same batch of real windows of the corpus, the paths in rotating order, and
 * measures single-thread sgemm FLOP/s on the fc shape between rounds. Times
 * are CPU time (other jobs deschedule this one; wall-time ratios printed
 * too); the verdicts are medians of per-round ratios (this VM's speed drifts).
 * "Dense-equivalent" FLOP/s = the dense model's FLOPs per step
 * (model_flops_per_token · tokens) / the step time.
 *
 * usage: bench_step_sparse CKPT TRAIN_GLOB L d h F T V B reps [paths]
 *   paths: comma-separated subset of dense,sparse,auto (default all three;
 *   one path alone is how bench/run.sh measures each one's peak memory:
 *   then without the sgemm reference, whose buffers would count in it).
 *        bench_step_sparse --train K OUTDIR CKPT TRAIN_GLOB L d h F T V B
 *   trains K more steps from CKPT at batch B (auto kernels, lr 1e-3: a
 *   state further from the initial density than a brief B=16 training)
 *   and writes OUTDIR/ckpt_<step>.bin with CKPT's config text.
 * Output: '#' lines for people, one "RESULT ..." line. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_stats.h"
#include "checkpoint.h"
#include "data.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "util.h"

#define MAX_REPS 64

/* CPU time of this (single-threaded) process: on a machine shared with
 * other jobs, the time it was descheduled does not count */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
enum { DENSE, SPARSE, AUTO, NPATH };
static const char *const NAMES[NPATH] = {"dense", "sparse", "auto"};

typedef struct {
    Model m;
    Optimizer o;
    RunState rs;
    int64_t *usage;
} Path;

static double sgemm_flops(int M, int N, int K, float *a, float *b, float *c) {
    double best = 0;
    for (int r = 0; r < 2; r++) {
        double t0 = cpu_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f,
                    c, N);
        double f = 2.0 * M * N * K / (cpu_now() - t0);
        if (f > best) best = f;
    }
    return best;
}

static void load_path(Path *p, MlpKernel kind, const char *ckpt, const ModelSize *s, int B) {
    char err[1024];
    build_model(&p->m, s, B);
    model_set_mlp_kernel(&p->m, kind);
    build_optimizer(&p->o, OPT_ADAMW, p->m.num_params);
    run_state_init(&p->rs, 0);
    p->rs.trackers = xcalloc((size_t)s->L, sizeof *p->rs.trackers);
    for (int l = 0; l < s->L; l++) build_death_tracker(&p->rs.trackers[l], s->F, 100);
    if (checkpoint_load(ckpt, s, NULL, &p->m, &p->o, &p->rs, err, sizeof err) != 0)
        die("%s", err);
    p->usage = xcalloc((size_t)s->L * usage_stride(s->F), sizeof *p->usage);
}

static void free_path(Path *p, int L) {
    for (int l = 0; l < L; l++) free_death_tracker(&p->rs.trackers[l]);
    free(p->rs.trackers);
    free(p->usage);
    free_optimizer(&p->o);
    free_model(&p->m);
}

/* one full training step, as run.c runs it on one rank */
static void train_step(Path *p, const Config *c, const uint16_t *tok, int B, int64_t step) {
    const ModelSize *s = &p->m.cfg;
    memset(p->usage, 0, (size_t)s->L * usage_stride(s->F) * sizeof *p->usage);
    model_forward(&p->m, tok, B, p->usage, NULL, NULL);
    model_zero_grad(&p->m);
    model_backward(&p->m, tok, B, 1.0f / ((float)B * s->T));
    double norm = grad_norm(p->m.grads_memory, p->m.num_params);
    optimizer_step(&p->o, &p->m, c, c->lr, clip_factor(norm, c->grad_clip));
    LayerMetrics lm;
    for (int l = 0; l < s->L; l++) {
        UsageCounts u = usage_view(p->usage, l, s->F);
        usage_summarize(&u, s->F, &lm);
        death_tracker_step(&p->rs.trackers[l], step, u.fire_count, (int64_t)B * s->T, &lm);
    }
}

/* --train: K more steps from a checkpoint, then a checkpoint of the result */
static int train_more(int argc, char **argv) {
    if (argc != 13) die("usage: bench_step_sparse --train K OUTDIR CKPT TRAIN_GLOB L d h F T V B");
    int K = atoi(argv[2]), B = atoi(argv[12]);
    const char *out = argv[3], *ckpt = argv[4], *glob = argv[5];
    ModelSize s = {"bench", atoi(argv[6]), atoi(argv[7]), atoi(argv[8]), atoi(argv[9]),
                   atoi(argv[10]), atoi(argv[11]), .pos = POS_LEARNED};
    char err[1024];
    TokenSet ts;
    Sampler smp;
    if (tokenset_open(&ts, glob, s.V, err, sizeof err) != 0) die("%s", err);
    if (build_sampler(&smp, &ts, s.T, B, SAMPLER_RANDOM, 777, err, sizeof err) != 0)
        die("%s", err);
    char *text = checkpoint_config_text(ckpt, err, sizeof err);
    if (!text) die("%s", err);
    Config c;
    memset(&c, 0, sizeof c);
    c.lr = 1e-3; c.beta1 = 0.9; c.beta2 = 0.95; c.eps = 1e-8; c.weight_decay = 0.1;
    c.grad_clip = 1.0;
    Path p;
    load_path(&p, MLP_AUTO, ckpt, &s, B);
    uint16_t *tok = xmalloc((size_t)B * (s.T + 1) * sizeof *tok);
    for (int k = 0; k < K; k++) {
        if (sampler_fill(&smp, k, 0, B, tok, err, sizeof err) != 0) die("%s", err);
        train_step(&p, &c, tok, B, p.rs.step++);
        p.rs.tokens_seen += (int64_t)B * s.T;
        if (k % 25 == 24 || k == K - 1) {
            printf("# step %lld loss %.4f density", (long long)p.rs.step, p.m.mean_loss);
            for (int l = 0; l < s.L; l++) {
                UsageCounts u = usage_view(p.usage, l, s.F);
                LayerMetrics lm;
                usage_summarize(&u, s.F, &lm);
                printf(" %.3f", lm.token_use_mean);
            }
            printf("\n");
            fflush(stdout);
        }
    }
    if (checkpoint_save(out, &s, text, &p.m, &p.o, &p.rs, 1, err, sizeof err) != 0)
        die("%s", err);
    printf("RESULT trained_steps=%d step=%lld\n", K, (long long)p.rs.step);
    free(text); free(tok);
    free_path(&p, s.L);
    free_sampler(&smp);
    tokenset_close(&ts);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--train")) return train_more(argc, argv);
    if (argc < 11) {
        fprintf(stderr, "usage: bench_step_sparse CKPT TRAIN_GLOB L d h F T V B reps [paths]\n");
        return 2;
    }
    const char *ckpt = argv[1], *glob = argv[2];
    ModelSize s = {"bench", atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                   atoi(argv[7]), atoi(argv[8]), .pos = POS_LEARNED};
    int B = atoi(argv[9]), reps = atoi(argv[10]);
    const char *paths = argc > 11 ? argv[11] : "dense,sparse,auto";
    if (B < 1 || reps < 1 || reps >= MAX_REPS) die("bench_step_sparse: bad B or reps (1..%d)",
                                                   MAX_REPS - 1);
    int on[NPATH], n_on = 0;
    for (int k = 0; k < NPATH; k++) n_on += on[k] = strstr(paths, NAMES[k]) != NULL;
    if (!n_on) die("bench_step_sparse: no path among '%s' (dense, sparse, auto)", paths);
    char err[1024];
    TokenSet ts;
    Sampler smp;
    if (tokenset_open(&ts, glob, s.V, err, sizeof err) != 0) die("%s", err);
    if (build_sampler(&smp, &ts, s.T, B, SAMPLER_RANDOM, 12345, err, sizeof err) != 0)
        die("%s", err);
    Config c;
    memset(&c, 0, sizeof c);
    c.lr = 3e-4; c.beta1 = 0.9; c.beta2 = 0.95; c.eps = 1e-8; c.weight_decay = 0.1;
    c.grad_clip = 1.0;
    Path p[NPATH];
    for (int k = 0; k < NPATH; k++)
        if (on[k]) load_path(&p[k], (MlpKernel)k, ckpt, &s, B);
    uint16_t *tok = xmalloc((size_t)B * (s.T + 1) * sizeof *tok);
    int N = B * s.T;
    /* the sgemm reference (its [N][F] output is as large as one layer's H):
     * not with one path alone, whose run measures that path's peak memory */
    int with_sgemm = n_on > 1;
    float *ga = NULL, *gb = NULL, *gc = NULL;
    if (with_sgemm) {
        ga = xaligned_alloc((size_t)N * s.d * 4);
        gb = xaligned_alloc((size_t)s.d * s.F * 4);
        gc = xaligned_alloc((size_t)N * s.F * 4);
        for (size_t i = 0; i < (size_t)N * s.d; i++) ga[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)s.d * s.F; i++) gb[i] = (float)(i % 5) * 0.1f;
    }
    double t[NPATH][MAX_REPS], sg[MAX_REPS], frac[NPATH][MAX_REPS];
    double x_sparse[MAX_REPS], x_auto[MAX_REPS], wall[NPATH][MAX_REPS], wx[MAX_REPS];
    double flops = model_flops_per_token(&s) * N;
    for (int r = -1; r < reps; r++) {   /* r = -1: warm-up (first touch, list growth) */
        double f = with_sgemm ? sgemm_flops(N, s.F, s.d, ga, gb, gc) : 0.0;
        if (sampler_fill(&smp, r + 1, 0, B, tok, err, sizeof err) != 0) die("%s", err);
        for (int j = 0; j < NPATH; j++) {
            int k = (j + (r < 0 ? 0 : r)) % NPATH;
            if (!on[k]) continue;
            double t0 = cpu_now(), w0 = now_seconds();
            train_step(&p[k], &c, tok, B, p[k].rs.step++);
            if (r >= 0) {
                t[k][r] = cpu_now() - t0;
                wall[k][r] = now_seconds() - w0;
                frac[k][r] = with_sgemm ? flops / t[k][r] / f : 0.0;
            }
        }
        if (r < 0) continue;
        sg[r] = f;
        if (on[DENSE] && on[SPARSE]) {
            x_sparse[r] = t[DENSE][r] / t[SPARSE][r];
            wx[r] = wall[DENSE][r] / wall[SPARSE][r];
        }
        if (on[DENSE] && on[AUTO]) x_auto[r] = t[DENSE][r] / t[AUTO][r];
    }
    printf("# trained state %s: L=%d d=%d h=%d F=%d T=%d V=%d, B=%d (%d tokens), median of %d "
           "rounds after a warm-up\n", ckpt, s.L, s.d, s.h, s.F, s.T, s.V, B, N, reps);
    double sgm = bench_median(sg, reps);
    printf("# sgemm %dx%dx%d: %.1f GFLOP/s (median, measured between rounds); model %.1f "
           "GFLOP per step\n", N, s.F, s.d, sgm / 1e9, flops / 1e9);
    for (int k = 0; k < NPATH; k++) {
        if (!on[k]) continue;
        double tm = bench_median(t[k], reps);
        printf("# %-6s step %.1f ms CPU (%.1f wall), %.0f tokens/s, dense-equivalent %.1f GFLOP/s = %.1f%% of "
               "sgemm (median of per-round ratios)\n", NAMES[k], 1e3 * tm,
               1e3 * bench_median(wall[k], reps), N / tm,
               flops / tm / 1e9, 100 * bench_median(frac[k], reps));
    }
    const int show = on[SPARSE] ? SPARSE : on[AUTO] ? AUTO : -1;
    if (show >= 0) {
        printf("# MLP density per layer (%s lists of the last forward):", NAMES[show]);
        for (int l = 0; l < s.L; l++) printf(" %.3f", mlp_sparse_density(p[show].m.mlp, l));
        printf("\n");
    }
    if (on[DENSE] && on[SPARSE])
        printf("# sparse %.2fx dense (wall %.2fx)", bench_median(x_sparse, reps),
               bench_median(wx, reps));
    if (on[DENSE] && on[AUTO]) printf(", auto %.2fx dense", bench_median(x_auto, reps));
    if (on[DENSE] && (on[SPARSE] || on[AUTO])) printf(" (medians of per-round ratios)\n");
    printf("RESULT tokens=%d flops=%.6e sgemm=%.6e", N, flops, sgm);
    for (int k = 0; k < NPATH; k++)
        if (on[k])
            printf(" %s_s=%.6f %s_frac=%.4f", NAMES[k], bench_median(t[k], reps), NAMES[k],
                   bench_median(frac[k], reps));
    if (on[DENSE] && on[SPARSE])
        printf(" sparse_x=%.4f wall_x=%.4f", bench_median(x_sparse, reps), bench_median(wx, reps));
    if (on[DENSE] && on[AUTO]) printf(" auto_x=%.4f", bench_median(x_auto, reps));
    if (show >= 0)
        for (int l = 0; l < s.L; l++)
            printf(" density%d=%.5f", l, mlp_sparse_density(p[show].m.mlp, l));
    printf("\n");
    for (int k = 0; k < NPATH; k++)
        if (on[k]) free_path(&p[k], s.L);
    free(tok); free(ga); free(gb); free(gc);
    free_sampler(&smp);
    tokenset_close(&ts);
    return 0;
}
