/* spectrum.c — singular values of a layer's centred activations through the
 * Gram matrix and ScaLAPACK's symmetric eigensolver (see docs/spectrum.md
 * for why this route and not pdgesvd on the tall matrix). */
#include "spectrum.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "scalapack.h"
#include "util.h"

/* ScaLAPACK block size (square blocks: pdsyev and pdsyevr need MB = NB).
 * 64 keeps the BLAS-3 part of the tridiagonal reduction efficient. */
#define SPECTRUM_NB 64
/* Rows converted to double per dsyrk call: large enough for BLAS-3 speed
 * (larger chunks measured no faster), small enough that the double copy
 * (ROW_CHUNK × F) stays small: 16 MB at F = 4096. */
#define ROW_CHUNK 512

struct Spectrum {
    Comm *comm;
    int F, topk;
    int ctx;                    /* BLACS context of the grid */
    int nprow, npcol, myrow, mycol;
    double *sigma;              /* [F] last result, descending */
    double *colsum;             /* [F + 1] column sums, then the row count */
    float *colext;              /* [2F] column max, then −min */
    double *mean;               /* [F] */
    int *active;                /* [F] the non-constant columns */
};

/* Spectrum objects alive on this rank: BLACS' global state is released
 * when the last one goes (see free_spectrum). */
static int live_spectra = 0;

/* The most square Pr × Pc = P with Pr ≥ Pc (a prime P gives P × 1). */
static void grid_shape(int P, int *pr, int *pc) {
    int c = 1;
    for (int i = 1; (long)i * i <= P; i++)
        if (P % i == 0) c = i;
    *pc = c;
    *pr = P / c;
}

Spectrum *build_spectrum(Comm *c, int F, int topk) {
    if (F < 1 || topk < 0) die("build_spectrum: F = %d, topk = %d", F, topk);
    Spectrum *s = xcalloc(1, sizeof *s);
    s->comm = c;
    s->F = F;
    s->topk = topk;
    grid_shape(c->size, &s->nprow, &s->npcol);
    /* The system handle is only needed to create the grid (which gets its own
     * communicators); releasing it at once keeps BLACS' handle table from
     * compacting under a handle we still hold. */
    int handle = comm_blacs_handle(c);
    s->ctx = handle;
    Cblacs_gridinit(&s->ctx, "Row", s->nprow, s->npcol);
    Cfree_blacs_system_handle(handle);
    int pr, pc;
    Cblacs_gridinfo(s->ctx, &pr, &pc, &s->myrow, &s->mycol);
    if (pr != s->nprow || pc != s->npcol || s->myrow < 0)
        die("BLACS gave a %d x %d grid for %d ranks (asked %d x %d)", pr, pc, c->size,
            s->nprow, s->npcol);
    s->sigma = xcalloc((size_t)F, sizeof *s->sigma);
    s->colsum = xmalloc(((size_t)F + 1) * sizeof *s->colsum);
    s->colext = xmalloc(2 * (size_t)F * sizeof *s->colext);
    s->mean = xmalloc((size_t)F * sizeof *s->mean);
    s->active = xmalloc((size_t)F * sizeof *s->active);
    live_spectra++;
    return s;
}

void free_spectrum(Spectrum *s) {
    if (!s) return;
    Cblacs_gridexit(s->ctx);
    /* BLACS completes some of its sends lazily and keeps the requests and
     * buffers; with no grid left, finish them now, so nothing is pending at
     * MPI_Finalize and a long sweep does not accumulate BLACS state. */
    if (--live_spectra == 0) Cblacs_exit(1);
    free(s->sigma); free(s->colsum); free(s->colext); free(s->mean); free(s->active);
    free(s);
}

void spectrum_grid(const Spectrum *s, int *nprow, int *npcol) {
    *nprow = s->nprow;
    *npcol = s->npcol;
}

const double *spectrum_values(const Spectrum *s) { return s->sigma; }

/* Column sums, max and min over the group; the column means; the list of
 * columns that are not constant over all rows. Returns the active count,
 * or −1 if a value is not finite (every rank sees the same reduced sums, so
 * every rank takes the same branch). */
