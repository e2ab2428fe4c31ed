#!/usr/bin/env bash
# fuzz/run.sh — build and run the libFuzzer harnesses of reluscope's readers.
#
#   fuzz/run.sh build                 harnesses + seed generator (clang, ASan+UBSan+libFuzzer)
#   fuzz/run.sh seeds                 generated + committed seeds into the working corpora
#   fuzz/run.sh replay [TARGET...]    run every regression input and seed once (no fuzzing)
#   fuzz/run.sh fuzz TARGET [SECONDS] [libFuzzer args...]
#                                     fuzz one target; crashers are copied into
#                                     fuzz/regressions/TARGET/ and the exit status is non-zero
#   fuzz/run.sh all [SECONDS]         build, seeds, replay, then fuzz every target SECONDS each
#
# Targets: shard (tokenset_open + sampler), checkpoint (checkpoint_peek/_load),
# config (config_load_file + config_validate + print/reload), bpe (bpe_load +
# save/reload + encode/decode). docs/reliability.md explains how to fuzz longer.
#
# Environment: FUZZ_BUILD (default build/fuzz: objects, binaries, working
# corpora, artifacts), CLANG (default clang-14, else clang), FUZZ_JOBS (parallel
# fuzzing processes per target, default 1).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FB=${FUZZ_BUILD:-build/fuzz}
case $FB in /*) ;; *) FB=$ROOT/$FB ;; esac
TARGETS=(shard checkpoint config bpe)
CLANG=${CLANG:-$(command -v clang-14 || command -v clang || true)}

die() { echo "fuzz/run.sh: $*" >&2; exit 1; }

need_clang() {
    [ -n "$CLANG" ] || die "clang not found: run scripts/install-fuzz-deps.sh (as root)"
    local probe
    probe=$(mktemp -d /tmp/reluscope-fuzzprobe.XXXXXX)
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; return (int)n * 0; }\n' \
        > "$probe/p.c"
    if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2> "$probe/err"; then
        cat "$probe/err" >&2
        rm -rf "$probe"
        die "$CLANG cannot build libFuzzer binaries (libclang-rt missing?): run scripts/install-fuzz-deps.sh"
    fi
    rm -rf "$probe"
}

max_len() {
    case $1 in
        shard) echo 4096 ;;       # header 1024 bytes + up to 1536 tokens
        checkpoint) echo 32768 ;; # the seeds: 2.5 KB (fz1) and 12 KB (fz2)
        config) echo 4096 ;;
        bpe) echo 4096 ;;
    esac
}

# ------------------------------------------------------------------ build
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS_F="-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -fopenmp-simd -Iinclude $(mpicc --showme:compile)"
LIBS="$(mpicc --showme:link) -lscalapack-openmpi -lnetcdf -lopenblas -lz -lm"

build() {
    need_clang
    mkdir -p "$FB/obj" "$FB/bin"
    local newest_h src obj todo=()
    newest_h=$(ls -t include/*.h | head -n 1)
    for obj in "$FB"/obj/*.o; do   # sources removed or renamed since the last build
        [ -f "$obj" ] && [ ! -f "src/$(basename "$obj" .o).c" ] && rm -f "$obj" "$FB/libreluscope-fuzz.a"
    done
    for src in src/*.c; do
        [ "$src" = src/main.c ] && continue
        obj=$FB/obj/$(basename "$src" .c).o
        if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_h" -nt "$obj" ]; then
            todo+=("$src")
        fi
    done
    if [ "${#todo[@]}" -gt 0 ]; then
        echo "fuzz: compiling ${#todo[@]} source files with $CLANG"
        export CLANG FB CFLAGS_F SAN
        printf '%s\n' "${todo[@]}" | xargs -P 2 -I{} sh -c \
            '$CLANG $CFLAGS_F $SAN -fsanitize=fuzzer-no-link -c "$1" -o "$FB/obj/$(basename "$1" .c).o"' _ {}
        rm -f "$FB/libreluscope-fuzz.a"
    fi
    [ -f "$FB/libreluscope-fuzz.a" ] || ar rcs "$FB/libreluscope-fuzz.a" "$FB"/obj/*.o
    local t
    for t in "${TARGETS[@]}"; do
        if [ ! -x "$FB/bin/fuzz_$t" ] || [ "fuzz/fuzz_$t.c" -nt "$FB/bin/fuzz_$t" ] ||
           [ fuzz/fuzz_common.h -nt "$FB/bin/fuzz_$t" ] ||
           [ "$FB/libreluscope-fuzz.a" -nt "$FB/bin/fuzz_$t" ]; then
            # shellcheck disable=SC2086
            "$CLANG" $CFLAGS_F $SAN -fsanitize=fuzzer "fuzz/fuzz_$t.c" "$FB/libreluscope-fuzz.a" \
                $LIBS -o "$FB/bin/fuzz_$t"
        fi
    done
    if [ ! -x "$FB/bin/gen_seeds" ] || [ fuzz/gen_seeds.c -nt "$FB/bin/gen_seeds" ] ||
       [ "$FB/libreluscope-fuzz.a" -nt "$FB/bin/gen_seeds" ]; then
        # shellcheck disable=SC2086
        "$CLANG" $CFLAGS_F $SAN fuzz/gen_seeds.c "$FB/libreluscope-fuzz.a" $LIBS -o "$FB/bin/gen_seeds"
    fi
    echo "fuzz: harnesses in $FB/bin"
}

# ------------------------------------------------------------------ seeds
seeds() {
    [ -x "$FB/bin/gen_seeds" ] || build
    rm -rf "$FB/seeds"
    ASAN_OPTIONS=detect_leaks=1 "$FB/bin/gen_seeds" "$FB/seeds"
    local t
    for t in "${TARGETS[@]}"; do
        mkdir -p "$FB/corpus/$t" "$FB/seeds/$t"
        cp "$FB/seeds/$t"/* "$FB/corpus/$t/" 2> /dev/null || true
        cp fuzz/corpus/"$t"/* "$FB/corpus/$t/" 2> /dev/null || true
    done
    echo "fuzz: seeds in $FB/corpus/{$(IFS=,; echo "${TARGETS[*]}")}"
}

common_args() {
    local t=$1
    echo "-max_len=$(max_len "$t") -timeout=10 -rss_limit_mb=2048 -dict=fuzz/dict/$t.dict"
}

# The lines of a libFuzzer log that say what went wrong (harness messages,
# sanitizer headlines, the crashing frames of our code).
findings() {
    grep -v '^INFO:\|^#[0-9]\|^MS:\|^base unit\|^0x\|^NOTE:\|^ *Combine\|^Running:\|^Executed\|^\*\*\*\|^$\|in fuzzer::\|libc\.so\|_start \|__sanitizer_print\|pthread_kill\|raise\.c\|abort\.c\|^artifact_prefix\|^Test unit written\|^stat::' "$1" |
        head -n "${2:-24}"
}

# Run every regression input (one process each, so that every failing one is
# named) and every seed (one process) through the harness once. Non-zero if
# any of them fails.
replay() {
    local targets=("$@") t f files bad status=0
    [ "${#targets[@]}" -gt 0 ] || targets=("${TARGETS[@]}")
    for t in "${targets[@]}"; do
        [ -x "$FB/bin/fuzz_$t" ] || build
        bad=0
        : > "$FB/replay_$t.log"
        for f in fuzz/regressions/"$t"/*; do
            [ -f "$f" ] || continue
            # shellcheck disable=SC2046
            if ! "$FB/bin/fuzz_$t" $(common_args "$t") -runs=1 "$f" >> "$FB/replay_$t.log" 2>&1; then
                echo "fuzz: replay $t: FAILS on $f" >&2
                bad=$((bad + 1))
            fi
        done
        files=()
        for f in fuzz/corpus/"$t"/* "$FB/seeds/$t"/*; do [ -f "$f" ] && files+=("$f"); done
        # shellcheck disable=SC2046
        if [ "${#files[@]}" -gt 0 ] &&
           ! "$FB/bin/fuzz_$t" $(common_args "$t") -runs=1 "${files[@]}" >> "$FB/replay_$t.log" 2>&1; then
            echo "fuzz: replay $t: FAILS on a seed input" >&2
            bad=$((bad + 1))
        fi
        if [ "$bad" -gt 0 ]; then
            findings "$FB/replay_$t.log" >&2
            echo "fuzz: replay $t: $bad failing (log: $FB/replay_$t.log)" >&2
            status=1
        else
            local nreg=0
            for f in fuzz/regressions/"$t"/*; do [ -f "$f" ] && nreg=$((nreg + 1)); done
            echo "fuzz: replay $t: $nreg regression inputs and ${#files[@]} seeds ok"
        fi
    done
    return "$status"
}

# Fuzz one target for SECONDS; copy crashers to fuzz/regressions/TARGET.
fuzz_one() {
    local t=$1 secs=${2:-30}
    shift 2 || shift $#
    [ -x "$FB/bin/fuzz_$t" ] || build
    [ -d "$FB/corpus/$t" ] || seeds
    mkdir -p "$FB/artifacts/$t" "fuzz/regressions/$t"
    local log=$FB/fuzz_$t.log rc=0 jobs=${FUZZ_JOBS:-1} extra=()
    [ "$jobs" -gt 1 ] && extra=(-fork="$jobs" -ignore_crashes=0)
    # shellcheck disable=SC2046
    "$FB/bin/fuzz_$t" $(common_args "$t") -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$FB/artifacts/$t/" "${extra[@]}" "$@" "$FB/corpus/$t" > "$log" 2>&1 || rc=$?
    local execs cov found=0 a
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo "?")
    for a in "$FB/artifacts/$t"/*; do
        [ -f "$a" ] || continue
        cp "$a" "fuzz/regressions/$t/"
        echo "fuzz: $t: new regression input fuzz/regressions/$t/$(basename "$a")" >&2
        rm -f "$a"
        found=$((found + 1))
    done
    echo "fuzz: $t: ${secs}s, $execs execs, coverage $cov, corpus $(ls "$FB/corpus/$t" | wc -l) files, $found crashers, exit $rc"
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        findings "$log" 40 >&2
        return 1
    fi
}

cmd=${1:-all}
[ $# -gt 0 ] && shift
case $cmd in
    build) build ;;
    seeds) build; seeds ;;
    replay) build; seeds > /dev/null; replay "$@" ;;
    fuzz)
        [ $# -ge 1 ] || die "usage: fuzz/run.sh fuzz TARGET [SECONDS] [libFuzzer args...]"
        build; seeds > /dev/null; fuzz_one "$@" ;;
    all)
        secs=${1:-30}
        build; seeds; replay
        status=0
        for t in "${TARGETS[@]}"; do fuzz_one "$t" "$secs" || status=1; done
        exit "$status" ;;
    -h|--help|help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (build, seeds, replay, fuzz, all)" ;;
esac
