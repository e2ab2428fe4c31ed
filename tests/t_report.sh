#!/usr/bin/env bash
# The analysis report (python3 -m analysis.report) on real datasets:
#  A) a short sweep (2 sizes of 2 and 3 layers x 2 seeds, a learning rate high
#     enough that units die and revive): every figure and table is written,
#     every Table 1 and Table 2 number (CSV and page) and the Table 3 death
#     counts equal an independent recomputation from the file with the netCDF4
#     API (tests/report/check_report.py), and the page loads in headless
#     Chromium with every image decoded and a non-blank rendering;
#  B) one size, one seed, a run stopped before its end, no snapshots and no
#     held-out evaluation: the report is still complete (std n/a, notes);
#  C) A with one run absent (no series, no group), one run cut short and no
#     effective rank (tests/report/damage.py): same checks, and the page says so;
#  D) every '# recipe:' block of docs/analysis.md runs (on A, on two one-seed
#     task files, on a dataset being written); Figure 1 and Table 1 read lazily.
# Chromium comes from Debian: scripts/install-report-deps.sh installs it.
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"
export ROOT
report() { PYTHONPATH=$ROOT PYTHONDONTWRITEBYTECODE=1 "$PY" -m analysis.report "$@"; }
CHECK=$ROOT/tests/report/check_report.py
command -v chromium > /dev/null 2>&1 \
    || fail "chromium is not installed: run 'sudo bash scripts/install-report-deps.sh'"
make_tiny_corpus "$WORK/data" > /dev/null

# --- A: 2 sizes x 2 seeds, 300 steps
write_tiny_config "$WORK/a.conf" "$WORK/data" "$WORK/a" \
    "size.t2 = L=2 d=32 h=2 F=128 T=32 V=64" "size.t3 = L=3 d=32 h=2 F=128 T=32 V=64" \
    "sizes = t2, t3" "seeds = 0, 1" "steps = 300" "lr = 3e-2" "warmup_steps = 20" \
    "dead_window = 10" "snapshot_every = 10" "eval_every = 20" "log_every = 100" \
    "checkpoint_every = 300" "flush_every = 50" "check_every = 100"
"$RS" train "$WORK/a.conf" > "$WORK/a.log" 2>&1 || fail "training A: $(tail -3 "$WORK/a.log")"
report "$WORK/a/dataset.nc" -o "$WORK/rep_a" || fail "analysis.report on dataset A"
"$PY" "$CHECK" "$WORK/a/dataset.nc" "$WORK/rep_a" || fail "report A differs from the file"
deaths=$(awk -F, 'NR > 1 { n += $7 } END { print n + 0 }' "$WORK/rep_a/table3_deaths.csv")
[ "$deaths" -gt 0 ] || fail "dataset A has no deaths: the death diagnostics were not exercised"

# --- lazy reading: Figure 1 and Table 1 read their own variables, and nothing is
# cached whole (a 10^5-step x 30-run file must not load whole for one figure)
PYTHONPATH=$ROOT PYTHONDONTWRITEBYTECODE=1 "$PY" - "$WORK/a/dataset.nc" "$WORK/lazy" <<'PY' \
    || fail "the report reads the dataset eagerly"
import os, sys
from analysis.load import open_data
from analysis import figures, tables
data = open_data(sys.argv[1])
os.makedirs(sys.argv[2])
figures.batch_use(data, sys.argv[2])
tables.table1(data.ds)
loaded = [v for v in data.ds.data_vars if data.ds[v].variable._in_memory and data.ds[v].ndim > 1]
assert not loaded, f"variables read whole into the dataset: {loaded}"
print(f"lazy: {len(data.ds.data_vars)} variables, none held in memory after Figure 1 and Table 1")
PY

# --- B: one size, one seed, unfinished, no snapshot groups, no held-out series
write_tiny_config "$WORK/b.conf" "$WORK/data" "$WORK/b" "steps = 60" "stop_at_step = 40" \
    "snapshot_every = 0" 'val_data = ""'
rc=0; "$RS" train "$WORK/b.conf" > "$WORK/b.log" 2>&1 || rc=$?
[ "$rc" -eq 75 ] || fail "training B should stop at step 40 with status 75, got $rc"
report "$WORK/b/dataset.nc" -o "$WORK/rep_b" || fail "analysis.report on dataset B"
"$PY" "$CHECK" "$WORK/b/dataset.nc" "$WORK/rep_b" || fail "report B differs from the file"
grep -q "unfinished (40 of 60 steps" "$WORK/rep_b/index.html" || fail "B: the unfinished run is not noted"
grep -q "no snapshots in this dataset" "$WORK/rep_b/index.html" || fail "B: missing snapshots not noted"
grep -qF "the dataset has no held-out series" "$WORK/rep_b/index.html" \
    || fail "B: missing held-out series not said"

# --- C: dataset A as a merge with a missing task and a stopped job leaves it
# (one run absent with its group, one run cut at step 150, no effective rank)
cp "$WORK/a/dataset.nc" "$WORK/c.nc"
"$PY" "$ROOT/tests/report/damage.py" "$WORK/c.nc" || fail "damaging a copy of A"
report "$WORK/c.nc" -o "$WORK/rep_c" || fail "analysis.report on dataset C"
"$PY" "$CHECK" "$WORK/c.nc" "$WORK/rep_c" || fail "report C differs from the file"
for note in "run t3 seed 1 has no data" "no snapshot group for size t3 seed 1" \
            "run t2 seed 0 is unfinished (150 of 300" "(spectra not computed)"; do
    grep -qF "$note" "$WORK/rep_c/index.html" || fail "C: the page does not say '$note'"
done

