#!/usr/bin/env bash
# The readers of untrusted files under libFuzzer + ASan + UBSan (fuzz/run.sh):
# shard (tokenset_open and the sampler), checkpoint (peek/load), config (load,
# validate, print/reload) and BPE merges (load, save/reload, encode/decode).
# 1. every input under fuzz/regressions/TARGET/ and every seed is replayed;
# 2. each target whose replay passes is fuzzed for FUZZ_SECONDS (default 20);
#    a crash, hang, leak or failed property fails the test, and the input is
#    kept under fuzz/regressions/TARGET/ so that every later run replays it.
# A target whose regression inputs still fail is not fuzzed again (it would
# only rediscover the same bug): fix src/ first.
source "$(dirname "$0")/lib.sh"
if ! command -v clang-14 > /dev/null && ! command -v clang > /dev/null; then
    fail "clang is not installed: run scripts/install-fuzz-deps.sh (as root) to install clang, libclang-rt-14-dev and valgrind"
fi
secs=${FUZZ_SECONDS:-20}
FUZZ=$ROOT/fuzz/run.sh
bash "$FUZZ" build > "$WORK/build.log" 2>&1 || {
    tail -n 20 "$WORK/build.log" >&2
    fail "building the fuzz harnesses failed (if clang or libclang-rt is missing: run scripts/install-fuzz-deps.sh)"
}
bash "$FUZZ" seeds > /dev/null 2> "$WORK/seeds.err" || { cat "$WORK/seeds.err" >&2; fail "seed generation failed"; }

status=0
broken=()
for t in shard checkpoint config bpe; do
    rc=0
    bash "$FUZZ" replay "$t" > "$WORK/replay_$t.out" 2> "$WORK/replay_$t.err" || rc=$?
    grep -v '^fuzz: harnesses' "$WORK/replay_$t.out" || true
    if [ "$rc" -ne 0 ]; then
        cat "$WORK/replay_$t.err" >&2
        broken+=("$t")
        status=1
    fi
done
for t in shard checkpoint config bpe; do
    if [[ " ${broken[*]} " == *" $t "* ]]; then
        echo "fuzz $t: not fuzzed: its regression inputs fail (see above)"
        continue
    fi
    rc=0
    bash "$FUZZ" fuzz "$t" "$secs" > "$WORK/fuzz_$t.out" 2> "$WORK/fuzz_$t.err" || rc=$?
    grep -v '^fuzz: harnesses' "$WORK/fuzz_$t.out" || true
    if [ "$rc" -ne 0 ]; then
        cat "$WORK/fuzz_$t.err" >&2
        echo "FAIL: fuzzing $t found a failure; the input is now under fuzz/regressions/$t/" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] || fail "fuzzing: failing targets: ${broken[*]:-} (details above)"
echo "t_fuzz: all checks passed"
