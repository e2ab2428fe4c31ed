#!/usr/bin/env bash
# The report's Interventions section (analysis/report_interventions.py,
# docs/analysis.md) on tiny runs, each a config of t_interventions/t_resample:
#  1. a planted death (debug_kill_step = 17): Table 4 and its CSVs show the 4
#     planted deaths at step 17, an outlier step, with the numbers of
#     `analysis/interventions.py attribution`; the fork and resampling tests
#     say in one line why they do not apply;
#  2. a resampling run: Table 6 shows resampled units (= `interventions.py
#     resample`); attribution says why it is left out;
#  3. a fork sweep (3 data seeds from one checkpoint, units dying after the
#     fork) with --fork-checkpoint: Table 5 = `interventions.py forks
#     --checkpoint`; a checkpoint of another step is refused on the page (the
#     rest of the report is still written); a missing one is a usage error.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"
[ -x "$RS" ] || fail "$RS is not built (make)"
report() { PYTHONPATH=$ROOT PYTHONDONTWRITEBYTECODE=1 "$PY" -m analysis.report "$@"; }
iv() { "$PY" "$ROOT/analysis/interventions.py" "$@"; }
make_tiny_corpus "$WORK/data" > /dev/null

# same_rows CSV JSON KEY COLUMN...: the CSV's rows equal the JSON's list KEY
# (the numbers of analysis/interventions.py) in the given columns
same_rows() {
    "$PY" - "$@" <<'PY'
import csv, json, math, sys
path, js, key, cols = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
got = list(csv.DictReader(open(path)))
want = [r for r in json.load(open(js))[key] if "skipped" not in r]
assert len(got) == len(want) > 0, f"{path}: {len(got)} rows, interventions.py {len(want)}"
for g, w in zip(got, want):
    for c in cols:
        a, b = g[c], w[c]
        if isinstance(b, float):
            ok = (math.isnan(b) and a == "nan") or float(a) == b
        else:
            ok = a == str(b)
        assert ok, f"{path}: {c} = {a}, interventions.py: {b}"
PY
}
section() {   # section PAGE: the Interventions section's text, tags removed
    sed -n '/<h2>Interventions/,/<h2>/p' "$1" | sed 's/<[^>]*>//g'
}
no_failures() {   # no_failures PAGE: no item of the page failed
    ! grep -q "could not be made" "$1" || fail "$1: $(grep -o "an item of[^<]*" "$1")"
}

# ---- 1. the planted death
write_tiny_config "$WORK/plant.conf" "$WORK/data" "$WORK/plant" "steps = 60" "eval_every = 0" \
    "snapshot_every = 4" "debug_kill_step = 17"
"$RS" train "$WORK/plant.conf" > /dev/null
report "$WORK/plant/dataset.nc" -o "$WORK/rep_plant" > /dev/null || fail "report on the planted run"
no_failures "$WORK/rep_plant/index.html"
"$PY" - "$WORK/rep_plant" <<'PY' || fail "Table 4 does not show the planted deaths"
import csv, sys
rep = sys.argv[1]
run, = list(csv.DictReader(open(f"{rep}/table4_attribution.csv")))
assert int(run["deaths"]) >= 4 and int(run["deaths_at_outlier"]) >= 4, run
assert float(run["death_frac_outlier"]) > float(run["base_rate_outlier"]), run
assert float(run["p_value_outlier"]) < 1e-3, run
ev = list(csv.DictReader(open(f"{rep}/table4_attribution_events.csv")))
planted = [e for e in ev if e["layer"] == "0" and e["last_fire"] == "17"]
assert len(planted) == 4, f"expected the 4 planted deaths at step 17: {ev}"
assert all(e["outlier"] == "1" for e in planted), planted
assert all(float(e["jump"]) < float(run["alive_jump_p1"]) for e in planted), planted
print(f"ok   Table 4: {run['deaths']} deaths, {run['deaths_at_outlier']} at outlier steps "
      f"(the 4 planted at step 17), P = {float(run['p_value_outlier']):.2g}")
PY
iv attribution "$WORK/plant/dataset.nc" --json > "$WORK/plant.json"
same_rows "$WORK/rep_plant/table4_attribution.csv" "$WORK/plant.json" attribution size seed \
    deaths eligible_steps death_frac_outlier base_rate_outlier p_value_outlier \
    death_frac_outlier_local p_value_outlier_local death_frac_jump_below_p1 \
    || fail "Table 4 differs from interventions.py attribution"
section "$WORK/rep_plant/index.html" > "$WORK/plant.txt"
for want in "Table 4: deaths at outlier steps" "Reading: 4 of 4 deaths (100.0%) lie at outlier steps" \
        "Fork overlap: not a fork dataset" "Resampling: no unit was resampled"; do
    grep -qF "$want" "$WORK/plant.txt" || fail "planted run: the section does not say '$want'"
done
[ ! -e "$WORK/rep_plant/table5_forks.csv" ] && [ ! -e "$WORK/rep_plant/table6_resampling.csv" ] \
    || fail "planted run: a fork or resampling table was written"
echo "ok   Table 4 = interventions.py attribution; forks and resampling say why they do not apply"

# ---- 2. resampling
write_tiny_config "$WORK/res.conf" "$WORK/data" "$WORK/res" "steps = 40" "eval_every = 0" \
    "snapshot_every = 4" "debug_kill_step = 3" "resample_dead = 4" "dead_window = 5"
