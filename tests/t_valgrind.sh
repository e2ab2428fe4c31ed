#!/usr/bin/env bash
# valgrind memcheck on short single-process runs of the real binary: training
# (every metric, an evaluation with its ScaLAPACK spectrum, snapshots,
# checkpoints, the dataset) stopped at step 3, the resume to step 6 (checkpoint
# load, dataset reopen), and `eval` of the final checkpoint.
# Any invalid read/write, use of uninitialised memory or definite leak in our
# code fails (--error-exitcode=1); what Open MPI does inside MPI_Init/Finalize
# and its threads is suppressed (tests/valgrind/openmpi.supp + Debian's file).
# Valgrind cannot run AVX-512 code, so the binary is built without
# -march=native into build/valgrind (make BUILD=... BIN=... OPT=-O1).
source "$(dirname "$0")/lib.sh"
command -v valgrind > /dev/null ||
    fail "valgrind is not installed: run scripts/install-fuzz-deps.sh (as root)"
VB=build/valgrind
# under `make check-asan` the parent make's variables (BUILD, OPT) arrive in
# MAKEFLAGS: this build must not inherit them
unset MAKEFLAGS MFLAGS MAKELEVEL
make -s -C "$ROOT" BUILD="$VB" BIN="$VB/bin" OPT="-O1" "$VB/bin/reluscope" > "$WORK/build.log" 2>&1 ||
    { tail -n 20 "$WORK/build.log" >&2; fail "building $VB/bin/reluscope failed"; }
VRS=$ROOT/$VB/bin/reluscope
SUPP=(--suppressions="$ROOT/tests/valgrind/openmpi.supp")
[ -f /usr/share/openmpi/openmpi-valgrind.supp ] &&
    SUPP+=(--suppressions=/usr/share/openmpi/openmpi-valgrind.supp)

make_tiny_corpus "$WORK/data" 20000
write_tiny_config "$WORK/v.conf" "$WORK/data" "$WORK/out" "steps = 6" "eval_every = 3" \
    "snapshot_every = 3" "checkpoint_every = 3" "flush_every = 2" "eval_tokens = 256" \
    "spectrum_topk = 4" "dead_window = 2" "log_every = 1"

# vg NAME EXPECTED_EXIT ARGS...: run under memcheck; fail on any error in our code
vg() {
    local name=$1 want=$2 rc=0; shift 2
    # --num-callers=40: Open MPI's stacks are deep; with fewer frames the
    # suppressions (which match MPI_Init/Finalize) cannot see their anchor
    timeout -k 5 300 valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --num-callers=40 "${SUPP[@]}" ${VG_ORIGINS:+--track-origins=yes} \
        --log-file="$WORK/$name.vg" "$@" > "$WORK/$name.out" 2>&1 || rc=$?
    if [ "$rc" -eq 99 ] || ! grep -q "ERROR SUMMARY: 0 errors" "$WORK/$name.vg"; then
        grep -A 30 "^==[0-9]*== [A-Z][a-z]" "$WORK/$name.vg" | grep -v "^==[0-9]*== *$" | head -n 80 >&2
        fail "valgrind found errors in '$name' (above; VG_ORIGINS=1 shows where uninitialised values come from)"
    fi
    [ "$rc" -eq "$want" ] || fail "'$name' exited $rc under valgrind, expected $want: $(tail -n 5 "$WORK/$name.out")"
    echo "ok   $name: $(grep -o 'ERROR SUMMARY.*' "$WORK/$name.vg")"
}

export OPENBLAS_NUM_THREADS=1
vg train-to-3 75 "$VRS" train "$WORK/v.conf" stop_at_step=3
vg resume-to-6 0 "$VRS" train "$WORK/v.conf"
grep -q "resuming from" "$WORK/resume-to-6.out" || fail "the second run did not resume"
vg eval 0 "$VRS" eval --checkpoint "$WORK/out/checkpoints/t2_seed0/ckpt_00000006.bin" \
    --tokens "$WORK/data/val_000000.bin" --json
echo "t_valgrind: all checks passed"
