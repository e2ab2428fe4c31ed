#!/usr/bin/env bash
# bench/run.sh — `make bench`: the SPEC §6 benchmark table from one run.
#
# For each size (S, M, P; BENCH_SIZES="S M" to choose), in this order:
#   model     build/bench/bench_model: the one-rank step (forward with every
#             metric counted, backward, norm/clip/AdamW, metric summaries),
#             tokens/s, model FLOP/s against single-thread sgemm FLOP/s
#             measured between the steps, and the counting cost (forward with
#             usage = NULL against forward with the usage buffer, paired);
#   metrics   bench/bench_metrics.c: the fused kernel's counting cost alone;
#   torch     bench/torch_ref.py: the same model, batch and statistics in
#             PyTorch, one thread, same OpenBLAS;
#   train1/2  the real trainer, `mpirun -np 1|2 bin/reluscope train`, on a
#             synthetic corpus of the size's vocabulary (tests/make_corpus.py),
#             snapshots, evaluation and checkpoints off; tokens/s from the
#             median `step_time` of OUT_DIR/dataset.nc (first step skipped);
#   dp        build/bench/bench_dp at 2 ranks: 1-rank and 2-rank training
#             steps alternating in one job; the median per-pair ratio is the
#             2-rank speedup (this VM's speed drifts over tens of seconds);
#   comm      build/bench/bench_comm at 2 ranks: the step's allreduces;
#   scaling   build/bench/bench_sgemm: the fc GEMM of a 2-rank step alone and
#             one copy per core at once: what the machine allows 2 ranks;
#   ncout     build/bench/bench_ncout: NetCDF cost of one step record;
#   spectrum  build/bench/bench_spectrum: one layer's held-out spectrum;
#   resample  build/bench/bench_resample: resample_dead's re-initialization
#             (10% of units off, every 100 steps) and the tracker's
#             bookkeeping of resampled units, against the step.
# Then the W group (the study geometry L=6 d=64 h=4 F=2048 T=64 V=4096,
# 8192-token batches; the sparse MLP kernels, mlp_sparse.h):
#   mlp       build/bench/bench_mlp: one MLP layer alone, dense / sparse /
#             auto, at densities 50 20 10 5 2 %;
#   wtrain    the trained state: `reluscope train` of the geometry (B=16,
#             mlp_kernel=auto, BENCH_SPARSE_STEPS steps, default 400) on
#             BENCH_SPARSE_DATA (default data/brown/train_*.bin, `make
#             corpus`), or the checkpoint BENCH_SPARSE_CKPT instead;
#   step      build/bench/bench_step_sparse: whole training steps from that
#             state, dense / sparse / auto alternating, against sgemm;
#   rss       the same program with one path alone under /usr/bin/time:
#             peak memory of the dense, the sparse and the auto step;
#   wtorch    bench/torch_ref.py at the geometry (real windows of the corpus).
# Then bench/table.py prints the table and, for W, bench/amdahl.py the bound
# of the whole step (also left in build/bench/table.md; the programs' raw
# outputs in build/bench/last/).
#
# Environment: BENCH_SIZES (default "S M P W"), BENCH_QUICK=1 (fewer
# repetitions), BENCH_KEEP=1 (keep the work folder), BIN, BUILD.
# OPENBLAS_CORETYPE: if unset and OpenBLAS would fall back to an older
# kernel than the CPU supports (0.3.21 does not know recent Xeons and picks
# "Prescott", 5x slower), it is set for every program of the benchmark —
# reluscope and PyTorch alike — and the header says so.
# Everything runs one thread per rank; expect ~7 minutes on 2 cores (a P
# step takes ~20 s on one core). Each part reports how much CPU other
# processes took meanwhile (/proc/stat counts those of other containers too);
# numbers from a busy machine are low, the ratios measured side by side in
# the same run hold better, and the table warns.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN=${BIN:-bin}
BUILD=${BUILD:-build}
PY=/usr/bin/python3
SIZES=${BENCH_SIZES:-S M P W}
QUICK=${BENCH_QUICK:-0}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS)

say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN/reluscope" ] || die "$BIN/reluscope is missing (run make first)"
[ -f "$BUILD/libreluscope.a" ] || die "$BUILD/libreluscope.a is missing (run make first)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/reluscope-bench.XXXXXX") || die "cannot create a work folder"
if [ "${BENCH_KEEP:-0}" = 1 ]; then say "work folder kept: $WORK"
else trap 'rm -rf "$WORK"' EXIT; fi

