/* bench_model.c — one rank's training step at a size, and what it is made of:
 * tokens/s and model FLOP/s of the full step (forward with every metric
 * counted, backward, gradient norm, AdamW, per-layer metric summaries),
 * against single-thread cblas_sgemm FLOP/s measured in the same process,
 * INTERLEAVED with the steps (one sgemm measurement per repetition), so that
 * a machine whose load drifts slows both sides of the ratio alike.
 *
 * The cost of the metrics is measured as a paired difference: in every
 * repetition the forward pass runs once with usage = NULL (no counting) and
 * once with the usage buffer (fused counting), in alternating order; the
 * backward pass is the same either way, so the difference of the two
 * forwards is the whole counting cost. usage_summarize + death_tracker_step
 * (the per-step quantiles and dead/turned_off/revived) are timed separately.
 *
 * usage: bench_model L d h F T V B [reps]         the table's numbers
 *        bench_model L d h F T V B reps profile   a warm-up, then `reps` full
 *            steps (for perf / callgrind; with BENCH_PERF_CTL=FIFO it writes
 *            "enable" to FIFO after the warm-up: perf record -D -1
 *            --control fifo:FIFO profiles the steady state only)
 * Output: '#' lines for people, then one line "RESULT key=value ...". */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_stats.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "util.h"
#include "variant.h"

#define MAX_REPS 64

/* CPU time of the process (one thread): with other jobs on the machine,
 * cpu / wall is the share of a core this benchmark actually got. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* half the interquartile range: the noise of a median difference */
static double spread(const double *v, int n) {
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return 0.5 * (s[(3 * (n - 1)) / 4] - s[(n - 1) / 4]);
}

typedef struct { int M, N, K; float *a, *b, *c; } Gemm;

static void gemm_init(Gemm *g, int M, int N, int K) {
    g->M = M; g->N = N; g->K = K;
    g->a = xaligned_alloc((size_t)M * K * 4);
    g->b = xaligned_alloc((size_t)K * N * 4);
    g->c = xaligned_alloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) g->a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) g->b[i] = (float)(i % 5) * 0.1f;
}

/* FLOP/s of one call (the best of two back-to-back calls: the first may
 * pay for page faults of c or a scheduler hiccup). */
static double gemm_flops(Gemm *g) {
    double best = 0;
    for (int r = 0; r < 2; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->M, g->N, g->K, 1.0f, g->a,
                    g->K, g->b, g->N, 0.0f, g->c, g->N);
        double f = 2.0 * g->M * g->N * g->K / (now_seconds() - t0);
        if (f > best) best = f;
    }
    return best;
}