"$RS" train "$WORK/res.conf" > /dev/null
report "$WORK/res/dataset.nc" -o "$WORK/rep_res" > /dev/null || fail "report on the resampling run"
no_failures "$WORK/rep_res/index.html"
iv resample "$WORK/res/dataset.nc" --json > "$WORK/res.json"
same_rows "$WORK/rep_res/table6_resampling.csv" "$WORK/res.json" resample size seed layer \
    resampled redied frac_redied alive_at_end mean_life window \
    || fail "Table 6 differs from interventions.py resample"
awk -F, 'NR > 1 && $3 == 0 && $4 >= 4 { ok = 1 } END { exit !ok }' \
    "$WORK/rep_res/table6_resampling.csv" || fail "Table 6: layer 0 resampled < 4"
section "$WORK/rep_res/index.html" > "$WORK/res.txt"
for want in "Table 6: resampled units" "Reading: of " "Outlier attribution: every run resampled"; do
    grep -qF "$want" "$WORK/res.txt" || fail "resampling run: the section does not say '$want'"
done
[ ! -e "$WORK/rep_res/table4_attribution.csv" ] || fail "resampling run: attribution was written"
echo "ok   Table 6 = interventions.py resample (layer 0: the planted units resampled)"

# ---- 3. a fork sweep, from a checkpoint at step 12 of a run where units die
C=$WORK/base.conf
write_tiny_config "$C" "$WORK/data" "$WORK/base" "steps = 40" "eval_every = 0" "lr = 3e-2" \
    "warmup_steps = 2" "dead_window = 3" "snapshot_every = 4"
rc=0; "$RS" train "$C" stop_at_step=12 > /dev/null || rc=$?
[ "$rc" -eq 75 ] || fail "stop_at_step=12: exit $rc"
cp "$WORK/base/checkpoints/t2_seed0/ckpt_00000012.bin" "$WORK/fork12.bin"
"$RS" train "$C" out_dir="$WORK/forks" fork_from="$WORK/fork12.bin" seeds=0,5,6 > /dev/null
report "$WORK/forks/dataset.nc" -o "$WORK/rep_forks" --fork-checkpoint "$WORK/fork12.bin" \
    > /dev/null || fail "report on the fork sweep"
no_failures "$WORK/rep_forks/index.html"
iv forks "$WORK/forks/dataset.nc" --checkpoint "$WORK/fork12.bin" --json > "$WORK/forks.json"
same_rows "$WORK/rep_forks/table5_forks.csv" "$WORK/forks.json" forks size layer forks \
    fork_step end_step alive_at_fork jaccard jaccard_chance shared_mean p_value_max alive_from \
    || fail "Table 5 differs from interventions.py forks"
awk -F, 'NR > 1 && $13 ~ /^checkpoint/ && $7 != "0 0 0" { ok = 1 } END { exit !ok }' \
    "$WORK/rep_forks/table5_forks.csv" || fail "Table 5: no layer with deaths, or alive set not from the checkpoint"
section "$WORK/rep_forks/index.html" > "$WORK/forks.txt"
for want in "Table 5: the same units die in forks?" "Reading: of 2 layer(s)" \
        "(the fork step; earlier last firings are the parent run"; do
    grep -qF "$want" "$WORK/forks.txt" || fail "fork sweep: the section does not say '$want'"
done
echo "ok   Table 5 = interventions.py forks --checkpoint; attribution starts at the fork step"

# a checkpoint of another step: that item fails on the page, the rest is made;
# --fork-checkpoint on a dataset that is not a fork sweep is said to be ignored
PYTHONPATH=$ROOT PYTHONDONTWRITEBYTECODE=1 "$PY" - "$WORK" <<'PY' 2> /dev/null \
    || fail "a wrong --fork-checkpoint"
import os, sys
from analysis import report, report_interventions
from analysis.load import open_data
w = sys.argv[1]
ck = f"{w}/base/checkpoints/t2_seed0/ckpt_00000010.bin"
for ds, want in ((f"{w}/forks/dataset.nc", "is at step 10, but the forks start at step 12"),
                 (f"{w}/plant/dataset.nc", "(--fork-checkpoint ignored)")):
    out = f"{w}/wrong_{len(want)}"
    os.makedirs(out)
    notes = []
    (_, items), = report.build(report_interventions.sections(open_data(ds), out, ck), notes)
    text = " ".join(notes + [i for i in items if isinstance(i, str)])
    assert want in text, text
    assert ("Table 4" in str(items)) and not os.path.exists(f"{out}/table5_forks.csv"), items
PY
rc=0; report "$WORK/forks/dataset.nc" -o "$WORK/rep_none" --fork-checkpoint "$WORK/none.bin" \
    2> "$WORK/none.err" > /dev/null || rc=$?
[ "$rc" -eq 2 ] && tail -n 1 "$WORK/none.err" | grep -q "error: --fork-checkpoint: .*none.bin: no such file" \
    && [ ! -e "$WORK/rep_none" ] || fail "a missing --fork-checkpoint: exit $rc, $(cat "$WORK/none.err")"
echo "ok   a checkpoint of another step is refused on the page; a missing one: exit 2"
echo "t_report_interventions: all passed"