# ---- build the benchmark programs (flags of the brief; -g for profiles) ----
CFLAGS=(-Iinclude -O3 -march=native -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -g
        -fopenmp-simd -fno-math-errno)
LIBS=("$BUILD/libreluscope.a" -lscalapack-openmpi -lnetcdf -lopenblas -lz -lm)
mkdir -p "$BUILD/bench"
for b in model metrics comm dp ncout spectrum sgemm resample mlp step_sparse; do
    mpicc "${CFLAGS[@]}" "bench/bench_$b.c" "${LIBS[@]}" -o "$BUILD/bench/bench_$b" \
        || die "cannot build bench/bench_$b.c"
done

# ---- OpenBLAS kernel ----
blas_core() { OPENBLAS_VERBOSE=2 "$BUILD/bench/bench_model" 1 8 1 8 8 8 1 1 2>&1 |
              sed -n 's/^Core: //p' | head -1; }
AUTO_CORE=$(env -u OPENBLAS_CORETYPE bash -c "$(declare -f blas_core); BUILD=$BUILD; blas_core")
CORE_NOTE="autodetected"
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    case "$AUTO_CORE" in
        SkylakeX|Cooperlake|SapphireRapids|Zen*) ;;
        *)  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
            elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
            [ -n "${OPENBLAS_CORETYPE:-}" ] &&
                CORE_NOTE="forced with OPENBLAS_CORETYPE; autodetection gives $AUTO_CORE" ;;
    esac
else
    CORE_NOTE="OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE from the environment"
fi
[ -n "${OPENBLAS_CORETYPE:-}" ] && MPIRUN+=(-x OPENBLAS_CORETYPE)
CORE=$(blas_core)

# ---- per-size parameters: size args, bench reps, torch reps/warm-up, trainer steps ----
sizeargs() { case $1 in
    S) echo "4 128 4 512 128 256 16" ;; M) echo "6 256 8 1024 256 4096 16" ;;
    P) echo "6 512 8 4096 256 4096 32" ;; esac; }
reps_of() {   # part size -> repetitions
    local q=$QUICK
    case $1.$2 in
        model.S) [ "$q" = 1 ] && echo 6 || echo 12 ;;
        model.M) [ "$q" = 1 ] && echo 2 || echo 4 ;;
        model.P) echo 2 ;;
        torch.S) [ "$q" = 1 ] && echo 6 || echo 12 ;;
        torch.M) [ "$q" = 1 ] && echo 2 || echo 4 ;;
        torch.P) echo 2 ;;
        steps.S) [ "$q" = 1 ] && echo 12 || echo 25 ;;
        steps.M) [ "$q" = 1 ] && echo 4 || echo 7 ;;
        steps.P) echo 4 ;;
        comm.*) echo 7 ;;
        dp.S) [ "$q" = 1 ] && echo 10 || echo 30 ;;
        dp.M) [ "$q" = 1 ] && echo 3 || echo 8 ;;
        dp.P) echo 3 ;;
        spectrum.P) echo 1 ;;
        spectrum.*) echo 3 ;;
    esac
}

# run PART SIZE TIMEOUT CMD...: output to $WORK/SIZE.PART.out, failure noted
# CPU accounting: the machine's busy time (/proc/stat), the hypervisor's
# steal, and the CPU time of this script's finished children (`times`), so
# that each part can report how much OTHER work shared the machine with it.
TCK=$(getconf CLK_TCK)
cpu_now() {   # -> "busy_ticks steal_ticks own_children_seconds wall_seconds"
    # reads $WORK/times, which the CALLER writes with `times` first: inside
    # this function's $(...) subshell `times` would only see the subshell
    awk -v wall="$(date +%s.%N)" '
        FNR == 1 && FILENAME ~ /stat$/ { busy = $2 + $3 + $4 + $7 + $8; steal = $9 }
        FILENAME ~ /times$/ && FNR == 2 {
            for (i = 1; i <= 2; i++) { split($i, b, "m"); sub("s", "", b[2]); own += b[1] * 60 + b[2] } }
        END { printf "%d %d %.3f %s\n", busy, steal, own, wall }' /proc/stat "$WORK/times"
}

