"""Figures of the training series: usage per layer over training, and loss.

Every function takes the report's Data and the output folder and returns one
plotkit.Figure; a variable missing from the dataset gives a figure that says
so rather than an error, so the page always has the same sections.
"""
import math
import warnings

import numpy as np

from .load import EVAL_DIM
from .plotkit import (grid, layer_color, note, save, seed_color, seed_stats, seeds_phrase, shade,
                      spread, thin_da, usage_axis)
from .tables import batch_text

EARLY_FRACTION = 0.10
LEVELS = [(0.05, 0.95, 0.18), (0.25, 0.75, 0.40)]   # (low, high, opacity) of the quantile bands


def size_title(data, i):
    L, F = data.n_layer[i], data.n_hidden[i]
    return f"size {data.sizes[i]} (L={L}" + (f", F={F})" if F else ")")


def missing(outdir, name, title, what):
    fig, axes = grid(1, panel=(6, 2))
    note(axes[0], f"{what} is not in this dataset")
    return save(fig, outdir, name, title, f"Not available: {what} is not in this dataset.")


def n_seeds_of(data, var):
    """Most seeds of a size with data for var (from the small loss series, so
    that counting does not read var whole)."""
    if not data.has(var):
        return 0
    if EVAL_DIM in data.ds[var].dims:
        runs = data.ds["eval_loss"].notnull().any(EVAL_DIM) if data.has("eval_loss") else None
    else:
        runs = data.ds["loss"].notnull().any("step") if data.has("loss") else None
    return int(runs.sum("seed").max()) if runs is not None else 0


def layer_panels(data, outdir, var, name, title, caption, ylabel, dim="step", percent=True,
                 hook=None):
    """One panel per size: var per layer along dim, mean +- std over seeds."""
    if not data.has(var) or data.ds.sizes.get(dim, 0) == 0:
        return missing(outdir, name, title, var)
    fig, axes = grid(len(data.sizes), sharey=True)
    for i, ax in enumerate(axes):
        a = thin_da(data.ds[var].isel(size=i), dim) * (100 if percent else 1)
        mean, std, _ = seed_stats(a)
        x = a[dim].values
        for l in range(data.n_layer[i]):
            spread(ax, x, mean.isel(layer=l), std.isel(layer=l), layer_color(l, data.lmax),
                   f"layer {l}", marker="o" if dim == EVAL_DIM else None)
        if hook:
            hook(ax)
        ax.set_title(size_title(data, i), fontsize=10)
        ax.set_xlabel("training step")
        if percent:
            usage_axis(ax, ylabel)
        else:
            ax.set_ylabel(ylabel)
        if not data.n_layer[i]:
            note(ax, "no data for this size")
    return save(fig, outdir, name, title, caption, legend_axes=axes)


def batch_use(data, outdir):
    n = n_seeds_of(data, "batch_use")
    return layer_panels(
        data, outdir, "batch_use", "fig1_batch_use",
        "Batch-level usage per layer on the training batch (the study's Figure 1)",
        f"Share of hidden units that fire on at least one token of {batch_text(data.ds, 'train')}, "
        f"per layer over training, one panel per model size; {seeds_phrase(n)}. Batch usage grows "
        "with the batch: compare with the study's 8,192-token batches only through the held-out "
        "variant below when the training batch is smaller.", "batch usage (% of units)")


def batch_use_heldout(data, outdir):
    n = n_seeds_of(data, "eval_batch_use")
    return layer_panels(
        data, outdir, "eval_batch_use", "fig1_batch_use_heldout",
        "Batch-level usage per layer on the held-out batch (Figure 1, held-out variant)",
        f"Share of hidden units that fire on at least one token of {batch_text(data.ds, 'heldout')}, "
        f"per layer at each evaluation, one panel per model size; {seeds_phrase(n)}. This is the "
        "quantity comparable across runs and with the study (8,192 tokens by default).",
        "batch usage (% of units)", dim=EVAL_DIM)


def dead_frac(data, outdir):
    W = data.dead_window
    n = n_seeds_of(data, "dead_frac")
    return layer_panels(
        data, outdir, "dead_frac", "dead_frac", "Units off",
        f"Share of hidden units that are off (no firing in the last dead_window = {W} steps of "
        f"{batch_text(data.ds, 'train')}), per layer over training; {seeds_phrase(n)}. Grey: the "
        f"first {W - 1} steps, where no unit can be off yet (it needs {W} silent steps), so "
        "the curve starts at 0 there by construction.", "off (% of units)",
        hook=lambda ax: shade(ax, 0, W - 1, f"steps < {W - 1}: no unit can be off yet"))


def _level_label(q, n):
    """The name of quantile level q over n values: 'min'/'max' when it is one."""
    if n and max(1, math.ceil(q * n)) == 1:
        return "min"
    if n and max(1, math.ceil(q * n)) == n:
        return "max"
    return f"{q:.0%}"


