"""Table 1 (usage at the end of training) and Table 2 (units turning off and
reviving per phase), as lists of row dicts and as CSV files.

Both are mean +- std over the seeds that have data for the cell; std is the
sample standard deviation (ddof = 1), NaN ("n/a") with a single seed.
docs/analysis.md gives the exact definitions; tests/t_report.sh recomputes
every number from the file independently.
"""
import csv
import math
import os

import numpy as np

from load import end_window, phases

END_FRACTION = 0.05   # Table 1 averages the last 5% of each run's recorded steps
TABLE1_METRICS = [("token_use", "token usage (%)"), ("seq_use", "sequence usage (%)"),
                  ("batch_use", "batch usage (%)"), ("seq_over_token", "seq / token"),
                  ("batch_over_seq", "batch / seq")]
TABLE1_SOURCES = {"token_use": "token_use_mean", "seq_use": "seq_use_mean",
                  "batch_use": "batch_use"}
TABLE2_METRICS = [("turned_off", "turned off"), ("revived", "revived")]


def mean_std(values):
    """(n, mean, sample std) of the finite values; std NaN when n < 2."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return 0, math.nan, math.nan
    return len(v), float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


def end_mean(series):
    """Mean of the last max(1, ceil(5% of n)) of the n finite values of a series."""
    v = series[np.isfinite(series)]
    k = end_window(len(v), END_FRACTION)
    return float(v[-k:].mean()) if k else math.nan


def _ratio(a, b):
    return a / b if np.isfinite(a) and np.isfinite(b) and b != 0 else math.nan


def _end_usage(data, i, j, l):
    """Table 1's five numbers for one run and layer (percent and ratios)."""
    u = {m: end_mean(data.run(v, i, j)[:, l]) * 100 if data.has(v) else math.nan
         for m, v in TABLE1_SOURCES.items()}
    u["seq_over_token"] = _ratio(u["seq_use"], u["token_use"])
    u["batch_over_seq"] = _ratio(u["batch_use"], u["seq_use"])
    return u


def table1(data):
    """One row per (size, layer): mean and std over seeds of each Table 1 metric."""
    rows = []
    for i, size in enumerate(data.sizes):
        for l in range(data.n_layer[i]):
            per_seed = [_end_usage(data, i, j, l) for j in range(len(data.seeds))]
            row = {"size": size, "layer": l}
            for m, _ in TABLE1_METRICS:
                n, row[m + "_mean"], row[m + "_std"] = mean_std([u[m] for u in per_seed])
                row["n_seeds"] = max(row.get("n_seeds", 0), n)
            if row["n_seeds"]:
                rows.append(row)
    return rows


def _phase_sum(series, steps, start, end):
    """Sum of the finite values at steps in [start, end); NaN if there are none."""
    v = series[(steps >= start) & (steps < end) & np.isfinite(series)]
    return float(v.sum()) if len(v) else math.nan


def table2(data):
    """One row per (size, layer, phase): turned_off and revived summed over the
    phase's steps, mean and std over the seeds with steps in the phase."""
    rows = []
    steps = np.asarray(data.ds["step"].values)
    for i, size in enumerate(data.sizes):
        for l in range(data.n_layer[i]):
            for name, start, end in phases(data.warmup, data.steps_planned):
                row = {"size": size, "layer": l, "phase": name, "first_step": start,
                       "end_step": end, "n_seeds": 0}
                for m, _ in TABLE2_METRICS:
                    sums = [_phase_sum(data.run(m, i, j)[:, l], steps, start, end)
                            if data.has(m) else math.nan for j in range(len(data.seeds))]
                    n, row[m + "_mean"], row[m + "_std"] = mean_std(sums)
                    row["n_seeds"] = max(row["n_seeds"], n)
                rows.append(row)
    return rows


def write_csv(rows, path, columns):
    """Rows as CSV with full float precision (repr), NaN written as 'nan'."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    return os.path.basename(path)


def table1_columns():
    return ["size", "layer", "n_seeds"] + [m + s for m, _ in TABLE1_METRICS for s in ("_mean", "_std")]


def table2_columns():
    return ["size", "layer", "phase", "first_step", "end_step", "n_seeds"] + \
        [m + s for m, _ in TABLE2_METRICS for s in ("_mean", "_std")]
