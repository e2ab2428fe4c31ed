#!/usr/bin/env bash
# Spectra across ranks: on BLACS grids 1×1, 2×1, 2×2 (and 3×1, 3×2) the
# singular values of a row-distributed matrix equal LAPACK dgesvd's on the
# gathered matrix, every rank holds the same values, and a rank without
# rows is fine (tests/test_spectrum.c --mpi does the checking).
source "$(dirname "$0")/lib.sh"
B=${BUILD:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
T=$B/tests/test_spectrum
[ -x "$T" ] || fail "$T is not built (make tests)"
for n in 1 2 4 3 6; do
    if ! mpi "$n" "$T" --mpi > "$WORK/np$n.log" 2>&1; then
        cat "$WORK/np$n.log" >&2
        fail "spectra on $n ranks differ from LAPACK on the gathered matrix"
    fi
    grep -q " 0 failed" "$WORK/np$n.log" || fail "no test summary on $n ranks"
done
echo "t_spectrum_mpi: all checks passed"
