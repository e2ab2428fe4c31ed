# tests/lib.sh — shared setup for the CLI/MPI test scripts (sourced).
# Gives: $RS (the binary), $PY (Debian's python3), $WORK (temp dir, removed on
# exit), make_tiny_corpus DIR, write_tiny_config FILE DATA OUT [key = value ...],
# mpi N ARGS... (mpirun with the right flags), fail MSG.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RS=$ROOT/${BIN:-bin}/reluscope
export RELUSCOPE=$RS   # the binary under test, for the Python checks (check_dataset.py)
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/reluscope-t.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1

fail() { echo "FAIL: $*" >&2; exit 1; }

make_tiny_corpus() { "$PY" "$ROOT/tests/make_corpus.py" "$1" --vocab 64 --tokens "${2:-60000}"; }

# A tiny sweep config on the synthetic corpus; extra lines are appended.
write_tiny_config() {
    local file=$1 data=$2 out=$3; shift 3
    cat > "$file" <<CONF
size.t2 = L=2 d=32 h=2 F=64 T=32 V=64
sizes = t2
seeds = 0
train_data = $data/train_*.bin
val_data = $data/val_*.bin
batch_size = 8
steps = 20
lr = 3e-3
lr_min = 3e-4
warmup_steps = 5
dead_window = 5
snapshot_every = 5
eval_every = 5
eval_tokens = 512
out_dir = $out
log_every = 5
checkpoint_every = 10
flush_every = 5
check_every = 5
CONF
    local line key
    for line in "$@"; do   # an extra line replaces the base line of its key
        key=${line%%=*}; key=${key// /}
        sed -i "/^$key *=/d" "$file"
        echo "$line" >> "$file"
    done
}

mpi() { local n=$1; shift; mpirun --oversubscribe -np "$n" "$@"; }
