#!/usr/bin/env bash
# t_interventions.sh — forks, resampling and outlier attribution
# (docs/interventions.md) on a tiny model:
#   1. a fork with the original data seed reproduces the original run bit for
#      bit; a fork with another data seed does not; a sweep of data seeds is
#      one dataset that xarray reads;
#   2. bad fork / resample setups: one line, exit 64, no output folder;
#   3. a planted death at an injected outlier step is attributed to it;
# and the analysis' statistics against brute force (interventions_check.py).
source "$(dirname "$0")/lib.sh"
[ -x "$RS" ] || fail "$RS is not built (make)"
make_tiny_corpus "$WORK/data" > /dev/null

# ---- 0. the analysis' statistics against brute force ------------------------
"$PY" "$ROOT/tests/interventions_check.py" || fail "analysis statistics"
iv() { "$PY" "$ROOT/analysis/interventions.py" "$@"; }

# same FILE_A FILE_B FROM TO VAR...: VAR bitwise equal over steps [FROM, TO)
same() {
    "$PY" - "$@" <<'EOF'
import sys, numpy as np, xarray as xr
a, b, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
A, B = xr.open_dataset(a, mask_and_scale=False), xr.open_dataset(b, mask_and_scale=False)
for v in sys.argv[5:]:
    x = A[v].isel(step=slice(lo, hi)).values
    y = B[v].isel(step=slice(lo, hi)).values
    if x.shape != y.shape or x.tobytes() != y.tobytes():
        sys.exit(f"{v}: differs over steps {lo}..{hi - 1}")
EOF
}

# ---- 1. forks -------------------------------------------------------------
C=$WORK/base.conf
write_tiny_config "$C" "$WORK/data" "$WORK/base" "steps = 30" "eval_every = 0"
# the recipe of docs/interventions.md: stop at the fork step, keep a copy of
# the checkpoint, finish the base run
rc=0; "$RS" train "$C" stop_at_step=20 > /dev/null || rc=$?
[ "$rc" -eq 75 ] || fail "stop_at_step=20: exit $rc"
ck=$WORK/base/checkpoints/t2_seed0/ckpt_00000020.bin
[ -f "$ck" ] || fail "no checkpoint at step 20"
cp "$ck" "$WORK/fork20.bin"
"$RS" train "$C" > /dev/null
"$RS" train "$C" out_dir="$WORK/same" fork_from="$WORK/fork20.bin" > "$WORK/same.log"
grep -q "forked from .*fork20.bin (step 20), data seed 0" "$WORK/same.log" \
    || fail "the fork did not say where it started: $(cat "$WORK/same.log")"
VARS="loss grad_norm lr tokens_seen token_use_mean seq_use_mean batch_use dead_frac turned_off revived token_use_q seq_use_q"
# shellcheck disable=SC2086
same "$WORK/base/dataset.nc" "$WORK/same/dataset.nc" 20 30 $VARS \
    || fail "a fork with the original data seed differs from the original run"
"$PY" - "$WORK/base/dataset.nc" "$WORK/same/dataset.nc" <<'EOF' || fail "fork snapshots differ"
import sys, xarray as xr
a = xr.open_dataset(sys.argv[1], group="run_t2_seed0", mask_and_scale=False)
b = xr.open_dataset(sys.argv[2], group="run_t2_seed0", mask_and_scale=False)
for v in ("fires_since", "last_fire", "premax", "b_in", "fc_norm", "proj_norm"):
    x, y = a[v].isel(snapshot=slice(4, 6)).values, b[v].isel(snapshot=slice(4, 6)).values
    assert x.tobytes() == y.tobytes(), v
assert (b["snapshot_step"].values[4:6] == [20, 25]).all()
EOF
echo "ok   fork with data_seed = seed: steps 20..29 and snapshots 20, 25 bitwise equal"