# run PART SIZE TIMEOUT CMD...: output to $WORK/SIZE.PART.out, failure noted,
# and a line "LOAD foreign=<cores used by other processes> steal=<cores>"
run() {
    local part=$1 size=$2 limit=$3; shift 3
    local out="$WORK/$size.$part.out" before after
    local pre=(timeout "$limit")
    declare -F "$1" >/dev/null && pre=()   # shell functions time their own commands
    times >"$WORK/times"
    before=$(cpu_now)
    if "${pre[@]}" "$@" >"$out" 2>&1; then
        grep '^#' "$out" | sed "s/^/  $size $part: /" >&2
    else
        say "$size $part failed or timed out (exit $?); its columns show n/a. Last lines:"
        tail -n 5 "$out" | sed 's/^/    /' >&2
        echo "FAILED" >>"$out"
    fi
    times >"$WORK/times"
    after=$(cpu_now)
    awk -v hz="$TCK" -v a="$before" -v b="$after" 'BEGIN {
        split(a, x, " "); split(b, y, " "); wall = y[4] - x[4]; if (wall <= 0) wall = 1e-9
        foreign = ((y[1] - x[1]) / hz - (y[3] - x[3])) / wall; if (foreign < 0) foreign = 0
        printf "LOAD foreign=%.3f steal=%.3f wall=%.1f\n", foreign, (y[2] - x[2]) / hz / wall, wall }' >>"$out"
    grep '^LOAD' "$out" | awk -v p="  $size $part: " '{ print p "# other processes used " substr($2, 9) " cores, steal " substr($3, 7) }' >&2
}

trainer() {   # SIZE RANKS
    local s=$1 np=$2 v
    read -r _ _ _ _ _ v _ <<<"$(sizeargs "$s")"
    local dir="$WORK/train.$s.np$np" corpus="$WORK/corpus.v$v"
    [ -f "$corpus/train_000000.bin" ] ||
        "$PY" tests/make_corpus.py "$corpus" --vocab "$v" --tokens 200000 >/dev/null ||
        { echo "cannot make the corpus"; return 1; }
    local B; B=$(sizeargs "$s" | cut -d' ' -f7)
    cat >"$WORK/train.$s.conf" <<EOF
sizes = $s
seeds = 0
train_data = $corpus/train_*.bin
batch_size = $B
steps = $(reps_of steps "$s")
warmup_steps = 1
snapshot_every = 0
eval_every = 0
checkpoint_every = 0
log_every = 0
EOF
    timeout 900 "${MPIRUN[@]}" -np "$np" "$BIN/reluscope" train "$WORK/train.$s.conf" \
        "out_dir=$dir" "ranks_per_run=$np" overwrite=true >"$dir.log" 2>&1 ||
        { tail -n 5 "$dir.log"; return 1; }
    "$PY" bench/table.py steptime "$dir/dataset.nc" 1
    rm -rf "$dir/checkpoints"
}

kernel_metrics() {   # B T F reps: bench_metrics' text -> RESULT count_s (per layer call)
    timeout 300 "$BUILD/bench/bench_metrics" "$@" | awk '
        /^plain bias\+ReLU loop/ { plain = $(NF-2) }
        /^kernel, counting / { count = $(NF-2) }
        END { if (plain == "" || count == "") exit 1
              printf "# fused counting %.3f ms per layer over a %.3f ms bias+ReLU\n", count - plain, plain
              printf "RESULT count_s=%.9f plain_s=%.9f\n", (count - plain) / 1e3, plain / 1e3 }'
}

sgemm_scaling() {   # M N K reps: one copy alone on each core, then one per core at once (2 rounds)
    local sg="$BUILD/bench/bench_sgemm" round a0 a1 c0 c1 alone=() both=()
    command -v taskset >/dev/null || { echo "taskset is missing"; return 1; }
    for round in 1 2; do
        [ "$round" = 2 ] && sleep 1
        a0=$(timeout 300 taskset -c 0 "$sg" "$@" | sed -n 's/^RESULT flops=//p')
        a1=$(timeout 300 taskset -c 1 "$sg" "$@" | sed -n 's/^RESULT flops=//p')
        timeout 300 taskset -c 0 "$sg" "$@" >"$WORK/sg0" & c1=$(timeout 300 taskset -c 1 "$sg" "$@" |
            sed -n 's/^RESULT flops=//p'); wait
        c0=$(sed -n 's/^RESULT flops=//p' "$WORK/sg0")
        if [ -z "$a0" ] || [ -z "$a1" ] || [ -z "$c0" ] || [ -z "$c1" ]; then
            echo "bench_sgemm failed"; return 1
        fi
        # alone: the faster core (the other may be shared with someone else's work)
        alone+=("$(awk -v x="$a0" -v y="$a1" 'BEGIN { print (x > y ? x : y) }')")
        both+=("$(awk -v x="$c0" -v y="$c1" 'BEGIN { print x + y }')")
    done
    awk -v a1="${alone[0]}" -v a2="${alone[1]}" -v b1="${both[0]}" -v b2="${both[1]}" 'BEGIN {
        a = (a1 + a2) / 2; b = (b1 + b2) / 2
        printf "# sgemm alone %.1f GFLOP/s, two at once %.1f GFLOP/s in all: %.2fx\n", a / 1e9, b / 1e9, b / a
        printf "RESULT alone=%.6e both=%.6e scaling=%.4f\n", a, b, b / a }'
}

