#!/usr/bin/env bash
# make demo: the default main job. Fetches and prepares the Brown corpus
# (BPE, 4096 tokens) once, runs configs/demo.conf (2 sizes x 2 seeds) under
# mpirun with 2 ranks, then writes the report. Re-running resumes/finishes.
# RANKS=4 and OUT=folder change the rank count and the output; extra
# key=value arguments go to `train` (e.g. steps=100 with a new OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
# shellcheck source=scripts/blas-env.sh
source scripts/blas-env.sh
rs_blas_env bin/reluscope
RANKS=${RANKS:-2}
OUT=${OUT:-runs/demo}
bash scripts/corpus.sh
mpirun --oversubscribe -np "$RANKS" bin/reluscope train configs/demo.conf out_dir="$OUT" "$@"
echo "dataset: $(realpath "$OUT")/dataset.nc"
bash scripts/report.sh "$OUT/dataset.nc" "$OUT/report"