# a sweep of data seeds from the same checkpoint: one dataset, seed = data seed
"$RS" train "$C" out_dir="$WORK/forks" fork_from="$WORK/fork20.bin" seeds=0,5,6 > /dev/null
"$PY" - "$WORK/base/dataset.nc" "$WORK/forks/dataset.nc" <<'EOF' || fail "fork sweep"
import sys, numpy as np, xarray as xr
base, f = xr.open_dataset(sys.argv[1]), xr.open_dataset(sys.argv[2])
assert list(f["seed"].values) == [0, 5, 6], f["seed"].values
loss = f.loss.sel(size="t2")
assert np.isnan(loss.isel(step=slice(0, 20))).all(), "steps before the fork are not fill"
assert np.isfinite(loss.isel(step=slice(20, 30))).all(), "fork steps missing"
b = base.loss.sel(size="t2", seed=0).isel(step=slice(20, 30)).values
assert (loss.sel(seed=0).isel(step=slice(20, 30)).values == b).all(), "seed 0 fork != base"
for s in (5, 6):
    d = loss.sel(seed=s).isel(step=slice(20, 30)).values
    assert (d != b).all(), f"data seed {s} drew the same batches as the original"
assert (f.tokens_seen.sel(size="t2").isel(step=20).values == 21 * 8 * 32).all()
EOF
echo "ok   fork sweep over data seeds 0, 5, 6: one dataset; 5 and 6 differ at every step"
# the same sweep split over two jobs (as a Slurm array would) merges into it
"$RS" train "$C" out_dir="$WORK/forksA" fork_from="$WORK/fork20.bin" seeds=0,5 > /dev/null
"$RS" train "$C" out_dir="$WORK/forksB" fork_from="$WORK/fork20.bin" seeds=6 > /dev/null
"$RS" merge "$WORK/forksA/dataset.nc" "$WORK/forksB/dataset.nc" -o "$WORK/merged.nc" > /dev/null
same "$WORK/forks/dataset.nc" "$WORK/merged.nc" 0 30 loss grad_norm dead_frac turned_off \
    || fail "the merged fork sweep differs from the one-job sweep"
echo "ok   a fork sweep split over two jobs merges into the one-job sweep"
"$RS" train "$C" out_dir="$WORK/ds7" data_seed=7 steps=5 > /dev/null
same "$WORK/base/dataset.nc" "$WORK/ds7/dataset.nc" 0 1 loss 2> /dev/null \
    && fail "data_seed = 7 drew the same first batch as seed 0"
echo "ok   data_seed without a fork changes the batches"
# 2 ranks: every replica loads the fork; its first step (same weights, same
# batch) has the 1-rank fork's loss and usage exactly
mpi 2 "$RS" train "$C" out_dir="$WORK/fork2" fork_from="$WORK/fork20.bin" seeds=5 > /dev/null \
    || fail "a fork on 2 ranks failed"
"$PY" - "$WORK/forks/dataset.nc" "$WORK/fork2/dataset.nc" <<'EOF' || fail "2-rank fork, first step"
import sys, xarray as xr
a = xr.open_dataset(sys.argv[1], mask_and_scale=False).sel(seed=5).isel(step=20)
b = xr.open_dataset(sys.argv[2], mask_and_scale=False).sel(seed=5).isel(step=20)
for v in ("loss", "batch_use", "token_use_q", "dead_frac", "turned_off"):
    assert a[v].values.tobytes() == b[v].values.tobytes(), v
EOF
echo "ok   a fork on 2 ranks: its first step equals the 1-rank fork's"
# a fork stopped and resumed (from its own checkpoint) == the uninterrupted fork
rc=0; "$RS" train "$C" out_dir="$WORK/fres" fork_from="$WORK/fork20.bin" seeds=5 \
    stop_at_step=25 > /dev/null || rc=$?