# ---- W: the sparse MLP kernels at the study geometry ----
W_ARGS=(6 64 4 2048 64 4096 128)
W_DATA=${BENCH_SPARSE_DATA:-data/brown/train_*.bin}
W_REPS=$([ "$QUICK" = 1 ] && echo 3 || echo 5)
sparse_train() {   # the geometry trained briefly with the auto kernels, in $WORK/wtrain
    local steps=${BENCH_SPARSE_STEPS:-400}
    cat >"$WORK/wtrain.conf" <<CONF
size.W = L=6 d=64 h=4 F=2048 T=64 V=4096
sizes = W
seeds = 0
train_data = $W_DATA
batch_size = 16
steps = $steps
lr = 3e-3
lr_min = 3e-4
warmup_steps = 30
snapshot_every = 0
eval_every = 0
checkpoint_every = 0
log_every = 50
mlp_kernel = auto
CONF
    timeout 1800 "$BIN/reluscope" train "$WORK/wtrain.conf" "out_dir=$WORK/wtrain" \
        overwrite=true >"$WORK/wtrain.log" 2>&1 || { tail -n 5 "$WORK/wtrain.log"; return 1; }
    grep ' step [0-9]*/' "$WORK/wtrain.log" | tail -1 | sed 's/^/# last progress line: /'
    echo "RESULT steps=$steps"
}
rss_pair() {   # CKPT: peak RSS of a dense, a sparse and an auto step (separate processes)
    local k kb=()
    for k in dense sparse auto; do
        kb+=("$( { /usr/bin/time -f 'RSS %M' "$BUILD/bench/bench_step_sparse" "$1" "$W_DATA" \
            "${W_ARGS[@]}" 1 "$k" >/dev/null; } 2>&1 | sed -n 's/^RSS //p')")
    done
    if [ -z "${kb[0]}" ] || [ -z "${kb[1]}" ] || [ -z "${kb[2]}" ]; then
        echo "cannot measure peak memory"; return 1
    fi
    awk -v a="${kb[0]}" -v b="${kb[1]}" -v c="${kb[2]}" 'BEGIN {
        printf "# peak RSS: dense step %.0f MB, sparse %.0f MB (%.3fx), auto %.0f MB (%.3fx)\n",
            a / 1024, b / 1024, b / a, c / 1024, c / a
        printf "RESULT rss_dense_kb=%d rss_sparse_kb=%d rss_auto_kb=%d rss_ratio=%.4f rss_auto_ratio=%.4f\n",
            a, b, c, b / a, c / a }'
}
sparse_group() {
    run mlp W 900 "$BUILD/bench/bench_mlp" 8192 64 2048 "$W_REPS" 0.5 0.2 0.1 0.05 0.02
    local ckpt=${BENCH_SPARSE_CKPT:-}
    if ! compgen -G "$W_DATA" >/dev/null; then
        say "W: no corpus at $W_DATA (make corpus, or set BENCH_SPARSE_DATA): trained-state parts skipped"
        return
    fi
    if [ -z "$ckpt" ]; then
        run wtrain W 0 sparse_train
        ckpt=$(find "$WORK/wtrain/checkpoints" -name 'ckpt_*.bin' 2>/dev/null | sort | tail -1)
        [ -n "$ckpt" ] || { say "W: the brief training left no checkpoint: skipped"; return; }
    fi
    run step W 1800 "$BUILD/bench/bench_step_sparse" "$ckpt" "$W_DATA" "${W_ARGS[@]}" "$W_REPS"
    run rss W 0 rss_pair "$ckpt"
    if [ "$have_torch" = 1 ]; then
        run wtorch W 900 "$PY" bench/torch_ref.py "${W_ARGS[@]}" --reps 2 --warmup 1 \
            --shard "$(compgen -G "$W_DATA" | head -1)"
    fi
}

