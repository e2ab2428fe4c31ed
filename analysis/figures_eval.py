"""Figures of the held-out evaluation: loss, usage and effective rank."""
from .figures import n_seeds_of, layer_panels, size_title
from .load import EVAL_DIM
from .plotkit import grid, layer_color, note, save, seed_stats, seeds_phrase, spread, usage_axis
from .tables import batch_text

EVAL_COLUMNS = [("eval_loss", "held-out loss (nats)", 1),
                ("eval_token_use_mean", "token usage (%)", 100),
                ("eval_seq_use_mean", "sequence usage (%)", 100),
                ("eval_batch_use", "batch usage (%)", 100)]


def _has_values(data, var):
    """var exists and holds a value (with val_data = "" the eval axis has length 0)."""
    return data.has(var) and data.ds.sizes.get(EVAL_DIM, 0) > 0 and bool(data.ds[var].notnull().any())


def _panel(ax, data, i, var, scale):
    a = data.ds[var].isel(size=i) * scale
    mean, std, _ = seed_stats(a)
    x = a[EVAL_DIM].values
    if "layer" not in a.dims:
        spread(ax, x, mean, std, "C3", "held-out loss", marker="o")
        return
    for l in range(data.n_layer[i]):
        spread(ax, x, mean.isel(layer=l), std.isel(layer=l), layer_color(l, data.lmax),
               f"layer {l}", marker="o")


def heldout(data, outdir):
    """Columns: held-out loss, token, sequence and batch usage; one row per size."""
    name, title = "heldout", "Held-out evaluation"
    cols = [c for c in EVAL_COLUMNS if _has_values(data, c[0])]
    n = max(1, len(cols))
    fig, axes = grid(n * len(data.sizes), ncols=n, panel=(3.6, 2.7))
    if not cols:
        for ax in axes[1:]:
            ax.set_visible(False)
        note(axes[0], "no held-out evaluation in this dataset (val_data empty?)")
        return save(fig, outdir, name, title, "Not available: the dataset has no held-out series.")
    for r, (var, label, scale) in enumerate(cols):
        for i in range(len(data.sizes)):
            ax = axes[i * n + r]
            _panel(ax, data, i, var, scale)
            ax.set_title(size_title(data, i), fontsize=9)
            ax.set_xlabel("training step", fontsize=8)
            if scale == 100:
                usage_axis(ax, label)
            else:
                ax.set_ylabel(label, fontsize=8)
    seeds = n_seeds_of(data, "eval_loss")
    return save(fig, outdir, name, title,
                f"Loss and per-layer usage on {batch_text(data.ds, 'heldout')} at each evaluation "
                f"step (the last one evaluates the final weights); {seeds_phrase(seeds)}; one row "
                "per size.", legend_axes=axes)


def spectrum_computed(data):
    """True if eff_rank holds any positive finite value.

    A layer whose activations are all constant has effective rank 0 by
    convention (docs/spectrum.md), but a whole dataset of zeros (or NaN/fill)
    means the spectra were not computed.
    """
    if not data.has("eff_rank") or data.ds.sizes.get(EVAL_DIM, 0) == 0:
        return False
    return bool((data.ds["eff_rank"] > 0).any())


def eff_rank(data, outdir):
    """Effective rank of each layer's centred held-out activations over training."""
    name, title = "eff_rank", "Effective rank"
    if not spectrum_computed(data):
        fig, axes = grid(1, panel=(7, 2))
        note(axes[0], "effective rank not computed in this dataset (all values NaN, fill or 0)")
        return save(fig, outdir, name, title,
                    "Not available: the dataset holds no effective rank (spectra not computed).")
    seeds = n_seeds_of(data, "eff_rank")

    def log_axis(ax):
        ax.set_yscale("log")
    fig = layer_panels(data, outdir, "eff_rank", name, title,
                       f"Effective rank exp(H(p)) of the centred activation matrix of "
                       f"{batch_text(data.ds, 'heldout')} per layer over training, on a log scale, "
                       f"one panel per size; {seeds_phrase(seeds)}.",
                       "effective rank exp(H(p))", dim=EVAL_DIM, percent=False, hook=log_axis)
    return fig

