# shellcheck shell=bash
# scripts/blas-env.sh — the right OpenBLAS kernels for the CPU a program runs on.
#
# Sourced (scripts/demo.sh, jobs/common.sh): rs_blas_env BIN: if OpenBLAS
# would pick older kernels than this CPU supports (Debian 12's OpenBLAS 0.3.21
# falls back to SSE3 "Prescott" kernels on recent Xeons: matmuls ~5x slower),
# export OPENBLAS_CORETYPE with the right ones. The kernels are chosen when
# the library loads, so this must happen before the program starts; an
# OPENBLAS_CORETYPE already set is kept.
#
# Run as a wrapper (the Slurm jobs start every rank through it, so each node
# decides for its own CPU, not the login node's):
#   bash scripts/blas-env.sh BIN [ARGS...]    rs_blas_env BIN, then exec BIN ARGS
# The first rank of each node logs which kernels it runs.
rs_blas_env() {
    local bin=$1 core
    [ -n "${OPENBLAS_CORETYPE:-}" ] && return 0
    core=$("$bin" --blas-coretype 2>/dev/null) || return 0
    if [ -n "$core" ]; then
        export OPENBLAS_CORETYPE=$core
        echo "note: OpenBLAS autodetects older kernels than this CPU has; using OPENBLAS_CORETYPE=$core" >&2
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    [ "$#" -ge 1 ] || { echo "usage: bash scripts/blas-env.sh BIN [ARGS...]" >&2; exit 64; }
    # A stop request before the program has set its handlers is dropped
    # instead of killing the rank (ignored signals stay ignored across exec
    # until the program installs its own handlers).
    trap '' USR1 TERM
    if [ "${SLURM_LOCALID:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}" = 0 ]; then
        rs_blas_env "$1"
        echo "reluscope-job: $(hostname -s 2>/dev/null || echo '?'): OpenBLAS kernels $("$1" --version 2>/dev/null | sed -n 's/^OpenBLAS kernels: //p')" >&2
    else
        rs_blas_env "$1" 2> /dev/null
    fi
    exec "$@"
fi
