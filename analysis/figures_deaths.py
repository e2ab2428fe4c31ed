"""Figures of unit deaths: traces aligned at death, drift vs sudden, and
deaths against the learning-rate schedule."""
import warnings

import numpy as np

from deaths import ALIGN, CLASSES, LOOKBACK, SUDDEN_KEEP
from figures import size_title
from load import phases
from plotkit import grid, layer_color, note, save, seed_stats

TRACE_COLUMNS = [("freq", "firing frequency"), ("premax", "max pre-activation"),
              ("b_in", "bias b_in")]
CLASS_COLORS = {"sudden": "C3", "drift": "C0", "n/a": "0.7"}
LR_BINS = 50


def _median_iqr(a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # offsets before any snapshot
        return np.nanpercentile(a, [25, 50, 75], axis=0) if len(a) else np.full((3, a.shape[1]), np.nan)


def _none_seen(events):
    return not any(len(ev.layer) for ev in events)


def _nothing(outdir, name, title):
    fig, axes = grid(1, panel=(7, 2))
    note(axes[0], "no death events seen at the snapshots (or no snapshots in this dataset)")
    return save(fig, outdir, name, title,
                "Not available: no unit was seen turning off at the per-unit snapshots.")


def aligned(data, outdir, events):
    """Columns: firing frequency, pre-activation max, bias; rows: sizes."""
    name, title = "deaths_aligned", "Units before they turn off"
    if _none_seen(events):
        return _nothing(outdir, name, title)
    n = len(TRACE_COLUMNS)
    fig, axes = grid(n * len(data.sizes), ncols=n, panel=(4.2, 2.9))
    x = np.arange(-ALIGN, 1)
    for r, (trace, label) in enumerate(TRACE_COLUMNS):
        for i, ev in enumerate(events):
            ax = axes[i * n + r]
            ax.set_title(size_title(data, i), fontsize=9)
            if not len(ev.layer):
                note(ax, "no deaths seen at the snapshots")
                continue
            L = data.n_layer[i]
            for l in range(L):
                sel = ev.layer == l
                if sel.any():
                    q1, med, q3 = _median_iqr(ev.traces[trace][sel])
                    c = layer_color(l, L)
                    ax.fill_between(x, q1, q3, color=c, alpha=0.2, linewidth=0)
                    ax.plot(x, med, "o-", color=c, markersize=2.5, label=f"layer {l} ({sel.sum()})")
            ax.axvline(0, color="k", linewidth=0.6, linestyle=":")
            ax.set_xlabel(f"snapshots from death (x {data.snapshot_every} steps)", fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.legend(fontsize=6)
    return save(fig, outdir, name, title,
                "Firing frequency, maximum pre-activation and bias of the units that turned off, "
                "at the snapshots before their death aligned at the first snapshot that sees them "
                "off (0); line = median over the events of a layer (count in the legend, all "
                "seeds pooled), band = 25-75%.")


def classes(data, outdir, events):
    """Stacked bars per layer: sudden, drift and unclassified deaths."""
    name, title = "deaths_classes", "Drift or sudden"
    if _none_seen(events):
        return _nothing(outdir, name, title)
    fig, axes = grid(len(data.sizes))
    for i, (ax, ev) in enumerate(zip(axes, events)):
        L = data.n_layer[i]
        bottom = np.zeros(L)
        for c, cls in enumerate(CLASSES):
            h = np.array([np.sum((ev.layer == l) & (ev.cls == c)) for l in range(L)])
            ax.bar(np.arange(L), h, bottom=bottom, color=CLASS_COLORS[cls], label=cls)
            bottom += h
        ax.set_xticks(np.arange(L))
        ax.set_xlabel("layer")
        ax.set_ylabel("death events (all seeds)")
        ax.set_title(size_title(data, i), fontsize=10)
        ax.legend(fontsize=7)
    return save(fig, outdir, name, title,
                f"Death events per layer seen at the snapshots (all seeds), split into sudden "
                f"(firing rate still >= {SUDDEN_KEEP:.0%} of its rate {LOOKBACK} snapshot intervals "
                f"earlier one interval before it went silent), drift (already below) and n/a "
                f"(too little history or a zero reference rate).")


def _binned_deaths(data, i):
    """turned_off summed over layers, mean over seeds, summed in LR_BINS bins of steps."""
    steps = np.asarray(data.ds["step"].values)
    off = data.ds["turned_off"].isel(size=i).transpose("seed", "step", "layer").values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        total = np.where(np.isnan(off).all(axis=2), np.nan, np.nansum(off, axis=2))
        per_step = np.nanmean(total, axis=0)     # (step,): NaN where no seed recorded it
    width = max(1, -(-len(steps) // LR_BINS))
    edges = np.arange(0, len(steps) + width, width)
    sums = [np.nansum(per_step[a:a + width]) for a in edges[:-1]]
    return edges[:-1], np.array(sums), width


def versus_lr(data, outdir):
    """Units turning off over training (bars) against the learning rate (line)."""
    name, title = "deaths_lr", "Deaths and the learning-rate schedule"
    fig, axes = grid(len(data.sizes))
    for i, ax in enumerate(axes):
        ax.set_title(size_title(data, i), fontsize=10)
        if not data.has("turned_off"):
            note(ax, "turned_off is not in this dataset")
            continue
        left, sums, width = _binned_deaths(data, i)
        ax.bar(left, sums, width=width, align="edge", color="C1", alpha=0.7, label="units turned off")
        for _, start, _ in phases(data.warmup, data.steps_planned)[1:]:
            ax.axvline(start, color="k", linewidth=0.6, linestyle=":")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"units turned off per {width} steps")
        if data.has("lr"):
            lr, _, _ = seed_stats(data.ds["lr"].isel(size=i).transpose("seed", "step").values)
            ax2 = ax.twinx()
            ax2.plot(data.ds["step"].values, lr, color="C0", linewidth=1.2, label="learning rate")
            ax2.set_ylabel("learning rate", color="C0")
    return save(fig, outdir, name, title,
                f"Units turning off (turned_off summed over layers, mean over seeds, in bins of "
                f"steps) against the learning rate (line, right axis); dotted lines separate "
                f"warmup (< {data.warmup} steps) and the early, middle and late thirds of the rest.")
