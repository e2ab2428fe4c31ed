#!/usr/bin/python3
"""Checks a report written by analysis/report.py against its dataset
(tests/t_report.sh). Independent of the analysis code: it reads the file with
the netCDF4 API and recomputes every number of Table 1 (training and held-out
batch) and Table 2 (deaths placed at the last firing, permanent vs
transient, off at end, counts and % of F), and the death counts of Table 3,
from the definitions in docs/analysis.md, in plain Python (statistics,
math), then compares them with the CSV files (to 1e-9 relative) and with the
numbers shown in index.html (to the shown precision).

  check_report.py DATASET REPORT_DIR     exit 0 if everything matches
"""
import csv
import math
import os
import re
import statistics
import struct
import sys
from html.parser import HTMLParser

import netCDF4
import numpy as np

FIGURES = ["fig1_batch_use", "fig1_batch_use_heldout", "token_use_quantiles",
           "token_use_quantiles_early", "seq_use_quantiles", "seq_use_quantiles_early",
           "dead_frac", "deaths_aligned", "deaths_classes", "deaths_lr", "feature_density",
           "heldout", "eff_rank", "loss"]
PHASES = ["warmup", "early", "middle", "late"]
T1 = [("token_use", "token_use_mean", 2), ("seq_use", "seq_use_mean", 2),
      ("batch_use", "batch_use", 2), ("seq_over_token", None, 3), ("batch_over_seq", None, 3)]
T2 = ["turned_off", "revived", "permanent", "transient"]
T1_HELDOUT = {"token_use_mean": "eval_token_use_mean", "seq_use_mean": "eval_seq_use_mean",
              "batch_use": "eval_batch_use"}
checked = 0


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def same(a, b, what, rtol=1e-9):
    global checked
    checked += 1
    if math.isnan(a) and math.isnan(b):
        return
    if math.isnan(a) or math.isnan(b) or abs(a - b) > rtol * max(1.0, abs(a), abs(b)):
        fail(f"{what}: report {a!r} != file {b!r}")


def mean_std(values):
    """(mean, sample std, n) of the non-NaN values."""
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return math.nan, math.nan, 0
    return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else math.nan, len(v)


# ---------------------------------------------------------------- the file

def config(nc):
    conf = {}
    for line in nc.getncattr("config").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            conf[k.strip()] = v.strip().strip('"')
    return conf


def series(nc, var, i, j, l):
    """The recorded (unmasked, finite) values of var[i, j, :, l] in step order."""
    v = nc.variables[var][i, j, :, l]
    vals = np.ma.masked_invalid(v).compressed()
    return [float(x) for x in vals]


def expected_table1(nc, heldout=False):
    rows = {}
    for i, size in enumerate(nc.variables["size"][:]):
        for l in range(int(nc.variables["n_layer"][i])):
            per_seed = {m: [] for m, _, _ in T1}
            for j in range(len(nc.dimensions["seed"])):
                end = {}
                for m, var, _ in T1[:3]:
                    v = series(nc, T1_HELDOUT[var] if heldout else var, i, j, l)
                    k = max(1, math.ceil(0.05 * len(v))) if v else 0
                    end[m] = 100 * math.fsum(v[-k:]) / k if k else math.nan
                end["seq_over_token"] = end["seq_use"] / end["token_use"] if end["token_use"] else math.nan
                end["batch_over_seq"] = end["batch_use"] / end["seq_use"] if end["seq_use"] else math.nan
                for m in per_seed:
                    per_seed[m].append(end[m])
            rows[(str(size), l)] = {m: mean_std(v) for m, v in per_seed.items()}
    return rows


