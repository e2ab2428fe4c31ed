#!/usr/bin/env bash
# The Slurm job scripts (jobs/) against a real Slurm: a private one-node
# cluster on this machine (tests/slurm/cluster.sh: munged, slurmctld, slurmd
# with a generated slurm.conf under a temp folder), then
#  (0) submissions jobs/submit-sweep.sh refuses before anything is queued: a
#      --time the warning signal would cut at once;
#  (a) the sweep of docs/slurm.md's chunking example (sizes a, b x seeds 0-4,
#      2 seeds a task -> 6 array tasks; the plan must print the documented
#      lines) submitted with jobs/submit-sweep.sh, and its dependent analysis
#      job; task 0 gets SIGUSR1 once it trains (requeue + resume inside an
#      array): the merged dataset holds every size, seed and step once, and the report exists if analysis/report.py does; then
#      RS_RESUME_DIR naming another task's folder is refused, and the sweep
#      folder resumes the right task; the analysis job with a Python without
#      xarray merges and then says so in one line (exit 69);
#  (b) a 2-rank single run (jobs/run.sbatch, submitted with a login-node
#      OPENBLAS_CORETYPE that the job must not force) sent SIGUSR1 mid-run with
#      `scancel --signal=USR1 --batch`: it checkpoints, exits 75, requeues
#      itself, resumes, and its dataset equals an uninterrupted run's (every
#      step once, loss and batch_use bit for bit);
#  (c) the job scripts' own logic with a stand-in program
#      (tests/slurm/fake-train.py, which stops on a signal like the real one,
#      or finishes when told): `scontrol requeue` of a running job (what
#      PreemptMode=REQUEUE does) is logged as Slurm's requeue, not as a
#      stop to resubmit; the requeued job ignores a SIGUSR1 right after its
#      restart (a late scancel retry) and finishes.
# The daemons it started are stopped whatever happens. KEEP=1 keeps the temp
# folder; T_SLURM_PARTS=a or =b runs one part; T_SLURM_RANKS=N sets the
# ranks of (b). Needs root and Debian's
# Slurm (make deps); without the packages it prints
# SKIPPED and passes, except under CI, where it fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/slurm/cluster.sh
source "$ROOT/tests/slurm/cluster.sh"

missing=$(slurm_missing)
if [ -n "$missing" ]; then
    if [ -n "${CI:-}" ]; then
        echo "FAIL: t_slurm: Slurm commands missing ($missing): the CI must run make deps" >&2
        exit 1
    fi
    echo "SKIPPED: t_slurm: Slurm is not installed (missing: $missing); run 'make deps' as root"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if [ -n "${CI:-}" ]; then echo "FAIL: t_slurm: CI must run the tests as root" >&2; exit 1; fi
    echo "SKIPPED: t_slurm: the private Slurm cluster needs root (SlurmUser=root)"
    exit 0
fi

# shellcheck source=tests/lib.sh
source "$ROOT/tests/lib.sh"     # RS, PY, WORK, make_tiny_corpus, fail
[ -x "$RS" ] || fail "$RS not found: run 'make' first"
# A test run inside a Slurm job must not talk to the outer cluster.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC)_' || true)
export RELUSCOPE_BIN=$RS
CHECK=$ROOT/tests/slurm/check_dataset.py
START=$SECONDS

