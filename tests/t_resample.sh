#!/usr/bin/env bash
# t_resample.sh — resample_dead (docs/interventions.md) on a tiny model:
# planted dead units are re-initialized at the resampling steps only, counted
# per step and layer (resampled, redied, redied_life, merged and read by
# xarray), replicas stay identical on 2 ranks, and a run stopped and resumed
# across resamplings equals an uninterrupted one.
source "$(dirname "$0")/lib.sh"
[ -x "$RS" ] || fail "$RS is not built (make)"
make_tiny_corpus "$WORK/data" > /dev/null

same() {   # FILE_A FILE_B FROM TO VAR...: VAR bitwise equal over steps [FROM, TO)
    "$PY" - "$@" <<'PY'
import sys, xarray as xr
a, b, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
A, B = xr.open_dataset(a, mask_and_scale=False), xr.open_dataset(b, mask_and_scale=False)
for v in sys.argv[5:]:
    x, y = A[v].isel(step=slice(lo, hi)).values, B[v].isel(step=slice(lo, hi)).values
    if x.shape != y.shape or x.tobytes() != y.tobytes():
        sys.exit(f"{v}: differs over steps {lo}..{hi - 1}")
PY
}

# dead_window 5; planted deaths after step 3 (off from step 8); resampling
# after every 4th update (steps 3, 7, 11, ...)
R=$WORK/res.conf
write_tiny_config "$R" "$WORK/data" "$WORK/res" "steps = 40" "eval_every = 0" \
    "snapshot_every = 4" "debug_kill_step = 3" "resample_dead = 4" "dead_window = 5"
"$RS" train "$R" > /dev/null
"$PY" - "$WORK/res/dataset.nc" <<'PY' || fail "resampling"
import sys, numpy as np, xarray as xr
ds = xr.open_dataset(sys.argv[1])
rs = ds.resampled.sel(size="t2", seed=0).values          # (step, layer)
rd = ds.redied.sel(size="t2", seed=0).values
life = ds.redied_life.sel(size="t2", seed=0).values
dead = ds.dead_frac.sel(size="t2", seed=0).values
steps = np.nonzero(rs.sum(axis=1))[0]
assert len(steps) and all((s + 1) % 4 == 0 for s in steps), f"resampled at steps {steps}"
# the 4 planted units (last fired at 3, off from 8) are resampled after step 11, not before
assert rs[:11, 0].sum() == 0 and rs[11, 0] >= 4, rs[:, 0]
assert dead[11, 0] >= 4 / 64 and dead[12, 0] < dead[11, 0], "dead_frac did not drop"
assert rd.sum() <= rs.sum() and (life >= 0).all() and (life[rd == 0] == 0).all()
g = xr.open_dataset(sys.argv[1], group="run_t2_seed0")
b8, b12 = g.b_in.isel(layer=0).sel(snapshot=2).values, g.b_in.isel(layer=0).sel(snapshot=3).values
assert (b8 < -9e3).sum() == 4 and (b12 < -9e3).sum() == 0, "the planted units were not resampled"
assert (b12[b8 < -9e3] == 0).all(), "a resampled unit's b_in is not 0"
lf = g.last_fire.isel(layer=0).sel(snapshot=3).values
assert (lf[b8 < -9e3] >= 11).all(), "a resampled unit's last_fire was not reset"
print(f"resampled {int(rs.sum())} (layer 0 after step 11: {int(rs[11, 0])}), "
      f"died again {int(rd.sum())}, mean life {life.sum() / max(rd.sum(), 1):.1f} steps")
PY
echo "ok   dead units are re-initialized after every 4th update, counted and their lives summed"

# without resample_dead nothing is resampled and the variables are 0
"$RS" train "$R" out_dir="$WORK/off" resample_dead=0 > /dev/null
"$PY" - "$WORK/off/dataset.nc" <<'PY' || fail "resample_dead = 0"
import sys, xarray as xr
ds = xr.open_dataset(sys.argv[1])
for v in ("resampled", "redied", "redied_life"):
    assert float(ds[v].sum()) == 0, v
PY
echo "ok   resample_dead = 0: nothing resampled"

# 2 ranks: the re-initialization is the same on both replicas (checked every 5 steps)
mpi 2 "$RS" train "$R" out_dir="$WORK/np2" check_every=1 > /dev/null \
    || fail "resampling on 2 ranks failed (replicas diverged?)"
same "$WORK/res/dataset.nc" "$WORK/np2/dataset.nc" 0 12 resampled \
    || fail "2 ranks resampled other counts than 1 rank"
echo "ok   2 ranks: replicas identical at every step, same resampling counts up to step 11"

# stopped between resamplings and resumed == uninterrupted (born is checkpointed)
rc=0; "$RS" train "$R" out_dir="$WORK/res2" stop_at_step=14 > /dev/null || rc=$?
[ "$rc" -eq 75 ] || fail "stop_at_step=14: exit $rc"
"$RS" train "$R" out_dir="$WORK/res2" > /dev/null
same "$WORK/res/dataset.nc" "$WORK/res2/dataset.nc" 0 40 loss dead_frac turned_off revived \
    resampled redied redied_life || fail "a resumed resampling run differs from an uninterrupted one"
echo "ok   stopped at 14 and resumed == uninterrupted"

# merge keeps the variables
"$RS" merge "$WORK/res/dataset.nc" -o "$WORK/merged.nc" > /dev/null
same "$WORK/res/dataset.nc" "$WORK/merged.nc" 0 40 resampled redied redied_life \
    || fail "merge lost the resampling variables"
"$PY" "$ROOT/analysis/interventions.py" resample "$WORK/res/dataset.nc" > "$WORK/an.txt" \
    || fail "analysis/interventions.py resample failed"
grep -q "t2 seed 0 layer 0: resampled [1-9]" "$WORK/an.txt" \
    || fail "analysis/interventions.py resample: $(cat "$WORK/an.txt")"
echo "ok   merge keeps them; the analysis reads them"
echo "t_resample: all passed"
