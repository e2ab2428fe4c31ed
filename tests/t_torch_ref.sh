#!/usr/bin/env bash
# t_torch_ref.sh — every architecture variant (docs/model.md, "Variants")
# against the PyTorch reference (bench/torch_ref.py --compare): a tiny model
# of each variant trains 20 steps, then `reluscope eval --json` and the
# reference, given the same checkpoint and tokens, must agree on the loss and
# on every layer's token_use_mean, seq_use_mean and batch_use.
# Tolerances are float32's: the two programs sum in different orders (OpenBLAS
# vs torch, the C attention kernel vs torch's), so the loss may differ in the
# ~9th digit (measured: relative 1e-10 to 1e-9; allowed 1e-6) and a unit whose pre-activation is within rounding of 0 may count
# differently; a variant the two programs compute differently changes the
# loss by more (checked by breaking one, see below).
# The training also takes snapshots and resamples dead units, so every
# variant goes through those paths too (mlp_bias=0 has no b_in to read or reset).
# Skipped (passes, with a message) only if python3 cannot import torch.
source "$(dirname "$0")/lib.sh"
if ! "$PY" -c "import torch" 2> /dev/null; then
    echo "SKIP: $PY cannot import torch (apt-get install python3-torch): the PyTorch"
    echo "      reference comparison of every variant did not run"
    exit 0
fi
export OMP_NUM_THREADS=1
make_tiny_corpus "$WORK/data"
VARIANTS=(default "pos=none" "pos=rope" "tie=0" "mlp_bias=0" "act=relu2"
          "pos=rope tie=0 mlp_bias=0 act=relu2")
lines=() names=()
for i in "${!VARIANTS[@]}"; do
    v=${VARIANTS[$i]}; [ "$v" = default ] && v=""
    lines+=("size.v$i = L=2 d=32 h=2 F=64 T=32 V=64 $v")
    names+=("v$i")
done
sizes=$(IFS=,; echo "${names[*]}")
write_tiny_config "$WORK/c.conf" "$WORK/data" "$WORK/out" "${lines[@]}" "sizes = $sizes" \
    "steps = 20" "lr = 1e-2" "lr_min = 1e-3" "checkpoint_every = 20" "eval_every = 0" \
    "snapshot_every = 10" "dead_window = 3" "resample_dead = 4"
"$RS" train "$WORK/c.conf" > "$WORK/train.log" 2>&1 || fail "training failed: $(tail -3 "$WORK/train.log")"
val=$WORK/data/val_000000.bin
for i in "${!VARIANTS[@]}"; do
    ck=$WORK/out/checkpoints/v${i}_seed0/ckpt_00000020.bin
    [ -f "$ck" ] || fail "no checkpoint for variant '${VARIANTS[$i]}'"
    "$RS" eval --checkpoint "$ck" --tokens "$val" --json > "$WORK/c$i.json"
    "$PY" "$ROOT/bench/torch_ref.py" --compare "$ck" "$val" > "$WORK/t$i.json"
    "$PY" - "$WORK/c$i.json" "$WORK/t$i.json" "${VARIANTS[$i]}" <<'PY' || fail "variant '${VARIANTS[$i]}'"
import json, sys
c, t, name = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
F = 64
assert c["tokens"] == t["tokens"], (c["tokens"], t["tokens"])
dl = abs(c["loss"] - t["loss"])
assert dl <= 1e-6 * abs(c["loss"]), "loss: C %.9g torch %.9g" % (c["loss"], t["loss"])
worst = {}
for l, (x, y) in enumerate(zip(c["layers"], t["layers"])):
    for k, tol in (("token_use_mean", 1e-3), ("seq_use_mean", 2e-3), ("batch_use", 1.5 / F)):
        d = abs(x[k] - y[k])
        worst[k] = max(worst.get(k, 0.0), d)
        assert d <= tol, "layer %d %s: C %.6f torch %.6f" % (l, k, x[k], y[k])
print("ok   %-34s loss %.6f (|diff| %.1e) token_use %s, worst diffs %s" % (
    name, c["loss"], dl, " ".join("%.3f" % x["token_use_mean"] for x in c["layers"]),
    " ".join("%s %.1e" % kv for kv in worst.items())))
PY
done
# The comparison can fail: the reference with the rotary embedding turned the
# other way (a plausible bug) must disagree with the C program's pos=rope.
sed 's/return torch.cat((a \* cos - b \* sin, a \* sin + b \* cos), dim=-1)/return torch.cat((a * cos + b * sin, b * cos - a * sin), dim=-1)/' \
    "$ROOT/bench/torch_ref.py" > "$WORK/broken_ref.py"
! cmp -s "$ROOT/bench/torch_ref.py" "$WORK/broken_ref.py" || fail "could not break the reference"
"$PY" "$WORK/broken_ref.py" --compare "$WORK/out/checkpoints/v2_seed0/ckpt_00000020.bin" "$val" \
    > "$WORK/broken.json"
"$PY" - "$WORK/c2.json" "$WORK/broken.json" <<'PY' || fail "a wrong rotary embedding went unnoticed"
import json, sys
c, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert abs(c["loss"] - t["loss"]) > 1e-6 * abs(c["loss"]), (c["loss"], t["loss"])
print("ok   a reference with the rotary angle reversed disagrees: loss %.6f vs %.6f"
      % (c["loss"], t["loss"]))
PY
echo "t_torch_ref: all variants agree with the PyTorch reference"
