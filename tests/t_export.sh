#!/usr/bin/env bash
# `reluscope export` + analysis.export + analysis/torch_model.py: the exported
# model's loss and per-layer usage on a shard equal `reluscope eval --json`
# within 1e-5 relative, for the default model and for every value of every
# architecture variant key; bad inputs give one error line and no output.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"
"$PY" -c "import torch" 2> /dev/null || fail "python3-torch is not installed (scripts/install-report-deps.sh)"
make_tiny_corpus "$WORK/data" > /dev/null
write_tiny_config "$WORK/x.conf" "$WORK/data" "$WORK/x" "size.t2 = L=2 d=32 h=2 F=64 T=32 V=64" \
    "size.v1 = L=2 d=32 h=2 F=64 T=32 V=64 pos=none tie=0" \
    "size.v2 = L=2 d=32 h=2 F=64 T=32 V=64 pos=rope mlp_bias=0 act=relu2" \
    "sizes = t2, v1, v2" "steps = 30" "lr = 1e-2" "checkpoint_every = 30"
"$RS" train "$WORK/x.conf" > "$WORK/x.log" 2>&1 || fail "training: $(tail -3 "$WORK/x.log")"

# every size: the default model and every value of every variant key
for size in t2 v1 v2; do
    ckpt=$WORK/x/checkpoints/${size}_seed0/ckpt_00000030.bin
    [ -f "$ckpt" ] || fail "$size: no final checkpoint"
    "$RS" export --checkpoint "$ckpt" --out "$WORK/exp_$size" > "$WORK/export.log" \
        || fail "$size: export: $(cat "$WORK/export.log")"
    PYTHONPATH=$ROOT PYTHONDONTWRITEBYTECODE=1 "$PY" -m analysis.export "$WORK/exp_$size" > /dev/null \
        || fail "$size: analysis.export"
    "$RS" eval --checkpoint "$ckpt" --tokens "$WORK/data/val_000000.bin" --json > "$WORK/eval.json" \
        || fail "$size: reluscope eval"
    PYTHONPATH=$ROOT PYTHONDONTWRITEBYTECODE=1 "$PY" - "$WORK/exp_$size" "$WORK/data/val_000000.bin" \
        "$WORK/eval.json" "$size" <<'PY' || fail "$size: the exported model differs from reluscope eval"
import json, sys
from analysis.torch_model import load_exported, evaluate_shard
want = json.load(open(sys.argv[3]))
model = load_exported(sys.argv[1])
got = evaluate_shard(model, sys.argv[2])
def same(a, b, what):
    if abs(a - b) > 1e-5 * max(abs(a), abs(b), 1e-300):
        sys.exit(f"{what}: torch {a!r} != reluscope {b!r}")
same(got["loss"], want["loss"], "loss")
assert got["tokens"] == want["tokens"], (got["tokens"], want["tokens"])
assert len(got["layers"]) == len(want["layers"]) == 2
for l, (g, w) in enumerate(zip(got["layers"], want["layers"])):
    for k in ("token_use_mean", "seq_use_mean", "batch_use"):
        same(g[k], w[k], f"layer {l} {k}")
cfg = json.load(open(sys.argv[1] + "/config.json"))
assert cfg["n_inner"] == 64 and cfg["n_layer"] == 2, cfg
print(f"export {sys.argv[4]} {model.variant}: loss {got['loss']:.8f} "
      f"(reluscope {want['loss']:.8f}), usage of 2 layers equal")
PY
done
ckpt=$WORK/x/checkpoints/t2_seed0/ckpt_00000030.bin

# bad inputs: one line naming the problem, non-zero exit, no output
rc=0; "$RS" export --checkpoint "$ckpt" 2> "$WORK/err" || rc=$?
[ "$rc" -eq 64 ] && [ "$(wc -l < "$WORK/err")" -eq 1 ] || fail "export without --out: rc $rc, $(cat "$WORK/err")"
head -c 5000 "$ckpt" > "$WORK/cut.bin"
if "$RS" export --checkpoint "$WORK/cut.bin" --out "$WORK/exp2" 2> "$WORK/err"; then fail "a truncated checkpoint was exported"; fi
grep -q "cut.bin" "$WORK/err" && [ "$(wc -l < "$WORK/err")" -eq 1 ] || fail "truncated: $(cat "$WORK/err")"
[ ! -e "$WORK/exp2" ] || fail "a failed export left $WORK/exp2"
echo '{"format": "other"}' > "$WORK/exp_t2/model.json"
if PYTHONPATH=$ROOT "$PY" -m analysis.export "$WORK/exp_t2" 2> "$WORK/err"; then fail "analysis.export accepted a bad model.json"; fi
grep -q "not a reluscope export" "$WORK/err" || fail "bad model.json: $(cat "$WORK/err")"
echo "t_export: all checks passed"
