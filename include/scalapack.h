/* scalapack.h — hand-written prototypes of the BLACS, ScaLAPACK and LAPACK
 * routines reluscope calls. Debian's libscalapack-openmpi ships no C header
 * and no LAPACKE header is installed, so exactly the routines used are
 * declared here and nowhere else.
 *
 * Fortran routines (trailing underscore) take every argument by address.
 * gfortran also passes the length of each CHARACTER argument as a hidden
 * trailing size_t, by value; they are declared explicitly so the call
 * matches the callee's ABI whatever the compiler's tail-call habits (the
 * LAPACK "hidden string length" breakage seen with GCC 9+). Callers pass 1.
 *
 * The Cblacs_* routines are BLACS' own C interface. BLACS contexts are ints.
 */
#ifndef RELUSCOPE_SCALAPACK_H
#define RELUSCOPE_SCALAPACK_H
#include <stddef.h>

/* ---- BLACS (C interface) ---- */
/* what = 0: the default system context (unused here: grids come from a
 * group's communicator through Csys2blacs_handle, see comm.h). */
void Cblacs_get(int context, int what, int *value);
/* Turns a system handle into a nprow x npcol grid; order "Row" or "Col". */
void Cblacs_gridinit(int *context, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int context, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int context);
/* not_done = 1: wait for BLACS' outstanding asynchronous sends and free its
 * buffers and every grid, but leave MPI running (BLACS re-initialises on
 * the next grid). */
void Cblacs_exit(int not_done);

/* A BLACS system handle for an MPI communicator: the handle is what
 * Cblacs_gridinit turns into a grid. Csys2blacs_handle takes an MPI_Comm, so
 * only comm.c (which includes <mpi.h> first) sees it: comm_blacs_handle()
 * is its wrapper. The handle is a plain int and is freed outside comm.c. */
#ifdef MPI_VERSION
int  Csys2blacs_handle(MPI_Comm comm);
#endif
void Cfree_blacs_system_handle(int handle);

/* ---- ScaLAPACK tools ---- */
/* Rows (or columns) of an n-long dimension in blocks of nb owned by process
 * coordinate iproc of nprocs, the first block on isrcproc. */
int  numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
             const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *context, const int *lld,
               int *info);

/* ---- ScaLAPACK: eigenvalues of a distributed symmetric matrix ----
 * pdsyev (QR iteration). jobz "N": eigenvalues only, ascending in w and
 * replicated on every process; z and descz are not referenced. lwork = -1
 * queries the workspace size into work[0]. a is overwritten. */
void pdsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
             const int *ja, const int *desca, double *w, double *z, const int *iz,
             const int *jz, const int *descz, double *work, const int *lwork, int *info,
             size_t jobz_len, size_t uplo_len);

/* pdsyevr (MRRR). jobz "N": eigenvalues only; range "A": all of them, so
 * vl, vu, il, iu are not referenced. m returns how many were found (n on
 * success), ascending in w and replicated on every process; nz, z and descz
 * are not referenced for jobz "N". lwork = liwork = -1 queries the
 * workspace sizes into work[0] and iwork[0]. a is overwritten. */
void pdsyevr_(const char *jobz, const char *range, const char *uplo, const int *n,
              double *a, const int *ia, const int *ja, const int *desca, const double *vl,
              const double *vu, const int *il, const int *iu, int *m, int *nz, double *w,
              double *z, const int *iz, const int *jz, const int *descz, double *work,
              const int *lwork, int *iwork, const int *liwork, int *info,
              size_t jobz_len, size_t range_len, size_t uplo_len);

/* ---- LAPACK (local, one process) ---- */
/* Eigenvalues (jobz "N") of a symmetric matrix: stable_rank's σ_max². */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
            double *w, double *work, const int *lwork, int *info,
            size_t jobz_len, size_t uplo_len);
/* Singular values (jobu = jobvt = "N") of a general matrix: the reference
 * the spectrum tests compare against. a (column-major) is destroyed. */
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
             const int *lda, double *s, double *u, const int *ldu, double *vt,
             const int *ldvt, double *work, const int *lwork, int *info,
             size_t jobu_len, size_t jobvt_len);

#endif