static int column_stats(Spectrum *s, const float *rows, int n, int64_t *n_total) {
    int F = s->F;
    double *sum = s->colsum;
    float *mx = s->colext, *neg_mn = s->colext + F;
    for (int f = 0; f < F; f++) { sum[f] = 0.0; mx[f] = -INFINITY; neg_mn[f] = -INFINITY; }
    for (int i = 0; i < n; i++) {
        const float *r = rows + (size_t)i * F;
        for (int f = 0; f < F; f++) {
            sum[f] += r[f];
            mx[f] = r[f] > mx[f] ? r[f] : mx[f];
            neg_mn[f] = -r[f] > neg_mn[f] ? -r[f] : neg_mn[f];
        }
    }
    sum[F] = (double)n;
    comm_allreduce_sum_f64(s->comm, sum, (size_t)F + 1);
    comm_allreduce_max_f32(s->comm, s->colext, 2 * (size_t)F);
    *n_total = (int64_t)sum[F];
    int na = 0;
    for (int f = 0; f < F; f++) {
        if (!isfinite(sum[f])) return -1;
        s->mean[f] = *n_total > 0 ? sum[f] / (double)*n_total : 0.0;
        /* constant ⇔ max = min: such a column centres to exact zeros (the
         * double mean of n equal floats is that float) */
        if (*n_total > 0 && mx[f] != -neg_mn[f]) s->active[na++] = f;
    }
    return na;
}

/* G (na × na, column-major, lower triangle) = Σ over this rank's rows of
 * x xᵀ, x = the row's active columns minus their means, in double. */
static void local_gram(const Spectrum *s, const float *rows, int n, int na, double *G) {
    memset(G, 0, (size_t)na * na * sizeof *G);
    double *x = xmalloc((size_t)ROW_CHUNK * na * sizeof *x);
    for (int i0 = 0; i0 < n; i0 += ROW_CHUNK) {
        int c = n - i0 < ROW_CHUNK ? n - i0 : ROW_CHUNK;
        for (int i = 0; i < c; i++) {
            const float *r = rows + (size_t)(i0 + i) * s->F;
            double *xi = x + (size_t)i * na;
            for (int a = 0; a < na; a++) xi[a] = (double)r[s->active[a]] - s->mean[s->active[a]];
        }
        /* x is row-major [c][na], i.e. the column-major na × c matrix X:
         * G += X Xᵀ sums the outer products of the rows */
        cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, na, c, 1.0, x, na, 1.0, G, na);
    }
    free(x);
}

/* Pack the lower triangle column by column, in place (column j moves to
 * offset j·na − j(j−1)/2 ≤ j·na + j, so moving in order never overwrites
 * unread data). Halves what the reduction sends. */
static size_t pack_lower(double *G, int na) {
    size_t off = 0;
    for (int j = 0; j < na; j++) {
        memmove(G + off, G + (size_t)j * na + j, (size_t)(na - j) * sizeof *G);
        off += (size_t)(na - j);
    }
    return off;
}

/* This process's block-cyclic part of the symmetric matrix whose lower
 * triangle is packed in P (upper part left 0: uplo "L" never reads it). */
static void scatter_packed(const Spectrum *s, const double *P, int na, double *a,
                           int mloc, int nloc, int lld) {
    const int nb = SPECTRUM_NB;
    for (int jl = 0; jl < nloc; jl++) {
        int j = ((jl / nb) * s->npcol + s->mycol) * nb + jl % nb;
        /* packed offset of (j, j): Σ_{k<j} (na − k) = j (2 na − j + 1) / 2 */
        size_t col = (size_t)j * (2 * (size_t)na - (size_t)j + 1) / 2;
        double *aj = a + (size_t)jl * lld;
        for (int il = 0; il < mloc; il++) {
            int i = ((il / nb) * s->nprow + s->myrow) * nb + il % nb;
            aj[il] = i >= j ? P[col + (size_t)(i - j)] : 0.0;
        }
    }
}

/* Both drivers spend nearly all their time reducing the matrix to
 * tridiagonal form, and differ in where that happens:
 *   pdsyev  — pdsytrd on the whole Pr × Pc grid;
 *   pdsyevr — pdsyntrd, which copies the matrix to a ⌊√P⌋ × ⌊√P⌋ sub-grid
 *             and runs pdsyttrd there, or LAPACK dsytrd when ⌊√P⌋ = 1.
 * So pdsyevr is the faster one on square grids (1 × 1: plain dsytrd, no
 * PBLAS overhead; 2 × 2, 3 × 3: the tuned pdsyttrd on every process), and
 * pdsyev on the others, where pdsyevr would leave ranks idle (on 2 or 3
 * ranks, the whole reduction would run on one). docs/spectrum.md has the
 * timings. */
