#!/usr/bin/env bash
# jobs/submit-sweep.sh — submit a sweep as a Slurm job array (one chunk of the
# size x seed grid per task, jobs/sweep-array.sbatch) and the analysis job that
# merges the tasks' datasets and writes the report once every task has
# succeeded (jobs/analyze.sbatch, --dependency=afterok:<array id>).
#
#   jobs/submit-sweep.sh [options] CONFIG [key=value ...]
#
# Options:
#   --seeds-per-task K   seeds in one array task (default 1; 0 = all seeds of a size)
#   --name NAME          the sweep's name (default: CONFIG's file name without .conf)
#   --runs-dir DIR       where sweep folders go (default: runs)
#   --max-parallel K     at most K array tasks at once (sbatch --array=...%K)
#   --array-opt OPT      an extra sbatch option for the array (repeatable),
#                        e.g. --array-opt=--ntasks=4 --array-opt=--time=8:00:00
#   --analyze-opt OPT    an extra sbatch option for the analysis job (repeatable)
#   --parsable           print only "ARRAY_ID ANALYSIS_ID"
#   --dry-run            print the plan and the sbatch commands, submit nothing
# RELUSCOPE_ROOT (default: the folder above jobs/) is the checkout whose
# bin/reluscope runs (or RELUSCOPE_BIN, if set; both are passed to the jobs).
# sbatch's own SBATCH_* variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...) apply
# to both jobs. Run it from the folder the config's relative paths start from
# (normally the checkout); the jobs start there too.
#
# Before anything is queued it runs the program's own checks here (`reluscope
# plan --check`: the config, the corpus globs and every size against the
# corpus; `plan --ranks N` for each kind of task) and refuses a --time that
# the warning signal would cut at once. Exit codes: 64 bad arguments, config
# or rank layout, 65 bad corpus, 66 missing config or binary.
#
# Output folders: RUNS/<name>/<array id>/task_<i>/ per task, the merged
# RUNS/<name>/<array id>/dataset.nc and report/, Slurm logs in RUNS/<name>/logs/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${RELUSCOPE_ROOT:-$here/..}" && pwd)
# shellcheck source=jobs/common.sh
source "$here/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# sbatch_opt LONG SHORT ENV SCRIPT OPT...: the value sbatch will use for an
# option: the last of OPT... (the --array-opt list: --LONG=V, --LONG V, -SV),
# else the environment variable ENV, else SCRIPT's `#SBATCH --LONG=V` line.
sbatch_opt() {
    local long=$1 short=$2 env=$3 script=$4 v='' o prev=''; shift 4
    for o in "$@"; do
        case $o in
            "--$long="*) v=${o#*=} ;;
            -?*) if [ -n "$short" ] && [ "${o:0:2}" = "-$short" ] && [ "${#o}" -gt 2 ]; then v=${o:2}; fi ;;
            *) if [ "$prev" = "--$long" ] || { [ -n "$short" ] && [ "$prev" = "-$short" ]; }; then v=$o; fi ;;
        esac
        prev=$o
    done
    if [ -z "$v" ] && [ -n "${!env:-}" ]; then v=${!env}; fi
    if [ -z "$v" ]; then v=$(sed -n "s/^#SBATCH --$long=\([^ ]*\).*/\1/p" "$script" | tail -n 1); fi
    printf '%s\n' "$v"
}