# --- the recipes of docs/analysis.md, each run as written (paths replaced)
mkdir -p "$WORK/recipes"
write_tiny_config "$WORK/task0.conf" "$WORK/data" "$WORK/tasks/task_0" "seeds = 0"
write_tiny_config "$WORK/task1.conf" "$WORK/data" "$WORK/tasks/task_1" "seeds = 1"
write_tiny_config "$WORK/live.conf" "$WORK/data" "$WORK/live" "steps = 400" "flush_every = 1" \
    "checkpoint_every = 400" "log_every = 100"
for t in task0 task1; do "$RS" train "$WORK/$t.conf" > "$WORK/$t.log" 2>&1 || fail "training $t"; done
"$RS" train "$WORK/live.conf" > "$WORK/live.log" 2>&1 & live_pid=$!
for _ in $(seq 100); do [ -f "$WORK/live/dataset.nc" ] && break; sleep 0.1; done
"$PY" - "$ROOT/docs/analysis.md" "$WORK/recipes" "$WORK/a/dataset.nc" "$WORK/tasks" "$WORK/live/dataset.nc" <<'PY' \
    || fail "a recipe of docs/analysis.md failed"
import os, re, subprocess, sys
doc, out, ds, tasks, live = sys.argv[1:]
blocks = re.findall(r"```python\n# recipe: (\w+)[^\n]*\n(.*?)```", open(doc).read(), re.S)
names = [n for n, _ in blocks]
assert names == ["figure1", "tables", "idioms", "array", "live"], names
for name, code in blocks:
    code = code.replace("runs/sweep/42", tasks)
    code = code.replace("runs/demo/dataset.nc", live if name == "live" else ds)
    env = dict(os.environ, PYTHONPATH=os.environ["ROOT"], PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=out, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"recipe {name}:\n{r.stderr}")
    checks = {"figure1": os.path.isfile(os.path.join(out, "fig1.png")),
              "array": "'seed': 2" in r.stdout, "live": r.stdout.count("every run has") == 3,
              "tables": "training batch" in r.stdout,
              "idioms": "('size', 'seed', 'snapshot_step', 'layer', 'unit')" in r.stdout}
    if not checks[name]:
        sys.exit(f"recipe {name} ran but did not give what it shows:\n{r.stdout}")
    print(f"recipe {name}: ok")
PY
wait "$live_pid" || fail "the live run failed: $(tail -3 "$WORK/live.log")"

# --- a file that is not a dataset: one error line, non-zero exit
printf 'not netcdf' > "$WORK/junk.nc"
if report "$WORK/junk.nc" -o "$WORK/rep_junk" 2> "$WORK/err"; then fail "analysis.report accepted junk"; fi
if ! grep -q "junk.nc" "$WORK/err" || [ "$(wc -l < "$WORK/err")" -ne 1 ]; then
    fail "junk: not one line naming the file: $(cat "$WORK/err")"
fi
[ ! -e "$WORK/rep_junk/index.html" ] || fail "junk: a report was written"

# --- the page in headless Chromium (offline: file:// only, no network features)
chrome() {
    HOME=$WORK/home timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --disable-extensions --hide-scrollbars --user-data-dir="$(mktemp -d "$WORK/chrome.XXXX")" \
        "$@" 2>> "$WORK/chrome.log"
}
mkdir -p "$WORK/home"
# Images: a copy of the page (same folder, so the same relative paths) with a
# script that, on the load event (after every image has loaded or failed),
# writes how many images decoded into the DOM that --dump-dom prints.
cat > "$WORK/probe.js" <<'JS'
<script>window.addEventListener("load", function () {
  var ok = 0, bad = [];
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i];
    if (im.complete && im.naturalWidth > 0) ok++; else bad.push(im.getAttribute("src"));
  }
  document.body.setAttribute("data-probe", ok + "/" + document.images.length + " bad:" + bad.join(","));
});</script>
JS
for rep in rep_a rep_b rep_c; do
    page=$WORK/$rep/index.html probe=$WORK/$rep/probe.html
    { sed 's#</body></html>##' "$page"; cat "$WORK/probe.js"; echo '</body></html>'; } > "$probe"
    n=$(grep -o '<img ' "$page" | wc -l)
    [ "$n" -ge 14 ] || fail "$rep: only $n images on the page"
    chrome --virtual-time-budget=10000 --dump-dom "file://$probe" > "$WORK/$rep.dom" \
        || fail "$rep: chromium --dump-dom failed: $(tail -3 "$WORK/chrome.log")"
    got=$(grep -o 'data-probe="[^"]*"' "$WORK/$rep.dom" || true)
    [ "$got" = "data-probe=\"$n/$n bad:\"" ] || fail "$rep: images not all loaded: ${got:-no probe result}"
    rm -f "$probe"
    chrome --screenshot="$WORK/$rep.png" --window-size=1200,3000 "file://$page" \
        || fail "$rep: chromium --screenshot failed: $(tail -3 "$WORK/chrome.log")"
    "$PY" - "$WORK/$rep.png" <<'PY' || fail "$rep: the screenshot looks blank"
import sys
import matplotlib.image as mpimg
import numpy as np
a = (mpimg.imread(sys.argv[1])[..., :3] * 255).astype(np.uint8)
colours = len(np.unique(a.reshape(-1, 3), axis=0))
inked = float(np.mean(a.min(axis=2) < 200))       # share of pixels that are not near-white
print(f"screenshot {a.shape[1]}x{a.shape[0]}: {colours} colours, {inked:.1%} inked")
sys.exit(0 if colours >= 200 and inked >= 0.03 else 1)
PY
    echo "$rep: $n/$n images loaded in chromium"
done
echo "t_report: all checks passed"
