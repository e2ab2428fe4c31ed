"""Small plotting helpers shared by the figure modules."""
import os
import warnings
from dataclasses import dataclass

import matplotlib
matplotlib.use("Agg")          # no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_POINTS = 2000   # curves longer than this are block-averaged for display only
DPI = 90


@dataclass
class Figure:
    """One figure of the report: its file (relative to the report folder)."""
    file: str
    title: str
    caption: str


def grid(n_panels, ncols=3, panel=(4.6, 3.2), sharey=False):
    """A figure with n_panels axes in rows of ncols; the spare axes hidden."""
    ncols = max(1, min(ncols, n_panels))
    nrows = max(1, -(-n_panels // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows),
                             squeeze=False, sharey=sharey)
    flat = list(axes.flat)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def layer_color(layer, n_layers):
    """The colour of a layer, the same in every figure (first = dark, last = light)."""
    return plt.get_cmap("viridis")(layer / max(1, n_layers - 1) * 0.85)


def seed_color(j):
    return plt.get_cmap("tab10")(j % 10)


def thin(x, *ys):
    """Block means of x and ys so that at most MAX_POINTS points are drawn.

    Long runs (10^5 steps) would otherwise draw slowly and alias into a solid
    block; averaging blocks of consecutive steps keeps the trend. Tables never
    use thinned values.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n <= MAX_POINTS:
        return (x,) + tuple(np.asarray(y, dtype=float) for y in ys)
    b = -(-n // MAX_POINTS)
    m = n // b * b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN blocks stay NaN
        out = [np.nanmean(x[:m].reshape(-1, b), axis=1)]
        for y in ys:
            y = np.asarray(y, dtype=float)
            out.append(np.nanmean(y[:m].reshape(-1, b, *y.shape[1:]), axis=1))
    return tuple(out)


def seed_stats(a, axis=0):
    """Mean, min and max over seeds (axis), NaN where no seed has data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis), np.nanmin(a, axis=axis), np.nanmax(a, axis=axis)


def band(ax, x, mean, lo, hi, color, label=None):
    """A mean line with a shaded band from lo to hi."""
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
    ax.plot(x, mean, color=color, linewidth=1.3, label=label)


def note(ax, text):
    """Write a message in an empty panel instead of a plot."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True,
            transform=ax.transAxes, fontsize=10, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig, outdir, name, title, caption):
    """Write the figure as outdir/name.png and return its Figure record."""
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, name + ".png"), dpi=DPI)
    plt.close(fig)
    return Figure(name + ".png", title, caption)
