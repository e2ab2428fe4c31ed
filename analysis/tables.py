"""Table 1 (usage at the end of training) and Table 2 (units turning off and
reviving per phase) as pandas DataFrames, from the tidy dataset of
load.open_dataset; CSV writing.

Every cell is mean +- std over the seeds that have data for it; std is the
sample standard deviation (ddof = 1), NaN with a single seed. docs/analysis.md
gives the exact definitions; tests/report/check_report.py recomputes every
number from the file independently.
"""
import csv
import os
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .load import EVAL_DIM, SNAP_DIM, group_name, n_layers, open_group, phases, per_size

END_FRACTION = 0.05   # Table 1 averages the last 5% of each run's recorded steps
TABLE1_METRICS = [("token_use", "token usage (%)"), ("seq_use", "sequence usage (%)"),
                  ("batch_use", "batch usage (%)"), ("seq_over_token", "seq / token"),
                  ("batch_over_seq", "batch / seq")]
TABLE1_SOURCES = {"train": ("step", {"token_use": "token_use_mean", "seq_use": "seq_use_mean",
                                     "batch_use": "batch_use"}),
                  "heldout": (EVAL_DIM, {"token_use": "eval_token_use_mean",
                                         "seq_use": "eval_seq_use_mean",
                                         "batch_use": "eval_batch_use"})}
TABLE2_METRICS = [("turned_off", "turned off"), ("revived", "revived"),
                  ("permanent", "permanent"), ("transient", "transient")]


def _quiet():
    """Mean/std over all-NaN slices (no seed has data) are NaN by design."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", RuntimeWarning)
    return ctx


def _over_seeds(per_seed, names):
    """Dataset of NAME_mean, NAME_std (ddof 1) and n_seeds over the seed axis."""
    ctx = _quiet()
    try:
        out = xr.Dataset()
        for m in names:
            out[m + "_mean"] = per_seed[m].mean("seed")
            out[m + "_std"] = per_seed[m].std("seed", ddof=1)
        out["n_seeds"] = per_seed[names[0]].count("seed")
        return out
    finally:
        ctx.__exit__(None, None, None)


def end_mean(da, dim):
    """Mean of the last k = max(1, ceil(END_FRACTION * n)) of the n finite
    values along dim (NaN where n = 0)."""
    ok = da.notnull()
    k = np.maximum(1, np.ceil(END_FRACTION * ok.sum(dim)))
    from_end = ok.isel({dim: slice(None, None, -1)}).cumsum(dim).isel({dim: slice(None, None, -1)})
    return da.where(ok & (from_end <= k)).mean(dim)


def _frame(table, ds, keys, columns):
    """The (size, layer[, phase]) cells of `table` that exist, as a DataFrame."""
    df = table.to_dataframe().reset_index()
    L = dict(zip([str(s) for s in ds["size"].values], n_layers(ds)))
    df["size"] = df["size"].astype(str)
    df = df[df["layer"] < df["size"].map(L)]
    order = {s: k for k, s in enumerate(L)}
    df = df.sort_values(keys, key=lambda c: c.map(order) if c.name == "size" else c, kind="stable")
    return df[[c for c in columns if c in df.columns]].reset_index(drop=True)


def table1(ds, source="train"):
    """Usage at the end of training per (size, layer): the mean of the last 5%
    of each run's recorded values (steps for "train", evaluations for
    "heldout"), in %, and the ratios seq/token and batch/seq; mean, std and
    n_seeds over seeds. df.attrs["batch"] says which tokens it covers."""
    dim, sources = TABLE1_SOURCES[source]
    per_seed = xr.Dataset()
    for m, var in sources.items():
        if var in ds.variables:     # a size at a time: one size's series in memory at once
            per_seed[m] = xr.concat([end_mean(ds[var].isel(size=[i]), dim)
                                     for i in range(ds.sizes["size"])], dim="size") * 100
        else:
            per_seed[m] = xr.full_like(ds["batch_use"].isel(step=0, drop=True), np.nan)
    per_seed["seq_over_token"] = per_seed["seq_use"] / per_seed["token_use"].where(per_seed["token_use"] != 0)
    per_seed["batch_over_seq"] = per_seed["batch_use"] / per_seed["seq_use"].where(per_seed["seq_use"] != 0)
    table = _over_seeds(per_seed, [m for m, _ in TABLE1_METRICS])
    df = _frame(table, ds, ["size", "layer"], table1_columns())
    df = df[df["n_seeds"] > 0].reset_index(drop=True)
    df.attrs["batch"] = batch_text(ds, source)
    return df


def batch_text(ds, source):
    """Which tokens a usage number covers, in words."""
    from .load import batch_tokens
    toks = batch_tokens(ds)
    k = 0 if source == "train" else 1
    parts = sorted({t[k] for t in toks})
    n = " or ".join(f"{t:,}" for t in parts if t) or "an unknown number of"
    if source == "train":
        return f"the training batch of each step (B·T = {n} tokens)"
    return f"the fixed held-out batch (eval_tokens: {n} tokens, the same for every run)"


# ---------------------------------------------------------------- Table 2

def _phase_masks(steps, warmup, planned):
    """Per phase: a boolean DataArray over `steps` (a coordinate) of its members."""
    return [(name, a, b, (steps >= a) & (steps < b)) for name, a, b in phases(warmup, planned)]


def final_last_fire(ds, i, j):
    """(snapshot step, last_fire (layer, unit)) at the run's last snapshot, or None."""
    path = ds.encoding.get("source")
    g = open_group(path, group_name(ds, i, j)) if path else None
    if g is None or g.sizes.get(SNAP_DIM, 0) == 0:
        return None
    with g:
        last = g["last_fire"].isel({SNAP_DIM: -1})
        return int(last[SNAP_DIM]), last.load()


