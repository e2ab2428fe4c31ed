#!/usr/bin/env bash
# What a hostile user broke (issue 16, medium and low items that need a real
# process): shards rewritten or truncated under a running job, FIFOs where a
# regular file is expected, a directory as the tokenizer file. Each ends in
# one error line, a non-zero exit and no hang (every command has a timeout).
source "$(dirname "$0")/lib.sh"
make_tiny_corpus "$WORK/data"
"$PY" "$ROOT/tests/make_corpus.py" "$WORK/other" --vocab 64 --tokens 60000 --seed 9 > /dev/null

# run CMD... with a timeout; rc in $rc, stderr in $WORK/err.log
run() {
    set +e
    timeout 60 "$@" > "$WORK/out.log" 2> "$WORK/err.log"; rc=$?
    set -e
    [ "$rc" -ne 124 ] || fail "hung: $*"
}
one_error() {  # one_error TEXT: exactly one error line, containing TEXT, no signal exit
    [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || { cat "$WORK/err.log" >&2; fail "exit $rc for '$1'"; }
    [ "$(grep -c . "$WORK/err.log")" -eq 1 ] || { cat "$WORK/err.log" >&2; fail "not one line: $1"; }
    grep -qF -- "$1" "$WORK/err.log" || { cat "$WORK/err.log" >&2; fail "no '$1'"; }
    echo "ok: $(cat "$WORK/err.log")"
}

# --- a training shard rewritten in place, or truncated, while the job runs
for how in rewrite truncate; do
    rm -rf "$WORK/d" "$WORK/o"; cp -r "$WORK/data" "$WORK/d"
    write_tiny_config "$WORK/c.conf" "$WORK/d" "$WORK/o" "steps = 1000000" "log_every = 1" \
        "checkpoint_every = 0" "eval_every = 0" "snapshot_every = 0"
    set +e
    timeout 60 "$RS" train "$WORK/c.conf" > "$WORK/out.log" 2> "$WORK/err.log" & pid=$!
    for _ in $(seq 200); do grep -q "step 3/" "$WORK/out.log" 2>/dev/null && break; sleep 0.1; done
    if [ "$how" = rewrite ]; then
        cp "$WORK/other/train_000000.bin" "$WORK/d/train_000000.bin"   # same inode, new bytes
    else
        truncate -s 3000 "$WORK/d/train_000000.bin"
    fi
    wait $pid; rc=$?
    set -e
    one_error "$WORK/d/train_000000.bin: the shard changed while in use"
done

# --- FIFOs where a regular file is expected: refused at once, never waited on
rm -rf "$WORK/d"; cp -r "$WORK/data" "$WORK/d"; mkfifo "$WORK/d/train_000001.bin"
write_tiny_config "$WORK/f.conf" "$WORK/d" "$WORK/of"
run "$RS" train "$WORK/f.conf"
one_error "$WORK/d/train_000001.bin: is a FIFO, not a regular file"
run "$RS" train "$WORK/f.conf" train_data="$WORK/data/train_*.bin" steps=4 warmup_steps=1 checkpoint_every=2
[ "$rc" -eq 0 ] || { cat "$WORK/err.log"; fail "training run: $rc"; }
CK=$WORK/of/checkpoints/t2_seed0
mkfifo "$CK/ckpt_00000099.bin"
run "$RS" eval --checkpoint "$CK/ckpt_00000099.bin" --tokens "$WORK/data/val_000000.bin"
one_error "ckpt_00000099.bin: is a FIFO, not a regular file"
run "$RS" eval --checkpoint "$CK/ckpt_00000004.bin" --tokens "$WORK/d/train_000001.bin"
one_error "$WORK/d/train_000001.bin: is a FIFO, not a regular file"
run "$RS" train "$WORK/f.conf" train_data="$WORK/data/train_*.bin" steps=4 warmup_steps=1 checkpoint_every=2
[ "$rc" -eq 0 ] && grep -q "ckpt_00000099.bin: damaged checkpoint (is a FIFO" "$WORK/err.log" \
    || { cat "$WORK/err.log"; fail "a FIFO among the checkpoints"; }
echo "ok: a FIFO among the checkpoints is skipped as damaged"
mkfifo "$WORK/text.fifo"
run "$RS" prepare --out "$WORK/prep" "$WORK/text.fifo"
one_error "$WORK/text.fifo: is a FIFO, not a regular file"

# --- a directory as the tokenizer file: said so (was "empty file")
run "$RS" prepare --decode "$WORK/data/val_*.bin" --tokenizer-file "$WORK/data"
one_error "$WORK/data: is a directory, not a regular file"
