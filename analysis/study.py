"""study.py — the layer-0 ablation of docs/study.md: Figure 1 per variant and Table 1.

    /usr/bin/python3 analysis/study.py --out docs/study LABEL=DATASET[:SIZE] ...

Each argument names one variant: a dataset written by `reluscope train` and,
if it holds several sizes, the size to use (default: the first). Every seed
of that size is used. Writes, into --out:
  fig1_<label>.png   held-out batch use per layer over training (each seed a
                     thin line, the seed mean thick; 0-100 %)
  fig1_all.png       the same, one panel per variant, shared axes
  table1.md          per variant and layer at the last evaluation: held-out
                     token, sequence and batch use (mean ± std over seeds, n),
                     the training batch's use at the last step, beside the
                     study's layer-0 and last-layer batch use
The held-out batch is the fixed `eval_tokens`-token batch of the config (the
same tokens for every variant and seed), the quantity comparable to the
study's 8192-token batches.
"""
import argparse
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

STUDY = {"first": 0.133, "last": 0.956}   # Wild & Anderson (2024), Table 1, batch level


def load(spec):
    label, _, rest = spec.partition("=")
    path, _, size = rest.partition(":")
    ds = xr.open_dataset(path)
    size = size or str(ds["size"].values[0])
    return label, ds.sel(size=size), path, size


def last_eval(ds):
    """Index of the last evaluation every seed reached (a valid eval_step)."""
    steps = ds["eval_step"].values
    ok = np.where(np.all(np.isfinite(ds["eval_loss"].values), axis=0))[0] if steps.ndim == 1 \
        else np.arange(len(steps))
    return int(ok[-1])


def layer_colors(n):
    cmap = plt.get_cmap("viridis")
    return [cmap(i / max(1, n - 1)) for i in range(n)]


def plot_variant(ax, label, ds):
    use = ds["eval_batch_use"]   # (seed, eval, layer)
    steps = ds["eval_step"].values
    L = int(ds["n_layer"].values)
    colors = layer_colors(L)
    for layer in range(L):
        series = use.isel(layer=layer).values * 100
        for seed_series in series:
            ax.plot(steps, seed_series, color=colors[layer], lw=0.6, alpha=0.45)
        ax.plot(steps, np.nanmean(series, axis=0), color=colors[layer], lw=1.8,
                label=f"layer {layer}")
    ax.set_title(f"{label} (n = {use.sizes['seed']} seeds)", fontsize=9)
    ax.set_ylim(0, 102)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)


def figure1(variants, out):
    n = len(variants)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (label, ds, _, _) in zip(axes.flat, variants):
        plot_variant(ax, label, ds)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("held-out batch use (%)")
    tokens = int(variants[0][1]["eval_tokens"].values.flat[0])
    deepest = max(range(n), key=lambda k: int(variants[k][1]["n_layer"].values))
    handles, labels = axes.flat[deepest].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"Figure 1: units used on the fixed {tokens}-token held-out batch", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.savefig(os.path.join(out, "fig1_all.png"), dpi=110)
    plt.close(fig)
    for label, ds, _, _ in variants:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        plot_variant(ax, label, ds)
        ax.set_ylabel("held-out batch use (%)")
        ax.legend(fontsize=7, ncol=2, loc="lower left", frameon=False)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"fig1_{label}.png"), dpi=110)
        plt.close(fig)


def pm(values):
    values = np.asarray(values, dtype=float) * 100
    if values.size == 1:
        return f"{values[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def table1(variants):
    lines = ["| variant | n | step | layer | token use % | seq use % | batch use % (held-out) "
             "| batch use % (training batch, last step) | study batch use % |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, ds, path, size in variants:
        i = last_eval(ds)
        step = int(ds["eval_step"].values[i])
        L = int(ds["n_layer"].values)
        last_train = int(np.max(np.where(np.isfinite(ds["loss"].values).all(axis=0))[0]))
        for layer in range(L):
            sel = dict(eval=i, layer=layer)
            study = STUDY["first"] if layer == 0 else STUDY["last"] if layer == L - 1 else None
            lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                label, ds.sizes["seed"], step, layer,
                pm(ds["eval_token_use_mean"].isel(**sel).values),
                pm(ds["eval_seq_use_mean"].isel(**sel).values),
                pm(ds["eval_batch_use"].isel(**sel).values),
                pm(ds["batch_use"].isel(step=last_train, layer=layer).values),
                "" if study is None else f"{study * 100:.1f}"))
    return "\n".join(lines) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("variants", nargs="+", help="LABEL=DATASET[:SIZE]")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    variants = [load(v) for v in args.variants]
    figure1(variants, args.out)
    text = table1(variants)
    with open(os.path.join(args.out, "table1.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
