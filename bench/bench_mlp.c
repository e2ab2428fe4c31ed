/* bench_mlp.c — one MLP layer alone (forward + backward, as model.c runs
 * it), the dense path against the sparse and auto paths of mlp_sparse.h, at
 * chosen densities of the activations.
 *
 * X [N][d] and W1 [d][F] are Gaussian, so each pre-activation is
 * N(0, σ²) with σ² = d·var(X)·var(W1); the bias b1 = -σ·z(1-ρ) makes a
 * fraction ρ of them positive (every unit alike: the spread of the active
 * units over W2's rows is the widest, the worst case for the caches).
 * Per density, the three paths alternate in rotating order, `reps` rounds
 * after a warm-up; the verdicts are medians of per-round ratios of CPU
 * time (this VM's speed drifts within seconds, and other jobs deschedule
 * this one: the wall-time ratio is printed too).
 *
 * usage: bench_mlp N d F reps density... (densities in (0, 1])
 * Output: '#' lines for people, one "RESULT ..." line per density. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_stats.h"
#include "activation.h"
#include "layers.h"
#include "metrics.h"
#include "mlp_sparse.h"
#include "rng.h"
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

typedef struct {
    int N, d, F;
    float *X, *W1, *b1, *W2, *b2, *H, *Y, *dY, *dH, *dX, *dW1, *db1, *dW2, *db2;
    int64_t *usage;
    uint8_t *seen;
    MlpSparse *sp[NPATH];
} Mlp;

/* inverse standard normal CDF by bisection (a benchmark set-up, not hot) */
static double z_of(double p) {
    double lo = -10, hi = 10;
    for (int i = 0; i < 100; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p) lo = mid; else hi = mid;
    }
    return 0.5 * (lo + hi);
}

static float *gauss(Rng *r, size_t n, float sd) {
    float *p = xaligned_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = sd * rng_normal(r);
    return p;
}

/* the parts of a step: X·W1, bias+ReLU+counting(+lists), the rest of the
 * forward, the backward */
enum { P_FC, P_RELU, P_PROJ, P_BWD, NPART };
static const char *const PART_NAMES[NPART] = {"X.W1", "ReLU+count(+lists)", "projection",
                                              "backward"};

/* one forward + backward of the layer through path k; returns the density
 * the lists saw (-1 if the path was dense); part times into part[] */