static int run_pdsyevr(double *a, int na, const int *desc, double *w) {
    int one = 1, m = 0, nz = 0, info = 0;
    /* range "A": vl, vu, il, iu unused; jobz "N": z unused (a valid pointer) */
    double vl = 0.0, vu = 0.0, wquery = 0.0;
    int lwork = -1, liwork = -1, iquery = 0;
    pdsyevr_("N", "A", "L", &na, a, &one, &one, desc, &vl, &vu, &one, &na, &m, &nz, w, a,
             &one, &one, desc, &wquery, &lwork, &iquery, &liwork, &info, 1, 1, 1);
    if (info != 0) return info;
    lwork = (int)wquery + 1;
    liwork = iquery + 1;
    double *work = xmalloc((size_t)lwork * sizeof *work);
    int *iwork = xmalloc((size_t)liwork * sizeof *iwork);
    pdsyevr_("N", "A", "L", &na, a, &one, &one, desc, &vl, &vu, &one, &na, &m, &nz, w, a,
             &one, &one, desc, work, &lwork, iwork, &liwork, &info, 1, 1, 1);
    free(iwork);
    free(work);
    return info == 0 && m != na ? -1000 - m : info;   /* every eigenvalue or failure */
}

static int run_pdsyev(double *a, int na, const int *desc, double *w) {
    int one = 1, info = 0, lwork = -1;
    double query = 0.0;
    pdsyev_("N", "L", &na, a, &one, &one, desc, w, a, &one, &one, desc, &query, &lwork,
            &info, 1, 1);
    if (info != 0) return info;
    lwork = (int)query + 1;
    double *work = xmalloc((size_t)lwork * sizeof *work);
    pdsyev_("N", "L", &na, a, &one, &one, desc, w, a, &one, &one, desc, work, &lwork,
            &info, 1, 1);
    free(work);
    return info;
}

/* Eigenvalues (ascending, in w, on every rank) of the na × na symmetric
 * matrix whose local block-cyclic part is a (leading dimension lld), lower
 * triangle referenced. Returns 0 on success. */
static int solve_eigen(const Spectrum *s, double *a, int na, int lld, double *w) {
    int desc[9], info = 0, zero = 0, nb = SPECTRUM_NB;
    descinit_(desc, &na, &na, &nb, &nb, &zero, &zero, &s->ctx, &lld, &info);
    if (info != 0) return info;
    return s->nprow == s->npcol ? run_pdsyevr(a, na, desc, w) : run_pdsyev(a, na, desc, w);
}

/* σ² of the active columns: local Gram, sum over the group (packed lower
 * triangle), block-cyclic copy, eigensolver. On one rank the full column-major
 * Gram already is the 1 × 1 grid's local array, so it is used in place. */
static int active_eigenvalues(const Spectrum *s, const float *rows, int n, int na,
                              double *w, SpectrumStats *st) {
    double t0 = now_seconds();
    double *G = xmalloc((size_t)na * na * sizeof *G);
    local_gram(s, rows, n, na, G);
    double t1 = now_seconds();
    st->seconds_gram += t1 - t0;
    if (s->comm->size == 1) {
        int info = solve_eigen(s, G, na, na, w);
        free(G);
        st->seconds_eigen = now_seconds() - t1;
        return info;
    }
    size_t packed = pack_lower(G, na);
    comm_allreduce_sum_f64(s->comm, G, packed);
    int zero = 0, nb = SPECTRUM_NB;
    int mloc = numroc_(&na, &nb, &s->myrow, &zero, &s->nprow);
    int nloc = numroc_(&na, &nb, &s->mycol, &zero, &s->npcol);
    int lld = mloc > 1 ? mloc : 1;
    double *a = xmalloc(((size_t)lld * nloc + 1) * sizeof *a);
    scatter_packed(s, G, na, a, mloc, nloc, lld);
    free(G);
    double t2 = now_seconds();
    st->seconds_reduce = t2 - t1;
    int info = solve_eigen(s, a, na, lld, w);
    free(a);
    st->seconds_eigen = now_seconds() - t2;
    return info;
}

/* σ (descending, into s->sigma), effective rank and participation from the
 * eigenvalues w[0..na) (ascending) of the centred Gram matrix. */
