"""layer0.py — the mechanism probe of docs/study.md: how token-specific each layer's units are,
and how batch use grows with the number of tokens, from checkpoints.

    /usr/bin/python3 -m analysis.layer0 --tokens SHARD --out DIR [--bin bin/reluscope]
        [--sizes 512,1024,...] LABEL=CHECKPOINT ...

For every checkpoint and every token count n of --sizes, runs
`reluscope eval --checkpoint CKPT --tokens SHARD --max-tokens n --json --selectivity`
(the first n/T windows of SHARD: at n = eval_tokens these are exactly the run's held-out
batch) and writes into DIR:
  layer0.csv            one row per checkpoint, n and layer: token/sequence/batch use, the
                        distinct token ids present among the n tokens and their share of the
                        vocabulary (coverage), the quantiles of ids per unit (as a share of the
                        ids present), the specialist and generalist shares of units
  layer0_batch_use.png  batch use per layer against n (log axis), one panel per checkpoint,
                        with the vocabulary coverage: the batch use a layer of one-token
                        detectors (one unit per id) would have
  layer0.md             the table at n = --at (default 8192): per checkpoint and layer
Why: a layer whose units each fire for a few token ids behaves like a lookup table on the
current token, and its batch use then falls to about the share of the vocabulary a batch
contains. The study's 13% at 8192 tokens is what such a layer gives with a vocabulary of a
few 10^4 ids; a layer whose units fire for most ids stays at 100% at any batch size.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

QS = ("q10", "q25", "q50", "q75", "q90")   # reluscope's SELECTIVITY_Q
COLUMNS = ("label", "tokens", "layer", "token_use", "seq_use", "batch_use", "ids_present",
           "vocab", "coverage", *("ids_" + q for q in QS), "specialist", "generalist")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m analysis.layer0",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", metavar="LABEL=CHECKPOINT")
    p.add_argument("--tokens", required=True, help="a token shard (e.g. data/brown/val_000000.bin)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--bin", default="bin/reluscope", help="the reluscope binary")
    p.add_argument("--sizes", default="512,1024,2048,4096,8192,16384,32768,65536",
                   help="token counts n (multiples of T), comma-separated")
    p.add_argument("--at", type=int, default=8192, help="the n of the markdown table")
    return p.parse_args(argv)


def run_eval(binary, ckpt, shard, n):
    cmd = [binary, "eval", "--checkpoint", ckpt, "--tokens", shard, "--max-tokens", str(n),
           "--json", "--selectivity"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"analysis.layer0: error: {' '.join(cmd)}: {why}")
    return json.loads(done.stdout)


def rows_of(label, n, e):
    for l, (u, s) in enumerate(zip(e["layers"], e["selectivity"])):
        yield {"label": label, "tokens": e["tokens"], "layer": l,
               "token_use": u["token_use_mean"], "seq_use": u["seq_use_mean"],
               "batch_use": u["batch_use"], "ids_present": s["ids_present"],
               "vocab": e["vocab"], "coverage": s["ids_present"] / e["vocab"],
               **{"ids_" + q: v for q, v in zip(QS, s["ids_per_unit_q"])},
               "specialist": s["specialist_frac"], "generalist": s["generalist_frac"]}


def plot(rows, labels, path):
    cols = min(3, len(labels))
    nrows = (len(labels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.0 * nrows), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(labels):]:
        ax.axis("off")
    for ax, label in zip(axes.flat, labels):
        mine = [r for r in rows if r["label"] == label]
        layers = sorted({r["layer"] for r in mine})
        cmap = plt.get_cmap("viridis")
        for l in layers:
            pts = sorted((r["tokens"], r["batch_use"]) for r in mine if r["layer"] == l)
            ax.plot(*zip(*pts), marker="o", ms=3, color=cmap(l / max(1, len(layers) - 1)),
                    label=f"layer {l}")
        cov = sorted({(r["tokens"], r["coverage"]) for r in mine})
        ax.plot(*zip(*cov), "k--", lw=1, label="vocab coverage")
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.02)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("tokens in the batch")
    for row in axes:
        row[0].set_ylabel("batch use")
    axes.flat[len(labels) - 1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows, labels, at):
    out = [f"Per layer on the first {at} tokens: token and batch use, the median unit's distinct "
           "token ids as a share of the ids present, and the shares of specialist (<= 1% of the "
           "ids) and generalist (>= 50%) units.", "",
           "| checkpoint | layer | token use % | batch use % | ids/unit (median) | specialist % "
           "| generalist % | ids present / V |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label in labels:
        for r in (r for r in rows if r["label"] == label and r["tokens"] == at):
            out.append(f"| {label} | {r['layer']} | {100 * r['token_use']:.1f} | "
                       f"{100 * r['batch_use']:.1f} | {r['ids_q50']:.3f} | "
                       f"{100 * r['specialist']:.1f} | {100 * r['generalist']:.1f} | "
                       f"{r['ids_present']} / {r['vocab']} |")
    return "\n".join(out) + "\n"


def main(argv):
    args = parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    pairs = [c.split("=", 1) for c in args.checkpoints]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit("analysis.layer0: error: give checkpoints as LABEL=PATH")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for label, ckpt in pairs:
        for n in sizes:
            rows.extend(rows_of(label, n, run_eval(args.bin, ckpt, args.tokens, n)))
    with open(os.path.join(args.out, "layer0.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    labels = [label for label, _ in pairs]
    plot(rows, labels, os.path.join(args.out, "layer0_batch_use.png"))
    with open(os.path.join(args.out, "layer0.md"), "w") as f:
        f.write(table(rows, labels, args.at))
    print(f"layer0: {len(rows)} rows into {args.out}/layer0.csv, layer0.md, layer0_batch_use.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
