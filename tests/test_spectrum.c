/* test_spectrum.c — spectra of centred activation matrices (spectrum.h)
 * against LAPACK's dgesvd on the whole matrix, and the stable rank.
 *
 *   test_spectrum              one process (1 × 1 BLACS grid)
 *   test_spectrum --mpi        under mpirun: rows split over the ranks
 *                              (uneven, some ranks possibly empty), the
 *                              reference computed on the gathered matrix
 *   test_spectrum --bench N F  cost of one layer's spectrum (not a test)
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "comm.h"
#include "rng.h"
#include "scalapack.h"
#include "spectrum.h"
#include "util.h"

/* ---- matrices ---- */

/* ReLU-like activations N × F: most columns ReLU(normal + shift_f), a few
 * all-zero (dead units) and one constant nonzero column (both are exactly
 * zero after centring). */
static float *relu_matrix(uint64_t seed, int N, int F, int *n_constant) {
    Rng r;
    rng_seed(&r, seed, 0);
    float *a = xmalloc((size_t)N * F * sizeof *a);
    int dead = F >= 8 ? 3 : 0, constant = F >= 8 ? 1 : 0;
    for (int i = 0; i < N; i++)
        for (int f = 0; f < F; f++) {
            float v = rng_normal(&r) + 0.5f * (float)(f % 5) - 1.0f;
            if (f < dead) v = 0.0f;
            else if (f < dead + constant) v = 0.75f;
            a[(size_t)i * F + f] = v > 0.0f ? v : 0.0f;
        }
    if (n_constant) *n_constant = dead + constant;
    return a;
}

/* Exact rank r: A[i][j] = Σ_{k=1..r} h_k(i) h_k(j) + j/4 with Walsh
 * functions h_k(i) = (−1)^popcount(i & k), which are orthogonal and (k ≥ 1)
 * zero-mean. Every entry is exact in float, the column offsets vanish on
 * centring, and the r singular values all equal √(N·F) (N, F powers of 2). */
static float *walsh_matrix(int N, int F, int r) {
    float *a = xmalloc((size_t)N * F * sizeof *a);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < F; j++) {
            int v = 0;
            for (int k = 1; k <= r; k++)
                v += (__builtin_popcount((unsigned)(i & k)) & 1 ? -1 : 1) *
                     (__builtin_popcount((unsigned)(j & k)) & 1 ? -1 : 1);
            a[(size_t)i * F + j] = (float)v + 0.25f * (float)j;
        }
    return a;
}

/* ---- references ---- */

/* Singular values (descending, zero-padded to F) of A (N × F, doubles,
 * row-major) after centring its columns, by LAPACK dgesvd. */
static void reference_sigma(const double *A, int N, int F, double *sigma) {
    double *c = xmalloc((size_t)N * F * sizeof *c);
    for (int f = 0; f < F; f++) {
        double m = 0.0;
        for (int i = 0; i < N; i++) m += A[(size_t)i * F + f];
        m /= N > 0 ? N : 1;
        for (int i = 0; i < N; i++) c[(size_t)i * F + f] = A[(size_t)i * F + f] - m;
    }
    memset(sigma, 0, (size_t)F * sizeof *sigma);
    int k = N < F ? N : F, one = 1, info = 0, lwork = -1;
    double query = 0.0, dummy = 0.0;
    /* row-major N × F is column-major F × N: same singular values */
    dgesvd_("N", "N", &F, &N, c, &F, sigma, &dummy, &one, &dummy, &one, &query, &lwork,
            &info, 1, 1);
    lwork = (int)query + 1;
    double *work = xmalloc((size_t)lwork * sizeof *work);
    dgesvd_("N", "N", &F, &N, c, &F, sigma, &dummy, &one, &dummy, &one, work, &lwork,
            &info, 1, 1);
    CHECK(info == 0, "reference dgesvd info %d", info);
    for (int i = k; i < F; i++) sigma[i] = 0.0;
    free(work);
    free(c);
}

