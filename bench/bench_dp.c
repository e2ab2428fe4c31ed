/* bench_dp.c — the 2-rank speedup of a data-parallel training step, measured
 * in pairs: under `mpirun -np 2`, rounds alternate
 *   1 rank:  one rank trains a step on the whole batch B while the other
 *            sleeps (comm_world_barrier_idle: its core idle, as with one
 *            rank); rank 0 in even rounds, rank 1 in odd ones, so that a
 *            core slower than the other for a while weighs on both sides;
 *   2 ranks: each rank trains on its B/2 sequences, then the step's
 *            collectives of run.c (gradient allreduce, metric allreduce, loss
 *            allgather) and the replicated norm + AdamW update.
 * Why pairs: this VM's speed drifts by up to 1.4x over tens of seconds
 * (other tenants of the host, invisible from inside), so one 1-rank run and
 * one 2-rank run minutes apart measure the host as much as the program. A
 * round's two steps are adjacent in time; the median over rounds of the
 * per-round ratio is the speedup.
 * usage: mpirun -np 2 bench_dp L d h F T V B [rounds]
 * Output (rank 0): '#' lines, then "RESULT speedup=... t1_s=... t2_s=..." */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_stats.h"
#include "comm.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "util.h"

#define MAX_ROUNDS 64

typedef struct {
    ModelSize s;
    int B;                 /* the global batch */
    Model m;
    Optimizer o;
    Config c;
    uint16_t *tok;         /* [B][T+1] */
    int64_t *usage;
    size_t n_usage;
    double *seq_loss, *seq_loss_all;
} Bench;

/* One training step on sequences first..first+nb-1 of the batch, summed over
 * the communicator c (run.c's step_compute + step_update, without the data
 * loader and the records). Returns the time of its forward + backward. */
