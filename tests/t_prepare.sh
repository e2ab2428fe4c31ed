#!/usr/bin/env bash
# t_prepare.sh — `reluscope prepare` end to end on generated text: outputs,
# exact text round trips through the shards (byte and BPE), re-preparing a
# folder, and every bad input giving a non-zero exit with one stderr line
# that names the file, and no partial output.
set -euo pipefail
BIN=${BIN:-bin}
R="$BIN/reluscope"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_prepare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_fail TEXT CMD...: CMD fails, prints exactly one stderr line, and
# that line contains TEXT (the file it names).
expect_fail() {
    local want=$1; shift
    if "$@" > "$tmp/out" 2> "$tmp/err"; then fail "should have failed: $*"; fi
    [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "not one stderr line for $*: $(cat "$tmp/err")"
    grep -qF -- "$want" "$tmp/err" || fail "stderr does not name '$want': $(cat "$tmp/err")"
    echo "ok: $(cat "$tmp/err")"
}

# Deterministic text: words of random syllables (ASCII, accents, CJK, emoji),
# numbers, punctuation, blank lines.
gen() {  # gen SEED LINES
    awk -v seed="$1" -v lines="$2" 'BEGIN {
        srand(seed)
        ns = split("th e an d in g re s t o a qu x er on st ly ing é ü ñ ß ö " \
                   "漢 字 日 本 こ ん Ω д а 😀 🌍", syl, " ")
        np = split(", . ; : ! ? -- ( ) \" '\'' 1961 3.14", pun, " ")
        for (i = 0; i < lines; i++) {
            k = 1 + int(rand() * 14); s = ""
            for (j = 0; j < k; j++) {
                wd = ""; m = 1 + int(rand() * 3)
                for (q = 0; q < m; q++) wd = wd syl[1 + int(rand() * ns)]
                if (rand() < 0.15) wd = wd pun[1 + int(rand() * np)]
                s = s (j ? " " : "") wd
            }
            print s "."
            if (rand() < 0.1) print ""
        }
    }'
}
gen 1 3000 > "$tmp/a.txt"
gen 2 2000 > "$tmp/b.txt"
gen 3 1000 > "$tmp/c.txt"
total=$(cat "$tmp"/[abc].txt | wc -c)

# --- BPE, several shards -----------------------------------------------------
out="$tmp/bpe"
"$R" prepare --out "$out" --tokenizer bpe --vocab 512 --val-fraction 0.1 \
    --shard-tokens 20000 "$tmp/a.txt" "$tmp/b.txt" "$tmp/c.txt" > "$tmp/summary"
cat "$tmp/summary"
[ -f "$out/train_000000.bin" ] && [ -f "$out/train_000001.bin" ] || fail "train shards missing"
[ -f "$out/val_000000.bin" ] || fail "val shard missing"
[ -f "$out/tokenizer.bpe" ] && [ -f "$out/meta.txt" ] || fail "tokenizer.bpe or meta.txt missing"
head -n 1 "$out/tokenizer.bpe" | grep -qx "reluscope-bpe 1 vocab 512 merges 256" \
    || fail "tokenizer header: $(head -n 1 "$out/tokenizer.bpe")"
[ "$(wc -l < "$out/tokenizer.bpe")" -eq 257 ] || fail "tokenizer.bpe line count"
grep -qx "vocab_size = 512" "$out/meta.txt" || fail "meta vocab"
grep -qx "tokenizer = bpe" "$out/meta.txt" || fail "meta tokenizer"
[ -z "$(find "$out" -name '.prepare-*')" ] || fail "staging folder left behind"
"$R" prepare --decode "$out/train_*.bin" > "$tmp/train.txt"
"$R" prepare --decode "$out/val_*.bin" --tokenizer-file "$out/tokenizer.bpe" > "$tmp/val.txt"
[ "$(cat "$tmp/train.txt" "$tmp/val.txt" | wc -c)" -eq "$total" ] || fail "decoded size"
[ -s "$tmp/val.txt" ] || fail "empty validation split"
head -c 200 "$tmp/a.txt" | cmp -s - <(head -c 200 "$tmp/train.txt") || fail "train starts with a.txt"
# the token counts in meta.txt are the shards' counts
train_tokens=$(sed -n 's/^train_tokens = //p' "$out/meta.txt")
bytes_in_shards=$(( $(cat "$out"/train_*.bin | wc -c) - 1024 * $(ls "$out"/train_*.bin | wc -l) ))
[ "$bytes_in_shards" -eq $((2 * train_tokens)) ] || fail "meta train_tokens vs shards"
[ "$train_tokens" -lt $((total * 2 / 3)) ] || fail "BPE should compress ($train_tokens tokens)"

