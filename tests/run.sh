#!/usr/bin/env bash
# Runs every test: each C unit test (build/tests/test_*), then each script
# tests/t_*.sh. One line per test; the last line is "N passed, N failed".
# TESTS=REGEX runs the tests whose names match. QUICK=1 (make test-quick) runs
# the day-to-day subset, under a minute: every C unit test but the slow ones
# below, and the fast CLI scripts below.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}; BIN=${BIN:-bin}
export BUILD BIN
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
# Sanitized builds: Open MPI's own allocations are not ours to report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
pass=0; fail=0; failed=()
logdir=$(mktemp -d /tmp/reluscope-tests.XXXXXX)
run_one() {
    local name=$1; shift
    local start=$SECONDS
    if "$@" > "$logdir/$name.log" 2>&1; then
        pass=$((pass + 1)); echo "ok   $name ($((SECONDS - start))s)"
    else
        fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name ($((SECONDS - start))s)"
        tail -n 30 "$logdir/$name.log" | sed 's/^/     | /'
    fi
}
only=${TESTS:-}
QUICK_SKIP_C='^(test_ncout_kill)$'                                 # 20 s of kill -9 rounds
QUICK_SCRIPTS='^(t_config_cli|t_deps|t_eval|t_prepare|t_train|t_mpi|t_shellcheck)$'
quick=${QUICK:-0}
# tests that have a slow part skip it under RS_TEST_QUICK (test_data: its 4 GiB shard)
if [ "$quick" = 1 ]; then export RS_TEST_QUICK=1; fi
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t"); [ -n "$only" ] && [[ ! "$n" =~ $only ]] && continue
    [ "$quick" = 1 ] && [[ "$n" =~ $QUICK_SKIP_C ]] && continue
    run_one "$n" "$t"
done
for t in tests/t_*.sh; do
    [ -f "$t" ] || continue
    n=$(basename "$t" .sh); [ -n "$only" ] && [[ ! "$n" =~ $only ]] && continue
    [ "$quick" = 1 ] && [[ ! "$n" =~ $QUICK_SCRIPTS ]] && continue
    run_one "$n" bash "$t"
done
echo "logs: $logdir"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
