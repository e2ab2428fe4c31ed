/* bench_comm.c — the communication of one data-parallel training step,
 * through the comm.h API exactly as the trainer calls it (run.c
 * step_compute): the gradient allreduce (num_params floats), the metric
 * allreduce (L * usage_stride(F) int64) and the allgather of per-sequence
 * losses. Run it under mpirun with the rank count of interest.
 * usage: bench_comm NUM_PARAMS USAGE_LEN SEQ_PER_RANK [reps]
 * Output (rank 0): '#' lines, then "RESULT grad_s=... usage_s=... loss_s=..."
 * (medians over reps, each repetition started together after a barrier). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_stats.h"
#include "comm.h"
#include "util.h"

#define MAX_REPS 64

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    if (argc < 4) {
        if (comm_world_rank() == 0)
            fprintf(stderr, "usage: bench_comm NUM_PARAMS USAGE_LEN SEQ_PER_RANK [reps]\n");
        comm_finalize();
        return 2;
    }
    size_t np = strtoull(argv[1], NULL, 10), nu = strtoull(argv[2], NULL, 10);
    int nseq = atoi(argv[3]), reps = argc > 4 ? atoi(argv[4]) : 7;
    if (reps < 1 || reps > MAX_REPS || nseq < 1) die("bench_comm: bad arguments");
    Comm c;
    comm_split(&c, 0, comm_world_rank());
    float *g = xaligned_alloc(np * sizeof *g);
    int64_t *u = xaligned_alloc(nu * sizeof *u);
    double *mine = xmalloc((size_t)nseq * sizeof *mine);
    double *all = xmalloc((size_t)nseq * c.size * sizeof *all);
    int *counts = xmalloc((size_t)c.size * sizeof *counts);
    for (int r = 0; r < c.size; r++) counts[r] = nseq;
    for (size_t i = 0; i < np; i++) g[i] = 1e-3f * (float)(i % 1000);
    for (int i = 0; i < nseq; i++) mine[i] = i;
    double tg[MAX_REPS], tu[MAX_REPS], tl[MAX_REPS];
    for (int r = -1; r < reps; r++) {   /* r = -1: warm-up */
        comm_world_barrier();
        double t0 = now_seconds();
        comm_allreduce_sum_f32(&c, g, np);
        double t1 = now_seconds();
        comm_allreduce_sum_i64(&c, u, nu);
        double t2 = now_seconds();
        comm_allgatherv_f64(&c, mine, nseq, all, counts);
        double t3 = now_seconds();
        if (r >= 0) { tg[r] = t1 - t0; tu[r] = t2 - t1; tl[r] = t3 - t2; }
        for (size_t i = 0; i < np; i += 4096) g[i] = 0.0f;   /* keep it honest, cheap */
    }
    if (c.rank == 0) {
        double mg = bench_median(tg, reps), mu = bench_median(tu, reps);
        double ml = bench_median(tl, reps);
        printf("# %d ranks: allreduce %zu floats %.2f ms (%.2f GB/s of buffer), %zu int64 %.3f ms, "
               "allgatherv %.3f ms\n", c.size, np, 1e3 * mg, np * 4.0 / mg / 1e9, nu, 1e3 * mu,
               1e3 * ml);
        printf("RESULT ranks=%d grad_s=%.6f usage_s=%.6f loss_s=%.6f\n", c.size, mg, mu, ml);
    }
    free(g); free(u); free(mine); free(all); free(counts);
    comm_free(&c);
    comm_finalize();
    return 0;
}
