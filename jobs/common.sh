# jobs/common.sh — shared by the Slurm job scripts in jobs/ (sourced, not run).
# docs/slurm.md describes the behaviour; this file is the one place it lives.
#
# Environment it reads (all optional):
#   RELUSCOPE_ROOT   the reluscope checkout (default: the submit directory)
#   RELUSCOPE_BIN    the program (default: RELUSCOPE_ROOT/bin/reluscope)
#   RS_RUNS_DIR      where job folders go (default: runs, relative to the submit directory)
#   RS_LAUNCH        auto (default) | srun | mpirun | none   — how ranks are started
#   RS_RESUME_DIR    run in this existing job folder instead of a new one (to resume a
#                    run whose job could not requeue itself); for an array task, its
#                    task_<i> folder or the sweep folder above the task_<i> folders
#   RS_RESTART_GRACE a requeued job ignores SIGUSR1 this many seconds after its start
#                    (default 100): a late retry of the stop request that requeued it
#   RS_OPENBLAS_CORETYPE  force this OPENBLAS_CORETYPE on every node (default: each
#                    node detects its own; an OPENBLAS_CORETYPE from the submit
#                    environment is not used)
#   RS_NO_REQUEUE=1  do not requeue after a stop; end the job with exit code 75
#   RS_MAX_RESTARTS  do not requeue a job that has restarted this often (default 50)
#   PY               the Python with xarray/netCDF4 (default /usr/bin/python3)
# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are read by the scripts that source this file)

# Exit codes of the job scripts (besides the program's own: 0 finished, 75 stopped).
RS_EX_USAGE=64      # bad arguments, or an array task outside the sweep's plan
RS_EX_DATAERR=65    # analysis: a task's dataset is missing
RS_EX_NOINPUT=66    # the binary, the config or the sweep folder is missing
RS_EX_UNAVAILABLE=69 # analysis: the Python lacks the report's modules (dataset merged)
RS_EX_CANTCREAT=73  # the job folder exists and belongs to another job
RS_EX_TEMPFAIL=75   # stopped at a checkpoint (requeued, or resubmit to resume)

rs_log() { printf '[%s] %s\n' "$(date '+%F %T')" "$*"; }
rs_die() { local code=$1; shift; echo "reluscope-job: error: $*" >&2; exit "$code"; }