static double train_step(Bench *b, Comm *c, int first, int nb) {
    Model *m = &b->m;
    const uint16_t *tok = b->tok + (size_t)first * (b->s.T + 1);
    double t0 = now_seconds();
    memset(b->usage, 0, b->n_usage * sizeof *b->usage);
    model_forward(m, tok, nb, b->usage, NULL, NULL);
    model_zero_grad(m);
    model_backward(m, tok, nb, 1.0f / (float)((double)b->B * b->s.T));
    double compute = now_seconds() - t0;
    comm_allreduce_sum_f32(c, m->grads_memory, m->num_params);
    comm_allreduce_sum_i64(c, b->usage, b->n_usage);
    int counts[2] = {nb, nb};
    for (int i = 0; i < nb; i++) b->seq_loss[i] = model_sequence_loss(m, i);
    comm_allgatherv_f64(c, b->seq_loss, nb, b->seq_loss_all, counts);
    double norm = grad_norm(m->grads_memory, m->num_params);
    LayerMetrics lm;
    for (int l = 0; l < b->s.L; l++) {
        UsageCounts u = usage_view(b->usage, l, b->s.F);
        usage_summarize(&u, b->s.F, &lm);
    }
    optimizer_step(&b->o, m, &b->c, 1e-4, clip_factor(norm, b->c.grad_clip));
    return compute;
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    int rank = comm_world_rank();
    if (argc < 8 || comm_world_size() != 2) {
        if (rank == 0) fprintf(stderr, "usage: mpirun -np 2 bench_dp L d h F T V B [rounds]\n");
        comm_finalize();
        return 2;
    }
    Bench b;
    memset(&b, 0, sizeof b);
    b.s = (ModelSize){"bench", atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                      atoi(argv[5]), atoi(argv[6]), .pos = POS_LEARNED};
    b.B = atoi(argv[7]);
    int rounds = argc > 8 ? atoi(argv[8]) : 5;
    if (b.B < 2 || b.B % 2 || rounds < 1 || rounds > MAX_ROUNDS) die("bench_dp: bad arguments");
    build_model(&b.m, &b.s, b.B);
    model_init_params(&b.m, 1);
    build_optimizer(&b.o, OPT_ADAMW, b.m.num_params);
    b.c.lr = 1e-4; b.c.beta1 = 0.9; b.c.beta2 = 0.95; b.c.eps = 1e-8;
    b.c.weight_decay = 0.1; b.c.grad_clip = 1.0;
    b.tok = xmalloc((size_t)b.B * (b.s.T + 1) * sizeof *b.tok);
    Rng rng;
    rng_seed(&rng, 3, 0);
    for (int i = 0; i < b.B * (b.s.T + 1); i++) b.tok[i] = (uint16_t)rng_below(&rng, b.s.V);
    b.n_usage = (size_t)b.s.L * usage_stride(b.s.F);
    b.usage = xcalloc(b.n_usage, sizeof *b.usage);
    b.seq_loss = xmalloc((size_t)b.B * sizeof(double));
    b.seq_loss_all = xmalloc((size_t)b.B * 2 * sizeof(double));
    Comm alone, pair;
    comm_split(&alone, rank, 0);   /* each rank by itself */
    comm_split(&pair, 0, rank);    /* both */
    double t1[MAX_ROUNDS], t2[MAX_ROUNDS], ratio[MAX_ROUNDS], cratio[MAX_ROUNDS];
    for (int r = -2; r < rounds; r++) {   /* r < 0: warm-up, each rank solo once */
        int solo = (r + 2) % 2;   /* the rank that trains alone this round */
        comm_world_barrier_idle();
        double t0 = now_seconds();
        double ac[2] = {0.0, 0.0};   /* the solo step: whole, forward + backward */
        if (rank == solo) ac[1] = train_step(&b, &alone, 0, b.B);
        if (rank == solo) ac[0] = now_seconds() - t0;
        comm_world_barrier_idle();
        comm_allreduce_sum_f64(&pair, ac, 2);   /* the solo rank's times, on both */
        t0 = now_seconds();
        double pc = train_step(&b, &pair, rank * (b.B / 2), b.B / 2);
        double p = now_seconds() - t0;
        float pcf = (float)pc;
        comm_allreduce_max_f32(&pair, &pcf, 1);   /* the slower rank's forward + backward */
        pc = pcf;
        if (r >= 0) { t1[r] = ac[0]; t2[r] = p; ratio[r] = ac[0] / p; cratio[r] = ac[1] / pc; }
    }
    if (rank == 0) {
        double m1 = bench_median(t1, rounds), m2 = bench_median(t2, rounds);
        double sp = bench_median(ratio, rounds);
        double lo = ratio[0], hi = ratio[0];
        for (int r = 1; r < rounds; r++) {
            lo = ratio[r] < lo ? ratio[r] : lo;
            hi = ratio[r] > hi ? ratio[r] : hi;
        }
        printf("# %d rounds of (1 rank on B=%d, 2 ranks on B/2 each): step %.1f ms vs %.1f ms; "
               "median per-round speedup %.2fx (range %.2f-%.2f)\n", rounds, b.B, 1e3 * m1,
               1e3 * m2, sp, lo, hi);
        /* forward + backward alone (the slower rank's): what the two cores give
         * the arithmetic, before any communication or replicated update */
        double csp = bench_median(cratio, rounds);
        printf("# forward + backward alone: median per-round speedup %.2fx; the rest of the "
               "2-rank step (allreduces, replicated norm + AdamW) costs %.1f%% of it\n", csp,
               100.0 * (1.0 - sp / csp));
        printf("RESULT speedup=%.4f t1_s=%.6f t2_s=%.6f rounds=%d compute_speedup=%.4f\n", sp,
               m1, m2, rounds, csp);
    }
    comm_free(&alone);
    comm_free(&pair);
    free(b.tok); free(b.usage); free(b.seq_loss); free(b.seq_loss_all);
    free_optimizer(&b.o);
    free_model(&b.m);
    comm_finalize();
    return 0;
}
