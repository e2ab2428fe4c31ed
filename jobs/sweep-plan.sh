#!/usr/bin/env bash
# jobs/sweep-plan.sh — print how jobs/sweep-array.sbatch splits a sweep into
# array tasks (the chunking rule of jobs/common.sh), without submitting:
#
#   SEEDS_PER_TASK=2 jobs/sweep-plan.sh configs/demo.conf [key=value ...]
#
# Output: "tasks N", then one line a task: "task I sizes=S seeds=a,b". The
# sizes and seeds come from `reluscope plan` (the program reads the config;
# `reluscope plan CONFIG --ranks N` shows the runs and rank groups of a task).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=jobs/common.sh
source "$here/common.sh"
[ "$#" -ge 1 ] || rs_die "$RS_EX_USAGE" "usage: jobs/sweep-plan.sh CONFIG [key=value ...]"
rs_grid "$@"
rs_chunks
echo "tasks $RS_NTASKS"
for ((i = 0; i < RS_NTASKS; i++)); do
    rs_task "$i"
    echo "task $i sizes=$RS_TASK_SIZE seeds=$RS_TASK_SEEDS"
done
