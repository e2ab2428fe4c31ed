"""Figures of unit deaths: traces aligned at the last firing, drift vs sudden,
deaths against the learning-rate schedule; and the feature-density figure."""
import warnings

import numpy as np

from .deaths import ALIGN, CLASSES, LOOKBACK, SUDDEN_KEEP
from .figures import size_title
from .load import SNAP_DIM, phases, run_group
from .plotkit import grid, layer_color, note, save, shade
from .tables import batch_text, final_last_fire

TRACE_COLUMNS = [("freq", "firing frequency"), ("premax", "max pre-activation"),
                 ("b_in", "bias b_in"), ("count", "events with data")]
CLASS_COLORS = {"sudden": "C3", "drift": "C0", "n/a": "0.7"}
LR_BINS = 50
DENSITY_AT = (0.1, 0.5, 1.0)     # the density figure's snapshots: fractions of the run
DENSITY_BINS = np.linspace(-6, 0, 31)


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


def _trace_panel(ax, data, i, ev, trace, label):
    x = np.arange(-ALIGN, 1)
    for l in range(data.n_layer[i]):
        sel = ev.layer == l
        if not sel.any():
            continue
        c = layer_color(l, data.lmax)
        if trace == "count":
            ax.plot(x, np.isfinite(ev.traces["freq"][sel]).sum(axis=0), "o-", color=c,
                    markersize=2.5, label=f"layer {l}")
            continue
        q1, med, q3 = _median_iqr(ev.traces[trace][sel])
        ax.fill_between(x, q1, q3, color=c, alpha=0.2, linewidth=0)
        ax.plot(x, med, "o-", color=c, markersize=2.5, label=f"layer {l}")
    ax.axvline(0, color="k", linewidth=0.6, linestyle=":")
    ax.set_xlabel(f"intervals from the last firing (x {data.snapshot_every} steps)", fontsize=8)
    ax.set_ylabel(label, fontsize=8)


def aligned(data, outdir, events):
    """Columns: firing frequency, pre-activation max, bias, event count; rows: sizes."""
    name, title = "deaths_aligned", "Units before they turn off"
    if _none_seen(events):
        return _nothing(outdir, name, title)
    n = len(TRACE_COLUMNS)
    fig, axes = grid(n * len(data.sizes), ncols=n, panel=(3.6, 2.8))
    for i, ev in enumerate(events):
        for r, (trace, label) in enumerate(TRACE_COLUMNS):
            ax = axes[i * n + r]
            ax.set_title(size_title(data, i), fontsize=9)
            if not len(ev.layer):
                note(ax, "no deaths seen at the snapshots")
                continue
            _trace_panel(ax, data, i, ev, trace, label)
    totals = "; ".join(f"{data.sizes[i]}: " + ", ".join(
        f"layer {l} {int(np.sum(ev.layer == l))}" for l in range(data.n_layer[i]))
        for i, ev in enumerate(events))
    return save(fig, outdir, name, title,
                "Firing frequency, maximum pre-activation and bias of the units that turned off, "
                "per snapshot interval, aligned at the interval that holds each unit's last firing "
                "(0); line = median over the events of a layer (all seeds pooled), band = 25-75%; "
                "the last column gives the number of events behind each point (fewer at the left: "
                f"deaths early in the run have less history). Events: {totals}.",
                legend_axes=axes)


def classes(data, outdir, events):
    """Stacked bars per layer: sudden, drift and unclassified deaths; permanent hatched."""
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
        perm = np.array([np.sum((ev.layer == l) & ev.permanent) for l in range(L)])
        ax.bar(np.arange(L), perm, fill=False, hatch="///", edgecolor="k", linewidth=0.5,
               label="of which permanent")
        ax.set_xticks(np.arange(L))
        ax.set_xlabel("layer")
        ax.set_ylabel("death events (all seeds)")
        ax.set_title(size_title(data, i), fontsize=10)
    return save(fig, outdir, name, title,
                f"Death events per layer seen at the snapshots (all seeds), split into sudden "
                f"(firing rate still >= {SUDDEN_KEEP:.0%} of its rate {LOOKBACK} snapshot intervals "
                f"earlier one interval before it went silent), drift (already below) and n/a "
                f"(too little history or a zero reference rate); hatched: events whose unit is "
                f"still off at the run's last snapshot (permanent).", legend_axes=axes)