[ "$rc" -eq 75 ] || fail "fork with stop_at_step=25: exit $rc"
"$RS" train "$C" out_dir="$WORK/fres" fork_from="$WORK/fork20.bin" seeds=5 > "$WORK/fres.log"
grep -q "resuming from .*ckpt_00000025.bin" "$WORK/fres.log" || fail "the fork did not resume itself"
"$PY" - "$WORK/forks/dataset.nc" "$WORK/fres/dataset.nc" $VARS <<'EOF' || fail "a resumed fork differs"
import sys, xarray as xr
a = xr.open_dataset(sys.argv[1], mask_and_scale=False).sel(seed=5).isel(step=slice(20, 30))
b = xr.open_dataset(sys.argv[2], mask_and_scale=False).sel(seed=5).isel(step=slice(20, 30))
for v in sys.argv[3:]:
    assert a[v].values.tobytes() == b[v].values.tobytes(), v
EOF
echo "ok   a fork stopped at 25 and resumed from its own checkpoint == the uninterrupted fork"

iv forks "$WORK/forks/dataset.nc" --checkpoint "$WORK/fork20.bin" --json > "$WORK/forks.json"
"$PY" - "$WORK/forks.json" <<'EOF' || fail "fork overlap analysis"
import json, sys
rows = json.load(open(sys.argv[1]))["forks"]
assert len(rows) == 2 and all(r["forks"] == 3 and r["fork_step"] == 20 for r in rows), rows
for r in rows:
    assert r["alive_from"] == "checkpoint" and 0 < r["alive_at_fork"] <= 64, r
EOF
echo "ok   fork overlap analysis reads the fork sweep"
# the same forks run as two jobs (forksA: 0,5; forksB: 6), analysed without a merge,
# give the same table; a fork held by two of the datasets is refused
iv forks "$WORK/forksA/dataset.nc" "$WORK/forksB/dataset.nc" --checkpoint "$WORK/fork20.bin" \
    --json > "$WORK/forks_ab.json" || fail "forks over two datasets"
"$PY" -c 'import json, sys; a, b = (json.load(open(f))["forks"] for f in sys.argv[1:]); assert a == b, (a, b)' \
    "$WORK/forks.json" "$WORK/forks_ab.json" || fail "forks over two datasets differ from one dataset"
if iv forks "$WORK/forks/dataset.nc" "$WORK/forksB/dataset.nc" > /dev/null 2> "$WORK/dup.err"; then
    fail "a fork in two datasets was accepted"
fi
grep -q "both hold fork 6" "$WORK/dup.err" || fail "duplicate fork: $(cat "$WORK/dup.err")"
echo "ok   forks run as separate jobs analyse like one sweep"

# ---- 2. bad input: one line, exit 64, no output ---------------------------
expect_64() {
    local name=$1 want=$2; shift 2
    local rc=0
    "$RS" train "$@" out_dir="$WORK/bad_$name" > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
    [ "$rc" -eq 64 ] || fail "$name: exit $rc, expected 64: $(cat "$WORK/$name.err")"
    [ "$(wc -l < "$WORK/$name.err")" -eq 1 ] || fail "$name: not one line: $(cat "$WORK/$name.err")"
    grep -qF -- "$want" "$WORK/$name.err" || fail "$name: '$want' not in $(cat "$WORK/$name.err")"
    [ ! -s "$WORK/$name.out" ] && [ ! -e "$WORK/bad_$name" ] || fail "$name: output was made"
    echo "ok   $name: $(cat "$WORK/$name.err")"
}
expect_64 fork_missing "key 'fork_from': $WORK/none.bin: cannot open" "$C" fork_from="$WORK/none.bin"
head -c 5000 "$WORK/fork20.bin" > "$WORK/cut.bin"
expect_64 fork_damaged "cut.bin" "$C" fork_from="$WORK/cut.bin"
expect_64 fork_size "but size 't3' of the sweep is" "$C" fork_from="$WORK/fork20.bin" \
    "size.t3=L=2 d=32 h=2 F=32 T=32 V=64" sizes=t3
