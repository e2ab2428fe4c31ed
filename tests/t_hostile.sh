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
    rm -f "$WORK/out.log"   # the wait below must not see the previous run's log
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
    # a truncation is seen by the size check or by the short read itself, whichever
    # comes first: either way one line naming the shard
    one_error "$WORK/d/train_000000.bin: "
    grep -qE "the shard changed while in use|shorter than when it was opened" "$WORK/err.log" \
        || fail "$how: $(cat "$WORK/err.log")"
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

# --- a stop signal during start-up (MPI_Init) stops cleanly instead of killing
write_tiny_config "$WORK/s.conf" "$WORK/data" "$WORK/os"
set +e
"$RS" train "$WORK/s.conf" > "$WORK/out.log" 2> "$WORK/err.log" & pid=$!
# as soon as the program catches SIGUSR1 (bit 9 of SigCgt): no fixed delay, which a
# slow start (AddressSanitizer, a loaded node) could outlast before main() even runs
for _ in $(seq 1000); do
    cgt=$(awk '/^SigCgt/ {print $2}' "/proc/$pid/status" 2> /dev/null)
    [ -n "$cgt" ] && [ $(( 0x$cgt & 0x200 )) -ne 0 ] && break
    sleep 0.01
done
kill -USR1 $pid; wait $pid; rc=$?
set -e
[ "$rc" -eq 75 ] || { cat "$WORK/err.log"; fail "SIGUSR1 at start-up: exit $rc, want 75"; }
echo "ok: SIGUSR1 as soon as it is caught (SigCgt $cgt), in start-up: exit 75"

# --- a file-size limit: one line naming the file (EFBIG), no temporaries left
"$PY" -c "
import random; random.seed(3); w = ['alpha', 'beta', 'gamma', 'delta', 'eps', '42', '!']
open('$WORK/big.txt', 'w').write(' '.join(random.choice(w) for _ in range(400000)) + '\n')"
set +e
(ulimit -f 200; timeout 60 "$RS" prepare --out "$WORK/pf" --tokenizer byte "$WORK/big.txt") \
    > "$WORK/out.log" 2> "$WORK/err.log"; rc=$?
set -e
one_error "File too large"
[ -z "$(find "$WORK" -name '*.tmp*' -print -quit)" ] || fail "temporaries left: $(find "$WORK" -name '*.tmp*')"

# --- eval --json of weights that overflow: valid JSON (null, "finite": false), exit 1
"$PY" - "$CK/ckpt_00000004.bin" "$WORK/huge.bin" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
C = struct.unpack_from("<Q", b, 152)[0]
hl = struct.unpack_from("<I", b, 12)[0]   # header length
params = (hl + C + 7) // 8 * 8 + 64 * struct.unpack_from("<I", b, 132)[0]
V, d = struct.unpack_from("<i", b, 36)[0], struct.unpack_from("<i", b, 20)[0]
struct.pack_into("<%df" % (V * d), b, params, *([3e38] * (V * d)))   # wte
struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])))
open(sys.argv[2], "wb").write(b)
PY
run "$RS" eval --checkpoint "$WORK/huge.bin" --tokens "$WORK/data/val_000000.bin" --json
one_error "not finite"
"$PY" -c "
import json, sys; e = json.loads(open('$WORK/out.log').read(), parse_constant=lambda c: sys.exit('bare ' + c))
assert e['finite'] is False and e['loss'] is None, e" || fail "eval --json of a non-finite loss"
echo "ok: eval --json prints null and \"finite\": false"

# --- dataset.nc.lock a symlink: refused, its target untouched
mkdir -p "$WORK/ol"; echo keep > "$WORK/victim"; ln -s "$WORK/victim" "$WORK/ol/dataset.nc.lock"
run "$RS" train "$WORK/s.conf" out_dir="$WORK/ol"
one_error "dataset.nc.lock: Too many levels of symbolic links"
[ "$(cat "$WORK/victim")" = keep ] || fail "the lock's symlink target was overwritten"

# --- rank groups that would idle are refused (docs/parallel.md)
set +e
timeout 120 mpirun --oversubscribe -np 4 "$RS" train "$WORK/s.conf" out_dir="$WORK/oi" \
    ranks_per_run=2 > "$WORK/out.log" 2> "$WORK/err.log"; rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "2 rank(s) would be idle" "$WORK/err.log" \
    || { cat "$WORK/err.log"; fail "idle rank group accepted (exit $rc)"; }
echo "ok: $(grep 'would be idle' "$WORK/err.log" | head -1)"

# --- ulimit -v too small: refused at start with the numbers (OpenBLAS would
# spin forever in its allocator). One OpenBLAS thread: with more, OpenBLAS
# already spins in its constructor, before main() (docs/reliability.md).
# AddressSanitizer reserves terabytes of shadow memory: no ulimit -v for it.
# (Not `ldd | grep -q`: under pipefail, grep's early exit can fail the pipe with SIGPIPE.)
case "$(ldd "$RS")" in *libasan*) echo "SKIP: ulimit -v under AddressSanitizer"; exit 0 ;; esac
set +e
(ulimit -v 240000; OPENBLAS_NUM_THREADS=1 timeout -s KILL 30 "$RS" train "$WORK/s.conf" \
    out_dir="$WORK/ov") > "$WORK/out.log" 2> "$WORK/err.log"; rc=$?
set -e
one_error "the address-space limit (ulimit -v) is 234 MB"
set +e
(ulimit -v 240000; OPENBLAS_NUM_THREADS=1 timeout -s KILL 30 "$RS" eval --checkpoint \
    "$CK/ckpt_00000004.bin" --tokens "$WORK/data/val_000000.bin") > "$WORK/out.log" 2> "$WORK/err.log"; rc=$?
set -e
one_error "eval: the address-space limit (ulimit -v)"