def _binned(values_at, steps, width, n_bins):
    """Sums of values_at (per step) in bins of `width` steps."""
    idx = np.minimum(np.asarray(steps) // width, n_bins - 1)
    ok = np.isfinite(values_at)
    return np.bincount(idx[ok], weights=values_at[ok], minlength=n_bins)


def _deaths_by_last_fire(data, i):
    """Per step t: units whose last firing was t (turned_off at t + W), summed
    over layers, mean over seeds; never-fired units at step 0."""
    to = data.ds["turned_off"].isel(size=i)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_step = to.sum("layer", min_count=1).mean("seed").values
    t = np.maximum(data.ds["step"].values - data.dead_window, 0)
    return t, per_step


def _permanent_last_fires(data, i):
    """Last-firing steps of the units off at each run's last snapshot (all
    layers), and the number of runs they come from."""
    fires, runs = [], 0
    for j in range(len(data.seeds)):
        got = final_last_fire(data.ds, i, j)
        if got is None:
            continue
        step, last = got
        v = last.values[:data.n_layer[i]].ravel()
        fires.append(np.maximum(v[step - v >= data.dead_window], 0))
        runs += 1
    return (np.concatenate(fires) if fires else np.zeros(0)), runs


def versus_lr(data, outdir):
    """Units turning off, placed at their last firing (bars), against the learning rate."""
    name, title = "deaths_lr", "Deaths and the learning-rate schedule"
    W, n_steps = data.dead_window, data.ds.sizes["step"]
    width = max(1, -(-n_steps // LR_BINS))
    n_bins = -(-n_steps // width)
    left = np.arange(n_bins) * width
    fig, axes = grid(len(data.sizes))
    fig.rs_wspace = 1.6                      # the learning rate's axis on the right
    for i, ax in enumerate(axes):
        ax.set_title(size_title(data, i), fontsize=10)
        if not data.has("turned_off"):
            note(ax, "turned_off is not in this dataset")
            continue
        t, per_step = _deaths_by_last_fire(data, i)
        ax.bar(left, _binned(per_step, t, width, n_bins), width=width, align="edge", color="C1",
               alpha=0.6, label="units turned off (all)")
        fires, runs = _permanent_last_fires(data, i)
        if runs:
            ax.bar(left, np.bincount(np.minimum(fires.astype(int) // width, n_bins - 1),
                                     minlength=n_bins) / runs, width=width, align="edge",
                   color="C3", alpha=0.8, label="of which permanent")
        shade(ax, max(0, n_steps - W), n_steps, f"last {W} steps: deaths not yet detectable")
        for _, start, _ in phases(data.warmup, data.steps_planned)[1:]:
            ax.axvline(start, color="k", linewidth=0.6, linestyle=":")
        ax.set_xlabel("step of the unit's last firing")
        ax.set_ylabel(f"units per {width} steps")
        if data.has("lr"):
            lr = data.ds["lr"].isel(size=i).mean("seed")
            ax2 = ax.twinx()
            ax2.plot(lr["step"], lr, color="C0", linewidth=1.2, label="learning rate")
            ax2.set_ylabel("learning rate", color="C0")
    return save(fig, outdir, name, title,
                f"Units turning off (firing counted on {batch_text(data.ds, 'train')}), placed at "
                f"the step of their last firing (turned_off at step "
                f"s counts units that last fired at s - dead_window = s - {W}; never-fired units at "
                f"step 0), summed over layers, mean over seeds, in bins of {width} steps (bars); "
                f"red: those still off at the run's last snapshot (permanent); the line is the "
                f"learning rate (right axis); dotted lines separate warmup (< {data.warmup} steps) "
                f"and the early, middle and late thirds of the rest. Grey: the last {W} steps, "
                f"where a unit that stopped firing is not yet counted as off.", legend_axes=axes)


def _density_steps(g):
    """The written snapshots closest to DENSITY_AT of the run's last one."""
    steps = np.asarray(g[SNAP_DIM].values)
    want = [f * steps[-1] for f in DENSITY_AT]
    return sorted({int(steps[np.argmin(np.abs(steps - w))]) for w in want})


def density(data, outdir):
    """Histogram of log10 firing frequency per unit, per layer, at chosen snapshots."""
    name, title = "feature_density", "Feature density"
    groups = [[run_group(data, i, j) for j in range(len(data.seeds))] for i in range(len(data.sizes))]
    first = next((g for row in groups for g in row if g is not None and g.sizes.get(SNAP_DIM)), None)
    if first is None:
        fig, axes = grid(1, panel=(7, 2))
        note(axes[0], "no snapshots in this dataset")
        return save(fig, outdir, name, title, "Not available: the dataset has no snapshots.")
    at = _density_steps(first)
    fig, axes = grid(len(data.sizes) * len(at), ncols=len(at), panel=(4.0, 2.8), sharey=True)
    centers = (DENSITY_BINS[:-1] + DENSITY_BINS[1:]) / 2
    for i in range(len(data.sizes)):
        for c, step in enumerate(at):
            ax = axes[i * len(at) + c]
            silent = _density_panel(ax, data, i, groups[i], step, centers)
            ax.set_title(f"{data.sizes[i]}, snapshot at step {step}\nsilent: {silent}", fontsize=8)
    for row in groups:
        for g in row:
            if g is not None:
                g.close()
    return save(fig, outdir, name, title,
                "Distribution of the units' firing frequency (tokens on which a unit fired / "
                f"tokens of {batch_text(data.ds, 'train').replace('the training batch of each step', 'the training batches')} "
                "over the snapshot interval ending at the step shown), as log10, per layer: % of "
                "the layer's units per bin, all seeds pooled. Units that did not fire in the "
                "interval (frequency 0) are not drawn; their count per layer (Ll silent/units) is in each panel's title.", legend_axes=axes)


def _density_panel(ax, data, i, groups, step, centers):
    silent = []
    for l in range(data.n_layer[i]):
        freqs = []
        for g in groups:
            if g is None or step not in g[SNAP_DIM].values or l >= g.sizes["layer"]:
                continue
            s = g.sel({SNAP_DIM: step})
            freqs.append(s["fires_since"].isel(layer=l).values / float(s["tokens_since"]))
        if not freqs:
            continue
        f = np.concatenate(freqs)
        zero = int(np.sum(f == 0))
        with np.errstate(divide="ignore"):
            h, _ = np.histogram(np.log10(f[f > 0]), bins=DENSITY_BINS)
        ax.step(centers, h / len(f) * 100, where="mid", color=layer_color(l, data.lmax),
                label=f"layer {l}")
        silent.append(f"L{l} {zero}/{len(f)}")
    ax.set_xlabel("log10 firing frequency", fontsize=8)
    ax.set_ylabel("% of units", fontsize=8)
    return ", ".join(silent) or "n/a"