static double mlp_step(Mlp *m, int k, double *part) {
    int N = m->N, d = m->d, F = m->F;
    UsageCounts u = usage_view(m->usage, 0, F);
    memset(m->usage, 0, usage_stride(F) * sizeof *m->usage);
    double t0 = cpu_now();
    matmul_forward(m->H, m->X, m->W1, NULL, N, d, F);
    double t1 = cpu_now();
    relu_count_forward_lists(m->H, m->H, m->b1, 1, N, F, &u, NULL, m->seen,
                             mlp_sparse_lists(m->sp[k], 0, N));
    double t2 = cpu_now(), t3;
    int sparse = mlp_sparse_active(m->sp[k], 0, N);
    if (sparse) {
        mlp_sparse_forward(m->sp[k], 0, m->Y, m->W2, m->b2, N, d);
        t3 = cpu_now();
        mlp_sparse_backward(m->sp[k], 0, m->dX, m->dW1, m->db1, m->dW2, m->db2, m->dY, m->X,
                            m->W1, m->W2, N, d);
    } else {
        matmul_forward(m->Y, m->H, m->W2, m->b2, N, F, d);
        t3 = cpu_now();
        matmul_backward(m->dH, m->dW2, m->db2, m->dY, m->H, m->W2, N, F, d);
        relu_backward(m->dH, m->db1, m->dH, m->H, N, F);
        matmul_backward(m->dX, m->dW1, NULL, m->dH, m->X, m->W1, N, d, F);
    }
    double t4 = cpu_now();
    part[P_FC] = t1 - t0; part[P_RELU] = t2 - t1; part[P_PROJ] = t3 - t2; part[P_BWD] = t4 - t3;
    return sparse ? mlp_sparse_density(m->sp[k], 0) : -1.0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_mlp N d F reps density...\n");
        return 2;
    }
    Mlp m = {.N = atoi(argv[1]), .d = atoi(argv[2]), .F = atoi(argv[3])};
    int reps = atoi(argv[4]), N = m.N, d = m.d, F = m.F;
    if (N < 1 || d < 1 || F < 1 || reps < 1 || reps >= MAX_REPS) {
        fprintf(stderr, "bench_mlp: bad arguments (reps 1..%d)\n", MAX_REPS - 1);
        return 2;
    }
    Rng r;
    rng_seed(&r, 7, 0);
    size_t ND = (size_t)N * d, NF = (size_t)N * F, DF = (size_t)d * F;
    m.X = gauss(&r, ND, 1.0f); m.W1 = gauss(&r, DF, 0.02f); m.W2 = gauss(&r, DF, 0.02f);
    m.dY = gauss(&r, ND, 1e-4f); m.b2 = gauss(&r, (size_t)d, 0.01f);
    m.b1 = xaligned_alloc((size_t)F * 4);
    m.H = xaligned_alloc(NF * 4); m.dH = xaligned_alloc(NF * 4);
    m.Y = xaligned_alloc(ND * 4); m.dX = xaligned_alloc(ND * 4);
    m.dW1 = xaligned_alloc(DF * 4); m.dW2 = xaligned_alloc(DF * 4);
    m.db1 = xaligned_alloc((size_t)F * 4); m.db2 = xaligned_alloc((size_t)d * 4);
    m.usage = xcalloc(usage_stride(F), sizeof *m.usage);
    m.seen = xcalloc((size_t)F, 1);
    m.sp[DENSE] = NULL;
    m.sp[SPARSE] = mlp_sparse_create(MLP_SPARSE, 1, N, F, d);
    m.sp[AUTO] = mlp_sparse_create(MLP_AUTO, 1, N, F, d);
    double sigma = sqrt((double)d) * 0.02;
    printf("# MLP layer N=%d d=%d F=%d: dense / sparse / auto, forward + backward, CPU time, "
           "median of %d rounds (rotating order) after a warm-up; auto crossover %.2f\n",
           N, d, F, reps, MLP_SPARSE_CROSSOVER);
    for (int a = 5; a < argc; a++) {
        double rho = atof(argv[a]);
        if (!(rho > 0 && rho <= 1)) die("bench_mlp: density %s is not in (0, 1]", argv[a]);
        float bias = (float)(-sigma * z_of(1.0 - rho));
        for (int f = 0; f < F; f++) m.b1[f] = bias;
        double t[NPATH][MAX_REPS], sp_ratio[MAX_REPS], au_ratio[MAX_REPS], seen = -1;
        double parts[NPATH][NPART][MAX_REPS], pt[NPART], wall[NPATH][MAX_REPS], wx[MAX_REPS];
        for (int rep = -1; rep < reps; rep++) {   /* rep -1: warm-up */
            for (int j = 0; j < NPATH; j++) {
                int k = (j + (rep < 0 ? 0 : rep)) % NPATH;
                double t0 = cpu_now(), w0 = now_seconds();
                double dens = mlp_step(&m, k, pt);
                double dt = cpu_now() - t0, dw = now_seconds() - w0;
                if (k == SPARSE) seen = dens;
                if (rep < 0) continue;
                t[k][rep] = dt;
                wall[k][rep] = dw;
                for (int p = 0; p < NPART; p++) parts[k][p][rep] = pt[p];
            }
            if (rep >= 0) {
                sp_ratio[rep] = t[DENSE][rep] / t[SPARSE][rep];
                au_ratio[rep] = t[DENSE][rep] / t[AUTO][rep];
                wx[rep] = wall[DENSE][rep] / wall[SPARSE][rep];
            }
        }
        double md = bench_median(t[DENSE], reps), ms = bench_median(t[SPARSE], reps);
        double ma = bench_median(t[AUTO], reps);
        double flops = 12.0 * N * d * F;   /* 6 products of 2·N·d·F */
        printf("# density %.3f (lists %.4f): dense %.2f ms, sparse %.2f ms, auto %.2f ms "
               "(%s); sparse %.2fx dense (wall %.2fx), auto %.3fx dense; dense %.1f GFLOP/s, "
               "sparse dense-equivalent %.1f GFLOP/s\n",
               rho, seen, 1e3 * md, 1e3 * ms, 1e3 * ma,
               (mlp_sparse_density(m.sp[AUTO], 0) >= 0) ? "went sparse" : "stayed dense",
               bench_median(sp_ratio, reps), bench_median(wx, reps), bench_median(au_ratio, reps),
               flops / md / 1e9, flops / ms / 1e9);
        for (int k = DENSE; k < NPATH; k++) {
            printf("#   %s parts (ms):", k == DENSE ? "dense " : k == SPARSE ? "sparse" : "auto  ");
            for (int p = 0; p < NPART; p++)
                printf(" %s %.2f", PART_NAMES[p], 1e3 * bench_median(parts[k][p], reps));
            printf("\n");
        }
        printf("RESULT density=%.4f seen=%.5f dense_s=%.6f sparse_s=%.6f auto_s=%.6f "
               "sparse_x=%.4f wall_x=%.4f auto_x=%.4f auto_sparse=%d flops=%.6e\n",
               rho, seen, md, ms, ma, bench_median(sp_ratio, reps), bench_median(wx, reps),
               bench_median(au_ratio, reps), (mlp_sparse_density(m.sp[AUTO], 0) >= 0), flops);
        fflush(stdout);
    }
    for (int k = 0; k < NPATH; k++) mlp_sparse_free(m.sp[k]);
    float *bufs[] = {m.X, m.W1, m.b1, m.W2, m.b2, m.H, m.Y, m.dY, m.dH, m.dX, m.dW1, m.db1,
                     m.dW2, m.db2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(m.usage); free(m.seen);
    return 0;
}
