#!/usr/bin/env bash
# `eval --json` gives the training-time held-out numbers for the same weights
# and tokens: the checkpoint written at step 10 holds the weights that the
# training-time evaluation of step 10 uses (before step 10's update).
source "$(dirname "$0")/lib.sh"
make_tiny_corpus "$WORK/data"
# a validation shard of exactly eval_tokens/T = 16 windows of T+1 = 33 tokens
"$PY" - "$WORK/data/val_000000.bin" "$WORK/heldout/val_000000.bin" <<'PY'
import os, struct, sys
import numpy as np
tok = np.fromfile(sys.argv[1], dtype=np.uint16, offset=1024)[:16 * 32 + 1]
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<256i", 20240520, 1, len(tok), *([0] * 253)))
    f.write(tok.astype("<u2").tobytes())
PY
write_tiny_config "$WORK/e.conf" "$WORK/data" "$WORK/out" "val_data = $WORK/heldout/val_*.bin" \
    "eval_every = 5" "checkpoint_every = 100" "checkpoint_final_only = false"
"$RS" train "$WORK/e.conf" stop_at_step=10 > /dev/null || [ $? -eq 75 ] || fail "first part failed"
ck=$WORK/out/checkpoints/t2_seed0/ckpt_00000010.bin
[ -f "$ck" ] || fail "no checkpoint at step 10"
"$RS" eval --checkpoint "$ck" --tokens "$WORK/heldout/val_000000.bin" --json > "$WORK/eval.json"
"$RS" train "$WORK/e.conf" > /dev/null
"$PY" - "$WORK/eval.json" "$WORK/out/dataset.nc" <<'PY'
import json, sys
import netCDF4, numpy as np
e = json.load(open(sys.argv[1]))
with netCDF4.Dataset(sys.argv[2]) as ds:
    i = list(np.asarray(ds["eval_step"][:])).index(10)
    want = {"loss": float(ds["eval_loss"][0, 0, i])}
    layers = [{k: float(ds["eval_" + k][0, 0, i, l]) for k in ("token_use_mean", "seq_use_mean", "batch_use")}
              for l in range(len(e["layers"]))]
assert e["tokens"] == 16 * 32 and e["vocab"] == 64, (e["tokens"], e.get("vocab"))
assert e["loss"] == want["loss"], (e["loss"], want["loss"])
for l, (got, exp) in enumerate(zip(e["layers"], layers)):
    for k in exp:
        assert got[k] == exp[k], (l, k, got[k], exp[k])
print("eval --json equals the training-time evaluation at step 10:", e["loss"])
PY
# --max-tokens 512 on the whole validation shard = its first 16 windows = the
# held-out shard above; a count that is not a multiple of T is refused
"$RS" eval --checkpoint "$ck" --tokens "$WORK/data/val_000000.bin" --max-tokens 512 --json \
    > "$WORK/eval_max.json" || fail "eval --max-tokens failed"
cmp -s "$WORK/eval.json" "$WORK/eval_max.json" || fail "eval --max-tokens 512 differs from the 16-window shard"
"$RS" eval --checkpoint "$ck" --tokens "$WORK/data/val_000000.bin" --max-tokens 500 \
    > /dev/null 2> "$WORK/max.err" && fail "--max-tokens 500 (not a multiple of T) accepted"
grep -q "not a multiple of T = 32" "$WORK/max.err" || fail "--max-tokens 500: $(cat "$WORK/max.err")"
# --selectivity: the usage numbers are unchanged, and every layer's shares are
# consistent with its batch use (units_firing / F = batch_use on the same tokens)
"$RS" eval --checkpoint "$ck" --tokens "$WORK/heldout/val_000000.bin" --json --selectivity \
    > "$WORK/sel.json" || fail "eval --selectivity failed"
"$PY" - "$WORK/eval.json" "$WORK/sel.json" "$WORK/out/dataset.nc" <<'PY'
import json, sys
import netCDF4
e, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
with netCDF4.Dataset(sys.argv[3]) as ds:
    F = int(ds["n_hidden"][0])
assert e["layers"] == s["layers"] and e["loss"] == s["loss"], "selectivity changed the usage numbers"
assert len(s["selectivity"]) == len(s["layers"])
for l, (u, sel) in enumerate(zip(s["layers"], s["selectivity"])):
    assert abs(sel["units_firing"] / F - u["batch_use"]) < 1e-12, (l, sel, u, F)
    q = sel["ids_per_unit_q"]
    assert len(q) == 5 and all(0 < a <= b <= 1 for a, b in zip(q, q[1:])), (l, q)
    assert 0 < sel["ids_present"] <= 16 * 32
print("eval --selectivity consistent with batch_use")
PY
# analysis.layer0 (the layer-0 probe of docs/study.md): its rows at n = 512 are
# eval's numbers on the same windows; batch use never falls as n grows
(cd "$ROOT" && "$PY" -m analysis.layer0 --bin "$RS" --tokens "$WORK/data/val_000000.bin" \
    --sizes 64,256,512 --at 512 --out "$WORK/l0" "tiny=$ck" > /dev/null) || fail "analysis.layer0 failed"
"$PY" - "$WORK/sel.json" "$WORK/l0/layer0.csv" "$WORK/l0/layer0.md" <<'PY'
import csv, json, sys
s = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 3 * len(s["layers"]), len(rows)
for r in rows:
    if int(r["tokens"]) == 512:
        l = int(r["layer"])
        assert float(r["batch_use"]) == s["layers"][l]["batch_use"], (r, s["layers"][l])
        assert int(r["ids_present"]) == s["selectivity"][l]["ids_present"]
        assert abs(float(r["coverage"]) - int(r["ids_present"]) / 64) < 1e-12
for l in range(len(s["layers"])):
    b = [float(r["batch_use"]) for r in rows if int(r["layer"]) == l]
    assert b == sorted(b), (l, b)
assert open(sys.argv[3]).read().count("| tiny |") == len(s["layers"])
print("analysis.layer0 agrees with eval")
PY
# eval on a damaged input: a shard with tokens >= V
printf 'garbage' > "$WORK/bad.bin"
if "$RS" eval --checkpoint "$ck" --tokens "$WORK/bad.bin" 2> "$WORK/err"; then fail "bad shard accepted"; fi
grep -q "bad.bin" "$WORK/err" || fail "error does not name the shard: $(cat "$WORK/err")"
echo "t_eval: all checks passed"