# slurm_seconds TIME: Slurm's time formats (M, M:S, H:M:S, D-H, D-H:M,
# D-H:M:S) in seconds; nothing for UNLIMITED/INFINITE or what it cannot read.
slurm_seconds() {
    local t=$1 d=0 a b c
    case $t in *-*) d=${t%%-*}; t=${t#*-}
        IFS=: read -r a b c <<< "$t"; t="${a:-0}:${b:-0}:${c:-0}" ;; esac
    [[ $d =~ ^[0-9]+$ ]] || return 0
    IFS=: read -r a b c <<< "$t"
    [[ ${a}${b:-0}${c:-0} =~ ^[0-9]+$ ]] || return 0
    if [ -n "$c" ]; then echo $((10#$d * 86400 + 10#$a * 3600 + 10#$b * 60 + 10#$c))
    elif [ -n "$b" ]; then echo $((10#$d * 86400 + 10#$a * 60 + 10#$b))
    else echo $((10#$d * 86400 + 10#$a * 60)); fi
}

# check_signal_time: refuse a time limit that the warning signal would cut
# at once. Slurm sends --signal=[B:]SIG@N N seconds before the limit, and up
# to 60 s earlier than that; with a limit <= N + 60 every start (and restart)
# is stopped right away and the task loops. @0 switches the signal off.
check_signal_time() {
    local sig time offset secs
    sig=$(sbatch_opt signal '' SBATCH_SIGNAL "$root/jobs/sweep-array.sbatch" "${array_opts[@]}")
    time=$(sbatch_opt time t SBATCH_TIMELIMIT "$root/jobs/sweep-array.sbatch" "${array_opts[@]}")
    [ -n "$sig" ] && [ -n "$time" ] || return 0
    offset=60
    case $sig in *@*) offset=${sig##*@} ;; esac
    [[ $offset =~ ^[0-9]+$ ]] || return 0
    secs=$(slurm_seconds "$time")
    [ -n "$secs" ] && [ "$offset" -gt 0 ] || return 0
    if [ "$secs" -le $((offset + 60)) ]; then
        rs_die "$RS_EX_USAGE" "--time=$time (${secs} s) leaves no time before the warning signal --signal=$sig, which Slurm sends $offset s before the limit and up to 60 s earlier: every start would stop at once and requeue in a loop. Give a longer --time, a smaller offset (--array-opt=--signal=B:USR1@60), or switch the signal off (--array-opt=--signal=B:USR1@0)"
    fi
}
# presubmit_check CONFIG [key=value ...]: the program's own checks, on this
# node, before anything is queued: `plan --check` (the config, and the corpus
# of every size, as train checks them before it writes), then `plan --ranks N`
# for each kind of array task (its size and number of seeds on the task's N
# ranks, --ntasks). The jobs start in this folder, so relative data paths
# resolve here exactly as they will in the jobs.
presubmit_check() {
    local n i out key keys=' ' rel
    n=$(sbatch_opt ntasks n SBATCH_NTASKS "$root/jobs/sweep-array.sbatch" "${array_opts[@]}")
    n=${n:-1}
    [[ $n =~ ^[1-9][0-9]*$ ]] || rs_die "$RS_EX_USAGE" "--ntasks=$n is not a number of ranks"
    if ! out=$("$bin" plan --check "$@" 2>&1 > /dev/null); then
        printf '%s\n' "$out" >&2
        rel=$("$bin" plan "$@" 2> /dev/null | sed -n 's/^config \(train_data\|val_data\) = "\{0,1\}\([^/"][^"]*\)"\{0,1\}$/\1 = \2/p' | paste -sd ';' - | sed 's/;/, /g')
        if [ -n "$rel" ]; then
            rs_die "$RS_EX_DATAERR" "nothing submitted. Relative data paths ($rel) resolve against the folder you submit from, $PWD, where the jobs start too: submit from the folder they are written for (the checkout, for configs/*.conf), or make them absolute"
        fi
        rs_die "$RS_EX_DATAERR" "nothing submitted: the program refused the sweep (above)"
    fi
    for ((i = 0; i < RS_NTASKS; i++)); do
        rs_task "$i"
        key="$RS_TASK_SIZE/$(tr -cd , <<< "$RS_TASK_SEEDS")"   # size and seed count
        case $keys in *" $key "*) continue ;; esac
        keys+="$key "
        if ! out=$("$bin" plan --ranks "$n" "$@" sizes="$RS_TASK_SIZE" seeds="$RS_TASK_SEEDS" 2>&1 > /dev/null); then
            printf '%s\n' "$out" >&2
            rs_die "$RS_EX_USAGE" "nothing submitted: array task $i (size $RS_TASK_SIZE, seeds $RS_TASK_SEEDS) cannot run on $n ranks (--ntasks; above)"
        fi
    done
}

per=1 name='' runs=runs maxpar='' parsable=0 dry=0
array_opts=() analyze_opts=()
while [ "$#" -gt 0 ]; do
    case $1 in
        --seeds-per-task) per=${2:?}; shift 2 ;;  --seeds-per-task=*) per=${1#*=}; shift ;;
        --name) name=${2:?}; shift 2 ;;           --name=*) name=${1#*=}; shift ;;
        --runs-dir) runs=${2:?}; shift 2 ;;       --runs-dir=*) runs=${1#*=}; shift ;;
        --max-parallel) maxpar=${2:?}; shift 2 ;; --max-parallel=*) maxpar=${1#*=}; shift ;;
        --array-opt) array_opts+=("${2:?}"); shift 2 ;;     --array-opt=*) array_opts+=("${1#*=}"); shift ;;
        --analyze-opt) analyze_opts+=("${2:?}"); shift 2 ;; --analyze-opt=*) analyze_opts+=("${1#*=}"); shift ;;
        --parsable) parsable=1; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) rs_die "$RS_EX_USAGE" "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
