/* bench_sgemm.c — single-thread cblas_sgemm FLOP/s on one shape, to compare
 * one copy running alone with one copy per core running at the same time
 * (bench/run.sh starts them under taskset): the 2-rank speedup of the
 * trainer cannot exceed what two concurrent GEMMs get from the machine
 * (shared FMA units of SMT siblings, power and frequency limits, memory).
 * usage: bench_sgemm M N K [reps]   C[M][N] = A[M][K] . B[K][N], row-major
 * Output: "RESULT flops=<median over reps of one call's FLOP/s>". */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include "bench_stats.h"
#include "util.h"

#define MAX_REPS 100

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: bench_sgemm M N K [reps]\n"); return 2; }
    int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
    int reps = argc > 4 ? atoi(argv[4]) : 10;
    if (M < 1 || N < 1 || K < 1 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "bench_sgemm: bad arguments\n");
        return 2;
    }
    float *a = xaligned_alloc((size_t)M * K * 4), *b = xaligned_alloc((size_t)K * N * 4);
    float *c = xaligned_alloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    double f[MAX_REPS];
    for (int r = -1; r < reps; r++) {   /* r = -1: warm-up */
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N,
                    0.0f, c, N);
        if (r >= 0) f[r] = 2.0 * M * N * K / (now_seconds() - t0);
    }
    qsort(f, (size_t)reps, sizeof *f, bench_cmp_double);
    printf("RESULT flops=%.6e\n", f[reps / 2]);
    free(a); free(b); free(c);
    return 0;
}
