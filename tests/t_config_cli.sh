#!/usr/bin/env bash
# t_config_cli.sh — `reluscope train` with a bad config or a bad override:
# each must exit non-zero with exactly one line on stderr that names the key
# (and the file and line where it came from), before creating any output.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-bin}
case $BIN in /*) RS=$BIN/reluscope ;; *) RS=$ROOT/$BIN/reluscope ;; esac
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/reluscope-cfg.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -x "$RS" ] || fail "$RS is not built (make)"

# A config that is valid except for what each case appends.
write_config() {
    local file=$1; shift
    cat > "$file" <<CONF
# a small valid sweep
size.t2 = L=2 d=32 h=2 F=64 T=32 V=64
sizes = t2
seeds = 0, 1
train_data = $WORK/data/train_*.bin
out_dir = $WORK/out
eval_tokens = 512
CONF
    for line in "$@"; do echo "$line" >> "$file"; done
}

# expect_rejected NAME WANT... -- TRAIN-ARGS...: non-zero exit, one line on
# stderr containing every WANT, no output folder.
expect_rejected() {
    local name=$1; shift
    local wants=()
    while [ "$1" != "--" ]; do wants+=("$1"); shift; done
    shift
    local rc=0
    "$RS" train "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
    [ "$rc" -ne 0 ] || fail "$name: exit status 0"
    LAST_RC=$rc
    [ "$(wc -l < "$WORK/$name.err")" -eq 1 ] \
        || fail "$name: stderr is not one line:"$'\n'"$(cat "$WORK/$name.err")"
    for w in "${wants[@]}"; do
        grep -qF -- "$w" "$WORK/$name.err" || fail "$name: '$w' not in: $(cat "$WORK/$name.err")"
    done
    [ ! -e "$WORK/out" ] || fail "$name: the output folder was created"
    echo "ok: $name: $(cat "$WORK/$name.err")"
}

C=$WORK/c.conf
write_config "$C" "foo = 1"
expect_rejected unknown_key "c.conf:8:" "unknown key 'foo'" -- "$C"
[ "$LAST_RC" -eq 64 ] || fail "a config error exits $LAST_RC, not 64"

write_config "$C" "lr = -1"
expect_rejected bad_value "c.conf:8:" "key 'lr'" "'-1'" -- "$C"

write_config "$C" "steps = 10x"
expect_rejected bad_integer "c.conf:8:" "key 'steps'" -- "$C"

write_config "$C" "size.odd = L=2 d=30 h=4 F=64 T=32 V=64"
expect_rejected d_not_multiple_of_h "c.conf:8:" "key 'size.odd'" "h=4" -- "$C"

write_config "$C" "sizes = t2, nowhere"
sed -i '/^sizes = t2$/d' "$C"
expect_rejected undefined_size "key 'sizes'" "nowhere" -- "$C"

write_config "$C" "seeds = 3"
expect_rejected duplicate_key "c.conf:8:" "key 'seeds'" "twice" -- "$C"

write_config "$C" "just some words"
expect_rejected no_equals "c.conf:8:" "key = value" -- "$C"

write_config "$C" "stop_at_step = 0"
expect_rejected stop_at_zero "c.conf:8:" "key 'stop_at_step'" "-1 (never) or >= 1" -- "$C"

write_config "$C" "seeds = 2-1"
sed -i '/^seeds = 0, 1$/d' "$C"
expect_rejected backwards_range "c.conf:7:" "key 'seeds'" "backwards" -- "$C"

# junk in a config (a binary file, a terminal escape): the message is one
# line without raw control bytes or bytes that are not UTF-8
printf '\033]0;owned\007 = 1\n\377\376\n' > "$WORK/junk.conf"
expect_rejected binary_junk "junk.conf:1:" '\x1B' -- "$WORK/junk.conf"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f\x80-\xff]' "$WORK/binary_junk.err"; then
    fail "binary_junk: raw bytes on stderr: $(od -c "$WORK/binary_junk.err" | head -3)"
fi

write_config "$C"
expect_rejected override_unknown "command line" "unknown key 'nope'" -- "$C" nope=3
expect_rejected override_bad "command line" "key 'beta2'" -- "$C" beta2=1.5
expect_rejected override_no_equals "command line" "lr" -- "$C" lr
expect_rejected cross_lr_min "c.conf" "key 'lr_min'" -- "$C" lr=1e-4 lr_min=1e-3
expect_rejected eval_tokens "key 'eval_tokens'" "size 't2'" -- "$C" eval_tokens=500
expect_rejected no_train_data "train_data=" -- "$C" train_data=
expect_rejected missing_file "$WORK/none.conf" "cannot open" -- "$WORK/none.conf"
# errors that need a corpus to get past the corpus check: a tiny valid one
"$PY" "$ROOT/tests/make_corpus.py" "$WORK/data" --vocab 64 --tokens 20000 >/dev/null
write_config "$C"
touch "$WORK/a_file"
expect_rejected out_dir_is_file "$WORK/a_file" "cannot create the output folder" "Not a directory" \
    -- "$C" out_dir="$WORK/a_file"
# the corpus is checked for every size before anything is written: tokens of
# the shards >= V of a size, or too few windows for a batch
expect_rejected tokens_over_v "train_" "token" -- "$C" "size.t2=L=2 d=32 h=2 F=64 T=32 V=50"
expect_rejected too_few_windows "train_" -- "$C" batch_size=4096
# architecture variants (src/variant.c): an unknown value names the key and
# the accepted values, in a file and on the command line
write_config "$C" "size.r = L=2 d=32 h=2 F=64 T=32 V=64 pos=alibi"
expect_rejected variant_value "c.conf:8:" "key 'size.r'" "pos=alibi" "learned, none, rope" -- "$C"
[ "$LAST_RC" -eq 64 ] || fail "pos=alibi exits $LAST_RC, not 64"
write_config "$C"
expect_rejected variant_override "command line" "key 'size.t2'" "act=gelu" "relu, relu2" \
    -- "$C" "size.t2=L=2 d=32 h=2 F=64 T=32 V=64 act=gelu"
# plan shows a size's variant (lines and JSON)
write_config "$C"
"$RS" plan "$C" "size.t2=L=2 d=32 h=2 F=64 T=32 V=64 act=relu2 pos=rope" > "$WORK/vplan.out"
grep -q '^size t2 L=2 d=32 h=2 F=64 T=32 V=64 pos=rope act=relu2$' "$WORK/vplan.out" ||
    fail "plan: variant size line: $(grep '^size' "$WORK/vplan.out")"
"$RS" plan "$C" "size.t2=L=2 d=32 h=2 F=64 T=32 V=64 tie=0" --json | "$PY" -c '
import json, sys
s = json.load(sys.stdin)["config"]["sizes"][0]
assert (s["pos"], s["tie"], s["mlp_bias"], s["act"]) == ("learned", "0", "1", "relu"), s' ||
    fail "plan --json: the size variant"

# `seeds = 0-4` in the file, replaced by a command-line list (what every
# jobs/ array task does): accepted, and the override wins
write_config "$C" "steps = 2" "warmup_steps = 1" "eval_every = 0" "snapshot_every = 0" "checkpoint_every = 0"
sed -i 's/^seeds = 0, 1$/seeds = 0-4/' "$C"
"$RS" train "$C" seeds=3,1 > "$WORK/range.out" 2> "$WORK/range.err" \
    || fail "seeds = 0-4 with seeds=3,1 on the command line: $(cat "$WORK/range.err")"
grep -q '^seeds = 3, 1$' "$WORK/range.out" || fail "the override did not win: $(grep seeds "$WORK/range.out")"
rm -rf "$WORK/out"
echo "ok: seed range in the file, list on the command line"

# ---- reluscope plan: the effective config, grid, runs and groups ----------
# plan_ok NAME ARGS...: exit 0, stdout in $WORK/NAME.out, nothing on stderr
plan_ok() {
    local name=$1; shift
    "$RS" plan "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" \
        || fail "plan $name: exit $?: $(cat "$WORK/$name.err")"
    [ ! -s "$WORK/$name.err" ] || fail "plan $name: stderr: $(cat "$WORK/$name.err")"
}
# plan_bad NAME CODE WANT ARGS...: exit CODE, one stderr line containing WANT
plan_bad() {
    local name=$1 code=$2 want=$3 rc=0; shift 3
    "$RS" plan "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
    [ "$rc" -eq "$code" ] || fail "plan $name: exit $rc, expected $code: $(cat "$WORK/$name.err")"
    [ "$code" -eq 2 ] || [ "$(wc -l < "$WORK/$name.err")" -eq 1 ] \
        || fail "plan $name: stderr is not one line: $(cat "$WORK/$name.err")"
    grep -qF -- "$want" "$WORK/$name.err" || fail "plan $name: '$want' not in: $(cat "$WORK/$name.err")"
    [ ! -s "$WORK/$name.out" ] || fail "plan $name: printed a plan despite the error"
}
write_config "$C" "size.t3 = L=3 d=32 h=2 F=64 T=32 V=64"
sed -i 's/^sizes = t2$/sizes = t2, t3/; s/^seeds = 0, 1$/seeds = 0-4/' "$C"
plan_ok range "$C"
[ "$(grep -c '^seed ' "$WORK/range.out")" -eq 5 ] || fail "plan: seeds = 0-4 is not 5 seed lines"
[ "$(grep -c '^run ' "$WORK/range.out")" -eq 10 ] || fail "plan: 2 sizes x 5 seeds is not 10 runs"
grep -q '^size t3 L=3 d=32 h=2 F=64 T=32 V=64$' "$WORK/range.out" || fail "plan: size line of t3"
grep -q '^run 9 size=t3 seed=4 name=t3_seed4$' "$WORK/range.out" || fail "plan: the last run line"
grep -q '^config seeds = 0, 1, 2, 3, 4$' "$WORK/range.out" || fail "plan: config line of the seeds"
plan_ok override "$C" seeds=3,1 --ranks 2
[ "$(grep '^seed ' "$WORK/override.out" | tr '\n' ' ')" = "seed 3 seed 1 " ] \
    || fail "plan: the command-line seeds do not win: $(grep '^seed ' "$WORK/override.out")"
[ "$(grep -c '^group ' "$WORK/override.out")" -eq 2 ] || fail "plan: 2 ranks, 4 runs: not 2 groups"
# the config lines are the effective config: loaded back, the same plan
sed -n 's/^config //p' "$WORK/range.out" > "$WORK/printed.conf"
plan_ok reloaded "$WORK/printed.conf"
cmp -s "$WORK/range.out" "$WORK/reloaded.out" || fail "plan of the printed config differs"
# ... also from stdin, as analysis/ reads a dataset's config attribute
"$RS" plan - < "$WORK/printed.conf" > "$WORK/stdin.out" || fail "plan - (stdin) failed"
cmp -s "$WORK/range.out" "$WORK/stdin.out" || fail "plan - differs from plan FILE"
# --json: the same plan as one object
plan_ok json "$C" --json --ranks 4 seeds=0-2
"$PY" - "$WORK/json.out" <<'PYEOF' || fail "plan --json does not hold the plan"
import json, sys
p = json.load(open(sys.argv[1]))
c = p["config"]
assert [s["name"] for s in c["sizes"]] == ["t2", "t3"] and c["sizes"][1]["L"] == 3, c["sizes"]
assert c["seeds"] == [0, 1, 2] and c["eval_tokens"] == 512 and c["overwrite"] is False, c
assert c["sampler"] == "random" and c["lr"] == 3e-4 and isinstance(c["steps"], int), c
assert len(p["runs"]) == 6 and p["runs"][5] == {"id": 5, "size": "t3", "seed": 2, "name": "t3_seed2"}
assert p["ranks"] == 4 and sum(g["ranks"] for g in p["groups"]) == 4
assert sorted(r for g in p["groups"] for r in g["runs"]) == list(range(6)), p["groups"]
assert "lr" in p["results_keys"] and "out_dir" not in p["results_keys"], p["results_keys"]
assert p["config_text"].startswith("size.t2 = L=2"), p["config_text"][:40]
assert len(p["fingerprint"]) == 16
PYEOF
# nothing is created, and the corpus is not read without --check
[ ! -e "$WORK/out" ] || fail "plan created the output folder"
plan_ok no_corpus_needed "$C" train_data=/nonexistent/x_*.bin
plan_bad check_no_corpus 1 "/nonexistent/x_*.bin" "$C" --check train_data=/nonexistent/x_*.bin
plan_ok check_ok "$C" --check
plan_bad check_tokens_over_v 1 "is >= the vocabulary size 50" "$C" --check \
    "size.t2=L=2 d=32 h=2 F=64 T=32 V=50"
plan_bad check_few_windows 1 "a batch needs B=4096" "$C" --check batch_size=4096
# errors: the same lines and codes as train
plan_bad bad_key 64 "unknown key 'nope'" "$C" nope=1
plan_bad bad_range 64 "backwards" "$C" seeds=4-2
plan_bad bad_layout 1 "batch_size" "$C" --ranks 3 sizes=t2 seeds=0 batch_size=16
plan_bad missing 64 "cannot open" "$WORK/none.conf"
plan_bad stdin_junk 64 '\x1B' - < "$WORK/junk.conf"
plan_bad no_args 2 "usage: reluscope plan" 
plan_bad bad_ranks 2 "--ranks" "$C" --ranks 0
plan_bad bad_option 2 "unknown option '--jsn'" "$C" --jsn
"$RS" plan --help | grep -q "^  group G first_rank=R ranks=K runs=" || fail "plan --help lacks the line format"
echo "ok: plan (lines, json, stdin, --check, errors)"

# OpenBLAS kernels (src/blas.c, scripts/blas-env.sh): whatever this machine's
# CPU, the advice must be one that OpenBLAS takes, after which there is none;
# and a user's own OPENBLAS_CORETYPE is never second-guessed.
better=$(env -u OPENBLAS_CORETYPE "$RS" --blas-coretype)
if [ -n "$better" ]; then
    v=$(env -u OPENBLAS_CORETYPE "$RS" --version)
    grep -q "older than this CPU supports: set OPENBLAS_CORETYPE=$better" <<<"$v" ||
        fail "--version does not give the advice --blas-coretype gives: $v"
    v=$(OPENBLAS_CORETYPE=$better "$RS" --version)
    grep -q "^OpenBLAS kernels: $better\$" <<<"$v" || fail "OPENBLAS_CORETYPE=$better not taken: $v"
    [ -z "$(OPENBLAS_CORETYPE=$better "$RS" --blas-coretype)" ] || fail "advice after following it"
    # rs_blas_env exports it
    got=$(env -u OPENBLAS_CORETYPE bash -c "source '$ROOT/scripts/blas-env.sh'; rs_blas_env '$RS' 2>/dev/null; echo \$OPENBLAS_CORETYPE")
    [ "$got" = "$better" ] || fail "rs_blas_env set OPENBLAS_CORETYPE='$got', expected '$better'"
fi
[ -z "$(OPENBLAS_CORETYPE=Prescott "$RS" --blas-coretype)" ] || fail "advice despite the user's OPENBLAS_CORETYPE"
got=$(OPENBLAS_CORETYPE=Haswell bash -c "source '$ROOT/scripts/blas-env.sh'; rs_blas_env '$RS'; echo \$OPENBLAS_CORETYPE")
[ "$got" = Haswell ] || fail "rs_blas_env overrode the user's OPENBLAS_CORETYPE"

echo "t_config_cli: all checks passed"