static void reference_stats(const double *sigma, int F, double *eff, double *part) {
    double s2 = 0.0, s4 = 0.0, H = 0.0;
    for (int i = 0; i < F; i++) { s2 += sigma[i] * sigma[i]; s4 += pow(sigma[i], 4); }
    for (int i = 0; i < F && s2 > 0.0; i++) {
        double p = sigma[i] * sigma[i] / s2;
        if (p > 0.0) H -= p * log(p);
    }
    *eff = s2 > 0.0 ? exp(H) : 0.0;
    *part = s2 > 0.0 ? s2 * s2 / s4 : 0.0;
}

/* Our spectrum against the reference: every σ within 1e-4 relative (plus
 * 1e-6 σ_max absolute, for the σ that are zero in exact arithmetic), the
 * derived numbers within 1e-6 relative. */
static void compare(const char *what, const Spectrum *s, const SpectrumStats *st,
                    const double *ref, int F) {
    const double *sig = spectrum_values(s);
    int bad = 0, worst_i = 0;
    double worst = 0.0;
    for (int i = 0; i < F; i++) {
        double err = fabs(sig[i] - ref[i]), tol = 1e-4 * ref[i] + 1e-6 * ref[0];
        if (!(err <= tol)) bad++;
        if (err > worst || sig[i] != sig[i]) { worst = err; worst_i = i; }
    }
    CHECK(bad == 0, "%s: %d of %d singular values differ from dgesvd (worst #%d: %.9g vs %.9g)",
          what, bad, F, worst_i, sig[worst_i], ref[worst_i]);
    double eff, part;
    reference_stats(ref, F, &eff, &part);
    CHECK(st->ok, "%s: spectrum not computed", what);
    CHECK_CLOSE(st->eff_rank, eff, 1e-6, 0.0, "effective rank");
    CHECK_CLOSE(st->participation, part, 1e-6, 0.0, "participation ratio");
}

