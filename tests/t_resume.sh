#!/usr/bin/env bash
# Resume only from a run's own checkpoints (issue 16, high): checkpoints of
# another config, seed or corpus, a dataset that lost the steps a checkpoint
# continues from, overwrite = 1 moving checkpoints aside, stale temporaries.
source "$(dirname "$0")/lib.sh"
make_tiny_corpus "$WORK/data"

# steps held for run (0, 0): "N M" = steps with a loss, first missing (or -1)
held() {
    "$PY" - "$1" <<'PY'
import sys, netCDF4, numpy as np
with netCDF4.Dataset(sys.argv[1]) as ds:
    v = ds["loss"]; v.set_auto_mask(False); a = np.asarray(v[0, 0, :])
    ok = (a != v._FillValue) & np.isfinite(a)
print(int(ok.sum()), int(np.argmin(ok)) if not ok.all() else -1)
PY
}
# train, expecting exit code $1; output in $WORK/out.log, errors in $WORK/err.log
expect_rc() {
    local want=$1; shift
    set +e
    "$RS" train "$@" > "$WORK/out.log" 2> "$WORK/err.log"; local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || { cat "$WORK/err.log" >&2; fail "train $*: exit $rc, expected $want"; }
}
one_line() { [ "$(grep -c 'reluscope: error' "$WORK/err.log")" -eq 1 ] || { cat "$WORK/err.log" >&2; fail "$1: not one error line"; }; }

write_tiny_config "$WORK/a.conf" "$WORK/data" "$WORK/a"
CK=$WORK/a/checkpoints/t2_seed0

# --- overwrite = 1 with another config: the old checkpoint is moved aside, not resumed
expect_rc 75 "$WORK/a.conf" stop_at_step=10
ls "$CK/ckpt_00000010.bin" > /dev/null
expect_rc 0 "$WORK/a.conf" lr=2e-3 overwrite=1
grep -q "resuming from" "$WORK/out.log" && fail "resumed from a checkpoint of another config"
grep -q "moved 1 checkpoint(s) aside to $CK/replaced-" "$WORK/err.log" \
    || { cat "$WORK/err.log"; fail "overwrite did not say which checkpoints it moved aside"; }
grep -q "another config" "$WORK/err.log" || fail "the reason was not given"
read -r n miss <<< "$(held "$WORK/a/dataset.nc")"
[ "$n" -eq 20 ] && [ "$miss" -eq -1 ] || fail "overwrite run holds $n steps (first missing $miss), want 20"
ls "$CK"/replaced-*/ckpt_00000010.bin > /dev/null || fail "the moved checkpoint is not kept"
echo "ok: overwrite=1 + new config moves the old checkpoint aside, dataset holds 20 steps"

# --- the same, without overwrite: dataset and checkpoint refused by name
expect_rc 0 "$WORK/a.conf" lr=2e-3 overwrite=1 out_dir="$WORK/b"
rm "$WORK/b/dataset.nc"
expect_rc 1 "$WORK/a.conf" out_dir="$WORK/b"
one_line "foreign config"
grep -q "ckpt_00000020.bin: checkpoint of another config (lr = 0.002 stored, 0.003 now)" "$WORK/err.log" || { cat "$WORK/err.log"; fail "no reason"; }
echo "ok: a checkpoint of another config is refused without overwrite"

# --- dataset lost, checkpoints remain: refused, then overwrite=1 retrains from 0
rm -rf "$WORK/a"
expect_rc 75 "$WORK/a.conf" stop_at_step=10
rm "$WORK/a/dataset.nc"
expect_rc 1 "$WORK/a.conf"
one_line "dataset lost"
grep -q "continues from step 10, but $WORK/a/dataset.nc lacks step 0" "$WORK/err.log" \
    || { cat "$WORK/err.log"; fail "a lost dataset was not named"; }
