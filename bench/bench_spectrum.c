/* bench_spectrum.c — the held-out spectrum of one layer (spectrum.h), as the
 * trainer computes it every eval_every steps for each of the L layers: a
 * ROWS x F activation matrix (eval_tokens rows, split over the ranks) in,
 * singular values, effective rank and participation out. The matrix is
 * ReLU'd Gaussian noise with a per-unit offset, so that every column is
 * active (no dead unit is dropped: the worst case, as at initialisation).
 * usage: bench_spectrum ROWS F [reps]      (under mpirun for several ranks)
 * Output (rank 0): '#' lines, then "RESULT layer_s=... gram_s=... eigen_s=..." */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_stats.h"
#include "comm.h"
#include "rng.h"
#include "spectrum.h"
#include "util.h"

#define MAX_REPS 32

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    if (argc < 3) die("usage: bench_spectrum ROWS F [reps]");
    int rows = atoi(argv[1]), F = atoi(argv[2]), reps = argc > 3 ? atoi(argv[3]) : 3;
    if (rows < 1 || F < 1 || reps < 1 || reps > MAX_REPS) die("bench_spectrum: bad arguments");
    Comm c;
    comm_split(&c, 0, comm_world_rank());
    int first = (int)((long)rows * c.rank / c.size), last = (int)((long)rows * (c.rank + 1) / c.size);
    int n = last - first;
    float *a = xaligned_alloc((size_t)(n > 0 ? n : 1) * F * sizeof *a);
    Rng rng;
    rng_seed(&rng, 7, (uint64_t)c.rank);
    for (int i = 0; i < n; i++)
        for (int f = 0; f < F; f++) {
            float x = rng_normal(&rng) + 0.5f * sinf((float)f);
            a[(size_t)i * F + f] = x > 0.0f ? x : 0.0f;
        }
    Spectrum *s = build_spectrum(&c, F, 16);
    double top[16], tl[MAX_REPS], tg[MAX_REPS], te[MAX_REPS];
    SpectrumStats st;
    for (int r = 0; r < reps; r++) {
        comm_world_barrier();
        spectrum_layer(s, a, n, top, &st);
        tl[r] = st.seconds; tg[r] = st.seconds_gram; te[r] = st.seconds_eigen;
    }
    if (c.rank == 0) {
        double ml = bench_median(tl, reps), mg = bench_median(tg, reps);
        double me = bench_median(te, reps);
        printf("# %d ranks, %d x %d: %.3f s per layer (gram %.3f, eigen %.3f); eff. rank %.1f, "
               "active columns %d\n", c.size, rows, F, ml, mg, me, st.eff_rank, st.active_cols);
        printf("RESULT ranks=%d layer_s=%.6f gram_s=%.6f eigen_s=%.6f\n", c.size, ml, mg, me);
    }
    free_spectrum(s);
    free(a);
    comm_free(&c);
    comm_finalize();
    return 0;
}
