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
# Output folders: RUNS/<name>/<array id>/task_<i>/ per task, the merged
# RUNS/<name>/<array id>/dataset.nc and report/, Slurm logs in RUNS/<name>/logs/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${RELUSCOPE_ROOT:-$here/..}" && pwd)
# shellcheck source=jobs/common.sh
source "$here/common.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
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

SEEDS_PER_TASK=$per
SWEEP_NAME=${name:-$(basename "$conf" .conf)}
export SEEDS_PER_TASK SWEEP_NAME
sweep=$(rs_sweep_name "$conf")
rs_grid "$conf" "$@"
rs_chunks
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
