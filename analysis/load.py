"""Reading a reluscope dataset (docs/dataset.md).

open_dataset() gives the tidy root group, read lazily: nothing but the
coordinates is read until a figure or table asks for a slice, so a file of
10^5 steps x 30 runs does not load whole to draw one figure. xarray turns
every _FillValue into NaN: a size with fewer layers, a run that stopped
early, or a series never written are NaN, and everything downstream treats
NaN as "no data". Snapshot groups (the large part of a dataset) are opened
one run at a time, or stacked lazily by snapshots().
"""
import json
import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

EVAL_DIM = "eval_step"          # the tidy held-out axis: indexed by training step
SNAP_DIM = "snapshot_step"      # the tidy snapshot axis: indexed by training step


# ---------------------------------------------------------------- config

def _value(text):
    """A config value as int, float or string (quotes removed)."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip('"')


def parse_config(text):
    """The config attribute as a dict: JSON if it is JSON (`reluscope plan
    --json`), else the printed `key = value` lines (docs/config.md). Numbers
    become int/float, everything else stays a string. The one config parser
    of the analysis."""
    text = text or ""
    if text.lstrip().startswith("{"):
        obj = json.loads(text)
        return obj["config"] if isinstance(obj.get("config"), dict) else obj
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        conf[key.strip()] = _value(value)
    return conf


def _int(conf, key, default):
    try:
        return int(conf[key])
    except (KeyError, ValueError, TypeError):
        return default


# ---------------------------------------------------------------- the root group

def _tidy_eval(ds):
    """The held-out dimension indexed by step (eval_step), slots without a
    record (their step is the int64 fill) dropped. Takes the step from
    `eval_step`, or from an `eval` coordinate variable holding steps."""
    if "eval" not in ds.dims:
        return ds
    if "eval_step" not in ds.variables and "eval" in ds.variables:
        return ds.rename({"eval": EVAL_DIM})
    steps = np.asarray(ds["eval_step"].values)
    ds = ds.isel(eval=np.nonzero(steps >= 0)[0])
    if "eval" in ds.variables:            # a coordinate variable of the index itself
        ds = ds.drop_vars("eval")
    ds = ds.swap_dims(eval=EVAL_DIM)
    if ds.sizes[EVAL_DIM] == 0:     # val_data = "": no evaluation, no held-out variables
        ds = ds.drop_vars([v for v in ds.variables if EVAL_DIM in ds[v].dims])
    return ds


def open_dataset(path):
    """The root group of a reluscope dataset as a tidy, lazily read Dataset.

    - dims size, seed, step, layer, quantile and eval_step (the held-out
      evaluations, indexed by their training step), sv; without any
      evaluation (val_data = "") the held-out variables are left out;
    - ds.attrs["config"]: the config as a dict (text in "config_text");
    - ds.attrs["dead_window"], ["warmup_steps"], ["steps_planned"],
      ["batch_size"]: the facts the tables need, as ints.
    Raises OSError/ValueError if the file is not a reluscope dataset.
    """
    # cache=False: a value read for one figure is not kept in the Dataset afterwards
    ds = xr.open_dataset(path, engine="netcdf4", cache=False)
    missing = [d for d in ("size", "seed", "step", "layer") if d not in ds.variables]
    if missing:
        ds.close()
        raise ValueError(f"no {', '.join(missing)} coordinate: not written by reluscope")
    text = ds.attrs.get("config", "")
    conf = parse_config(text)
    ds = _tidy_eval(ds)
    ds.attrs.update({
        "config_text": text, "config": conf,
        "steps_planned": _int(conf, "steps", int(ds.attrs.get("steps", ds.sizes["step"]))),
        "warmup_steps": _int(conf, "warmup_steps", 0),
        "dead_window": _int(conf, "dead_window", 0),
        "batch_size": _int(conf, "batch_size", 0),
        "snapshot_every": _int(conf, "snapshot_every", int(ds.attrs.get("snapshot_every", 0)))})
    ds.encoding["source"] = path
    return ds


def n_layers(ds):
    """Layers of each size: n_layer if stored, else the layers with any data."""
    if "n_layer" in ds.variables:
        v = ds["n_layer"].values.astype(float)
        if np.isfinite(v).all():
            return [int(x) for x in v]
    if "batch_use" in ds.variables:
        return [int(x) for x in ds["batch_use"].notnull().any(("seed", "step")).sum("layer").values]
    return [0] * ds.sizes["size"]


def per_size(ds, name):
    """An integer per size (None where it is missing or fill)."""
    if name not in ds.variables:
        return [None] * ds.sizes["size"]
    return [int(v) if np.isfinite(v) else None for v in ds[name].values.astype(float)]


def recorded(ds):
    """Steps recorded per run, (size, seed): the finite values of `loss`."""
    if "loss" not in ds.variables:
        return xr.zeros_like(ds["size"], dtype=int) * xr.zeros_like(ds["seed"], dtype=int)
    return ds["loss"].notnull().sum("step")


def batch_tokens(ds):
    """Per size: (training batch tokens B*T, held-out tokens) as ints (0 unknown)."""
    T = per_size(ds, "n_ctx")
    B = ds.attrs.get("batch_size", 0)
    held = [0] * ds.sizes["size"]
    if "eval_tokens" in ds.variables and ds.sizes.get(EVAL_DIM, 0) > 0:
        held = [int(v) if np.isfinite(v) else 0
                for v in ds["eval_tokens"].max(("seed", EVAL_DIM)).values.astype(float)]
    return [(B * t if t else 0, h) for t, h in zip(T, held)]


def phases(warmup, steps):
    """(name, first step, end step exclusive) of the four phases of training.

    Warmup is steps < warmup_steps; the rest of the schedule, R = steps -
    warmup, is cut into thirds at warmup + floor(R/3) and warmup + floor(2R/3).
    Phases come from the planned schedule, not from what a run recorded, so a
    run that stopped early simply has fewer (or no) steps in the late phase.
    """
    rest = max(0, steps - warmup)
    cuts = [0, warmup, warmup + rest // 3, warmup + (2 * rest) // 3, max(steps, warmup)]
    names = ["warmup", "early", "middle", "late"]
    return [(names[k], cuts[k], cuts[k + 1]) for k in range(4)]


def end_window(n_recorded, fraction):
    """Length k of the end-of-training window: the last k recorded values."""
    return max(1, math.ceil(fraction * n_recorded)) if n_recorded > 0 else 0


# ---------------------------------------------------------------- snapshot groups

def group_name(ds, i, j):
    """The snapshot group of size index i, seed index j ("" if none is named)."""
    name = ""
    if "run_group" in ds.variables:
        name = str(ds["run_group"].values[i, j] or "")
    return name or f"run_{ds['size'].values[i]}_seed{int(ds['seed'].values[j])}"


def open_group(path, name):
    """One run's snapshot group, tidy (indexed by snapshot_step, written slots
    only), lazily read; None if the file has no such group."""
    try:
        g = xr.open_dataset(path, group=name, engine="netcdf4")
    except (OSError, KeyError, ValueError):
        return None
    steps = np.asarray(g["snapshot_step"].values)
    return g.isel(snapshot=np.nonzero(steps >= 0)[0]).swap_dims(snapshot=SNAP_DIM)


def snapshots(path, variables=None):
    """Every run's snapshot group stacked as (size, seed, snapshot_step, layer,
    unit), NaN-padded where sizes differ in L or F, or runs in their snapshot
    steps. With dask installed the result stays lazy (chunks = one snapshot of
    one run); without it, pass `variables` to read only what you need."""
    ds = open_dataset(path)
    sizes, seeds = [str(s) for s in ds["size"].values], [int(s) for s in ds["seed"].values]
    names = [[group_name(ds, i, j) for j in range(len(seeds))] for i in range(len(sizes))]
    ds.close()
    try:
        import dask  # noqa: F401
        chunks = {}
    except ImportError:
        chunks = None
    per_size_ = []
    for i, size in enumerate(sizes):
        runs = []
        for j, seed in enumerate(seeds):
            try:
                g = xr.open_dataset(path, group=names[i][j], engine="netcdf4", chunks=chunks)
            except (OSError, KeyError, ValueError):
                continue
            steps = np.asarray(g["snapshot_step"].values)
            g = g.isel(snapshot=np.nonzero(steps >= 0)[0]).swap_dims(snapshot=SNAP_DIM)
            if variables is not None:
                g = g[list(variables)]
            runs.append(g.expand_dims(size=[size], seed=[seed]))
        if runs:
            per_size_.append(xr.concat(runs, dim="seed", join="outer"))
    if not per_size_:
        raise ValueError(f"{path}: no snapshot groups")
    return xr.concat(per_size_, dim="size", join="outer")


# ---------------------------------------------------------------- the report's view

@dataclass
class Data:
    """The tidy dataset and the per-size facts every figure and table needs."""
    path: str
    ds: xr.Dataset
    sizes: list            # size names, in the dataset's order
    seeds: list            # seed values (int)
    n_layer: list          # layers per size
    n_hidden: list         # F per size (None if unknown)
    tokens: list           # per size: (training batch tokens, held-out tokens)
    notes: list = field(default_factory=list)   # problems shown on the page

    @property
    def config(self):
        return self.ds.attrs["config"]

    @property
    def steps_planned(self):
        return self.ds.attrs["steps_planned"]

    @property
    def warmup(self):
        return self.ds.attrs["warmup_steps"]

    @property
    def dead_window(self):
        return self.ds.attrs["dead_window"]

    @property
    def snapshot_every(self):
        return self.ds.attrs["snapshot_every"]

    @property
    def lmax(self):
        return max(self.n_layer + [1])

    def has(self, name):
        return name in self.ds.variables

    def run(self, name, i, j):
        """Variable `name` of size i, seed j as a float array (NaN = no data)."""
        return np.asarray(self.ds[name].isel(size=i, seed=j).values, dtype=float)


def open_data(path):
    """The report's view of the dataset at `path` (raises if it is not one)."""
    ds = open_dataset(path)
    data = Data(path=path, ds=ds, sizes=[str(s) for s in ds["size"].values],
                seeds=[int(s) for s in ds["seed"].values], n_layer=n_layers(ds),
                n_hidden=per_size(ds, "n_hidden"), tokens=batch_tokens(ds))
    if not data.config:
        data.notes.append("the dataset has no config attribute: warmup taken as 0 steps")
    data.notes.extend(_unfinished(data))
    return data


def _unfinished(data):
    """A note for every run that recorded fewer steps than the schedule plans."""
    notes = []
    n = recorded(data.ds).values
    for i, size in enumerate(data.sizes):
        for j, seed in enumerate(data.seeds):
            if n[i, j] == 0:
                notes.append(f"run {size} seed {seed} has no data in this dataset (a task "
                             "missing from a merge, or not started): left out everywhere")
            elif n[i, j] < data.steps_planned:
                notes.append(f"run {size} seed {seed} is unfinished ({n[i, j]} of "
                             f"{data.steps_planned} steps recorded): its end-of-training values "
                             "are those of its last steps")
    return notes


def run_group(data, i, j):
    """The snapshot group of size i, seed j (tidy), or None."""
    return open_group(data.path, group_name(data.ds, i, j))