dump_logs() {
    local f
    echo "==== t_slurm failed after $((SECONDS - START))s; logs follow ====" >&2
    squeue -l >&2 2>/dev/null || true
    while IFS= read -r f; do
        echo "---- $f ----" >&2; tail -n 60 "$f" | sed 's/^/    /' >&2
    done < <(find "$WORK/logs" "$WORK/runs" -name '*.out' -o -name 'job_history.txt' 2>/dev/null | sort)
    for f in slurmctld slurmd; do
        echo "---- $f.log (last 30 lines) ----" >&2
        tail -n 30 "$WORK/cluster/log/$f.log" 2>/dev/null | sed 's/^/    /' >&2 || true
    done
}
cleanup() {
    local rc=$?
    set +e
    [ "$rc" -eq 0 ] || dump_logs
    slurm_stop "$WORK/cluster"
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# wait_gone SECONDS JOBID...: until none of the jobs is pending or running
wait_gone() {
    local t=$1 i; shift
    local ids; ids=$(IFS=,; echo "$*")
    for ((i = 0; i < t; i++)); do
        [ -z "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ] && return 0
        sleep 1
    done
    fail "jobs $ids still queued or running after ${t}s"
}
# job_field JOBID FIELD: FIELD=value of the job (first line: a task of an array)
job_field() { scontrol show job -o "$1" | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2-; }

mkdir -p "$WORK/logs"
chmod 755 "$WORK"     # munged's socket lives below it
make_tiny_corpus "$WORK/data" > /dev/null
common_conf() {
    cat <<CONF
size.a = L=1 d=32 h=2 F=128 T=32 V=256
size.b = L=2 d=32 h=2 F=64 T=32 V=256
train_data = $WORK/data/train_*.bin
val_data = $WORK/data/val_*.bin
batch_size = 8
lr = 3e-3
lr_min = 3e-4
warmup_steps = 5
dead_window = 5
snapshot_every = 10
eval_every = 10
eval_tokens = 512
log_every = 10
checkpoint_every = 10
flush_every = 5
check_every = 5
CONF
}
SWEEP_STEPS=60
# docs/slurm.md's example: sizes = a, b and seeds = 0-4, 2 seeds a task
{ common_conf; printf 'sizes = a, b\nseeds = 0-4\nsteps = %s\n' "$SWEEP_STEPS"; } > "$WORK/sweep.conf"
RUN_STEPS=120
{ common_conf; printf 'sizes = tiny\nseeds = 0\nsteps = %s\n' "$RUN_STEPS"; } > "$WORK/single.conf"

# the plan printed in docs/slurm.md is the plan of this config
want_plan=$(sed -n '/^\$ SEEDS_PER_TASK=2 jobs\/sweep-plan.sh sweep.conf$/,/^```$/p' "$ROOT/docs/slurm.md" | sed '1d;$d')
got_plan=$(SEEDS_PER_TASK=2 "$ROOT/jobs/sweep-plan.sh" "$WORK/sweep.conf")
[ -n "$want_plan" ] && [ "$got_plan" = "$want_plan" ] \
    || fail "jobs/sweep-plan.sh differs from docs/slurm.md's example: got '$got_plan', documented '$want_plan'"

t0=$SECONDS
slurm_start "$WORK/cluster" || fail "the Slurm daemons did not start (logs above)"
echo "cluster up in $((SECONDS - t0))s: $(sinfo -h -N -o '%N %c CPUs %m MB %T')"
pmix=0
if srun --mpi=list 2>&1 | grep -qw pmix; then pmix=1; fi
echo "srun --mpi=pmix available: $pmix"

PARTS=${T_SLURM_PARTS:-0abc}   # for debugging: T_SLURM_PARTS=b runs only (b)
RANKS=${T_SLURM_RANKS:-2}      # ranks of the run in (b)

# --- (0) refused before anything is queued ------------------------------------------
if [[ $PARTS == *0* ]]; then
# refused: the expected exit code, one error line naming the problem,
# nothing queued and no sweep folder
refused() {
    local want=$1 what=$2 rc=0; shift 2
    (cd "$WORK" && "$ROOT/jobs/submit-sweep.sh" --runs-dir "$WORK/refused" "$@") \
        > "$WORK/refused.out" 2> "$WORK/refused.err" || rc=$?
    [ "$rc" = "$want" ] || fail "submit-sweep.sh $*: exit $rc, want $want: $(cat "$WORK/refused.err")"
    grep -q "$what" "$WORK/refused.err" || fail "submit-sweep.sh $*: the error does not say '$what': $(cat "$WORK/refused.err")"
    [ -z "$(squeue -h -o %i)" ] || fail "submit-sweep.sh $* queued a job although it refused"
    [ ! -e "$WORK/refused" ] || fail "submit-sweep.sh $* created $WORK/refused although it refused"
}
# the script's --signal=B:USR1@300 would come at once in a 6-minute limit
refused 64 "warning signal --signal=B:USR1@300" --array-opt=--time=6 "$WORK/sweep.conf"
refused 64 "warning signal --signal=B:USR1@100" --array-opt=--time=2:40 --array-opt=--signal=B:USR1@100 "$WORK/sweep.conf"
# the program's own checks: relative data paths resolve against the submit
# folder (here: one where they match nothing), and the error says so
mkdir -p "$WORK/elsewhere"
sed 's|= '"$WORK"'/data/|= data/|' "$WORK/sweep.conf" > "$WORK/relative.conf"
grep -q '^train_data = data/train_\*.bin' "$WORK/relative.conf" || fail "relative.conf: no relative train_data"
(cd "$WORK/elsewhere" && "$ROOT/jobs/submit-sweep.sh" --runs-dir "$WORK/refused" "$WORK/relative.conf") \
    > "$WORK/refused.out" 2> "$WORK/refused.err" && fail "a sweep whose corpus is missing was submitted"
grep -q "resolve against the folder you submit from, $WORK/elsewhere" "$WORK/refused.err" \
    || fail "the refusal does not say where relative data paths resolve: $(cat "$WORK/refused.err")"
[ -z "$(squeue -h -o %i)" ] && [ ! -e "$WORK/refused" ] || fail "a refused sweep left a job or a folder"
# ... and the same config from the folder they are written for passes the checks
(cd "$WORK" && "$ROOT/jobs/submit-sweep.sh" --dry-run "$WORK/relative.conf" > /dev/null) \
    || fail "relative data paths from their own folder were refused"
# a task layout the program refuses: 3 ranks cannot split a batch of 8
refused 64 "cannot run on 3 ranks" --array-opt=--ntasks=3 "$WORK/sweep.conf"
# a bad key: the program's own message
refused 64 "unknown key" "$WORK/sweep.conf" no_such_key=1
echo "(0) refused before submitting: --time shorter than the warning signal's offset, a corpus not found from the submit folder, a rank layout, a bad key"
fi

# --- (a) sweep array + dependent analysis job ---------------------------------------
if [[ $PARTS == *a* ]]; then
t0=$SECONDS
ids=$(cd "$WORK" && "$ROOT/jobs/submit-sweep.sh" --parsable --seeds-per-task 2 \
    --name tsweep --runs-dir "$WORK/runs" --array-opt=--ntasks=1 --array-opt=--time=10 \
    --analyze-opt=--time=10 "$WORK/sweep.conf") || fail "submit-sweep.sh failed"
read -r aid nid <<< "$ids"
if [ -z "${aid:-}" ] || [ -z "${nid:-}" ]; then fail "submit-sweep.sh --parsable printed no job ids: '$ids'"; fi
echo "(a) array $aid, analysis $nid"
sweep=$WORK/runs/tsweep/$aid
# also preempt task 0 once it trains: the analysis must wait for its requeue
for ((i = 0; i < 300; i++)); do
    compgen -G "$sweep/task_0/checkpoints/*/ckpt_*.bin" > /dev/null && break
    [ -n "$(squeue -h -j "${aid}_0" -o %i 2>/dev/null)" ] || break
    sleep 0.2
done
# Slurm 22.05 may answer "Job can not be altered now, try again later" to a
# signal for an array task while other tasks are pending, although it
# delivers it; scancel would then retry every few seconds and stop the
# resumed task again, so it gets one try (the job history tells the rest).
if sig_out=$(timeout 3 scancel --signal=USR1 --batch "${aid}_0" 2>&1); then
    echo "sent SIGUSR1 to task ${aid}_0"
else
    echo "scancel --signal=USR1 --batch ${aid}_0: ${sig_out:-no answer in 3 s}"
fi
wait_gone 300 "$aid" "$nid"
states=$(scontrol show job -o "$aid" | grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*' | paste -d' ' - - | sort | uniq -c)
ntask=$(scontrol show job -o "$aid" | grep -c 'ArrayTaskId=')
[ "$ntask" -eq 6 ] || fail "the array has $ntask tasks, want 6 (2 sizes x 5 seeds, 2 seeds a task)"
[ "$(echo "$states" | awk '{print $2, $3}')" = "JobState=COMPLETED ExitCode=0:0" ] \
    || fail "array tasks did not all complete: $states"
[ "$(job_field "$nid" JobState)" = COMPLETED ] || fail "analysis job $nid: $(job_field "$nid" JobState) ($(job_field "$nid" ExitCode))"
for i in 0 1 2 3 4 5; do
    [ -f "$sweep/task_$i/dataset.nc" ] || fail "task $i wrote no dataset"
done
grep -q 'size=b seeds=4 ' "$sweep/task_5/job_history.txt" || fail "task 5 did not get size b, seed 4"
if [ "$pmix" = 1 ]; then
    grep -q 'launcher=srun' "$sweep/task_0/job_history.txt" || fail "PMIx is available but the task did not use srun"
fi
if grep -q 'requeue' "$sweep/task_0/job_history.txt"; then
    tail -n 1 "$sweep/task_0/job_history.txt" | grep -q 'restart=[1-9].*exit=0' \
        || fail "task 0 was requeued but did not finish: $(cat "$sweep/task_0/job_history.txt")"
    echo "task 0 was stopped, requeued and resumed"
else
    echo "task 0 finished before the signal reached it"
fi
"$PY" "$CHECK" grid "$sweep/dataset.nc" --sizes a,b --seeds 0,1,2,3,4 --steps "$SWEEP_STEPS" \
    || fail "the merged dataset is incomplete"
if [ -f "$ROOT/analysis/report.py" ]; then
    nrep=$(find "$sweep/report" -type f 2>/dev/null | wc -l)
    [ "$nrep" -gt 0 ] || fail "analysis/report.py exists but wrote nothing into $sweep/report"
    echo "report: $nrep files"
else
    echo "no analysis/report.py yet: report not checked"
fi
# RS_RESUME_DIR: another task's folder is refused; the sweep folder resumes
# this task in its own task_<i> (the run is complete: nothing left to train)
resume_task() {   # TASK DIR: array task TASK of $aid, started by hand
    (cd "$WORK" && RELUSCOPE_ROOT=$ROOT SLURM_ARRAY_TASK_ID=$1 SLURM_ARRAY_JOB_ID=$aid SLURM_JOB_ID=99999 \
        SLURM_RESTART_COUNT=0 RS_LAUNCH=none RS_NO_REQUEUE=1 RS_RESUME_DIR=$2 \
        RS_RUNS_DIR="$WORK/runs" SEEDS_PER_TASK=2 SWEEP_NAME=tsweep \
        bash "$ROOT/jobs/sweep-array.sbatch" "$WORK/sweep.conf")
}
rc=0; resume_task 2 "$sweep/task_0" > "$WORK/resume.out" 2>&1 || rc=$?
[ "$rc" -eq 64 ] && grep -q "not array task 2's folder" "$WORK/resume.out" \
    || fail "RS_RESUME_DIR=task_0 for task 2: exit $rc, want 64 naming the mismatch: $(cat "$WORK/resume.out")"
grep -q 'job=99999' "$sweep/task_0/.slurm_job" && fail "the refused task 2 touched task_0's folder"
rc=0; resume_task 2 "$sweep" > "$WORK/resume.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q 'job=99999 resumed-by' "$sweep/task_2/.slurm_job" \
    || fail "RS_RESUME_DIR=<sweep folder> for task 2: exit $rc, or not resumed in task_2: $(cat "$WORK/resume.out")"
echo "RS_RESUME_DIR: another task's folder refused, the sweep folder resumes task_2"
# the analysis job with a Python that lacks the report's modules: the merge is
# done, then one line says what is missing (exit 69), not a traceback
printf '#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n' > "$WORK/bare-python"; chmod +x "$WORK/bare-python"
rm -f "$sweep/dataset.nc"
rc=0; PY=$WORK/bare-python RELUSCOPE_ROOT=$ROOT bash "$ROOT/jobs/analyze.sbatch" "$sweep" 6 \
    > "$WORK/analyze.out" 2> "$WORK/analyze.err" || rc=$?
[ "$rc" -eq 69 ] && [ -f "$sweep/dataset.nc" ] && [ "$(wc -l < "$WORK/analyze.err")" -eq 1 ] \
    && grep -q "cannot import numpy xarray netCDF4 matplotlib, which the report needs" "$WORK/analyze.err" \
    || fail "analysis without xarray: exit $rc, want 69 with one line and the merged dataset: $(cat "$WORK/analyze.err")"
echo "analysis job without xarray: merged, then one line (exit 69)"
echo "(a) ok in $((SECONDS - t0))s"
fi

# --- (b) preempt a 2-rank run with SIGUSR1, requeue, resume ----------------------------
if [[ $PARTS == *b* ]]; then
t0=$SECONDS
# a value exported on the login node: the job must detect its own per node
jid=$(cd "$ROOT" && OPENBLAS_CORETYPE=Prescott sbatch --parsable --ntasks="$RANKS" --time=10 \
      --output="$WORK/logs/single-%j.out" \
      --export="ALL,RS_RUNS_DIR=$WORK/runs,SWEEP_NAME=single" jobs/run.sbatch "$WORK/single.conf")
jid=${jid%%;*}
run=$WORK/runs/single/$jid
echo "(b) run $jid on $RANKS ranks"
# signal once it is training for sure: its first checkpoint is written
for ((i = 0; i < 600; i++)); do
    compgen -G "$run/checkpoints/*/ckpt_*.bin" > /dev/null && break
    [ -n "$(squeue -h -j "$jid" -o %i)" ] || fail "run $jid ended before its first checkpoint"
    sleep 0.2
done
compgen -G "$run/checkpoints/*/ckpt_*.bin" > /dev/null || fail "run $jid wrote no checkpoint in 120s"
scancel --signal=USR1 --batch "$jid"
echo "sent SIGUSR1 to the batch shell of $jid"
wait_gone 300 "$jid"
if [ "$(job_field "$jid" JobState)" != COMPLETED ] || [ "$(job_field "$jid" ExitCode)" != 0:0 ]; then
    fail "run $jid: $(job_field "$jid" JobState) exit $(job_field "$jid" ExitCode)"
fi
restarts=$(job_field "$jid" Restarts)
[ "${restarts:-0}" -ge 1 ] || fail "run $jid was not requeued (Restarts=${restarts:-?}): did the signal arrive after the end? history: $(cat "$run/job_history.txt")"
grep -q 'restart=0 .*exit=75 requeue' "$run/job_history.txt" || fail "the first start did not stop with 75 and requeue: $(cat "$run/job_history.txt")"
tail -n 1 "$run/job_history.txt" | grep -q 'exit=0' || fail "the last start did not finish: $(cat "$run/job_history.txt")"
grep -qi 'resum' "$WORK/logs/single-$jid.out" || fail "the requeued job did not resume from its checkpoints"
lat=$(grep -o 'stopped on request [0-9.]* s after the signal' "$WORK/logs/single-$jid.out" | head -n 1)
[ -n "$lat" ] || fail "the stopped job's log does not say how long the stop took"
echo "run $jid: $lat"
own=$(env -u OPENBLAS_CORETYPE "$RS" --version | sed -n 's/^OpenBLAS kernels: //p')
grep -q 'not using OPENBLAS_CORETYPE=Prescott from the submit environment' "$WORK/logs/single-$jid.out" \
    && grep -q "OpenBLAS kernels $own\$" "$WORK/logs/single-$jid.out" \
    || fail "the job forced the login node's OPENBLAS_CORETYPE instead of detecting '$own': $(grep -i openblas "$WORK/logs/single-$jid.out")"
echo "run $jid: stopped, requeued (Restarts=$restarts), resumed, finished in $((SECONDS - t0))s"

# the same job, uninterrupted
rid=$(cd "$ROOT" && sbatch --parsable --ntasks="$RANKS" --time=10 --output="$WORK/logs/ref-%j.out" \
      --export="ALL,RS_RUNS_DIR=$WORK/runs,SWEEP_NAME=ref" jobs/run.sbatch "$WORK/single.conf")
rid=${rid%%;*}
wait_gone 300 "$rid"
[ "$(job_field "$rid" JobState)" = COMPLETED ] || fail "reference run $rid: $(job_field "$rid" JobState)"
"$PY" "$CHECK" same "$WORK/runs/ref/$rid/dataset.nc" "$run/dataset.nc" --steps "$RUN_STEPS" \
    loss batch_use || fail "the preempted run's dataset differs from the uninterrupted run's"
echo "(b) ok in $((SECONDS - t0))s"
fi
# --- (c) Slurm requeues the job itself; a late SIGUSR1 after the restart ------------
if [[ $PARTS == *c* ]]; then
t0=$SECONDS
fake=$ROOT/tests/slurm/fake-train.py
cid=$(cd "$ROOT" && sbatch --parsable --ntasks=1 --time=10 --output="$WORK/logs/fake-%j.out" \
      --export="ALL,RS_RUNS_DIR=$WORK/runs,SWEEP_NAME=fake,RELUSCOPE_BIN=$fake,RS_LAUNCH=none" \
      jobs/run.sbatch "$WORK/single.conf")
cid=${cid%%;*}
frun=$WORK/runs/fake/$cid
# wait_file FILE: until the stand-in program has written it
wait_file() {
    for ((i = 0; i < 300; i++)); do [ -f "$1" ] && return 0; sleep 0.2; done
    fail "job $cid: $1 never appeared"
}
wait_file "$frun/fake.started.0"
scontrol requeue "$cid"
echo "(c) scontrol requeue $cid"
wait_file "$frun/fake.started.1"
scancel --signal=USR1 --batch "$cid"
for ((i = 0; i < 50; i++)); do
    grep -q 'ignoring SIGUSR1' "$WORK/logs/fake-$cid.out" && break; sleep 0.2
done
touch "$frun/fake.finish"
wait_gone 120 "$cid"
log=$WORK/logs/fake-$cid.out
[ "$(job_field "$cid" JobState)" = COMPLETED ] && [ "$(job_field "$cid" Restarts)" = 1 ] \
    || fail "job $cid: $(job_field "$cid" JobState), Restarts=$(job_field "$cid" Restarts), want COMPLETED after one restart: $(cat "$log")"
grep -q "Slurm has already requeued job $cid" "$log" \
    || fail "after scontrol requeue the log does not say Slurm requeued the job: $(cat "$log")"
! grep -q "not requeueing\|RS_RESUME_DIR" "$log" \
    || fail "after scontrol requeue the log tells to resubmit: $(cat "$log")"
grep -q 'restart=0 .*exit=75 requeued-by-slurm' "$frun/job_history.txt" \
    || fail "job_history.txt does not record Slurm's requeue: $(cat "$frun/job_history.txt")"
grep -q 'ignoring SIGUSR1' "$log" || fail "the SIGUSR1 right after the restart was not ignored: $(cat "$log")"
[ ! -f "$frun/fake.stopped.1" ] || fail "the SIGUSR1 after the restart reached the program"
echo "(c) ok in $((SECONDS - t0))s: Slurm's requeue logged as such, a late SIGUSR1 ignored"
fi
echo "t_slurm: all checks passed in $((SECONDS - START))s"