expect_64 fork_variant "V=64 act=relu2" "$C" fork_from="$WORK/fork20.bin" \
    "size.t2=L=2 d=32 h=2 F=64 T=32 V=64 act=relu2"
expect_64 fork_done "is at step 20, but steps = 20" "$C" fork_from="$WORK/fork20.bin" steps=20
expect_64 fork_config "was trained with another config (lr = 0.003 stored, 0.001 now)" "$C" \
    fork_from="$WORK/fork20.bin" lr=1e-3
B=$WORK/nowin.conf
write_tiny_config "$B" "$WORK/data" "$WORK/unused" "steps = 30"
sed -i '/^dead_window/d' "$B"
expect_64 resample_no_window "set dead_window too" "$B" resample_dead=5
expect_64 resample_window_long "dead_window = 50 exceeds steps = 30" "$C" resample_dead=5 \
    dead_window=50
expect_64 resample_rare "every 40 steps never comes" "$C" resample_dead=40
rc=0; "$RS" plan "$C" --check fork_from="$WORK/none.bin" > "$WORK/plan.out" 2> "$WORK/plan.err" || rc=$?
[ "$rc" -eq 64 ] && [ ! -s "$WORK/plan.out" ] && grep -q "key 'fork_from'" "$WORK/plan.err" \
    || fail "plan --check with a missing fork_from: exit $rc, $(cat "$WORK/plan.err")"
echo "ok   plan --check refuses it too (exit 64)"
rc=0; "$RS" train "$C" resample_dead=-1 out_dir="$WORK/bad_neg" 2> "$WORK/neg.err" > /dev/null || rc=$?
[ "$rc" -eq 64 ] && [ ! -e "$WORK/bad_neg" ] && grep -q "resample_dead" "$WORK/neg.err" \
    || fail "resample_dead = -1: exit $rc (expected 64), $(cat "$WORK/neg.err")"
echo "ok   resample_dead = -1: exit $rc, $(cat "$WORK/neg.err")"

# ---- 3. attribution: a planted death at an injected outlier step ----------
A=$WORK/plant.conf
write_tiny_config "$A" "$WORK/data" "$WORK/plant" "steps = 60" "eval_every = 0" \
    "snapshot_every = 4" "debug_kill_step = 17"
"$RS" train "$A" > /dev/null
iv attribution "$WORK/plant/dataset.nc" --json > "$WORK/plant.json"
"$PY" - "$WORK/plant.json" "$WORK/plant/dataset.nc" <<'EOF' || fail "attribution"
import json, sys, numpy as np, xarray as xr
r = json.load(open(sys.argv[1]))["attribution"][0]
ev = r["events"]
planted = [i for i in range(len(ev["layer"])) if ev["layer"][i] == 0 and ev["last_fire"][i] == 17]
assert len(planted) == 4, f"expected the 4 planted deaths at step 17, got {len(planted)}: {ev}"
assert all(ev["outlier"][i] for i in planted), "a planted death is not at an outlier step"
assert all(ev["jump"][i] < r["alive_jump_p1"] for i in planted), "no pre-activation jump"
assert r["death_frac_outlier"] > r["base_rate_outlier"], r
ds = xr.open_dataset(sys.argv[2])
gn = ds.grad_norm.sel(size="t2", seed=0).values
assert gn[17] == gn.max() and gn[17] > 100 * np.median(gn), gn[17]
g = xr.open_dataset(sys.argv[2], group="run_t2_seed0")
assert (g.b_in.isel(layer=0).sel(snapshot=5).values < -9e3).sum() == 4   # step 20
print(f"planted deaths {len(planted)} of {r['deaths']}: outlier fraction "
      f"{r['death_frac_outlier']:.3f} vs base rate {r['base_rate_outlier']:.3f}")
EOF
echo "ok   a planted death at an injected outlier step is attributed to it"

echo "t_interventions: all passed"
