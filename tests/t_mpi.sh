#!/usr/bin/env bash
# Data parallelism: a run's numbers do not depend on the rank count, and a
# sweep split over ranks gives each run the numbers of that run alone.
source "$(dirname "$0")/lib.sh"
make_tiny_corpus "$WORK/data"
write_tiny_config "$WORK/base.conf" "$WORK/data" "$WORK/np1" "steps = 12"
DS=$ROOT/tests/dsread.py

mpi 1 "$RS" train "$WORK/base.conf" > "$WORK/np1.log"
for n in 2 4; do
    mpi "$n" "$RS" train "$WORK/base.conf" out_dir="$WORK/np$n" > "$WORK/np$n.log"
    # step 0: loss and every metric bit-identical (integer counts, ordered loss sum)
    for v in loss token_use_mean token_use_q seq_use_mean seq_use_q batch_use dead_frac \
             turned_off revived; do
        "$PY" "$DS" same "$WORK/np1/dataset.nc" "$WORK/np$n/dataset.nc" "$v" --size 0 --seed 0 \
            --steps 0:1 || fail "step 0 $v differs between 1 and $n ranks"
    done
    # later steps: gradients are float sums in another order; after 12 steps of
    # AdamW the loss agrees to 1e-3 relative (see docs/parallel.md)
    "$PY" "$DS" same "$WORK/np1/dataset.nc" "$WORK/np$n/dataset.nc" loss --size 0 --seed 0 \
        --rtol 1e-3 || fail "losses on $n ranks drift from 1 rank beyond 1e-3"
    "$PY" "$DS" same "$WORK/np1/dataset.nc" "$WORK/np$n/dataset.nc" eval_loss --size 0 --seed 0 \
        --steps 0:1 || fail "step-0 held-out loss differs between 1 and $n ranks"
    # spectra: ScaLAPACK on a ${n}-rank grid vs one rank (reduction order differs)
    for v in eff_rank participation_ratio singular_values; do
        "$PY" "$DS" same "$WORK/np1/dataset.nc" "$WORK/np$n/dataset.nc" "$v" --size 0 --seed 0 \
            --steps 0:1 --rtol 1e-6 || fail "step-0 $v differs between 1 and $n ranks"
    done
done

# the sparse MLP kernels: the same invariance (each token's sums are in a
# fixed order, whatever the batch split)
for n in 1 2; do
    mpi "$n" "$RS" train "$WORK/base.conf" mlp_kernel=sparse out_dir="$WORK/sp$n" > "$WORK/sp$n.log"
done
for v in loss token_use_mean token_use_q seq_use_q batch_use dead_frac; do
    "$PY" "$DS" same "$WORK/sp1/dataset.nc" "$WORK/sp2/dataset.nc" "$v" --size 0 --seed 0 \
        --steps 0:1 || fail "sparse MLP: step 0 $v differs between 1 and 2 ranks"
done
"$PY" "$DS" same "$WORK/sp1/dataset.nc" "$WORK/sp2/dataset.nc" loss --size 0 --seed 0 \
    --rtol 1e-3 || fail "sparse MLP: losses on 2 ranks drift from 1 rank beyond 1e-3"

# a two-run sweep on 2 ranks == each run alone on 1 rank
mpi 2 "$RS" train "$WORK/base.conf" seeds=0,1 out_dir="$WORK/sweep" > "$WORK/sweep.log"
grep -q "group 1" "$WORK/sweep.log" || fail "the sweep was not split into two groups"
"$RS" train "$WORK/base.conf" seeds=1 out_dir="$WORK/alone1" > /dev/null
for v in loss batch_use token_use_q; do
    "$PY" "$DS" same "$WORK/sweep/dataset.nc" "$WORK/np1/dataset.nc" "$v" --size 0 --seed 0 \
        || fail "sweep run seed 0 differs from the run alone ($v)"
    "$PY" "$DS" same "$WORK/sweep/dataset.nc" "$WORK/alone1/dataset.nc" "$v" --size 0 --seed 1 \
        --seed2 0 || fail "sweep run seed 1 differs from the run alone ($v)"
done

# rank counts that cannot split the batch: one clear line from rank 0, no work
if mpi 3 "$RS" train "$WORK/base.conf" out_dir="$WORK/bad3" > "$WORK/bad3.out" 2> "$WORK/bad3.err"; then
    fail "3 ranks for batch_size 8 was accepted"
fi
grep -q "batch_size" "$WORK/bad3.err" || fail "no clear error for 3 ranks: $(cat "$WORK/bad3.err")"
[ "$(grep -c 'reluscope: error' "$WORK/bad3.err")" -eq 1 ] || fail "error not printed once"
[ ! -e "$WORK/bad3/dataset.nc" ] || fail "a refused job left a dataset"
echo "t_mpi: all checks passed"