have_torch=1
"$PY" -c 'import torch' 2>/dev/null || { have_torch=0; say "PyTorch not importable: its columns show n/a"; }

START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say "OpenBLAS core $CORE ($CORE_NOTE); load average $LOAD0; sizes $SIZES; work $WORK"
for s in $SIZES; do
    if [ "$s" = W ]; then
        say "W: sparse MLP kernels at L=6 d=64 h=4 F=2048 T=64 V=4096, 8192-token batches"
        sparse_group
        continue
    fi
    args=$(sizeargs "$s")
    [ -n "$args" ] || die "unknown size '$s' (S, M or P)"
    read -r -a A <<<"$args"
    read -r L d h F T V B <<<"$args"
    say "size $s: L=$L d=$d h=$h F=$F T=$T V=$V B=$B"
    run model "$s" 900 "$BUILD/bench/bench_model" "${A[@]}" "$(reps_of model "$s")"
    run metrics "$s" 300 kernel_metrics "$B" "$T" "$F" "$([ "$s" = P ] && echo 5 || echo 9)"
    if [ "$have_torch" = 1 ]; then
        run torch "$s" 900 "$PY" bench/torch_ref.py "${A[@]}" --reps "$(reps_of torch "$s")" \
            --warmup "$([ "$s" = S ] && echo 2 || echo 1)"
    fi
    # the trainer pair; at S and M twice: table.py takes the median speedup from
    # the pair whose worse half shared the machine with the least other work,
    # and the fastest-step speedup over both
    run train1 "$s" 900 trainer "$s" 1
    run train2 "$s" 900 trainer "$s" 2
    if [ "$s" != P ]; then
        run train1.b "$s" 900 trainer "$s" 1
        run train2.b "$s" 900 trainer "$s" 2
    fi
    # the verdict on 2 ranks: 1-rank and 2-rank steps alternating in one job
    run dp "$s" 900 "${MPIRUN[@]}" -np 2 "$BUILD/bench/bench_dp" "${A[@]}" "$(reps_of dp "$s")"
    nparams=$(sed -n 's/.*num_params=\([0-9]*\).*/\1/p' "$WORK/$s.model.out")
    nusage=$(sed -n 's/.*usage_len=\([0-9]*\).*/\1/p' "$WORK/$s.model.out")
    if [ -n "$nparams" ] && [ -n "$nusage" ]; then
        run comm "$s" 300 "${MPIRUN[@]}" -np 2 "$BUILD/bench/bench_comm" "$nparams" "$nusage" \
            $((B / 2)) "$(reps_of comm "$s")"
    fi
    run scaling "$s" 0 sgemm_scaling $((B * T / 2)) "$F" "$d" "$([ "$s" = P ] && echo 10 || echo 30)"
    mkdir -p "$WORK/nc.$s"
    run ncout "$s" 300 "$BUILD/bench/bench_ncout" "$WORK/nc.$s" "$L" "$F" 10 40
    run spectrum "$s" 600 "$BUILD/bench/bench_spectrum" 8192 "$F" "$(reps_of spectrum "$s")"
    run resample "$s" 600 "$BUILD/bench/bench_resample" "${A[@]}" "$(reps_of model "$s")" 0.1 100
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "## reluscope benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty')"
    echo
    echo "$(getconf _NPROCESSORS_ONLN) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)); OpenBLAS core $CORE ($CORE_NOTE); one thread per rank; load average $LOAD0 before, $LOAD1 after; $(( $(date +%s) - START )) s."
    echo
    BENCH_SIZES="$SIZES" "$PY" bench/table.py report "$WORK"
    if [ -f "$WORK/W.step.out" ] && [ -f "$WORK/W.mlp.out" ]; then
        echo; echo "W, the Amdahl bound of the whole step (bench/amdahl.py):"; echo
        "$PY" bench/amdahl.py "$WORK" 2>&1 | sed 's/^/    /'
    fi
} | tee "$BUILD/bench/table.md"
# the raw outputs, to re-render the table: BENCH_SIZES=... bench/table.py report build/bench/last
rm -rf "$BUILD/bench/last" && mkdir -p "$BUILD/bench/last" && cp "$WORK"/*.out "$BUILD/bench/last/"