static void gemm_free(Gemm *g) { free(g->a); free(g->b); free(g->c); }

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: bench_model L d h F T V B [reps [profile]]\n");
        return 2;
    }
    ModelSize s = {"bench", atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                   atoi(argv[5]), atoi(argv[6]), .pos = POS_LEARNED};
    /* BENCH_VARIANT="pos=rope act=relu2": an architecture variant (variant.h) */
    const char *variant = getenv("BENCH_VARIANT");
    unsigned seen = 0;
    char why[256];
    for (const char *p = variant ? variant : ""; *p;) {
        size_t len = strcspn(p, " ");
        if (len && variant_parse(&s, p, len, &seen, why, sizeof why) != 0) {
            fprintf(stderr, "bench_model: BENCH_VARIANT: %s\n", len ? why : "?");
            return 2;
        }
        p += len + (p[len] == ' ');
    }
    int B = atoi(argv[7]), reps = argc > 8 ? atoi(argv[8]) : 5;
    int profile = argc > 9 && !strcmp(argv[9], "profile");
    if (s.L < 1 || s.d < 1 || s.h < 1 || s.d % s.h || s.F < 1 || s.T < 1 || s.V < 1 ||
        s.V > 65536 || B < 1 || reps < 1 || reps >= MAX_REPS) {
        fprintf(stderr, "bench_model: bad arguments (reps 1..%d)\n", MAX_REPS - 1);
        return 2;
    }
    Model m;
    build_model(&m, &s, B);
    model_init_params(&m, 1);
    Optimizer o;
    build_optimizer(&o, OPT_ADAMW, m.num_params);
    Config c;
    memset(&c, 0, sizeof c);
    c.lr = 1e-4; c.beta1 = 0.9; c.beta2 = 0.95; c.eps = 1e-8; c.weight_decay = 0.1;
    c.grad_clip = 1.0;
    uint16_t *tok = xmalloc((size_t)B * (s.T + 1) * 2);
    Rng rng; rng_seed(&rng, 3, 0);
    for (int i = 0; i < B * (s.T + 1); i++) tok[i] = (uint16_t)rng_below(&rng, (uint64_t)s.V);
    size_t nu = (size_t)s.L * usage_stride(s.F);
    int64_t *usage = xcalloc(nu, 8);
    DeathTracker *tr = xcalloc((size_t)s.L, sizeof *tr);
    for (int l = 0; l < s.L; l++) build_death_tracker(&tr[l], s.F, 100);
    float grad_scale = 1.0f / ((float)B * s.T);
    double tokens = (double)B * s.T;

    if (profile) {   /* steady state only: what perf should see */
        const char *ctl = getenv("BENCH_PERF_CTL");
        for (int r = -1; r < reps; r++) {   /* r = -1: warm-up (first touch) */
            if (r == 0 && ctl && *ctl) {   /* perf record -D -1 --control fifo:CTL */
                FILE *fp = fopen(ctl, "w");
                if (!fp) die("%s: cannot open the perf control fifo", ctl);
                fputs("enable\n", fp);
                fclose(fp);
            }
            memset(usage, 0, nu * 8);
            model_forward(&m, tok, B, usage, NULL, NULL);
            model_zero_grad(&m);
            model_backward(&m, tok, B, grad_scale);
            double norm = grad_norm(m.grads_memory, m.num_params);
            optimizer_step(&o, &m, &c, 1e-4, clip_factor(norm, c.grad_clip));
        }
        printf("profile: %d steps done\n", reps);
        return 0;
    }

    /* the reference GEMM: the model's largest matmul shape, fc forward
     * [B*T x d] . [d x F]; and a square 1024^3 one for context */
    Gemm gfc, gsq;
    gemm_init(&gfc, B * s.T, s.F, s.d);
    gemm_init(&gsq, 1024, 1024, 1024);

    double t_step[MAX_REPS], t_fwd_on[MAX_REPS], t_fwd_off[MAX_REPS], t_delta[MAX_REPS];
    double t_bwd[MAX_REPS], t_opt[MAX_REPS], t_sum[MAX_REPS], f_fc[MAX_REPS], f_sq[MAX_REPS];
    double c_step[MAX_REPS], d_order[2][MAX_REPS], frac[MAX_REPS];
    int n_order[2] = {0, 0};
    LayerMetrics lm;
    /* repetition 0 is the warm-up (first touch of every buffer) */
    for (int r = 0; r <= reps; r++) {
        double f1 = gemm_flops(&gfc), f2 = gemm_flops(&gsq);
        double fwd_off = 0, fwd_on = 0, cpu_on = 0, cpu_off = 0;
        for (int k = 0; k < 2; k++) {
            int counting = (k == 0) == (r % 2 == 0);   /* alternate the order */
            double t0 = now_seconds(), c0 = cpu_seconds();
            if (counting) {
                memset(usage, 0, nu * 8);
                model_forward(&m, tok, B, usage, NULL, NULL);
                fwd_on = now_seconds() - t0;
                cpu_on = cpu_seconds() - c0;
            } else {
                model_forward(&m, tok, B, NULL, NULL, NULL);
                fwd_off = now_seconds() - t0;
                cpu_off = cpu_seconds() - c0;
            }
        }
        /* the activations do not depend on counting: the backward may follow
         * either forward */
        double t0 = now_seconds(), c0 = cpu_seconds();
        model_zero_grad(&m);
        model_backward(&m, tok, B, grad_scale);
        double t1 = now_seconds();
        double norm = grad_norm(m.grads_memory, m.num_params);
        optimizer_step(&o, &m, &c, 1e-4, clip_factor(norm, c.grad_clip));
        double t2 = now_seconds();
        for (int l = 0; l < s.L; l++) {
            UsageCounts u = usage_view(usage, l, s.F);
            usage_summarize(&u, s.F, &lm);
            death_tracker_step(&tr[l], r, u.fire_count, (int64_t)tokens, &lm);
        }
        double t3 = now_seconds(), c3 = cpu_seconds();
        if (r == 0) continue;
        int i = r - 1;
        t_fwd_on[i] = fwd_on; t_fwd_off[i] = fwd_off; t_delta[i] = cpu_on - cpu_off;
        t_bwd[i] = t1 - t0; t_opt[i] = t2 - t1; t_sum[i] = t3 - t2;
        t_step[i] = fwd_on + (t3 - t0);
        f_fc[i] = f1; f_sq[i] = f2;
        frac[i] = model_flops_per_token(&s) * tokens / t_step[i] / f1;
        c_step[i] = cpu_on + (c3 - c0);
        d_order[r % 2][n_order[r % 2]++] = cpu_on - cpu_off;
    }
    double step = bench_median(t_step, reps), fc = bench_median(f_fc, reps);
    double sq = bench_median(f_sq, reps);
    /* the counting cost: the paired difference of the two forwards in CPU
     * time (time the process was descheduled by other jobs does not count),
     * with their order alternating between repetitions; the median of each
     * order, averaged, cancels any bias of "the first forward after an
     * update". Its noise: half the IQR of the differences (delta_spread_s). */
    double count = n_order[0] && n_order[1]
                 ? 0.5 * (bench_median(d_order[0], n_order[0]) +
                          bench_median(d_order[1], n_order[1]))
                 : bench_median(t_delta, reps);
    double summ = bench_median(t_sum, reps), cpu = bench_median(c_step, reps);
    double mflops = model_flops_per_token(&s) * tokens / step;
    /* a negative median difference is noise around zero: report it as such */
    double metrics_share = (count + summ) / step;
    int64_t check = 0;
    for (int k = 0; k <= s.F; k++) check += usage_view(usage, 0, s.F).token_hist[k];
    printf("# L=%d d=%d h=%d F=%d T=%d V=%d B=%d params=%zu, median of %d reps after 1 warm-up\n",
           s.L, s.d, s.h, s.F, s.T, s.V, B, m.num_params, reps);
    printf("# step %.1f ms (fwd counted %.1f, fwd uncounted %.1f, bwd %.1f, norm+clip+AdamW %.1f, "
           "summaries %.3f) -> %.0f tokens/s, model %.2f GFLOP/s\n",
           1e3 * step, 1e3 * bench_median(t_fwd_on, reps), 1e3 * bench_median(t_fwd_off, reps),
           1e3 * bench_median(t_bwd, reps), 1e3 * bench_median(t_opt, reps), 1e3 * summ,
           tokens / step,
           mflops / 1e9);
    printf("# model FLOP/s over the sgemm FLOP/s measured just before, median over reps: %.1f%%\n",
           100 * bench_median(frac, reps));
    printf("# sgemm %dx%dx%d: %.2f GFLOP/s, 1024^3: %.2f GFLOP/s; counting %.3f ms; "
           "metrics %.2f%% of the step (%lld tokens counted per layer)\n",
           B * s.T, s.F, s.d, fc / 1e9, sq / 1e9, 1e3 * count, 100 * metrics_share,
           (long long)check);
    printf("RESULT tokens=%.0f step_s=%.6f fwd_on_s=%.6f fwd_off_s=%.6f bwd_s=%.6f opt_s=%.6f "
           "count_s=%.6f summ_s=%.6f sgemm_fc=%.6e sgemm_sq=%.6e model_flops_per_token=%.6e "
           "tok_s=%.1f model_flops=%.6e num_params=%zu usage_len=%zu cpu_step_s=%.6f "
           "delta_spread_s=%.6f frac_paired=%.4f\n",
           tokens, step, bench_median(t_fwd_on, reps), bench_median(t_fwd_off, reps),
           bench_median(t_bwd, reps),
           bench_median(t_opt, reps), count, summ, fc, sq, model_flops_per_token(&s), tokens / step,
           mflops, m.num_params, nu, cpu, spread(t_delta, reps), bench_median(frac, reps));
    gemm_free(&gfc); gemm_free(&gsq);
    for (int l = 0; l < s.L; l++) free_death_tracker(&tr[l]);
    free(tr); free(tok); free(usage);
    free_optimizer(&o); free_model(&m);
    return 0;
}
