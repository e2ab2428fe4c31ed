"""Small plotting helpers shared by the figure modules."""
import math
import os
import warnings
from dataclasses import dataclass

import matplotlib
matplotlib.use("Agg")          # no display on a cluster node or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_POINTS = 2000   # curves longer than this are block-averaged for display only
DPI = 150           # the PNG; every figure is also written as a PDF (vector)
FORMATS = ("png", "pdf")


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
    fig.rs_shape = (nrows, ncols)
    flat = list(axes.flat)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def layer_color(layer, lmax):
    """The colour of a layer, the same in every figure and for every size
    (lmax = the largest L of the sweep; first = dark, last = light)."""
    return plt.get_cmap("viridis")(layer / max(1, lmax - 1) * 0.85)


def seed_color(j):
    return plt.get_cmap("tab10")(j % 10)


def thin_da(da, dim):
    """da block-averaged along dim (xarray coarsen) to at most MAX_POINTS points.

    Long runs (10^5 steps) would otherwise draw slowly and alias into a solid
    block; averaging blocks of consecutive steps keeps the trend. Tables never
    use thinned values."""
    n = da.sizes[dim]
    if n <= MAX_POINTS:
        return da
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN blocks stay NaN
        return da.coarsen({dim: -(-n // MAX_POINTS)}, boundary="trim", coord_func="mean").mean()


def seed_stats(da):
    """Mean, sample std and n over the seed axis (NaN where no seed has data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return da.mean("seed"), da.std("seed", ddof=1), da.count("seed")


def spread(ax, x, mean, std, color, label=None, marker=None):
    """A mean line with a mean +- std band (no band where std is NaN: one seed)."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    ax.plot(x, mean, color=color, linewidth=1.3, label=label, marker=marker, markersize=2.5)


def seeds_phrase(n):
    """How the seeds are summarized, with n."""
    n = int(n)
    if n <= 1:
        return "one seed (no spread)"
    return f"line = mean over n = {n} seeds, band = ± 1 sample std"


def usage_axis(ax, label):
    """Usage panels share one scale: 0-100% of the layer's units."""
    ax.set_ylim(0, 100)
    ax.set_ylabel(label)


def legend_outside(fig, axes, ncol=None):
    """One legend for the figure, below the panels (off the data)."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
    rows = 0
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=ncol or min(len(labels), 8),
                   fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))
        rows = math.ceil(len(labels) / (ncol or 8))
    layout(fig, rows)


# Margins in inches (fixed font sizes): matplotlib's tight_layout measured 1.5 s
# a figure here, most of the report's time, for the same result.
MARGIN = {"left": 0.8, "right": 0.85, "top": 0.5, "bottom": 0.6, "wspace": 0.95,
          "hspace": 0.85, "legend_row": 0.25}


def layout(fig, legend_rows=0):
    """Place the panels with fixed margins (room for titles, labels, a right
    axis, and legend_rows rows of legend below)."""
    nrows, ncols = getattr(fig, "rs_shape", (1, 1))
    w, h = fig.get_size_inches()
    bottom = MARGIN["bottom"] + (MARGIN["legend_row"] * legend_rows + 0.1 if legend_rows else 0)
    wspace = getattr(fig, "rs_wspace", MARGIN["wspace"])     # more for a right-hand axis
    panel_w = (w - MARGIN["left"] - MARGIN["right"] - wspace * (ncols - 1)) / ncols
    panel_h = (h - MARGIN["top"] - bottom - MARGIN["hspace"] * (nrows - 1)) / nrows
    fig.subplots_adjust(left=MARGIN["left"] / w, right=1 - MARGIN["right"] / w,
                        top=1 - MARGIN["top"] / h, bottom=bottom / h,
                        wspace=wspace / max(panel_w, 0.1),
                        hspace=MARGIN["hspace"] / max(panel_h, 0.1))


def shade(ax, a, b, text):
    """Grey the steps [a, b) of a panel, with a word on why."""
    if b > a:
        ax.axvspan(a, b, color="0.85", alpha=0.6, linewidth=0, zorder=0, label=text)


def note(ax, text):
    """Write a message in an empty panel instead of a plot."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True,
            transform=ax.transAxes, fontsize=10, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig, outdir, name, title, caption, legend_axes=None):
    """Write the figure as outdir/name.png (DPI) and name.pdf; its Figure record.
    With legend_axes, their legend entries go below the panels."""
    if legend_axes is not None:
        legend_outside(fig, legend_axes)
    else:
        layout(fig)
    for fmt in FORMATS:
        fig.savefig(os.path.join(outdir, f"{name}.{fmt}"), dpi=DPI)
    plt.close(fig)
    return Figure(name + ".png", title, caption)