# --- where things are ---------------------------------------------------------
# Slurm runs a copy of the batch script from its spool folder, so the checkout
# is found from the submit directory (or RELUSCOPE_ROOT), never from $0.
rs_find_root() {
    RS_ROOT=${RELUSCOPE_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
    RS_ROOT=$(cd "$RS_ROOT" 2>/dev/null && pwd) \
        || rs_die "$RS_EX_NOINPUT" "RELUSCOPE_ROOT '${RELUSCOPE_ROOT:-}' is not a folder"
    RS_BIN=${RELUSCOPE_BIN:-$RS_ROOT/bin/reluscope}
    [ -x "$RS_BIN" ] || rs_die "$RS_EX_NOINPUT" "$RS_BIN not found: run 'make' in $RS_ROOT, or set RELUSCOPE_ROOT"
    PY=${PY:-/usr/bin/python3}
    export RS_ROOT RS_BIN PY
}

rs_runs_dir() {
    local d=${RS_RUNS_DIR:-runs}
    case $d in /*) ;; *) d=${SLURM_SUBMIT_DIR:-$PWD}/$d ;; esac
    printf '%s\n' "$d"
}

# --- threads per rank -----------------------------------------------------------
# Every rank starts through scripts/blas-env.sh, which picks the OpenBLAS
# kernels for the CPU of the node it runs on (nodes may differ from each other
# and from the login node).
RS_BLAS_WRAP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../scripts" && pwd)/blas-env.sh
rs_threads() {
    local n=${SLURM_CPUS_PER_TASK:-1}
    export OPENBLAS_NUM_THREADS=$n OMP_NUM_THREADS=$n
    # sbatch exports the submit environment: a value decided on the login
    # node must not be forced on compute nodes; RS_OPENBLAS_CORETYPE is.
    if [ -n "${RS_OPENBLAS_CORETYPE:-}" ]; then
        export OPENBLAS_CORETYPE=$RS_OPENBLAS_CORETYPE
    elif [ -n "${OPENBLAS_CORETYPE:-}" ]; then
        rs_log "not using OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE from the submit environment: each node detects its own (RS_OPENBLAS_CORETYPE forces one)"
        unset OPENBLAS_CORETYPE
    fi
    # Slurm >= 22.05: srun inside a batch job no longer inherits --cpus-per-task.
    if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK; fi
}

# --- the MPI launcher -------------------------------------------------------------
# Sets the array RS_LAUNCH_CMD: srun --mpi=pmix where Slurm has the PMIx plugin,
# otherwise Open MPI's mpirun (which finds the allocation by itself).
rs_launcher() {
    local how=${RS_LAUNCH:-auto}
    if [ "$how" = auto ]; then
        if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null 2>&1 \
            && srun --mpi=list 2>&1 | grep -qw pmix; then
            how=srun
        elif command -v mpirun >/dev/null 2>&1; then
            how=mpirun
        else
            how=none
        fi
    fi
    case $how in
        srun)
            # no --kill-on-bad-exit: exit code 75 ("stopped") is not a failure
            RS_LAUNCH_CMD=(srun --mpi=pmix) ;;
        mpirun)
            command -v mpirun >/dev/null 2>&1 || rs_die "$RS_EX_NOINPUT" "mpirun not found (RS_LAUNCH=mpirun)"
            # (mpirun ends the job when a rank exits non-zero, 75 included;
            # harmless, as the ranks leave MPI_Finalize together, after rank
            # 0 has written everything. Setting
            # OMPI_MCA_orte_abort_on_non_zero_status=0 would make mpirun
            # exit 0 after a stop, so it is not used.)
            if [ "$(id -u)" -eq 0 ]; then
                export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
            fi
            # Slurm's SIGTERM reaches mpirun as well as the ranks; mpirun
            # then aborts and SIGKILLs the ranks after this many seconds
            # (Open MPI's default, 1, kills a stop before its checkpoint
            # whenever a step takes longer than ~2 s). mpirun waits about
            # twice this before it exits, which must stay under KillWait.
            export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-10}
            # -x: mpirun passes these to ranks on other nodes too
            RS_LAUNCH_CMD=(mpirun -np "${SLURM_NTASKS:-1}" -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS)
            if [ -n "${OPENBLAS_CORETYPE:-}" ]; then RS_LAUNCH_CMD+=(-x OPENBLAS_CORETYPE); fi
            local t=${SLURM_CPUS_PER_TASK:-1}
            if [ "$t" -gt 1 ]; then RS_LAUNCH_CMD+=(--map-by "slot:PE=$t"); fi ;;
        none)
            RS_LAUNCH_CMD=() ;;
        *)
            rs_die "$RS_EX_USAGE" "RS_LAUNCH must be auto, srun, mpirun or none (got '$how')" ;;
    esac
    RS_LAUNCH_CMD+=(bash "$RS_BLAS_WRAP")
    RS_LAUNCH_NAME=$how
}

# --- the job folder -----------------------------------------------------------------
# rs_job_dir DIR: make DIR this job's folder. A new job (SLURM_RESTART_COUNT 0 or
# unset) needs a folder nobody used; a requeued job (count > 0) takes its own
# folder back and the program resumes from the checkpoints in it. The file
# .slurm_job in the folder names the job that owns it.
rs_job_dir() {
    local dir=$1 owner restarts=${SLURM_RESTART_COUNT:-0}
    owner="cluster=${SLURM_CLUSTER_NAME:-none} job=${SLURM_JOB_ID:-local-$$}"
    if [ -n "${RS_RESUME_DIR:-}" ]; then
        RS_OUT=$(rs_resume_dir "$RS_RESUME_DIR" "$(basename "$dir")") || exit
        printf '%s resumed-by\n' "$owner" >> "$RS_OUT/.slurm_job"
    elif [ -e "$dir" ]; then
        if [ "$restarts" -gt 0 ] && [ -f "$dir/.slurm_job" ] \
            && [ "$(head -n 1 "$dir/.slurm_job")" = "$owner" ]; then
            RS_OUT=$dir
        else
            rs_die "$RS_EX_CANTCREAT" "job folder $dir already exists and is not this job's (restart count $restarts); not touching it (move it away, or set RS_RUNS_DIR)"
        fi
    else
        mkdir -p "$dir" || rs_die "$RS_EX_CANTCREAT" "cannot create job folder $dir"
        printf '%s\n' "$owner" > "$dir/.slurm_job"
        RS_OUT=$dir
    fi
    export RS_OUT
}

# rs_resume_dir DIR NAME: the folder to resume in, from RS_RESUME_DIR=DIR, for
# a job whose own folder would be NAME. An array task (NAME task_<i>) takes
# DIR if DIR is task_<i>, or DIR/task_<i> if DIR is the sweep folder above it;
# any other task_<j> is refused, so one task never writes into another's
# folder. DIR must be a job folder (it holds .slurm_job).
rs_resume_dir() {
    local d=$1 name=$2
    [ -d "$d" ] || rs_die "$RS_EX_NOINPUT" "RS_RESUME_DIR '$d' is not a folder"
    d=$(cd "$d" && pwd)
    if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
        if [ "$(basename "$d")" != "$name" ] && [ -d "$d/$name" ]; then d=$d/$name; fi
        [ "$(basename "$d")" = "$name" ] \
            || rs_die "$RS_EX_USAGE" "RS_RESUME_DIR '$1' is not array task $SLURM_ARRAY_TASK_ID's folder: give its $name folder, or the sweep folder that holds task_<i> for every task"
    fi
    [ -f "$d/.slurm_job" ] \
        || rs_die "$RS_EX_NOINPUT" "RS_RESUME_DIR '$d' is not a job folder (no .slurm_job): give the folder a job of these scripts wrote"
    printf '%s\n' "$d"
}

rs_history() {   # one line a job start/end in RS_OUT/job_history.txt
    printf '%s job=%s restart=%s host=%s %s\n' "$(date '+%F %T')" "${SLURM_JOB_ID:-local}" \
        "${SLURM_RESTART_COUNT:-0}" "$(hostname -s 2>/dev/null || echo '?')" "$*" \
        >> "$RS_OUT/job_history.txt"
}

# --- running the program with signal forwarding --------------------------------------
# rs_traps: the job scripts call it first thing. SIGUSR1 or SIGTERM to the
# batch shell (from `#SBATCH --signal=B:USR1@N`, `scancel --signal=USR1
# --batch`, or Slurm ending the job) is passed on to the program as SIGUSR1,
# on which it finishes its step, writes checkpoints and exits 75. A signal
# that comes before the program has started is remembered: the program is
# then not started, and the job ends as if it had stopped (75).
RS_PID=
RS_SIGNALS=0
RS_GOT_TERM=0
rs_forward() {
    local grace=${RS_RESTART_GRACE:-100}
    # `scancel --signal=USR1 --batch` on an array task may retry for up to
    # 95 s although its first try was delivered (Slurm 22.05: "Job can not
    # be altered now"); a retry reaching the requeued job would stop it again.
    if [ "$1" = USR1 ] && [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && [ "$SECONDS" -lt "$grace" ]; then
        rs_log "ignoring SIGUSR1 ${SECONDS}s after this restart (RS_RESTART_GRACE=${grace}s): most likely a retry of the stop request that requeued the job"
        return 0
    fi
    RS_SIGNALS=$((RS_SIGNALS + 1))
    if [ "$1" = TERM ]; then RS_GOT_TERM=1; fi
    rs_log "got SIG$1: asking the program to checkpoint and stop"
    if [ -n "$RS_PID" ]; then kill -USR1 "$RS_PID" 2>/dev/null || true; fi
}
rs_traps() {
    trap 'rs_forward USR1' USR1
    trap 'rs_forward TERM' TERM
}

# rs_run CMD...: runs CMD (through the launcher) in the background and waits
# for it, so that the traps fire at once. Sets RS_RC to its exit code.
# The launcher runs inside a subshell that ignores USR1/TERM (a stop reaches
# it only as the SIGUSR1 the trap forwards, or Slurm's own signals to the
# ranks) and writes the exit code to a file: bash 5.2 loses the status of a
# child that exits while a trap runs (`wait` then says -1), as happens when
# Slurm's SIGTERM reaches the program and the batch shell at once.
rs_run() {
    local sub f
    rs_traps
    if [ "$RS_SIGNALS" -gt 0 ]; then
        rs_log "stop requested before the start: not starting the program"
        RS_RC=$RS_EX_TEMPFAIL
        return 0
    fi
    f=$(mktemp "${TMPDIR:-/tmp}/reluscope-job.XXXXXX")
    rs_log "start: ${RS_LAUNCH_CMD[*]} $*"
    (
        trap '' USR1 TERM
        "${RS_LAUNCH_CMD[@]}" "$@" &
        echo "pid $!" > "$f"
        rc=0; wait "$!" || rc=$?
        echo "rc $rc" >> "$f"
    ) &
    sub=$!
    while [ -z "$RS_PID" ] && kill -0 "$sub" 2> /dev/null; do
        RS_PID=$(sed -n 's/^pid //p' "$f"); [ -n "$RS_PID" ] || sleep 0.05
    done
    # a signal before RS_PID was known was not forwarded
    if [ "$RS_SIGNALS" -gt 0 ] && [ -n "$RS_PID" ]; then kill -USR1 "$RS_PID" 2>/dev/null || true; fi
    # wait returns early when a trap runs; the program may still be running
    while kill -0 "$sub" 2> /dev/null; do wait "$sub" || true; done
    RS_RC=$(sed -n 's/^rc //p' "$f")
    rm -f "$f"
    RS_PID=
    if [ -z "$RS_RC" ]; then
        RS_RC=137
        rs_log "the launcher was killed before it could report its exit code"
    fi
    rs_log "the program exited with code $RS_RC"
}

# rs_time_is_up: true if this job has reached its time limit (StartTime +
# TimeLimit, within 10 s), i.e. a SIGTERM came from the limit, not from scancel
rs_time_is_up() {
    local info start limit d=0 h=0 m=0 sec=0 t
    info=$(scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null) || return 1
    start=$(printf '%s\n' "$info" | grep -o 'StartTime=[^ ]*' | head -n 1 | cut -d= -f2)
    limit=$(printf '%s\n' "$info" | grep -o 'TimeLimit=[^ ]*' | head -n 1 | cut -d= -f2)
    start=$(date -d "$start" +%s 2>/dev/null) || return 1
    case $limit in *-*) d=${limit%%-*}; limit=${limit#*-} ;; esac
    IFS=: read -r h m sec <<< "$limit"
    [[ "$d$h$m${sec:-0}" =~ ^[0-9]+$ ]] || return 1     # UNLIMITED, or unknown
    t=$((start + 10#$d * 86400 + 10#$h * 3600 + 10#$m * 60 + 10#${sec:-0}))
    [ "$(date +%s)" -ge $((t - 10)) ]
}

# rs_slurm_restarts: the job's Restarts count as slurmctld has it now. When it
# is above SLURM_RESTART_COUNT, Slurm has already requeued this job (scontrol
# requeue, or preemption with PreemptMode=REQUEUE) and is ending this start.
rs_slurm_restarts() {
    scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | grep -o 'Restarts=[0-9]*' | head -n 1 | cut -d= -f2
}

# rs_finish: after rs_run. Exit 75 means "stopped at a checkpoint". After
# SIGUSR1 (the --signal warning, or `scancel --signal=USR1 --batch`), or a
# stop the batch shell did not see, the job requeues itself: it starts again
# from the top, in the same folder, and resumes. After SIGTERM it requeues
# only if the time limit was reached: a SIGTERM from scancel means "cancel"
# (the work is saved all the same), and Slurm requeues preempted jobs itself
# where PreemptMode=REQUEUE.
rs_finish() {
    local max=${RS_MAX_RESTARTS:-50}
    if [ "$RS_RC" -eq 0 ] && [ ! -f "$RS_OUT/dataset.nc" ]; then
        # e.g. srun reports 0 when a step was cancelled before it launched
        echo "reluscope-job: error: the launcher exited 0 but $RS_OUT/dataset.nc does not exist" >&2
        RS_RC=1
    fi
    if [ "$RS_RC" -eq "$RS_EX_TEMPFAIL" ]; then
        if [ -z "${SLURM_JOB_ID:-}" ] || [ "${RS_NO_REQUEUE:-0}" = 1 ]; then
            rs_history "exit=$RS_RC"
        elif [ "$(rs_slurm_restarts)" -gt "${SLURM_RESTART_COUNT:-0}" ] 2>/dev/null; then
            rs_history "exit=$RS_RC requeued-by-slurm"
            rs_log "Slurm has already requeued job $SLURM_JOB_ID (scontrol requeue, or preemption with PreemptMode=REQUEUE): it will start again and resume from the checkpoints in $RS_OUT"
            exit "$RS_EX_TEMPFAIL"
        elif [ "$RS_GOT_TERM" = 1 ] && ! rs_time_is_up; then
            rs_history "exit=$RS_RC sigterm"
            rs_log "stopped by SIGTERM (scancel, preemption with PreemptMode=CANCEL, or shutdown): not requeueing"
        elif [ "${SLURM_RESTART_COUNT:-0}" -ge "$max" ]; then
            rs_history "exit=$RS_RC not-requeued (restart count $max reached)"
            echo "reluscope-job: warning: not requeueing: this job has already restarted $max times (RS_MAX_RESTARTS)" >&2
        else
            rs_history "exit=$RS_RC requeue"
            rs_log "asking Slurm to requeue job $SLURM_JOB_ID; it will resume from the checkpoints in $RS_OUT"
            # Slurm ends this incarnation with SIGTERM once the requeue is
            # accepted: no more forwarding, just go.
            trap - USR1 TERM
            if scontrol requeue "$SLURM_JOB_ID"; then exit "$RS_EX_TEMPFAIL"; fi
            rs_history "requeue refused"
            echo "reluscope-job: warning: scontrol requeue $SLURM_JOB_ID failed (JobRequeue=0, --no-requeue, or the job is ending anyway)" >&2
        fi
        echo "reluscope-job: stopped at a checkpoint; to resume, resubmit the same way with RS_RESUME_DIR=$RS_OUT" >&2
        exit "$RS_EX_TEMPFAIL"
    fi
    rs_history "exit=$RS_RC"
    exit "$RS_RC"
}

# --- the sweep grid and its chunks ------------------------------------------------------
# rs_grid CONFIG [key=value ...]: sets RS_SIZES and RS_SEEDS (arrays) from
# `reluscope plan CONFIG [key=value ...]`, the program's own reading of the
# config (defaults, overrides, quoting, seed ranges a-b, every key validated;
# docs/config.md): the scripts never parse a config themselves. A config the
# program refuses stops here with the program's one-line message (exit 64).
# The program is RS_BIN, else RELUSCOPE_BIN, else RELUSCOPE_ROOT/bin/reluscope,
# else the checkout this file is in.
rs_grid() {
    local conf=$1 plan; shift
    [ -f "$conf" ] || rs_die "$RS_EX_NOINPUT" "config $conf not found"
    local bin=${RS_BIN:-${RELUSCOPE_BIN:-${RELUSCOPE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}/bin/reluscope}}
    [ -x "$bin" ] || rs_die "$RS_EX_NOINPUT" "$bin not found: run 'make' first, or set RELUSCOPE_ROOT"
    plan=$("$bin" plan "$conf" "$@") || rs_die "$RS_EX_USAGE" "$conf: the program refused the config (above)"
    mapfile -t RS_SIZES < <(printf '%s\n' "$plan" | sed -n 's/^size \([^ ]*\) .*/\1/p')
    mapfile -t RS_SEEDS < <(printf '%s\n' "$plan" | sed -n 's/^seed //p')
    if [ "${#RS_SIZES[@]}" -eq 0 ] || [ "${#RS_SEEDS[@]}" -eq 0 ]; then
        rs_die "$RS_EX_USAGE" "$conf: no sizes or no seeds in the program's plan"
    fi
}

# The chunking rule: every array task trains ONE size and a block of up to
# SEEDS_PER_TASK consecutive seeds of the sweep's seed list (0 = all seeds).
# Tasks are numbered size-major: task i has size i / B and seed block i % B,
# B = ceil(n_seeds / SEEDS_PER_TASK). rs_chunks sets RS_PER, RS_BLOCKS, RS_NTASKS.
rs_chunks() {
    RS_PER=${SEEDS_PER_TASK:-1}
    [[ $RS_PER =~ ^[0-9]+$ ]] || rs_die "$RS_EX_USAGE" "SEEDS_PER_TASK must be a number (got '$RS_PER')"
    if [ "$RS_PER" -eq 0 ] || [ "$RS_PER" -gt "${#RS_SEEDS[@]}" ]; then RS_PER=${#RS_SEEDS[@]}; fi
    RS_BLOCKS=$(( (${#RS_SEEDS[@]} + RS_PER - 1) / RS_PER ))
    RS_NTASKS=$(( ${#RS_SIZES[@]} * RS_BLOCKS ))
}

# rs_task I: sets RS_TASK_SIZE and RS_TASK_SEEDS (comma list) for task I.
rs_task() {
    local i=$1 s b first j
    if ! [[ $i =~ ^[0-9]+$ ]] || [ "$i" -ge "$RS_NTASKS" ]; then
        rs_die "$RS_EX_USAGE" "array task $i is outside the sweep's plan (tasks 0-$((RS_NTASKS - 1)); SEEDS_PER_TASK=$RS_PER)"
    fi
    s=$((i / RS_BLOCKS)); b=$((i % RS_BLOCKS)); first=$((b * RS_PER))
    RS_TASK_SIZE=${RS_SIZES[$s]}
    RS_TASK_SEEDS=
    for ((j = first; j < first + RS_PER && j < ${#RS_SEEDS[@]}; j++)); do
        RS_TASK_SEEDS+=${RS_TASK_SEEDS:+,}${RS_SEEDS[$j]}
    done
}

# The sweep's name: SWEEP_NAME, or the config file's name without .conf.
rs_sweep_name() {
    local n=${SWEEP_NAME:-$(basename "$1" .conf)}
    [[ $n =~ ^[A-Za-z0-9._+-]+$ ]] || rs_die "$RS_EX_USAGE" "sweep name '$n' must be letters, digits, . _ + -"
    printf '%s\n' "$n"
}

# --- the single-job body (jobs/run.sbatch, jobs/multinode.sbatch) ----------------------
# rs_main_run SCRIPT CONFIG [key=value ...]: train the whole sweep of CONFIG in
# this job, in runs/<name>/<job id>/.
rs_main_run() {
    local script=$1 conf name; shift
    rs_traps
    [ "$#" -ge 1 ] || rs_die "$RS_EX_USAGE" "usage: sbatch $script CONFIG [key=value ...]"
    conf=$1; shift
    [ -f "$conf" ] || rs_die "$RS_EX_NOINPUT" "config $conf not found"
    rs_find_root
    rs_threads
    rs_launcher
    name=$(rs_sweep_name "$conf")
    rs_job_dir "$(rs_runs_dir)/$name/${SLURM_JOB_ID:-local-$(date +%Y%m%d-%H%M%S)-$$}"
    rs_history "start launcher=$RS_LAUNCH_NAME nodes=${SLURM_JOB_NUM_NODES:-1} ntasks=${SLURM_NTASKS:-1} cpus_per_task=${SLURM_CPUS_PER_TASK:-1}"
    rs_log "job ${SLURM_JOB_ID:-local} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname -s)}, launcher $RS_LAUNCH_NAME -> $RS_OUT"
    rs_run "$RS_BIN" train "$conf" "$@" out_dir="$RS_OUT"
    rs_finish
}
