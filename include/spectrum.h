/* spectrum.h — spectra of a layer's representation (SPEC §3 "Also measured").
 *
 * For one layer, the held-out activations form A (N × F, N = eval tokens):
 * rank r of the run's group holds n_r consecutive rows as float32 row-major
 * [n_r][F] (any split, zero rows allowed). spectrum_layer computes the
 * singular values of the CENTRED matrix A_c (each column minus its mean over
 * all N rows) and from them:
 *   effective rank    exp(H(p)),  p_i = σ_i² / Σσ², H = −Σ p_i ln p_i
 *                     (terms with p_i = 0 contribute 0);
 *   participation     (Σσ²)² / Σσ⁴;
 *   the top-k σ       descending, padded with 0 beyond the rank.
 * If A is zero after centring (every unit off, every column constant, or
 * N ≤ 1): σ = 0, effective rank 0 and participation 0 by convention ("no
 * direction is used"), never NaN.
 *
 * Method (docs/spectrum.md): σ² are the eigenvalues of the Gram matrix
 * A_cᵀA_c, built in double by each rank from its own rows (dsyrk), summed
 * over the group, and diagonalised by ScaLAPACK (eigenvalues only: pdsyevr
 * on square grids, pdsyev on the others) on a Pr × Pc BLACS grid of the
 * group's ranks (the most square factorisation, Pr ≥ Pc: 1 → 1×1, 2 → 2×1,
 * 4 → 2×2, 6 → 3×2). Columns that are constant over all N rows (dead units)
 * are exactly zero after centring and are dropped first: they only add zero
 * singular values, and the cost is cubic in the number of columns kept.
 * Eigenvalues below the rounding floor of this route, max(N, F_kept)·ε·λ_max,
 * are reported as σ = 0, so a matrix of rank r has exactly r nonzero σ.
 *
 * Every function taking a Spectrum is collective over the group it was
 * built on: all ranks call it, in the same order, with the same F and topk.
 * Results (σ, stats) are identical on every rank.
 */
#ifndef RELUSCOPE_SPECTRUM_H
#define RELUSCOPE_SPECTRUM_H
#include <stdint.h>
#include "comm.h"

typedef struct Spectrum Spectrum;

typedef struct {
    double eff_rank;        /* exp(H(p)); 0 if A_c = 0; NaN if not computed */
    double participation;   /* (Σσ²)²/Σσ⁴; 0 if A_c = 0; NaN if not computed */
    double sum_sq;          /* Σσ² = ‖A_c‖_F² */
    int64_t n_rows;         /* N, summed over the group */
    int active_cols;        /* columns not constant over the N rows */
    int rank;               /* σ reported nonzero (numerical rank) */
    int ok;                 /* 0: input not finite or the solver failed —
                               σ and the stats above are NaN */
    double seconds;         /* wall time of the call on this rank, of which */
    double seconds_gram;    /*   column statistics and the local Gram matrix */
    double seconds_reduce;  /*   summing it over the group, block-cyclic copy */
    double seconds_eigen;   /*   the ScaLAPACK eigensolver */
} SpectrumStats;

/* A BLACS grid over the group of c, kept until free_spectrum (both
 * collective over the group; c must outlive the Spectrum). F: columns of
 * every matrix passed later; topk: σ written to topk_out by spectrum_layer. */
Spectrum *build_spectrum(Comm *c, int F, int topk);
void free_spectrum(Spectrum *s);

/* The grid's shape (for logs and the dataset's MPI layout attribute). */
void spectrum_grid(const Spectrum *s, int *nprow, int *npcol);

/* One layer (collective). rows: this rank's [n_local_rows][F] floats.
 * topk_out: topk doubles (may be NULL); st: may be NULL. */
void spectrum_layer(Spectrum *s, const float *rows, int n_local_rows,
                    double *topk_out, SpectrumStats *st);

/* All F singular values of the last spectrum_layer call, descending
 * (zeros included). Valid until the next call or free_spectrum. */
const double *spectrum_values(const Spectrum *s);

/* Stable rank ‖W‖_F² / σ_max² of a replicated weight matrix W [rows][cols]
 * (row-major float). Local, no communication: σ_max² is the largest
 * eigenvalue of the Gram matrix of W's shorter side, in double (LAPACK
 * dsyev). Returns 0 for W = 0 and NaN if W holds a non-finite value. */
double stable_rank(const float *w, int rows, int cols);

#endif
