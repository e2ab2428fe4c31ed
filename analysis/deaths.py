"""Death events of units, found in the per-unit snapshot groups, and the rule
that calls each one gradual (drift) or sudden. docs/analysis.md states the
rules; the constants below are the ones it quotes.

A unit is off at a snapshot at step s when s - last_fire >= dead_window (the
tracker's own rule, docs/metrics.md). A death event is a unit that is off at
snapshot k and was not off at snapshot k - 1 (every unit counts as on before
the first snapshot). An event is placed at the unit's last firing step
(last_fire; a unit that never fired at step 0), not at the step the tracker
detected it (last_fire + dead_window). It is permanent if the unit stays off
through the run's last snapshot, transient if it fires again.
"""
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .load import SNAP_DIM, phases, run_group

CLASSES = ("sudden", "drift", "n/a")
LOOKBACK = 3        # M: the reference interval lies M intervals before the last-firing one
SUDDEN_KEEP = 0.5   # sudden: rate just before the last-firing interval >= 50% of the reference
ALIGN = 8           # snapshot intervals before the last-firing one shown in the aligned figure
TRACES = ("freq", "premax", "b_in")


@dataclass
class Events:
    """Death events of one size, pooled over seeds (one entry per event)."""
    layer: np.ndarray
    seed: np.ndarray
    last_fire: np.ndarray    # step of the unit's last firing (0 if it never fired)
    permanent: np.ndarray    # bool: still off at the run's last snapshot
    cls: np.ndarray          # index into CLASSES
    traces: dict             # name -> (events, ALIGN + 1): intervals kf-ALIGN .. kf


FIELDS = ("layer", "seed", "last_fire", "permanent", "cls")


def _empty():
    z = np.zeros(0)
    return Events(z.astype(int), z.astype(int), z, z.astype(bool), z.astype(int),
                  {t: np.zeros((0, ALIGN + 1)) for t in TRACES})


def classify(freq, kf):
    """Class index of each event from its firing-rate history.

    freq: (snapshots, events) firing rate of each event's unit; kf: the
    snapshot interval holding its last firing. With ref = rate in interval
    kf - LOOKBACK and prev = rate in interval kf - 1: sudden iff ref > 0 and
    prev >= SUDDEN_KEEP * ref (the rate had not yet fallen to half before the
    interval in which the unit went silent); drift iff ref > 0 and prev is
    below that; n/a when there are fewer than LOOKBACK intervals of history or
    the reference rate is 0 (nothing to decline from).
    """
    ok = kf - LOOKBACK >= 0
    cols = np.arange(freq.shape[1])
    ref = np.where(ok, freq[np.maximum(kf - LOOKBACK, 0), cols], np.nan)
    prev = np.where(ok, freq[np.maximum(kf - 1, 0), cols], np.nan)
    with np.errstate(invalid="ignore"):
        measurable = ok & (ref > 0)
        sudden = measurable & (prev >= SUDDEN_KEEP * ref)
    return np.where(sudden, 0, np.where(measurable, 1, 2))


def _aligned(values, k):
    """values[(k + j), event] for j = -ALIGN..0, NaN outside the snapshots."""
    idx = k[:, None] + np.arange(-ALIGN, 1)[None, :]
    cols = np.arange(len(k))[:, None]
    inside = (idx >= 0) & (idx < values.shape[0])
    return np.where(inside, values[np.clip(idx, 0, values.shape[0] - 1), cols], np.nan)


def _layer(g, name, l):
    return g[name].isel(layer=l).transpose(SNAP_DIM, "unit").values


def layer_events(g, l, dead_window):
    """Death events of layer l of one run's tidy snapshot group g."""
    steps = np.asarray(g[SNAP_DIM].values, dtype=float)
    last = _layer(g, "last_fire", l).astype(float)
    off = np.isfinite(last) & (steps[:, None] - last >= dead_window)
    was_off = np.vstack([np.zeros((1, off.shape[1]), bool), off[:-1]])
    # stays_off[k, u]: off at k and at every later snapshot
    stays_off = np.flip(np.cumprod(np.flip(off, 0), axis=0), 0).astype(bool)
    k, unit = np.nonzero(off & ~was_off)
    tokens = np.asarray(g["tokens_since"].values, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = _layer(g, "fires_since", l) / tokens[:, None]
    t = last[k, unit]
    kf = np.searchsorted(steps, t, side="left")     # the interval holding the last firing
    traces = {"freq": freq[:, unit]}
    for name in ("premax", "b_in"):
        traces[name] = _layer(g, name, l)[:, unit] if name in g else \
            np.full((len(steps), len(unit)), np.nan)
    return (np.maximum(t, 0), stays_off[k, unit], classify(traces["freq"], kf),
            {n: _aligned(v.astype(float), kf) for n, v in traces.items()})


def size_events(data, i, notes):
    """Events of every seed of size i; missing groups are noted, not fatal."""
    parts = []
    for j, seed in enumerate(data.seeds):
        g = run_group(data, i, j)
        if g is None:
            notes.append(f"no snapshot group for size {data.sizes[i]} seed {seed}")
            continue
        with g:
            for l in range(min(data.n_layer[i], g.sizes.get("layer", 0))):
                t, perm, cls, tr = layer_events(g, l, data.dead_window)
                parts.append(Events(np.full(len(t), l), np.full(len(t), seed), t, perm, cls, tr))
    if not parts:
        return _empty()
    return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS),
                  {t: np.concatenate([p.traces[t] for p in parts]) for t in TRACES})


def no_events(data):
    return [_empty() for _ in data.sizes]


def collect(data):
    """(events per size, notes); empty events when snapshots are absent."""
    notes = []
    if not data.dead_window or not data.snapshot_every:
        notes.append("no snapshots in this dataset (snapshot_every = 0 or no config): "
                     "death diagnostics skipped")
        return no_events(data), notes
    return [size_events(data, i, notes) for i in range(len(data.sizes))], notes


def _phase_lr(data, i, start, end):
    """Mean learning rate over the phase's recorded steps and all seeds."""
    if not data.has("lr"):
        return math.nan
    lr = data.ds["lr"].isel(size=i).sel(step=slice(start, end - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(lr.mean()) if lr.size else math.nan


def table3(data, events):
    """Death events per (size, layer, phase of the last firing), pooled over
    seeds, by class and by permanence."""
    rows = []
    for i, size in enumerate(data.sizes):
        ev = events[i]
        for l in range(data.n_layer[i]):
            for name, start, end in phases(data.warmup, data.steps_planned):
                sel = (ev.layer == l) & (ev.last_fire >= start) & (ev.last_fire < end)
                counts = [int(np.sum(sel & (ev.cls == c))) for c in range(len(CLASSES))]
                judged = counts[0] + counts[1]
                perm = int(np.sum(sel & ev.permanent))
                rows.append({"size": size, "layer": l, "phase": name, "first_step": start,
                             "end_step": end, "mean_lr": _phase_lr(data, i, start, end),
                             "deaths": int(np.sum(sel)), "permanent": perm,
                             "transient": int(np.sum(sel)) - perm, "sudden": counts[0],
                             "drift": counts[1], "na": counts[2],
                             "sudden_share": counts[0] / judged if judged else math.nan})
    return rows


def table3_columns():
    return ["size", "layer", "phase", "first_step", "end_step", "mean_lr", "deaths", "permanent",
            "transient", "sudden", "drift", "na", "sudden_share"]