def phase_bounds(nc):
    conf = config(nc)
    w, s = int(conf["warmup_steps"]), int(conf["steps"])
    r = s - w
    cuts = [0, w, w + r // 3, w + 2 * r // 3, s]
    return {PHASES[k]: (cuts[k], cuts[k + 1]) for k in range(4)}


def phase_of(bounds, t):
    """The phase holding step max(t, 0) (never-fired units count at step 0)."""
    t = max(t, 0)
    return next((p for p, (a, b) in bounds.items() if a <= t < b), None)


def last_snapshot(nc, i, j):
    """(step, last_fire[layer][unit]) at the run's last written snapshot, or None."""
    name = str(nc.variables["run_group"][i, j])
    if name not in nc.groups:
        return None
    g = nc.groups[name]
    rec = [k for k, s in enumerate(g.variables["snapshot_step"][:]) if int(s) >= 0]
    if not rec:
        return None
    return int(g.variables["snapshot_step"][rec[-1]]), np.asarray(g.variables["last_fire"][rec[-1]])


def expected_table2(nc):
    """Per (size, layer, phase): turned_off at step s counted in the phase of the
    units' last firing s - W; revived in the phase of its step; permanent = units
    off at the run's last snapshot by the phase of their last firing; transient =
    turned off - permanent; off at end = dead_frac at the last recorded step * F;
    each also in % of F; mean, std over seeds."""
    rows = {}
    W = int(config(nc)["dead_window"])
    steps = [int(s) for s in nc.variables["step"][:]]
    bounds = phase_bounds(nc)
    for i, size in enumerate(nc.variables["size"][:]):
        F = int(nc.variables["n_hidden"][i])
        for l in range(int(nc.variables["n_layer"][i])):
            per = {ph: {m: [] for m in T2} for ph in bounds}
            ends = []
            for j in range(len(nc.dimensions["seed"])):
                sums = {ph: {"turned_off": None, "revived": None, "permanent": 0} for ph in bounds}
                for m, shift in (("turned_off", W), ("revived", 0)):
                    col = nc.variables[m][i, j, :, l]
                    for t in range(len(steps)):
                        if col[t] is np.ma.masked:
                            continue
                        cell = sums[phase_of(bounds, steps[t] - shift)]
                        cell[m] = (cell[m] or 0) + int(col[t])
                snap = last_snapshot(nc, i, j)
                if snap is not None:
                    s_k, last = snap
                    for f in range(last.shape[1]):
                        if s_k - int(last[l, f]) >= W:
                            sums[phase_of(bounds, int(last[l, f]))]["permanent"] += 1
                for ph in bounds:
                    c = sums[ph]
                    to = math.nan if c["turned_off"] is None else float(c["turned_off"])
                    rv = math.nan if c["revived"] is None else float(c["revived"])
                    pm_ = math.nan if snap is None or math.isnan(to) else float(c["permanent"])
                    for m, v in (("turned_off", to), ("revived", rv), ("permanent", pm_),
                                 ("transient", to - pm_)):
                        per[ph][m].append(v)
                dead = np.ma.masked_invalid(nc.variables["dead_frac"][i, j, :, l]).compressed()
                ends.append(float(dead[-1]) * F if len(dead) else math.nan)
                if snap is not None and len(dead) and snap[0] == len(dead) - 1:
                    total = sum(per[ph]["permanent"][-1] for ph in bounds)
                    same(total, ends[-1], f"permanent deaths = units off at the end {size} {l} seed {j}")
            for ph in bounds:
                cell = {m: mean_std(v) for m, v in per[ph].items()}
                for m in T2:
                    cell[m + "_pct"] = mean_std([x / F * 100 for x in per[ph][m]])
                cell["off_at_end"] = mean_std(ends)
                cell["off_at_end_pct"] = mean_std([x / F * 100 for x in ends])
                rows[(str(size), l, ph)] = cell
    return rows


def expected_deaths(nc):
    """Death events per (size, layer, phase of the last firing) from the snapshot
    groups, by class: off iff step - last_fire >= W; an event is off now and not
    off at the previous snapshot; permanent if off at every later snapshot;
    classes by the drift/sudden rule of docs/analysis.md."""
    W = int(config(nc)["dead_window"])
    bounds = phase_bounds(nc)
    out = {}
    for i, size in enumerate(nc.variables["size"][:]):
        for j in range(len(nc.dimensions["seed"])):
            name = str(nc.variables["run_group"][i, j])
            if name not in nc.groups:
                continue
            g = nc.groups[name]
            # slots without a record hold the int64 fill in snapshot_step: skip them
            rec = [k for k, s in enumerate(g.variables["snapshot_step"][:]) if int(s) >= 0]
            snap = [int(g.variables["snapshot_step"][k]) for k in rec]
            tok = [int(g.variables["tokens_since"][k]) for k in rec]
            for l in range(int(nc.variables["n_layer"][i])):
                last = np.asarray(g.variables["last_fire"][:, l, :])[rec]
                fires = np.asarray(g.variables["fires_since"][:, l, :])[rec]
                for f in range(last.shape[1]):
                    was_off = False
                    offs = [s - int(last[k, f]) >= W for k, s in enumerate(snap)]
                    for k, s in enumerate(snap):
                        if offs[k] and not was_off:
                            t = int(last[k, f])
                            cls = classify([fires[x, f] / tok[x] for x in range(len(snap))], snap, t)
                            key = (str(size), l, phase_of(bounds, t))
                            cell = out.setdefault(key, {"sudden": 0, "drift": 0, "na": 0,
                                                        "permanent": 0})
                            cell[cls] += 1
                            cell["permanent"] += all(offs[k:])
                        was_off = offs[k]
    return out


def classify(freq, snap, t):
    kf = next(k for k, s in enumerate(snap) if s >= t)    # interval of the last firing
    if kf < 3 or freq[kf - 3] <= 0:
        return "na"
    return "sudden" if freq[kf - 1] >= 0.5 * freq[kf - 3] else "drift"


# ---------------------------------------------------------------- the report

def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Tables(HTMLParser):
    """Text of every cell of every <table id=...> and the <img>/<figcaption> of the page."""
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.captions = {}, [], []
        self.cur, self.row, self.cell, self.cap = None, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "id" in a:
            self.cur = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self.cur is not None:
            self.row = []
        elif tag == "td" and self.row is not None:
            self.cell = ""
        elif tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag == "figcaption":
            self.cap = ""

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.row.append(self.cell.strip()); self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row:
                self.cur.append(self.row)
            self.row = None
        elif tag == "table":
            self.cur = None
        elif tag == "figcaption":
            self.captions.append(self.cap.strip()); self.cap = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.cap is not None:
            self.cap += data


def shown(text, mean, std, digits, what):
    """A 'mean ± std' cell equals the values to its shown precision."""
    global checked
    tol = 0.5 * 10 ** -digits + 1e-9
    if math.isnan(mean):
        if text != "n/a":
            fail(f"{what}: page shows {text!r}, expected n/a")
        return
    m = re.fullmatch(r"(-?[\d.]+) ± (n/a|-?[\d.]+)", text)
    if not m:
        fail(f"{what}: cell {text!r} is not 'mean ± std'")
    if abs(float(m.group(1)) - mean) > tol:
        fail(f"{what}: page mean {m.group(1)} != file {mean!r}")
    if (m.group(2) == "n/a") != math.isnan(std) or \
            (m.group(2) != "n/a" and abs(float(m.group(2)) - std) > tol):
        fail(f"{what}: page std {m.group(2)} != file {std!r}")
    checked += 1


def png_dpi(b):
    """The resolution a PNG's pHYs chunk states (dots per inch, rounded), or None."""
    at = 8
    while at + 8 <= len(b):
        n, kind = struct.unpack(">I4s", b[at:at + 8])
        if kind == b"pHYs":
            ppm, _, unit = struct.unpack(">IIB", b[at + 8:at + 17])
            return round(ppm * 0.0254) if unit == 1 else None
        at += 12 + n
    return None


def check_files(rep, page):
    for name in FIGURES:
        path = os.path.join(rep, name + ".png")
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n" or os.path.getsize(path) < 2000:
                fail(f"{path}: not a PNG figure")
            f.seek(0)
            if png_dpi(f.read()) != 150:
                fail(f"{path}: not a 150 dpi figure")
        with open(os.path.join(rep, name + ".pdf"), "rb") as f:
            if f.read(5) != b"%PDF-":
                fail(f"{name}.pdf: not a PDF (every figure is also written as vector graphics)")
        if name + ".png" not in page.imgs:
            fail(f"{name}.png is not shown on the page")
    if len(page.captions) != len(page.imgs) or any(len(c) < 30 for c in page.captions):
        fail("every figure needs a caption sentence")
    for name in ("table1.csv", "table1_heldout.csv", "table2.csv", "table3_deaths.csv"):
        if not os.path.isfile(os.path.join(rep, name)):
            fail(f"{name} missing")


def check_table1(nc, rep, page, heldout=False):
    exp = expected_table1(nc, heldout)
    if heldout:     # no held-out series: every cell NaN, no row
        exp = {k: v for k, v in exp.items() if v["batch_use"][2] > 0}
    name = "table1_heldout" if heldout else "table1"
    got = read_csv(os.path.join(rep, name + ".csv"))
    html_rows = page.tables.get(name, [])
    if len(got) != len(exp) or len(html_rows) != len(exp):
        fail(f"table 1: {len(got)} CSV rows, {len(html_rows)} page rows, {len(exp)} (size, layer) pairs")
    for row, cells in zip(got, html_rows):
        key = (row["size"], int(row["layer"]))
        if key not in exp or cells[:2] != [key[0], str(key[1])]:
            fail(f"table 1: unexpected row {key} / {cells[:2]}")
        same(float(row["n_seeds"]), float(exp[key]["batch_use"][2]), f"table1 {key} seeds")
        for c, (m, _, digits) in enumerate(T1):
            mean, std, _ = exp[key][m]
            same(float(row[m + "_mean"]), mean, f"table1 {key} {m} mean")
            same(float(row[m + "_std"]), std, f"table1 {key} {m} std")
            shown(cells[3 + c], mean, std, digits, f"{name} page {key} {m}")


def check_table2(nc, rep, page):
    exp = expected_table2(nc)
    got = read_csv(os.path.join(rep, "table2.csv"))
    if len(got) != len(exp):
        fail(f"table 2: {len(got)} CSV rows for {len(exp)} cells")
    names = T2 + [m + "_pct" for m in T2] + ["off_at_end", "off_at_end_pct"]
    for row in got:
        key = (row["size"], int(row["layer"]), row["phase"])
        same(float(row["n_seeds"]), float(exp[key]["turned_off"][2]), f"table2 {key} seeds")
        for m in names:
            same(float(row[m + "_mean"]), exp[key][m][0], f"table2 {key} {m} mean")
            same(float(row[m + "_std"]), exp[key][m][1], f"table2 {key} {m} std")
    for ident, pct, digits in (("table2", "", 1), ("table2_pct", "_pct", 2)):
        html_rows = page.tables.get(ident, [])
        if len(html_rows) * 4 != len(exp):
            fail(f"{ident}: {len(html_rows)} page rows for {len(exp)} cells")
        for cells in html_rows:
            for p, ph in enumerate(PHASES):
                for k, m in enumerate(T2):
                    mean, std, _ = exp[(cells[0], int(cells[1]), ph)][m + pct]
                    shown(cells[3 + len(T2) * p + k], mean, std, digits,
                          f"{ident} page {cells[:2]} {ph} {m}")
            mean, std, _ = exp[(cells[0], int(cells[1]), "late")]["off_at_end" + pct]
            shown(cells[3 + 4 * len(T2)], mean, std, digits, f"{ident} page {cells[:2]} off at end")


def check_table3(nc, rep):
    exp = expected_deaths(nc)
    for row in read_csv(os.path.join(rep, "table3_deaths.csv")):
        key = (row["size"], int(row["layer"]), row["phase"])
        want = exp.get(key, {"sudden": 0, "drift": 0, "na": 0, "permanent": 0})
        for c in ("sudden", "drift", "na", "permanent"):
            same(float(row[c]), float(want[c]), f"table3 {key} {c}")
        deaths = want["sudden"] + want["drift"] + want["na"]
        same(float(row["deaths"]), float(deaths), f"table3 {key} deaths")
        same(float(row["transient"]), float(deaths - want["permanent"]), f"table3 {key} transient")


def main():
    ds_path, rep = sys.argv[1], sys.argv[2]
    page = Tables()
    with open(os.path.join(rep, "index.html"), encoding="utf-8") as f:
        page.feed(f.read())
    check_files(rep, page)
    with open(os.path.join(rep, "index.html"), encoding="utf-8") as f:
        if "could not be made" in f.read():
            fail("the page reports an item that could not be made")
    with netCDF4.Dataset(ds_path) as nc:
        check_table1(nc, rep, page)
        check_table1(nc, rep, page, heldout=True)
        check_table2(nc, rep, page)
        check_table3(nc, rep)
    print(f"check_report: {checked} numbers equal, {len(page.imgs)} figures: {rep}")


if __name__ == "__main__":
    main()