[ "$#" -ge 1 ] || rs_die "$RS_EX_USAGE" "usage: jobs/submit-sweep.sh [options] CONFIG [key=value ...] (see --help)"
conf=$1; shift
[ -f "$conf" ] || rs_die "$RS_EX_NOINPUT" "config $conf not found"
bin=${RELUSCOPE_BIN:-$root/bin/reluscope}
[ -x "$bin" ] || rs_die "$RS_EX_NOINPUT" "$bin not found: run 'make' first"
if [ -n "$maxpar" ] && ! [[ $maxpar =~ ^[1-9][0-9]*$ ]]; then
    rs_die "$RS_EX_USAGE" "--max-parallel must be a positive number (got '$maxpar')"
fi
for kv in "$@"; do
    case $kv in
        *=*) ;;
        *) rs_die "$RS_EX_USAGE" "'$kv' is not a key=value override" ;;
    esac
done

check_signal_time
SEEDS_PER_TASK=$per
SWEEP_NAME=${name:-$(basename "$conf" .conf)}
export SEEDS_PER_TASK SWEEP_NAME
sweep=$(rs_sweep_name "$conf")
rs_grid "$conf" "$@"
rs_chunks
presubmit_check "$conf" "$@"
case $runs in /*) ;; *) runs=$PWD/$runs ;; esac
logs=$runs/$sweep/logs

array_cmd=(sbatch --parsable --array="0-$((RS_NTASKS - 1))${maxpar:+%$maxpar}"
           --job-name="rs-$sweep"
           --output="$logs/%x-%A_%a.out"
           --export="ALL,RELUSCOPE_ROOT=$root,RS_RUNS_DIR=$runs,SEEDS_PER_TASK=$SEEDS_PER_TASK,SWEEP_NAME=$sweep"
           "${array_opts[@]}" "$root/jobs/sweep-array.sbatch" "$conf" "$@")
analyze_cmd=(sbatch --parsable --job-name="rs-$sweep-analyze"
             --kill-on-invalid-dep=yes
             --output="$logs/%x-%j.out"
             --export="ALL,RELUSCOPE_ROOT=$root"
             "${analyze_opts[@]}")

if [ "$dry" = 1 ]; then
    SEEDS_PER_TASK=$per "$here/sweep-plan.sh" "$conf" "$@"
    printf 'would run:'; printf ' %q' "${array_cmd[@]}"; echo
    printf 'then:     '; printf ' %q' "${analyze_cmd[@]}" --dependency=afterok:ARRAY_ID \
        "$root/jobs/analyze.sbatch" "$runs/$sweep/ARRAY_ID" "$RS_NTASKS"; echo
    exit 0
fi

command -v sbatch >/dev/null 2>&1 || rs_die "$RS_EX_NOINPUT" "sbatch not found: is this a Slurm login node?"
mkdir -p "$logs"
aid=$("${array_cmd[@]}") || rs_die 1 "sbatch of the array failed"
aid=${aid%%;*}     # --parsable prints "id[;cluster]"
[[ $aid =~ ^[0-9]+$ ]] || rs_die 1 "unexpected answer from sbatch: '$aid'"
nid=$("${analyze_cmd[@]}" --dependency="afterok:$aid" \
      "$root/jobs/analyze.sbatch" "$runs/$sweep/$aid" "$RS_NTASKS") \
    || rs_die 1 "sbatch of the analysis job failed (the array $aid is queued: scancel $aid, or submit jobs/analyze.sbatch by hand)"
nid=${nid%%;*}
mkdir -p "$runs/$sweep/$aid"
if [ "$parsable" = 1 ]; then
    echo "$aid $nid"
else
    echo "sweep $sweep: $RS_NTASKS array tasks (${#RS_SIZES[@]} sizes x ${#RS_SEEDS[@]} seeds, $RS_PER seed(s) a task)"
    echo "array job    $aid -> $runs/$sweep/$aid/task_<i>/"
    echo "analysis job $nid (after every task of $aid succeeds) -> $runs/$sweep/$aid/dataset.nc, report/"
    echo "logs         $logs/"
fi
