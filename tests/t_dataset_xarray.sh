#!/usr/bin/env bash
# The dataset as an analysis sees it: xarray opens a file written by the C
# writer (test_ncout --write-sample: 2 sizes of 2 and 3 layers x 2 seeds) as
# one Dataset with every series, names, units and values checked
# (tests/check_dataset.py); reads while a writer swaps the file in at every
# flush all work; `reluscope merge` of the two halves equals the direct
# write; merge refuses bad inputs with one line naming the files.
source "$(dirname "$0")/lib.sh"
T=$ROOT/${BUILD:-build}/tests/test_ncout
[ -x "$T" ] || fail "$T is not built (make tests)"
"$T" --write-sample "$WORK" > /dev/null || fail "test_ncout --write-sample failed"
ncdump -h "$WORK/direct.nc" > "$WORK/header.txt" || fail "ncdump cannot read the sample"
grep -q 'step = UNLIMITED' "$WORK/header.txt" || fail "ncdump does not see an unlimited step"
"$PY" "$ROOT/tests/check_dataset.py" sample "$WORK/direct.nc" || fail "the sample dataset"

# --- reading while a job writes: every read works (the writer never writes
# the file named PATH, nor a copy a reader still holds)
"$PY" "$ROOT/tests/check_dataset.py" live "$WORK/live.nc" "$WORK/live.done" & reader=$!
for _ in $(seq 600); do [ -e "$WORK/live.done.ready" ] && break; sleep 0.1; done
[ -e "$WORK/live.done.ready" ] || fail "the live reader did not start"
"$T" --live "$WORK/live.nc" || fail "the live writer failed"
touch "$WORK/live.done"
wait "$reader" || fail "reading a live dataset"

# --- merge: the halves (one size each) give the direct write of both
"$RS" merge --help > "$WORK/help.txt" && grep -q "usage: reluscope merge" "$WORK/help.txt" \
    || fail "merge --help"
"$RS" merge "$WORK/part_a.nc" "$WORK/part_b.nc" -o "$WORK/merged.nc" > "$WORK/merge.log" \
    || fail "merge failed: $(cat "$WORK/merge.log")"
"$PY" "$ROOT/tests/check_dataset.py" same "$WORK/merged.nc" "$WORK/direct.nc" || fail "merge != direct"
"$PY" "$ROOT/tests/check_dataset.py" sample "$WORK/merged.nc" || fail "the merged dataset"
# provenance: the inputs' history lines and the merge's own (not the output's name), the
# union of sizes and seeds in the config
ncdump -h "$WORK/merged.nc" > "$WORK/merged.txt"
grep -q "history = \"\[$WORK/part_a.nc\] .*\[$WORK/part_b.nc\] .*reluscope merge $WORK/part_a.nc $WORK/part_b.nc\"" \
    "$WORK/merged.txt" || fail "merged history: $(grep history "$WORK/merged.txt")"
grep -q ':command_line = "reluscope merge ' "$WORK/merged.txt" || fail "merged command_line"
grep -q 'merged.nc' "$WORK/merged.txt" && fail "the merged file's attributes name the output file"
grep ':config = ' "$WORK/merged.txt" | grep -q 'sizes = small, big\\n' &&
    grep ':config = ' "$WORK/merged.txt" | grep -q 'seeds = 7, 11\\n' \
    || fail "merged config: $(grep ':config' "$WORK/merged.txt")"
ls "$WORK" | grep -q '\.tmp\.' && fail "merge left a temporary file"

# --- refusals: exit status 1, one line on stderr naming the files
refused() {  # refused WHAT MUST_CONTAIN... -- ARGS
    local what=$1; shift; local needles=()
    while [ "$1" != -- ]; do needles+=("$1"); shift; done; shift
    if "$RS" merge "$@" > /dev/null 2> "$WORK/err"; then fail "merge accepted $what"; fi
    [ "$(wc -l < "$WORK/err")" -eq 1 ] || fail "$what: not one line: $(cat "$WORK/err")"
    for n in "${needles[@]}"; do grep -qF -- "$n" "$WORK/err" || fail "$what: '$n' not in: $(cat "$WORK/err")"; done
    echo "refused $what: $(cat "$WORK/err")"
}
cp "$WORK/part_a.nc" "$WORK/part_a2.nc"
refused "overlapping inputs" part_a.nc part_a2.nc "both hold" -- \
    "$WORK/part_a.nc" "$WORK/part_a2.nc" -o "$WORK/x.nc"
refused "an existing output" merged.nc --force -- "$WORK/part_a.nc" "$WORK/part_b.nc" -o "$WORK/merged.nc"
refused "a missing input" nothere.nc -- "$WORK/nothere.nc" "$WORK/part_b.nc" -o "$WORK/y.nc"
refused "an output in a missing folder" "No such file or directory" -- \
    "$WORK/part_a.nc" "$WORK/part_b.nc" -o "$WORK/nofolder/x.nc"
if "$RS" merge --repair "$WORK/nothere.nc" > /dev/null 2> "$WORK/err"; then fail "repair of a missing file"; fi
grep -q "nothere.nc: cannot repair it: No such file or directory" "$WORK/err" && [ "$(wc -l < "$WORK/err")" -eq 1 ] \
    || fail "repair of a missing file: $(cat "$WORK/err")"
printf 'not netcdf' > "$WORK/junk.nc"
refused "a file that is not NetCDF" junk.nc -- "$WORK/junk.nc" -o "$WORK/z.nc"
: > "$WORK/part_b.nc.journal"
refused "an input still being written" part_b.nc --repair -- "$WORK/part_a.nc" "$WORK/part_b.nc" -o "$WORK/w.nc"
rm -f "$WORK/part_b.nc.journal"
if "$RS" merge -o "$WORK/v.nc" 2> /dev/null; then fail "merge without inputs succeeded"; fi
[ ! -e "$WORK/x.nc" ] && [ ! -e "$WORK/y.nc" ] && [ ! -e "$WORK/z.nc" ] || fail "a refused merge left output"
"$RS" merge --repair "$WORK/merged.nc" > "$WORK/repair.txt" || fail "merge --repair of a clean file"
grep -q "nothing to repair" "$WORK/repair.txt" || fail "merge --repair said: $(cat "$WORK/repair.txt")"
echo "t_dataset_xarray: all checks passed"
