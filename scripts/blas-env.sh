# shellcheck shell=bash
# scripts/blas-env.sh — sourced by scripts/demo.sh and jobs/common.sh.
# rs_blas_env BIN: if OpenBLAS would pick older kernels than this CPU supports
# (Debian 12's OpenBLAS 0.3.21 falls back to SSE3 "Prescott" kernels on
# recent Xeons: matmuls ~5x slower), export OPENBLAS_CORETYPE with the right
# ones. The kernels are chosen when the library loads, so this must happen
# before the program starts; an OPENBLAS_CORETYPE already set is kept.
# (Run on the compute node: login nodes may have other CPUs.)
rs_blas_env() {
    local bin=$1 core
    [ -n "${OPENBLAS_CORETYPE:-}" ] && return 0
    core=$("$bin" --blas-coretype 2>/dev/null) || return 0
    if [ -n "$core" ]; then
        export OPENBLAS_CORETYPE=$core
        echo "note: OpenBLAS autodetects older kernels than this CPU has; using OPENBLAS_CORETYPE=$core" >&2
    fi
}
