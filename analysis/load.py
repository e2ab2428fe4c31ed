"""Reading a reluscope dataset (docs/dataset.md) for the report.

The root group is read whole with xarray, which turns every _FillValue into
NaN: a size with fewer layers, a run that stopped early, or a series that was
never written are all NaN here, and every later step treats NaN as "no data".
Snapshot groups are opened one run at a time because they are the large part
of a dataset (snapshots x layers x units per run).
"""
import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr


UNUSED = ["eval_token_use_q", "eval_seq_use_q", "singular_values"]


@dataclass
class Data:
    """The dataset and the facts every figure and table needs."""
    path: str
    ds: xr.Dataset
    config: dict
    sizes: list            # size names, in the dataset's order
    seeds: list            # seed values (int), in the dataset's order
    n_layer: list          # layers per size (from n_layer, else the non-NaN layers)
    n_hidden: list         # F per size (None if unknown)
    steps_planned: int     # the config's `steps` (the schedule's length)
    warmup: int            # the config's `warmup_steps`
    dead_window: int       # the config's `dead_window` (None if unknown)
    snapshot_every: int    # the config's `snapshot_every` (0: no snapshots)
    notes: list = field(default_factory=list)   # problems shown on the page

    def has(self, name):
        return name in self.ds.variables

    def run(self, name, i, j):
        """Variable `name` of size i, seed j as a float array (NaN = no data)."""
        return np.asarray(self.ds[name].isel(size=i, seed=j).values, dtype=float)


def parse_config(text):
    """The `key = value` lines of the config attribute as a dict of strings."""
    conf = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        conf[key.strip()] = value.strip().strip('"')
    return conf


def _int(conf, key, default):
    try:
        return int(conf[key])
    except (KeyError, ValueError):
        return default


def _per_size_int(ds, name):
    """An integer per size (None where it is missing or fill)."""
    if name not in ds.variables:
        return [None] * ds.sizes["size"]
    return [int(v) if np.isfinite(v) else None for v in ds[name].values.astype(float)]


def _layers_of(ds, i):
    """Layers of size i: n_layer if stored, else the layers with any data."""
    if "n_layer" in ds.variables and np.isfinite(float(ds["n_layer"][i])):
        return int(ds["n_layer"][i])
    if "batch_use" in ds.variables:
        per_layer = ds["batch_use"].isel(size=i).notnull().any(dim=("seed", "step"))
        return int(per_layer.values.sum())
    return 0


def open_data(path):
    """Open the dataset at `path`; raises OSError/ValueError if it is not one."""
    # load() now: every series is used several times, and reading once keeps the
    # report consistent even if a live writer swaps in a newer file meanwhile.
    # The report does not use the largest held-out variables: not read at all.
    ds = xr.open_dataset(path, engine="netcdf4", drop_variables=UNUSED).load()
    missing = [d for d in ("size", "seed", "step", "layer") if d not in ds.variables]
    if missing:
        raise ValueError(f"no {', '.join(missing)} coordinate: not written by reluscope")
    conf = parse_config(ds.attrs.get("config", ""))
    steps = _int(conf, "steps", int(ds.attrs.get("steps", ds.sizes.get("step", 0))))
    data = Data(path=path, ds=ds, config=conf,
                sizes=[str(s) for s in ds["size"].values],
                seeds=[int(s) for s in ds["seed"].values],
                n_layer=[_layers_of(ds, i) for i in range(ds.sizes["size"])],
                n_hidden=_per_size_int(ds, "n_hidden"),
                steps_planned=steps,
                warmup=_int(conf, "warmup_steps", 0),
                dead_window=_int(conf, "dead_window", None),
                snapshot_every=_int(conf, "snapshot_every",
                                    int(ds.attrs.get("snapshot_every", 0))))
    if not conf:
        data.notes.append("the dataset has no config attribute: warmup taken as 0 steps")
    data.notes.extend(_unfinished(data))
    return data


def _unfinished(data):
    """A note for every run that recorded fewer steps than the schedule plans."""
    notes = []
    for i, size in enumerate(data.sizes):
        for j, seed in enumerate(data.seeds):
            n = recorded_steps(data, i, j)
            if n == 0:
                notes.append(f"run {size} seed {seed} has no data in this dataset (a task "
                             "missing from a merge, or not started): left out everywhere")
            elif n < data.steps_planned:
                notes.append(f"run {size} seed {seed} is unfinished ({n} of {data.steps_planned} "
                             "steps recorded): its end-of-training values are those of its last steps")
    return notes


def recorded_steps(data, i, j):
    """Steps recorded for size i, seed j (the finite values of `loss`)."""
    if not data.has("loss"):
        return 0
    return int(np.isfinite(data.run("loss", i, j)).sum())


def end_window(n_recorded, fraction):
    """Length k of the end-of-training window: the last k recorded steps."""
    return max(1, math.ceil(fraction * n_recorded)) if n_recorded > 0 else 0


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


def run_group(data, i, j):
    """The snapshot group of size i, seed j as an xarray Dataset, or None."""
    name = ""
    if data.has("run_group"):
        name = str(data.ds["run_group"].values[i, j] or "")
    if not name:
        name = f"run_{data.sizes[i]}_seed{data.seeds[j]}"
    try:
        return xr.open_dataset(data.path, group=name, engine="netcdf4")
    except (OSError, KeyError, ValueError):
        return None
