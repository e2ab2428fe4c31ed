#!/usr/bin/env bash
# bench/profile.sh — where one rank's training step spends its time, at the
# benchmark sizes (docs/performance.md has the conclusions). Not part of
# `make bench`: run it by hand after `make` and `make bench` (which builds
# build/bench/bench_model).
#
#   bash bench/profile.sh [SIZE ...]     (default: M P)
#
# For each size: perf record (cpu-clock sampling: this VM exposes no hardware
# counters; DWARF call graphs) of bench_model's steady-state steps only —
# bench_model tells perf to start after its warm-up step through a control
# fifo — then bench/perf_breakdown.py charges every sample to a part of the
# step: GEMMs by layer (with their achieved GFLOP/s) and the rest by
# function. cpu-clock counts only the time the process ran, so the shares
# hold on a busy machine too. Reports go to build/bench/profile.SIZE.txt.
# Environment: PROFILE_STEPS (default 20 at S, 2 at M, 1 at P), PROFILE_HZ (499).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
HZ=${PROFILE_HZ:-499}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
    # as bench/run.sh: OpenBLAS 0.3.21 falls back to Prescott on recent Xeons
    case $(OPENBLAS_VERBOSE=2 "$BUILD/bench/bench_model" 1 8 1 8 8 8 1 1 2>&1 | sed -n 's/^Core: //p') in
        SkylakeX|Cooperlake|SapphireRapids) ;;
        *) export OPENBLAS_CORETYPE=SkylakeX ;;
    esac
fi
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (linux-perf)" >&2; exit 1; }
[ -x "$BUILD/bench/bench_model" ] || { echo "profile.sh: run make bench first" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/reluscope-prof.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
for s in "${@:-M P}"; do
    for size in $s; do
        case $size in
            S) args=(4 128 4 512 128 256 16) ;;
            M) args=(6 256 8 1024 256 4096 16) ;;
            P) args=(6 512 8 4096 256 4096 32) ;;
            W) args=(6 64 4 2048 64 4096 128) ;;   # the study geometry (dense path)
            *) echo "profile.sh: unknown size $size" >&2; exit 2 ;;
        esac
        steps=${PROFILE_STEPS:-$(case $size in S) echo 20 ;; M) echo 2 ;; *) echo 1 ;; esac)}
        rm -f "$TMP/ctl"; mkfifo "$TMP/ctl"
        echo "profiling $size (${args[*]}), $steps step(s) after a warm-up, OpenBLAS ${OPENBLAS_CORETYPE:-auto}" >&2
        BENCH_PERF_CTL="$TMP/ctl" perf record -q -D -1 --control "fifo:$TMP/ctl" -e cpu-clock \
            -F "$HZ" --call-graph dwarf,16384 -o "$TMP/perf.data" -- \
            "$BUILD/bench/bench_model" "${args[@]}" "$steps" profile >/dev/null 2>"$TMP/perf.err" ||
            { cat "$TMP/perf.err" >&2; exit 1; }
        {
            echo "# size $size: L d h F T V B = ${args[*]}; $steps step(s); OpenBLAS ${OPENBLAS_CORETYPE:-auto}; cpu-clock at $HZ Hz"
            /usr/bin/python3 bench/perf_breakdown.py "$TMP/perf.data" "$BUILD/bench/bench_model" src \
                "$HZ" "$steps" "${args[@]}"
        } | tee "$BUILD/bench/profile.$size.txt"
        rm -f "$TMP/perf.data"
    done
done