def _quantile_layer(ax, data, i, l, metric, end, count):
    """One panel: layer l of size i, quantile levels and mean averaged over seeds."""
    levels = np.asarray(data.ds["quantile"].values, dtype=float)
    idx = {q: int(np.argmin(np.abs(levels - q))) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
    q = data.ds[metric + "_q"].isel(size=i, layer=l, step=slice(0, end))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # NaN where no seed has data
        q = thin_da(q.isel(quantile=sorted(set(idx.values()))), "step").mean("seed") * 100
        m = thin_da(data.ds[metric + "_mean"].isel(size=i, layer=l, step=slice(0, end)),
                    "step").mean("seed") * 100
    x, c = q["step"].values, layer_color(l, data.lmax)
    for lo, hi, alpha in LEVELS:
        ax.fill_between(x, q.sel(quantile=levels[idx[lo]]), q.sel(quantile=levels[idx[hi]]),
                        color=c, alpha=alpha, linewidth=0,
                        label=f"{_level_label(lo, count)}–{_level_label(hi, count)}")
    ax.plot(x, q.sel(quantile=levels[idx[0.5]]), color=c, linewidth=1.3, label="median")
    ax.plot(x, m, color="k", linewidth=0.8, linestyle="--", label="mean")
    ax.set_title(f"{data.sizes[i]}, layer {l}", fontsize=9)
    ax.set_xlabel("training step", fontsize=8)
    ax.tick_params(labelsize=7)


def quantiles(data, outdir, metric, early):
    """token_use or seq_use per layer (columns) and size (rows) with quantile bands."""
    word = {"token_use": "token", "seq_use": "sequence"}[metric]
    name = f"{metric}_quantiles" + ("_early" if early else "")
    title = f"{word.capitalize()}-level usage" + (" (early training)" if early else "")
    if not data.has(metric + "_q"):
        return missing(outdir, name, title, metric + "_q")
    n_steps = data.ds.sizes["step"]
    end = max(1, math.ceil(EARLY_FRACTION * data.steps_planned)) if early else n_steps
    n_rows, n_cols = len(data.sizes), max(1, data.lmax)
    fig, axes = grid(n_rows * n_cols, ncols=n_cols, panel=(3.3, 2.5), sharey=True)
    counts = []
    for i in range(n_rows):
        B = data.ds.attrs.get("batch_size", 0)
        count = data.tokens[i][0] if word == "token" else B
        counts.append(count)
        for l in range(n_cols):
            ax = axes[i * n_cols + l]
            if l >= data.n_layer[i]:
                ax.set_visible(False)     # this size has fewer layers
                continue
            _quantile_layer(ax, data, i, l, metric, end, count)
            usage_axis(ax, f"{word} usage (%)")
    span = f"the first {EARLY_FRACTION:.0%} of the {data.steps_planned} planned steps " \
        f"(steps < {end})" if early else "the whole run"
    outer = " Over so few sequences the outer band is the range (min–max), not 5–95%." \
        if word == "sequence" and counts and min(counts) < 20 else ""
    n = n_seeds_of(data, metric + "_q")
    return save(fig, outdir, name, title,
                f"Per-{word} share of hidden units active, per layer (columns) and size (rows) "
                f"over {span}: line = median, bands = quantiles over the {counts[0] if counts else '?':,} "
                f"{word}s of {batch_text(data.ds, 'train')} (labels name the order statistics), "
                f"dashed = mean; each level is averaged over {n} seed(s).{outer}",
                legend_axes=[a for a in axes if a.get_visible()][:1])


def loss(data, outdir):
    """Training loss of every run (one line per seed), held-out loss as dots."""
    name, title = "loss", "Loss curves"
    if not data.has("loss"):
        return missing(outdir, name, title, "loss")
    fig, axes = grid(len(data.sizes), sharey=True)
    for i, ax in enumerate(axes):
        tr = thin_da(data.ds["loss"].isel(size=i), "step")
        for j, seed in enumerate(data.seeds):
            c = seed_color(j)
            ax.plot(tr["step"], tr.isel(seed=j), color=c, linewidth=0.9, label=f"seed {seed} (train)")
            if data.has("eval_loss"):
                ev = data.ds["eval_loss"].isel(size=i, seed=j)
                ax.plot(ev[EVAL_DIM], ev, "o", color=c, markersize=3, label=f"seed {seed} (held-out)")
        ax.set_title(size_title(data, i), fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss (nats)")
    return save(fig, outdir, name, title,
                "Training loss of every run on its training batch (lines, one colour per seed, "
                "one panel per size) and held-out loss on the fixed evaluation batch (dots).",
                legend_axes=axes)