static void spectrum_from_eigen(Spectrum *s, const double *w, int na, int64_t n_rows,
                                SpectrumStats *st) {
    memset(s->sigma, 0, (size_t)s->F * sizeof *s->sigma);
    double lmax = na > 0 && w[na - 1] > 0.0 ? w[na - 1] : 0.0;
    /* Below this the Gram route cannot tell an eigenvalue from rounding
     * (dsyrk over n_rows terms, eigensolver on na columns); the float32
     * input itself only fixes σ to about this level (docs/spectrum.md). */
    double scale = (double)(na > n_rows ? na : n_rows);
    double floor_ = scale * DBL_EPSILON * lmax;
    double sum = 0.0, sum2 = 0.0;
    int rank = 0;
    for (int i = 0; i < na; i++) {           /* ascending: small terms first */
        double l = w[i] > floor_ ? w[i] : 0.0;
        s->sigma[na - 1 - i] = sqrt(l);
        sum += l;
        sum2 += l * l;
        rank += l > 0.0;
    }
    double H = 0.0;
    for (int i = 0; i < na && sum > 0.0; i++) {
        double l = w[i] > floor_ ? w[i] : 0.0;
        if (l > 0.0) { double p = l / sum; H -= p * log(p); }
    }
    st->sum_sq = sum;
    st->rank = rank;
    st->eff_rank = sum > 0.0 ? exp(H) : 0.0;        /* A_c = 0: by convention 0 */
    st->participation = sum > 0.0 ? sum * sum / sum2 : 0.0;
}

static void spectrum_not_computed(Spectrum *s, SpectrumStats *st) {
    for (int f = 0; f < s->F; f++) s->sigma[f] = NAN;
    st->ok = 0;
    st->eff_rank = st->participation = st->sum_sq = NAN;
    st->rank = 0;
}

void spectrum_layer(Spectrum *s, const float *rows, int n_local_rows, double *topk_out,
                    SpectrumStats *st_out) {
    double t0 = now_seconds();
    SpectrumStats st;
    memset(&st, 0, sizeof st);
    st.ok = 1;
    int na = column_stats(s, rows, n_local_rows, &st.n_rows);
    st.seconds_gram = now_seconds() - t0;
    if (na < 0) {
        spectrum_not_computed(s, &st);
    } else {
        st.active_cols = na;
        double *w = xmalloc(((size_t)na + 1) * sizeof *w);
        int info = na > 0 ? active_eigenvalues(s, rows, n_local_rows, na, w, &st) : 0;
        if (info != 0) {
            if (s->comm->rank == 0)
                warn_msg("spectrum: the ScaLAPACK eigensolver failed (info %d) on a %d x %d"
                         " Gram matrix; this layer's spectrum is recorded as NaN", info, na, na);
            spectrum_not_computed(s, &st);
        } else {
            spectrum_from_eigen(s, w, na, st.n_rows, &st);
        }
        free(w);
    }
    for (int k = 0; topk_out && k < s->topk; k++)
        topk_out[k] = k < s->F ? s->sigma[k] : (st.ok ? 0.0 : NAN);
    st.seconds = now_seconds() - t0;
    if (st_out) *st_out = st;
}

/* ---- stable rank (local LAPACK) ---- */

double stable_rank(const float *w, int rows, int cols) {
    if (rows < 1 || cols < 1) return 0.0;
    size_t total = (size_t)rows * cols;
    double *wd = xmalloc(total * sizeof *wd);
    double fro = 0.0;
    for (size_t i = 0; i < total; i++) {
        wd[i] = w[i];
        fro += wd[i] * wd[i];
    }
    if (!isfinite(fro)) { free(wd); return NAN; }
    if (fro == 0.0) { free(wd); return 0.0; }
    /* W row-major [rows][cols] is the column-major cols × rows matrix M.
     * The Gram of the shorter side has W's σ² as its nonzero eigenvalues:
     * rows ≤ cols: W Wᵀ = Mᵀ M (rows × rows); else Wᵀ W = M Mᵀ (cols × cols). */
    int n = rows <= cols ? rows : cols;
    double *G = xcalloc((size_t)n * n, sizeof *G);
    cblas_dsyrk(CblasColMajor, CblasLower, rows <= cols ? CblasTrans : CblasNoTrans, n,
                rows <= cols ? cols : rows, 1.0, wd, cols, 0.0, G, n);
    free(wd);
    double *ev = xmalloc((size_t)n * sizeof *ev), query = 0.0;
    int lwork = -1, info = 0;
    dsyev_("N", "L", &n, G, &n, ev, &query, &lwork, &info, 1, 1);
    lwork = (int)query + 1;
    double *work = xmalloc((size_t)lwork * sizeof *work);
    if (info == 0) dsyev_("N", "L", &n, G, &n, ev, work, &lwork, &info, 1, 1);
    double lmax = info == 0 ? ev[n - 1] : NAN;
    free(work); free(ev); free(G);
    if (info != 0) return NAN;
    return lmax > 0.0 ? fro / lmax : 0.0;
}