static double *to_double(const float *a, size_t n) {
    double *d = xmalloc((n + 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

/* ---- one process ---- */

static void test_random(Comm *c) {
    const int N = 300, F = 40, topk = 6;
    int n_const;
    float *a = relu_matrix(1, N, F, &n_const);
    double *ad = to_double(a, (size_t)N * F), ref[40], top[6];
    reference_sigma(ad, N, F, ref);
    Spectrum *s = build_spectrum(c, F, topk);
    SpectrumStats st;
    spectrum_layer(s, a, N, top, &st);
    compare("random relu 300x40", s, &st, ref, F);
    CHECK(st.n_rows == N, "rows counted %lld", (long long)st.n_rows);
    CHECK(st.active_cols == F - n_const, "active columns %d, expected %d", st.active_cols,
          F - n_const);
    CHECK(st.rank == F - n_const, "numerical rank %d, expected %d", st.rank, F - n_const);
    for (int k = 0; k < topk; k++)
        CHECK(top[k] == spectrum_values(s)[k], "top-%d value %g", k, top[k]);
    double sum_sq = 0.0;
    for (int i = 0; i < F; i++) sum_sq += ref[i] * ref[i];
    CHECK_CLOSE(st.sum_sq, sum_sq, 1e-9, 0.0, "sum of sigma^2");
    free_spectrum(s);
    free(a); free(ad);
}

static void test_known_rank(Comm *c) {
    const int N = 64, F = 32, r = 5, topk = 8;
    float *a = walsh_matrix(N, F, r);
    double top[8];
    Spectrum *s = build_spectrum(c, F, topk);
    SpectrumStats st;
    spectrum_layer(s, a, N, top, &st);
    const double *sig = spectrum_values(s);
    double expect = sqrt((double)N * F);
    int nonzero = 0;
    for (int i = 0; i < F; i++) nonzero += sig[i] > 1e-6 * sig[0];
    CHECK(nonzero == r, "rank-%d matrix: %d singular values above 1e-6 sigma_max", r, nonzero);
    CHECK(st.rank == r, "rank-%d matrix: numerical rank %d", r, st.rank);
    for (int i = 0; i < r; i++) CHECK_CLOSE(sig[i], expect, 1e-10, 0.0, "equal singular value");
    CHECK_CLOSE(st.eff_rank, (double)r, 1e-9, 0.0, "exp(H) of r equal values");
    CHECK_CLOSE(st.participation, (double)r, 1e-9, 0.0, "participation of r equal values");
    for (int k = r; k < topk; k++) CHECK(top[k] == 0.0, "top-%d beyond the rank is %g", k, top[k]);
    free_spectrum(s);
    /* topk larger than F: padded with zeros */
    s = build_spectrum(c, F, F + 4);
    double *big = xmalloc((size_t)(F + 4) * sizeof *big);
    spectrum_layer(s, a, N, big, NULL);
    for (int k = F; k < F + 4; k++) CHECK(big[k] == 0.0, "top-%d beyond F is %g", k, big[k]);
    CHECK_CLOSE(big[0], expect, 1e-10, 0.0, "top-0 with topk > F");
    free(big);
    free_spectrum(s);
    free(a);
}

/* Zero, constant, one-row and empty matrices: σ = 0, stats 0, no NaN. */
static void test_degenerate(Comm *c) {
    const int N = 50, F = 20;
    float *a = xcalloc((size_t)N * F, sizeof *a);
    Spectrum *s = build_spectrum(c, F, 4);
    const char *names[4] = {"all-zero", "all-constant", "one row", "no rows"};
    int rows[4] = {N, N, 1, 0};
    for (int t = 0; t < 4; t++) {
        if (t == 1) for (size_t i = 0; i < (size_t)N * F; i++) a[i] = 0.5f + (float)(i % F);
        double top[4] = {-1, -1, -1, -1};
        SpectrumStats st;
        spectrum_layer(s, a, rows[t], top, &st);
        int bad = 0;
        for (int i = 0; i < F; i++) bad += spectrum_values(s)[i] != 0.0;
        for (int k = 0; k < 4; k++) bad += top[k] != 0.0;
        CHECK(bad == 0 && st.ok, "%s: %d nonzero or NaN singular values", names[t], bad);
        CHECK(st.eff_rank == 0.0 && st.participation == 0.0 && st.sum_sq == 0.0,
              "%s: eff_rank %g participation %g sum %g (expected 0)", names[t], st.eff_rank,
              st.participation, st.sum_sq);
        CHECK(st.rank == 0 && st.active_cols == 0 && st.n_rows == rows[t],
              "%s: rank %d active %d rows %lld", names[t], st.rank, st.active_cols,
              (long long)st.n_rows);
    }
    /* a non-finite activation (a diverged run): NaN, flagged, no crash */
    a[7] = NAN;
    SpectrumStats st;
    spectrum_layer(s, a, N, NULL, &st);
    CHECK(!st.ok && isnan(st.eff_rank) && isnan(spectrum_values(s)[0]),
          "NaN input: ok %d eff_rank %g", st.ok, st.eff_rank);
    free_spectrum(s);
    free(a);
}

static void test_stable_rank(void) {
    float w[15] = {0}, wt[15] = {0};
    w[0 * 5 + 0] = 3; w[1 * 5 + 1] = 2; w[2 * 5 + 2] = -1;     /* 3 × 5, σ = 3, 2, 1 */
    for (int i = 0; i < 3; i++) for (int j = 0; j < 5; j++) wt[j * 3 + i] = w[i * 5 + j];
    CHECK_CLOSE(stable_rank(w, 3, 5), 14.0 / 9.0, 1e-12, 0.0, "stable rank 3x5");
    CHECK_CLOSE(stable_rank(wt, 5, 3), 14.0 / 9.0, 1e-12, 0.0, "stable rank 5x3");
    float u[4] = {1, -2, 0.5f, 3}, v[6] = {2, 1, -1, 0.25f, 4, -3}, r1[24];
    for (int i = 0; i < 4; i++) for (int j = 0; j < 6; j++) r1[i * 6 + j] = u[i] * v[j];
    CHECK_CLOSE(stable_rank(r1, 4, 6), 1.0, 1e-9, 0.0, "stable rank of a rank-1 matrix");
    float z[12] = {0};
    CHECK(stable_rank(z, 3, 4) == 0.0, "stable rank of zero: %g", stable_rank(z, 3, 4));
    /* a random 48 × 80 weight against dgesvd */
    const int R = 48, C = 80;
    Rng g;
    rng_seed(&g, 7, 0);
    float *wr = xmalloc((size_t)R * C * sizeof *wr);
    double *wd = xmalloc((size_t)R * C * sizeof *wd), sig[48], fro = 0.0;
    for (int i = 0; i < R * C; i++) {
        wr[i] = 0.02f * rng_normal(&g);
        wd[i] = wr[i];
        fro += wd[i] * wd[i];
    }
    int one = 1, info = 0, lwork = 4096;
    double dummy = 0.0, *work = xmalloc((size_t)lwork * sizeof *work);
    int m = C, n = R;
    dgesvd_("N", "N", &m, &n, wd, &m, sig, &dummy, &one, &dummy, &one, work, &lwork, &info, 1, 1);
    CHECK_CLOSE(stable_rank(wr, R, C), fro / (sig[0] * sig[0]), 1e-10, 0.0, "stable rank 48x80");
    free(work); free(wd); free(wr);
}

/* ---- several ranks ---- */

/* This rank's share of N rows: the contiguous split the trainer uses
 * (counts differ by at most one; ranks beyond N get none). */
static void my_rows(const Comm *c, int N, int *first, int *count) {
    *first = (int)((int64_t)N * c->rank / c->size);
    *count = (int)((int64_t)N * (c->rank + 1) / c->size) - *first;
}

/* Split a (N × F, identical on every rank) over the group, compute the
 * spectrum, gather the rows back and compare with dgesvd on the gathered
 * matrix; check every rank holds the same σ. */
static void distributed_case(Comm *c, const char *what, const float *a, int N, int F) {
    int first, count;
    my_rows(c, N, &first, &count);
    const float *mine = a + (size_t)first * F;
    Spectrum *s = build_spectrum(c, F, 4);
    SpectrumStats st;
    spectrum_layer(s, mine, count, NULL, &st);
    int *counts = xmalloc((size_t)c->size * sizeof *counts);
    for (int r = 0; r < c->size; r++) {
        int lo = (int)((int64_t)N * r / c->size), hi = (int)((int64_t)N * (r + 1) / c->size);
        counts[r] = (hi - lo) * F;
    }
    double *md = to_double(mine, (size_t)count * F);
    double *all = xmalloc(((size_t)N * F + 1) * sizeof *all);
    comm_allgatherv_f64(c, md, count * F, all, counts);
    double *ref = xmalloc((size_t)F * sizeof *ref);
    reference_sigma(all, N, F, ref);
    compare(what, s, &st, ref, F);
    CHECK(st.n_rows == N, "%s: %lld rows counted", what, (long long)st.n_rows);
    uint32_t crc = crc32_update(0, spectrum_values(s), (size_t)F * sizeof(double));
    CHECK(comm_all_equal_u32(c, crc), "%s: ranks disagree on the singular values", what);
    free(ref); free(all); free(md); free(counts);
    free_spectrum(s);
}

static void test_mpi(Comm *c) {
    Spectrum *s = build_spectrum(c, 8, 1);
    int pr, pc, want_pr, want_pc;
    spectrum_grid(s, &pr, &pc);
    free_spectrum(s);
    want_pc = c->size == 4 ? 2 : 1;
    want_pr = c->size / want_pc;
    if (c->size == 1 || c->size == 2 || c->size == 4)
        CHECK(pr == want_pr && pc == want_pc, "%d ranks: grid %d x %d", c->size, pr, pc);
    /* 150 columns (146 active): several 64-blocks spread over the grid */
    float *a = relu_matrix(11, 301, 150, NULL);
    distributed_case(c, "relu 301x150", a, 301, 150);
    free(a);
    a = walsh_matrix(64, 32, 5);
    distributed_case(c, "walsh rank 5", a, 64, 32);
    free(a);
    /* fewer rows than ranks on 4 ranks: one rank holds nothing */
    a = relu_matrix(12, 3, 10, NULL);
    distributed_case(c, "3 rows", a, 3, 10);
    free(a);
    a = xcalloc(40 * 12, sizeof *a);
    distributed_case(c, "all zero", a, 40, 12);
    free(a);
}

/* ---- cost ---- */

/* One layer of N × F ReLU activations split over the ranks, and the stable
 * rank of a 512 × F weight: seconds (slowest rank). */
static void bench(Comm *c, int N, int F, int reps) {
    int first, count;
    my_rows(c, N, &first, &count);
    Rng r;
    rng_seed(&r, 3, (uint64_t)c->rank);
    float *a = xmalloc(((size_t)count * F + 1) * sizeof *a);
    for (size_t i = 0; i < (size_t)count * F; i++) {
        float v = rng_normal(&r) - 0.5f;
        a[i] = v > 0.0f ? v : 0.0f;
    }
    Spectrum *s = build_spectrum(c, F, 16);
    int pr, pc;
    spectrum_grid(s, &pr, &pc);
    for (int k = 0; k < reps; k++) {
        SpectrumStats st;
        spectrum_layer(s, a, count, NULL, &st);
        float t = (float)st.seconds;
        comm_allreduce_max_f32(c, &t, 1);
        if (c->rank == 0)
            printf("spectrum N=%d F=%d ranks=%d grid=%dx%d: %.3f s (rank 0: gram %.3f, "
                   "reduce %.3f, eigen %.3f), eff_rank %.2f, participation %.2f, active %d\n",
                   N, F, c->size, pr, pc, t, st.seconds_gram, st.seconds_reduce,
                   st.seconds_eigen, st.eff_rank, st.participation, st.active_cols);
    }
    free_spectrum(s);
    float *w = xmalloc((size_t)512 * F * sizeof *w);
    for (size_t i = 0; i < (size_t)512 * F; i++) w[i] = 0.02f * rng_normal(&r);
    double t0 = now_seconds(), sr = stable_rank(w, 512, F), t1 = now_seconds() - t0;
    if (c->rank == 0) printf("stable_rank 512x%d: %.3f s (%.2f)\n", F, t1, sr);
    free(w);
    free(a);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    Comm c;
    comm_split(&c, 0, comm_world_rank());
    int mode_mpi = argc > 1 && !strcmp(argv[1], "--mpi");
    if (argc > 3 && !strcmp(argv[1], "--bench")) {
        bench(&c, atoi(argv[2]), atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 2);
        comm_free(&c);
        comm_finalize();
        return 0;
    }
    if (mode_mpi) {
        test_mpi(&c);
    } else {
        test_random(&c);
        test_known_rank(&c);
        test_degenerate(&c);
        test_stable_rank();
    }
    /* every rank's failures count: the exit code is the same on all */
    int64_t fails = check_failures;
    comm_allreduce_sum_i64(&c, &fails, 1);
    check_failures = (int)fails;
    int rc = 0;
    if (c.rank == 0) rc = test_done(mode_mpi ? "test_spectrum --mpi" : "test_spectrum");
    else rc = fails ? 1 : 0;
    comm_free(&c);
    comm_finalize();
    return rc;
}
