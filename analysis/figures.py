"""Figures of the training series: usage per layer over training, and loss.

Every function takes the loaded Data and the output folder and returns one
plotkit.Figure; a variable missing from the dataset gives a figure that says
so rather than an error, so the page always has the same sections.
"""
import math
import warnings

import numpy as np

from plotkit import band, grid, layer_color, note, save, seed_color, seed_stats, thin

BANDS = [(0.05, 0.95, 0.18), (0.25, 0.75, 0.40)]   # (low, high, opacity) of the quantile bands
EARLY_FRACTION = 0.10


def size_title(data, i):
    L, F = data.n_layer[i], data.n_hidden[i]
    return f"size {data.sizes[i]} (L={L}" + (f", F={F})" if F else ")")


def _missing(outdir, name, title, what):
    fig, axes = grid(1, panel=(6, 2))
    note(axes[0], f"{what} is not in this dataset")
    return save(fig, outdir, name, title, f"Not available: {what} is not in this dataset.")


def layer_bands(data, outdir, var, name, title, caption, ylabel):
    """One panel per size: var per layer over steps, seeds as mean and min-max band."""
    if not data.has(var):
        return _missing(outdir, name, title, var)
    fig, axes = grid(len(data.sizes))
    x = data.ds["step"].values
    for i, ax in enumerate(axes):
        L = data.n_layer[i]
        a = data.ds[var].isel(size=i).transpose("seed", "step", "layer").values * 100
        for l in range(L):
            mean, lo, hi = seed_stats(a[:, :, l])
            band(ax, *thin(x, mean, lo, hi), layer_color(l, L), f"layer {l}")
        ax.set_title(size_title(data, i), fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        if L:
            ax.legend(fontsize=7, ncol=2)
        else:
            note(ax, "no data for this size")
    return save(fig, outdir, name, title, caption)


def batch_use(data, outdir):
    return layer_bands(
        data, outdir, "batch_use", "fig1_batch_use",
        "Batch-level usage per layer (the study's Figure 1)",
        "Share of hidden units that fire on at least one token of the global batch, per layer "
        "over training, one panel per model size; line = mean over seeds, band = min-max "
        "over seeds.", "batch usage (% of units)")


def dead_frac(data, outdir):
    return layer_bands(
        data, outdir, "dead_frac", "dead_frac", "Units off",
        f"Share of hidden units that are off (no firing in the last dead_window = "
        f"{data.dead_window} steps), per layer over training; line = mean over seeds, "
        "band = min-max over seeds.", "off (% of units)")


def _level_index(data):
    """Index of each quantile level in the dataset's quantile axis (None if absent)."""
    levels = np.asarray(data.ds["quantile"].values, dtype=float)
    def find(q):
        hit = np.nonzero(np.isclose(levels, q))[0]
        return int(hit[0]) if len(hit) else None
    return {q: find(q) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}


def _quantile_panel(ax, x, q, mean, idx, color):
    """Median line, 25-75% and 5-95% bands and the mean (dashed) of one layer."""
    for lo, hi, alpha in BANDS:
        if idx[lo] is not None and idx[hi] is not None:
            ax.fill_between(x, q[:, idx[lo]], q[:, idx[hi]], color=color, alpha=alpha,
                            linewidth=0, label=f"{lo:.0%}-{hi:.0%}")
    if idx[0.5] is not None:
        ax.plot(x, q[:, idx[0.5]], color=color, linewidth=1.3, label="median")
    ax.plot(x, mean, color="k", linewidth=0.8, linestyle="--", label="mean")


def _quantile_layer(ax, data, i, l, metric, keep, idx):
    """One panel: layer l of size i, quantiles and mean averaged over seeds."""
    q = data.ds[metric + "_q"].isel(size=i, layer=l).transpose("seed", "step", "quantile").values
    m = data.ds[metric + "_mean"].isel(size=i, layer=l).values if data.has(metric + "_mean") \
        else np.full(q.shape[:2], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # NaN where no seed has data
        q, m = np.nanmean(q, axis=0)[keep] * 100, np.nanmean(m, axis=0)[keep] * 100
    xs, qs, ms = thin(data.ds["step"].values[keep], q, m)
    _quantile_panel(ax, xs, qs, ms, idx, layer_color(l, data.n_layer[i]))
    ax.set_title(f"{data.sizes[i]}, layer {l}", fontsize=9)
    ax.set_xlabel("training step", fontsize=8)
    ax.tick_params(labelsize=7)


def quantiles(data, outdir, metric, early):
    """token_use or seq_use per layer (columns) and size (rows) with quantile bands."""
    word = {"token_use": "token", "seq_use": "sequence"}[metric]
    name = f"{metric}_quantiles" + ("_early" if early else "")
    title = f"{word.capitalize()}-level usage" + (" (early training)" if early else "")
    if not data.has(metric + "_q"):
        return _missing(outdir, name, title, metric + "_q")
    x = data.ds["step"].values
    end = max(1, math.ceil(EARLY_FRACTION * data.steps_planned)) if early else len(x)
    n_rows, n_cols = len(data.sizes), max(1, max(data.n_layer))
    fig, axes = grid(n_rows * n_cols, ncols=n_cols, panel=(3.3, 2.5))
    for i in range(n_rows):
        for l in range(n_cols):
            ax = axes[i * n_cols + l]
            if l >= data.n_layer[i]:
                ax.set_visible(False)     # this size has fewer layers
                continue
            _quantile_layer(ax, data, i, l, metric, x < end, _level_index(data))
            ax.set_ylabel(f"{word} usage (%)", fontsize=8)
    axes[0].legend(fontsize=6)
    span = f"the first {EARLY_FRACTION:.0%} of the {data.steps_planned} planned steps " \
        f"(steps < {end})" if early else "the whole run"
    return save(fig, outdir, name, title,
                f"Per-{word} share of hidden units active, per layer (columns) and size (rows) "
                f"over {span}: line = median, bands = 25-75% and 5-95% quantiles over the "
                f"batch's {word}s, dashed = mean; each level is averaged over seeds.")


def loss(data, outdir):
    """Training loss of every run (one line per seed), held-out loss as dots."""
    name, title = "loss", "Loss curves"
    if not data.has("loss"):
        return _missing(outdir, name, title, "loss")
    fig, axes = grid(len(data.sizes))
    x = data.ds["step"].values
    for i, ax in enumerate(axes):
        for j, seed in enumerate(data.seeds):
            c = seed_color(j)
            ax.plot(*thin(x, data.run("loss", i, j)), color=c, linewidth=0.9,
                    label=f"seed {seed} train")
            if data.has("eval_loss") and data.has("eval_step"):
                x_eval = np.asarray(data.ds["eval_step"].values, dtype=float)
                ax.plot(np.where(x_eval >= 0, x_eval, np.nan), data.run("eval_loss", i, j), "o",
                        color=c, markersize=3, label=f"seed {seed} held-out")
        ax.set_title(size_title(data, i), fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss (nats)")
        ax.legend(fontsize=7)
    return save(fig, outdir, name, title,
                "Training loss of every run (lines, one colour per seed, one panel per size) "
                "and held-out loss on the fixed evaluation batch (dots).")