# --- BPE, no validation: decode == the concatenated files -------------------
"$R" prepare --out "$tmp/bpe0" --vocab 400 --val-fraction 0 "$tmp/a.txt" "$tmp/b.txt" "$tmp/c.txt" > /dev/null
"$R" prepare --decode "$tmp/bpe0/train_*.bin" | cmp -s - <(cat "$tmp"/[abc].txt) \
    || fail "BPE round trip of three files"
[ -z "$(ls "$tmp/bpe0"/val_*.bin 2>/dev/null)" ] || fail "val shards with --val-fraction 0"

# --- one file: train head + val tail == the file ----------------------------
"$R" prepare --out "$tmp/one" --vocab 300 --val-fraction 0.25 "$tmp/b.txt" > /dev/null
cat <("$R" prepare --decode "$tmp/one/train_*.bin") <("$R" prepare --decode "$tmp/one/val_*.bin") \
    | cmp -s - "$tmp/b.txt" || fail "train + val != the file"
"$R" prepare --decode "$tmp/one/train_*.bin" | tail -c 1 | cmp -s - <(printf '\n') \
    || fail "the split is not at a line start"

# --- byte level: tokens are the bytes, exact round trip ----------------------
printf 'caf\xc3\xa9 \xff\xfe raw bytes are fine at byte level\n' > "$tmp/raw.txt"
"$R" prepare --out "$tmp/byte" --tokenizer byte --val-fraction 0 "$tmp/a.txt" "$tmp/raw.txt" > /dev/null
grep -qx "vocab_size = 256" "$tmp/byte/meta.txt" || fail "byte vocab"
grep -qx "train_tokens = $(cat "$tmp/a.txt" "$tmp/raw.txt" | wc -c)" "$tmp/byte/meta.txt" \
    || fail "byte tokens != bytes"
"$R" prepare --decode "$tmp/byte/train_*.bin" | cmp -s - <(cat "$tmp/a.txt" "$tmp/raw.txt") \
    || fail "byte round trip"

# --- re-preparing a folder replaces all of its shards ------------------------
"$R" prepare --out "$out" --vocab 512 --shard-tokens 1000000 "$tmp"/[abc].txt > /dev/null
[ "$(ls "$out"/train_*.bin | wc -l)" -eq 1 ] || fail "stale shards left after re-prepare"

"$R" prepare --help | grep -q -- "--val-fraction" || fail "--help"

# --- bad input: one line naming the file, non-zero exit, nothing written ------
: > "$tmp/empty.txt"
printf 'good text\nthen \xc3\x28 bad\n' > "$tmp/latin.txt"
: > "$tmp/afile"
mkdir "$tmp/adir"
sums=$(md5sum "$out"/* | sort)
expect_fail "$tmp/missing.txt" "$R" prepare --out "$out" "$tmp/a.txt" "$tmp/missing.txt"
expect_fail "$tmp/empty.txt"   "$R" prepare --out "$out" "$tmp/a.txt" "$tmp/empty.txt"
expect_fail "$tmp/latin.txt"   "$R" prepare --out "$out" "$tmp/a.txt" "$tmp/latin.txt"
grep -q "byte offset 15" "$tmp/err" || fail "UTF-8 error offset: $(cat "$tmp/err")"
expect_fail "$tmp/adir"        "$R" prepare --out "$out" "$tmp/adir"
expect_fail "--vocab 70000"    "$R" prepare --out "$out" --vocab 70000 "$tmp/a.txt"
expect_fail "--vocab 255"      "$R" prepare --out "$out" --vocab 255 "$tmp/a.txt"
expect_fail "$tmp/afile/sub"   "$R" prepare --out "$tmp/afile/sub" "$tmp/a.txt"
expect_fail "--val-fraction"   "$R" prepare --out "$out" --val-fraction 1.5 "$tmp/a.txt"
expect_fail "unknown option"   "$R" prepare --out "$out" --bogus "$tmp/a.txt"
[ "$sums" = "$(md5sum "$out"/* | sort)" ] || fail "a failed prepare changed the earlier outputs"
expect_fail "$tmp/new/x.txt"   "$R" prepare --out "$tmp/new" "$tmp/new/x.txt"
[ -z "$(ls -A "$tmp/new" 2>/dev/null)" ] || fail "a failed prepare left files"

# decoding refuses bad shards and bad tokenizer files, naming them
head -c 1500 "$out/train_000000.bin" > "$tmp/bpe/cut.bin"
expect_fail "$tmp/bpe/cut.bin" "$R" prepare --decode "$tmp/bpe/cut.bin"
echo "reluscope-bpe 1 vocab 300 merges 2" > "$tmp/bad.bpe"
expect_fail "$tmp/bad.bpe:1:"  "$R" prepare --decode "$out/train_*.bin" --tokenizer-file "$tmp/bad.bpe"
expect_fail "$out/train_000000.bin" "$R" prepare --decode "$out/train_*.bin" \
    --tokenizer-file "$tmp/byte/tokenizer.bpe"     # BPE tokens >= the byte vocab 256
echo "t_prepare: all checks passed"
