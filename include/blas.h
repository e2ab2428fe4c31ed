/* blas.h — which OpenBLAS kernels this process got, and whether they fit the CPU.
 *
 * Why: OpenBLAS picks its kernels when the library loads, from the CPU it
 * recognises. A release older than the CPU (Debian 12's 0.3.21 on a Xeon
 * Sapphire Rapids, say) falls back to "Prescott" (SSE3): sgemm then runs
 * ~5x slower than with the AVX-512 kernels it has. Only the environment
 * variable OPENBLAS_CORETYPE, set before the program starts, changes that,
 * so the program can only detect and advise; scripts/blas-env.sh sets it. */
#ifndef RELUSCOPE_BLAS_H
#define RELUSCOPE_BLAS_H

/* The kernel set OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", ...). */
const char *blas_core_name(void);

/* The OPENBLAS_CORETYPE this CPU should use if OpenBLAS chose older kernels
 * than it supports ("SkylakeX" with AVX-512, "Haswell" with AVX2), or NULL
 * when the choice is fine or was made through OPENBLAS_CORETYPE already. */
const char *blas_better_coretype(void);

#endif