expect_rc 0 "$WORK/a.conf" overwrite=1
grep -q "resuming from" "$WORK/out.log" && fail "resumed although the dataset lost the steps"
read -r n miss <<< "$(held "$WORK/a/dataset.nc")"
[ "$n" -eq 20 ] || fail "after a lost dataset the run holds $n steps, want 20"
echo "ok: a dataset without the steps before the checkpoint is refused; overwrite=1 retrains"

# --- a checkpoint of another seed copied into the run's folder
rm -rf "$WORK/a" "$WORK/s1"
expect_rc 75 "$WORK/a.conf" stop_at_step=10
expect_rc 75 "$WORK/a.conf" seeds=1 out_dir="$WORK/s1" stop_at_step=12
cp "$WORK/s1/checkpoints/t2_seed1/ckpt_00000012.bin" "$CK/"
expect_rc 1 "$WORK/a.conf"
one_line "other seed"
grep -q "ckpt_00000012.bin: checkpoint of seed 1, the run's seed is 0" "$WORK/err.log" \
    || { cat "$WORK/err.log"; fail "another seed's checkpoint was not refused"; }
rm "$CK/ckpt_00000012.bin"
echo "ok: another seed's checkpoint is refused"

# --- stale temporaries of a dead process are removed; the run resumes
sh -c 'exit 0' & dead=$!; wait $dead
echo junk > "$CK/ckpt_00000099.bin.tmp.$dead"
echo junk > "$CK/ckpt_00000098.bin.tmp.$$"        # a live process's: kept
expect_rc 0 "$WORK/a.conf"
grep -q "resuming from $CK/ckpt_00000010.bin" "$WORK/out.log" || fail "did not resume"
[ ! -e "$CK/ckpt_00000099.bin.tmp.$dead" ] || fail "a dead process's temporary was kept"
[ -e "$CK/ckpt_00000098.bin.tmp.$$" ] || fail "a live process's temporary was removed"
grep -q "removed 1 temporary file" "$WORK/err.log" || fail "the removal was not reported"
rm "$CK/ckpt_00000098.bin.tmp.$$"
echo "ok: stale temporaries removed, a live one kept"

# --- the corpus changed between stop and resume: refused by name
rm -rf "$WORK/a"
expect_rc 75 "$WORK/a.conf" stop_at_step=10
"$PY" "$ROOT/tests/make_corpus.py" "$WORK/data" --vocab 64 --tokens 60000 --seed 5 > /dev/null
expect_rc 1 "$WORK/a.conf"
one_line "corpus"
grep -q "trained on another corpus: train_data changed" "$WORK/err.log" \
    || { cat "$WORK/err.log"; fail "a changed corpus was not named"; }
echo "ok: a changed corpus is refused"

# --- OPENBLAS_NUM_THREADS = 2 (as the Slurm scripts set from --cpus-per-task):
# a stopped and resumed run equals the uninterrupted one bit for bit, spectra
# included (another thread count may differ in their last bits: docs/model.md)
write_tiny_config "$WORK/t.conf" "$WORK/data" "$WORK/t1"
OPENBLAS_NUM_THREADS=2 "$RS" train "$WORK/t.conf" > /dev/null
OPENBLAS_NUM_THREADS=2 expect_rc 75 "$WORK/t.conf" out_dir="$WORK/t2" stop_at_step=10
OPENBLAS_NUM_THREADS=2 "$RS" train "$WORK/t.conf" out_dir="$WORK/t2" > "$WORK/out.log"
grep -q "resuming from" "$WORK/out.log" || fail "2 threads: did not resume"
for v in loss singular_values eff_rank batch_use; do
    "$PY" "$ROOT/tests/dsread.py" same "$WORK/t1/dataset.nc" "$WORK/t2/dataset.nc" $v \
        || fail "2 threads: resumed run differs in $v"
done
echo "ok: with 2 OpenBLAS threads a resume is bit-identical, spectra included"