def permanent(ds, warmup, planned, W):
    """Units off at each run's last snapshot, by the phase of their last firing
    (never fired = step 0): (size, seed, layer, phase), NaN without a group."""
    L = max(n_layers(ds) + [1])
    names = [p[0] for p in phases(warmup, planned)]
    out = np.full((ds.sizes["size"], ds.sizes["seed"], ds.sizes["layer"], len(names)), np.nan)
    for i in range(ds.sizes["size"]):
        for j in range(ds.sizes["seed"]):
            got = final_last_fire(ds, i, j)
            if got is None:
                continue
            step, last = got
            off = (step - last) >= W
            t = np.maximum(last, 0)
            for p, (_, a, b) in enumerate(phases(warmup, planned)):
                out[i, j, :min(L, last.sizes["layer"]), p] = (off & (t >= a) & (t < b)).sum("unit").values[:L]
    return xr.DataArray(out, dims=("size", "seed", "layer", "phase"),
                        coords={"size": ds["size"], "seed": ds["seed"], "layer": ds["layer"],
                                "phase": names})


def per_seed_table2(ds):
    """Table 2 per run before the seed statistics: (size, seed, layer, phase)
    counts of turned_off by the phase of the units' last firing (step - W, never
    fired = step 0), revived by the phase of the step, permanent (off at the
    run's last snapshot) and transient (= turned off - permanent)."""
    W, warmup, planned = ds.attrs["dead_window"], ds.attrs["warmup_steps"], ds.attrs["steps_planned"]
    step = ds["step"]
    last_fire = np.maximum(step - W, 0)          # where each step's turned_off units last fired
    cols = {"turned_off": [], "revived": []}
    for name, a, b, _ in _phase_masks(step, warmup, planned):
        for m, at in (("turned_off", last_fire), ("revived", step)):
            if m in ds.variables:
                cols[m].append(ds[m].where((at >= a) & (at < b)).sum("step", min_count=1))
            else:
                cols[m].append(xr.full_like(ds["batch_use"].isel(step=0, drop=True), np.nan))
    names = [p[0] for p in phases(warmup, planned)]
    per_seed = xr.Dataset({m: xr.concat(v, dim=xr.DataArray(names, dims="phase", name="phase"))
                           for m, v in cols.items()})
    # a run counts in a phase only if it recorded steps there (as n_seeds says)
    per_seed["permanent"] = permanent(ds, warmup, planned, W).where(per_seed["turned_off"].notnull())
    per_seed["transient"] = per_seed["turned_off"] - per_seed["permanent"]
    return per_seed


def off_at_end(ds):
    """Units off at each run's last recorded step (dead_frac * F): (size, seed, layer)."""
    F = xr.DataArray([np.nan if f is None else f for f in per_size(ds, "n_hidden")], dims="size",
                     coords={"size": ds["size"]})
    df = ds["dead_frac"]
    ok = df.notnull()
    last = ok.isel(step=slice(None, None, -1)).cumsum("step").isel(step=slice(None, None, -1)) == 1
    return df.where(ok & last).sum("step", min_count=1) * F


def table2(ds):
    """Units turning off and reviving per (size, layer, phase): counts and % of
    F, mean, std and n_seeds over seeds; off_at_end per (size, layer) repeated
    on its phases. df.attrs["batch"] says which tokens the counts come from."""
    per_seed = per_seed_table2(ds)
    F = xr.DataArray([np.nan if f is None else f for f in per_size(ds, "n_hidden")], dims="size",
                     coords={"size": ds["size"]})
    names = [m for m, _ in TABLE2_METRICS]
    for m in names:
        per_seed[m + "_pct"] = per_seed[m] / F * 100
    end = off_at_end(ds) if "dead_frac" in ds.variables else per_seed["turned_off"].isel(phase=0) * np.nan
    per_seed["off_at_end"] = end.broadcast_like(per_seed["turned_off"])
    per_seed["off_at_end_pct"] = per_seed["off_at_end"] / F * 100
    stats = names + [m + "_pct" for m in names] + ["off_at_end", "off_at_end_pct"]
    table = _over_seeds(per_seed, stats)
    table["n_seeds"] = per_seed["turned_off"].count("seed")
    bounds = phases(ds.attrs["warmup_steps"], ds.attrs["steps_planned"])
    table = table.assign_coords(first_step=("phase", [a for _, a, _ in bounds]),
                                end_step=("phase", [b for _, _, b in bounds]))
    table["F"] = F
    df = _frame(table, ds, ["size", "layer"], table2_columns())
    df.attrs["batch"] = batch_text(ds, "train")
    return df


# ---------------------------------------------------------------- CSV

def write_csv(df, path, columns):
    """A DataFrame (or row dicts) as CSV with full float precision (repr), NaN as 'nan'."""
    rows = df.to_dict("records") if isinstance(df, pd.DataFrame) else df
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([repr(float(r[c])) if isinstance(r[c], (float, np.floating)) else
                        int(r[c]) if isinstance(r[c], (np.integer,)) else r[c] for c in columns])
    return os.path.basename(path)


def table1_columns():
    return ["size", "layer", "n_seeds"] + [m + s for m, _ in TABLE1_METRICS for s in ("_mean", "_std")]


def table2_columns():
    names = [m for m, _ in TABLE2_METRICS] + ["off_at_end"]
    return ["size", "layer", "phase", "first_step", "end_step", "n_seeds", "F"] + \
        [m + p + s for m in names for p in ("", "_pct") for s in ("_mean", "_std")]
