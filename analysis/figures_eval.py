"""Figures of the held-out evaluation: loss, usage and effective rank."""
import numpy as np

from figures import size_title
from plotkit import band, grid, layer_color, note, save, seed_stats

EVAL_COLUMNS = [("eval_loss", "held-out loss (nats)", 1),
             ("eval_token_use_mean", "token usage (%)", 100),
             ("eval_seq_use_mean", "sequence usage (%)", 100),
             ("eval_batch_use", "batch usage (%)", 100)]


def _eval_x(data):
    """Steps of the evaluations; NaN for a slot no run wrote (eval_step holds the int64 fill)."""
    if "eval_step" not in data.ds.variables:
        return None
    x = np.asarray(data.ds["eval_step"].values, dtype=float)
    return np.where(x >= 0, x, np.nan)


def _has_values(data, var):
    """var exists and holds a value (with val_data = "" the eval axis has length 0)."""
    return data.has(var) and bool(np.isfinite(np.asarray(data.ds[var].values, dtype=float)).any())


def _per_layer(ax, data, i, var, scale):
    """Mean over seeds with a min-max band, per layer, of a (seed, eval, layer) variable."""
    L = data.n_layer[i]
    a = data.ds[var].isel(size=i).transpose("seed", "eval", "layer").values * scale
    for l in range(L):
        mean, lo, hi = seed_stats(a[:, :, l])
        band(ax, _eval_x(data), mean, lo, hi, layer_color(l, L), f"layer {l}")
        ax.plot(_eval_x(data), mean, "o", color=layer_color(l, L), markersize=2.5)
    return L


def _loss_panel(ax, data, i):
    mean, lo, hi = seed_stats(data.ds["eval_loss"].isel(size=i).transpose("seed", "eval").values)
    band(ax, _eval_x(data), mean, lo, hi, "C3", "mean over seeds")
    ax.plot(_eval_x(data), mean, "o", color="C3", markersize=2.5)


def heldout(data, outdir):
    """Columns: held-out loss, token, sequence and batch usage; one row per size."""
    name, title = "heldout", "Held-out evaluation"
    cols = [c for c in EVAL_COLUMNS if _has_values(data, c[0])]
    n = max(1, len(cols))
    fig, axes = grid(n * len(data.sizes), ncols=n, panel=(3.6, 2.7))
    if not cols or _eval_x(data) is None:
        for ax in axes[1:]:
            ax.set_visible(False)
        note(axes[0], "no held-out evaluation in this dataset (val_data empty?)")
        return save(fig, outdir, name, title, "Not available: the dataset has no held-out series.")
    for r, (var, label, scale) in enumerate(cols):
        for i in range(len(data.sizes)):
            ax = axes[i * n + r]
            if var == "eval_loss":
                _loss_panel(ax, data, i)
            elif _per_layer(ax, data, i, var, scale):
                ax.legend(fontsize=6, ncol=2)
            ax.set_title(size_title(data, i), fontsize=9)
            ax.set_xlabel("training step", fontsize=8)
            ax.set_ylabel(label, fontsize=8)
    return save(fig, outdir, name, title,
                "Loss and per-layer usage on the fixed held-out batch (the same tokens for "
                "every run) at each evaluation step; line = mean over seeds, band = min-max "
                "over seeds, one row per size.")


def spectrum_computed(data):
    """True if eff_rank holds any positive finite value.

    A layer whose activations are all constant has effective rank 0 by
    convention (docs/spectrum.md), but a whole dataset of zeros (or NaN/fill)
    means the spectra were not computed.
    """
    if not data.has("eff_rank"):
        return False
    v = np.asarray(data.ds["eff_rank"].values, dtype=float)
    return bool(np.any(np.isfinite(v) & (v > 0)))


def eff_rank(data, outdir):
    """Effective rank of each layer's centred held-out activations over training."""
    name, title = "eff_rank", "Effective rank"
    if not spectrum_computed(data) or _eval_x(data) is None:
        fig, axes = grid(1, panel=(7, 2))
        note(axes[0], "effective rank not computed in this dataset (all values NaN, fill or 0)")
        return save(fig, outdir, name, title,
                    "Not available: the dataset holds no effective rank (spectra not computed).")
    fig, axes = grid(len(data.sizes))
    for i, ax in enumerate(axes):
        if _per_layer(ax, data, i, "eff_rank", 1):
            ax.legend(fontsize=7, ncol=2)
        ax.set_title(size_title(data, i), fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("effective rank exp(H(p))")
    return save(fig, outdir, name, title,
                "Effective rank exp(H(p)) of the centred held-out activation matrix per layer "
                "over training, one panel per size; line = mean over seeds, band = min-max.")
