#!/usr/bin/python3
"""The three intervention tests of docs/interventions.md, on reluscope datasets.

  interventions.py attribution DATASET [--skip N] [--json]
      For every death found in the per-unit snapshots: the step the unit last
      fired, that step's gradient norm and loss and the unit's pre-activation
      jump, against the same statistics on every eligible step (the expected
      value of a random step); the fraction of deaths at outlier steps next to
      the base rate.
  interventions.py forks FORK_DATASET [FORK_DATASET ...] [--checkpoint FILE] [--json]
      Per layer: the Jaccard overlap between forks (the runs of the datasets,
      one per data seed: forks of one checkpoint, in one dataset or run as
      separate jobs) of the sets of units alive at the fork and off at the
      end, against the overlap expected by chance at the same death counts.
  interventions.py resample DATASET [--json]
      Per layer: units resampled, resampled units that died again, and how
      long they lived (from the resampled / redied / redied_life variables).
  interventions.py all DATASET [--forks FORK_DATASET ...] [--json]

Definitions (docs/interventions.md says the same):
- A unit is off at a snapshot at step t when t - last_fire >= dead_window. A
  death is a unit that fired at least once, is off at snapshot k, and was not
  off at snapshot k-1 or fired since (its last_fire changed). Its last firing
  step s = last_fire at snapshot k is exact (the tracker records every step).
- Eligible steps of a run: steps >= skip at which a death could have its last
  firing and be seen, i.e. s <= (last snapshot step) - dead_window.
- Outlier step, global: grad_norm above the 99th percentile of the run's
  eligible steps (the rule the issue names). Outlier step, local: grad_norm /
  (median grad_norm of the steps within +-LOCAL steps) above the 99th
  percentile of that ratio (the global rule mostly flags the start of
  training, where the norm is high and falling).
- Base rate: the fraction of eligible steps that are outliers (exactly the
  probability that a uniformly random eligible step is one).
- Pre-activation jump of a death: premax at the first snapshot after s minus
  premax at the last snapshot at or before s (the interval in which the unit
  went silent). Baseline: the same difference for every (unit, interval) with
  the unit on at the interval's start and firing in it, which is what a
  random alive unit at a random step shows.
"""
import argparse
import json
import math
import struct
import sys
import warnings
import zlib

import numpy as np
import xarray as xr

try:
    from .load import parse_config   # as analysis.interventions (the report)
except ImportError:                  # as a script: analysis/ is sys.path[0]
    from load import parse_config

PCT = 99.0      # outlier threshold percentile
LOCAL = 50      # half-width of the local median window (steps)


# ------------------------------------------------------------------ reading

class Dataset:
    """The root series and the config of one dataset file."""

    def __init__(self, path):
        self.path = path
        self.ds = xr.open_dataset(path)
        self.conf = parse_config(self.ds.attrs.get("config", ""))
        self.window = int(self.conf.get("dead_window", "100"))
        self.sizes = [str(s) for s in self.ds["size"].values]
        self.seeds = [int(s) for s in self.ds["seed"].values]

    def series(self, name, i, j):
        return np.asarray(self.ds[name].isel(size=i, seed=j).values, dtype=float)

    def group(self, i, j):
        """The snapshot group of run (i, j) or None."""
        name = str(self.ds["run_group"].isel(size=i, seed=j).values) \
            if "run_group" in self.ds.variables else ""
        if not name:
            return None
        try:
            return xr.open_dataset(self.path, group=name, mask_and_scale=False)
        except OSError:
            return None

    def runs(self):
        for i, size in enumerate(self.sizes):
            for j, seed in enumerate(self.seeds):
                yield i, j, size, seed


def snapshot_arrays(g):
    """(steps[K], last_fire[K, L, F], premax[K, L, F]) of the written snapshots."""
    steps = np.asarray(g["snapshot_step"].values, dtype=np.int64)
    ok = steps >= 0   # unwritten slots hold the int64 fill
    last = np.asarray(g["last_fire"].values, dtype=np.int64)[ok]
    premax = np.asarray(g["premax"].values, dtype=float)[ok]
    return steps[ok], last, premax


# ------------------------------------------------------------------ deaths

def deaths(steps, last, window):
    """Death events: arrays (k, layer, unit, s) in snapshot order."""
    off = (steps[:, None, None] - last >= window) & (last >= 0)
    prev_off = np.zeros_like(off[:1])
    prev_last = np.full_like(last[:1], -2)
    ks, ls, us, ss = [], [], [], []
    for k in range(len(steps)):
        new = off[k] & (~prev_off[0] | (last[k] != prev_last[0]))
        l, u = np.nonzero(new)
        ks.append(np.full(len(l), k)); ls.append(l); us.append(u); ss.append(last[k][l, u])
        prev_off, prev_last = off[k:k + 1], last[k:k + 1]
    cat = (lambda a: np.concatenate(a) if a else np.zeros(0, dtype=np.int64))
    return cat(ks), cat(ls), cat(us), cat(ss)


def local_ratio(x, half):
    """x[t] / median(x[t-half .. t+half]) (NaN-aware)."""
    r = np.full_like(x, np.nan)
    for t in range(len(x)):
        if np.isfinite(x[t]):
            m = np.nanmedian(x[max(0, t - half):t + half + 1])
            r[t] = x[t] / m if m > 0 else np.nan
    return r


def local_diff(x, half):
    r = np.full_like(x, np.nan)
    for t in range(len(x)):
        if np.isfinite(x[t]):
            r[t] = x[t] - np.nanmedian(x[max(0, t - half):t + half + 1])
    return r


def binom_tail(k, n, p):
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    # in logs: with thousands of deaths, comb(n, x) * p**x overflows a float
    lp, lq, ln = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    logs = [ln - math.lgamma(x + 1) - math.lgamma(n - x + 1) + x * lp + (n - x) * lq
            for x in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def jumps(steps, last, premax, window, k, l, u, s):
    """Pre-activation jump of each death and the alive-unit baseline."""
    a = np.searchsorted(steps, s, side="right") - 1     # last snapshot <= s
    ok = (a >= 0) & (a + 1 < len(steps))
    d = np.full(len(s), np.nan)
    d[ok] = premax[a[ok] + 1, l[ok], u[ok]] - premax[a[ok], l[ok], u[ok]]
    base = []
    for q in range(len(steps) - 1):
        alive = (steps[q] - last[q] < window) & (last[q + 1] > steps[q])
        base.append((premax[q + 1] - premax[q])[alive])
    base = np.concatenate(base) if base else np.zeros(0)
    return d, base


def attribution(data, skip=0):
    """Per run: the attribution numbers (a list of dicts)."""
    out = []
    for i, j, size, seed in data.runs():
        if "resampled" in data.ds.variables and np.nansum(data.series("resampled", i, j)) > 0:
            out.append(dict(size=size, seed=seed, skipped="resample_dead re-initialized units "
                            "(their last_fire restarts): attribute deaths on runs without it"))
            continue
        g = data.group(i, j)
        if g is None:
            continue
        steps, last, premax = snapshot_arrays(g)
        gn, loss = data.series("grad_norm", i, j), data.series("loss", i, j)
        if len(steps) < 2:
            continue
        W = data.window
        k, l, u, s = deaths(steps, last, W)
        hi = int(steps[-1]) - W
        keep = (s >= skip) & (s <= hi)
        k, l, u, s = k[keep], l[keep], u[keep], s[keep]
        elig = np.arange(skip, hi + 1)
        elig = elig[(elig < len(gn)) & np.isfinite(gn[np.minimum(elig, len(gn) - 1)])]
        if len(elig) == 0:
            continue
        thr = np.percentile(gn[elig], PCT)
        ratio = local_ratio(gn, LOCAL)
        rthr = np.nanpercentile(ratio[elig], PCT)
        dloss = local_diff(loss, LOCAL)
        out_g = gn > thr
        out_l = ratio > rthr
        jd, jb = jumps(steps, last, premax, W, k, l, u, s)
        p1 = float(np.percentile(jb, 1)) if len(jb) else float("nan")
        n = len(s)
        rec = dict(size=size, seed=seed, deaths=n, eligible_steps=int(len(elig)),
                   window=W, skip=skip, p99_grad_norm=float(thr),
                   death_frac_outlier=float(out_g[s].mean()) if n else float("nan"),
                   base_rate_outlier=float(out_g[elig].mean()),
                   p_value_outlier=binom_tail(int(out_g[s].sum()), n, float(out_g[elig].mean())),
                   death_frac_outlier_local=float(out_l[s].mean()) if n else float("nan"),
                   base_rate_outlier_local=float(np.nanmean(out_l[elig])),
                   p_value_outlier_local=binom_tail(int(out_l[s].sum()), n,
                                                    float(np.nanmean(out_l[elig]))),
                   death_grad_norm_median=float(np.median(gn[s])) if n else float("nan"),
                   step_grad_norm_median=float(np.median(gn[elig])),
                   death_grad_ratio_median=float(np.nanmedian(ratio[s])) if n else float("nan"),
                   step_grad_ratio_median=float(np.nanmedian(ratio[elig])),
                   death_loss_excess_median=float(np.nanmedian(dloss[s])) if n else float("nan"),
                   step_loss_excess_median=float(np.nanmedian(dloss[elig])),
                   death_jump_median=float(np.nanmedian(jd)) if np.isfinite(jd).any() else float("nan"),
                   alive_jump_median=float(np.median(jb)) if len(jb) else float("nan"),
                   alive_jump_p1=p1,
                   death_frac_jump_below_p1=float(np.mean(jd[np.isfinite(jd)] < p1))
                   if np.isfinite(jd).any() else float("nan"),
                   per_layer=[dict(layer=int(layer), deaths=int((l == layer).sum()),
                                   frac_outlier=float(out_g[s[l == layer]].mean())
                                   if (l == layer).any() else float("nan"))
                              for layer in range(last.shape[1])],
                   events=dict(layer=l.tolist(), unit=u.tolist(), last_fire=s.tolist(),
                               outlier=out_g[s].tolist(), jump=jd.tolist()))
        out.append(rec)
    return out


def pooled(rows):
    """Per size, over its runs: deaths at (global, local) outlier steps against
    the expected count sum(deaths_run * base_rate_run), and the fraction."""
    out = {}
    for r in rows:
        if "skipped" in r or not r["deaths"]:
            continue
        p = out.setdefault(r["size"], dict(size=r["size"], runs=0, deaths=0, at_outlier=0,
                                           expected=0.0, at_local=0, expected_local=0.0))
        n = r["deaths"]
        p["runs"] += 1
        p["deaths"] += n
        p["at_outlier"] += int(round(r["death_frac_outlier"] * n))
        p["expected"] += n * r["base_rate_outlier"]
        p["at_local"] += int(round(r["death_frac_outlier_local"] * n))
        p["expected_local"] += n * r["base_rate_outlier_local"]
    return list(out.values())


# ------------------------------------------------------------------ forks

def checkpoint_last_fire(path):
    """(step, dead_window-independent last_fire[L][F]) from a checkpoint file
    (docs/checkpoint.md, versions 1 and 2)."""
    b = open(path, "rb").read()
    if b[:8] != b"RSCKPT01" or zlib.crc32(b[:-4]) != struct.unpack_from("<I", b, len(b) - 4)[0]:
        raise ValueError(f"{path}: not a valid reluscope checkpoint")
    version, = struct.unpack_from("<I", b, 8)
    L, d, h, F, T, V = struct.unpack_from("<6i", b, 16)
    step, = struct.unpack_from("<q", b, 80)
    P, C = struct.unpack_from("<QQ", b, 144)
    A = (160 + C + 7) // 8 * 8
    D = (A + 1024 + 12 * P + 7) // 8 * 8
    block = 16 + (24 if version >= 2 else 16) * F
    last = np.stack([np.frombuffer(b, "<i8", F, D + 8 + l * block + 16) for l in range(L)])
    return step, last


def hyper_jaccard(N, a, b):
    """Expected Jaccard |A∩B| / |A∪B| of uniformly random subsets of sizes a,
    b of N items, and the expected intersection a*b/N (hypergeometric)."""
    if a == 0 and b == 0:
        return float("nan"), 0.0
    lo, hi = max(0, a + b - N), min(a, b)
    tot = math.comb(N, b)
    ej = 0.0
    for x in range(lo, hi + 1):
        ej += math.comb(a, x) * math.comb(N - a, b - x) / tot * x / (a + b - x)
    return ej, a * b / N


def hyper_tail(N, a, b, x):
    """P(|A∩B| >= x) for random subsets of sizes a, b of N."""
    tot = math.comb(N, b)
    return float(sum(math.comb(a, y) * math.comb(N - a, b - y)
                     for y in range(max(x, 0), min(a, b) + 1)) / tot)


def fork_sets(data, i, ckpt=None):
    """Per fork (seed of the dataset): (fork step, alive-at-fork mask [L][F],
    died-after-fork mask [L][F]); the alive mask comes from the checkpoint if
    given, else from the fork's first snapshot (see docs/interventions.md)."""
    W = data.window
    sets = {}
    for j, seed in enumerate(data.seeds):
        loss = data.series("loss", i, j)
        written = np.nonzero(np.isfinite(loss))[0]
        g = data.group(i, j)
        if len(written) == 0 or g is None:
            continue
        k0 = int(written[0])
        steps, last, _ = snapshot_arrays(g)
        if len(steps) == 0:
            continue
        if ckpt is not None:
            cstep, clast = ckpt
            alive = (cstep - 1) - clast < W
        else:   # first snapshot at or after the fork: last_fire < k0 is the checkpoint's
            first = last[0]
            alive = ((k0 - 1) - np.where(first >= k0, k0 - 1, first) < W)
        end_off = steps[-1] - last[-1] >= W
        sets[seed] = (k0, alive, alive & end_off, int(steps[-1]))
    return sets


def pooled_fork_sets(datas, size, ckpt):
    """fork_sets of one size over several datasets of forks of the same checkpoint (forks
    run as separate jobs); a fork with data in two of them is refused."""
    sets, where = {}, {}
    for d in datas:
        if size not in d.sizes:
            continue
        for seed, v in fork_sets(d, d.sizes.index(size), ckpt).items():
            if seed in sets:
                raise ValueError(f"{d.path} and {where[seed]}: both hold fork {seed} of size {size}")
            sets[seed], where[seed] = v, d.path
    return sets


def fork_overlap(data, ckpt_path=None, others=()):
    """Per size and layer: mean Jaccard over fork pairs against chance. The forks are the
    runs of `data` and of the datasets in `others` (forks of the same checkpoint)."""
    ckpt = checkpoint_last_fire(ckpt_path) if ckpt_path else None
    out = []
    for size in data.sizes:
        sets = pooled_fork_sets([data, *others], size, ckpt)
        seeds = sorted(sets)
        if len(seeds) < 2:
            continue
        L = sets[seeds[0]][1].shape[0]
        for layer in range(L):
            obs, exp, inter, einter, pvals, counts = [], [], [], [], [], []
            for x in range(len(seeds)):
                for y in range(x + 1, len(seeds)):
                    ax, ay = sets[seeds[x]], sets[seeds[y]]
                    pop = ax[1][layer] & ay[1][layer]   # alive at the fork in both (the same)
                    N = int(pop.sum())
                    A, B = ax[2][layer] & pop, ay[2][layer] & pop
                    a, b, c = int(A.sum()), int(B.sum()), int((A & B).sum())
                    ej, ei = hyper_jaccard(N, a, b) if N else (float("nan"), 0.0)
                    obs.append(c / (a + b - c) if a + b - c else float("nan"))
                    exp.append(ej); inter.append(c); einter.append(ei)
                    pvals.append(hyper_tail(N, a, b, c) if N else float("nan"))
                    counts.append((a, b, N))
            out.append(dict(size=size, layer=layer, forks=len(seeds),
                            fork_step=sets[seeds[0]][0], end_step=sets[seeds[0]][3],
                            alive_at_fork=counts[0][2],
                            deaths_per_fork=[int(sets[s][2][layer].sum()) for s in seeds],
                            jaccard=float(np.nanmean(obs)) if obs else float("nan"),
                            jaccard_chance=float(np.nanmean(exp)) if exp else float("nan"),
                            shared_mean=float(np.mean(inter)),
                            shared_chance=float(np.mean(einter)),
                            p_value_max=float(np.nanmax(pvals)) if pvals else float("nan"),
                            alive_from="checkpoint" if ckpt else "first snapshot"))
    return out


# ------------------------------------------------------------------ resampling

def resampling(data):
    out = []
    if "resampled" not in data.ds.variables:
        return out
    for i, j, size, seed in data.runs():
        rs = data.series("resampled", i, j)
        rd = data.series("redied", i, j)
        life = data.series("redied_life", i, j)
        for layer in range(rs.shape[1]):
            n_rs, n_rd = np.nansum(rs[:, layer]), np.nansum(rd[:, layer])
            if not np.isfinite(rs[:, layer]).any():
                continue
            out.append(dict(size=size, seed=seed, layer=layer, resampled=int(n_rs),
                            redied=int(n_rd), alive_at_end=int(n_rs - n_rd),
                            frac_redied=float(n_rd / n_rs) if n_rs else float("nan"),
                            mean_life=float(np.nansum(life[:, layer]) / n_rd)
                            if n_rd else float("nan"),
                            window=data.window))
    return out


# ------------------------------------------------------------------ printing

def fmt(x, p=3):
    return "nan" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{p}g}"


def print_attribution(rows):
    print("== outlier attribution (deaths found in the snapshots; eligible = steps a death can "
          "have its last firing at)")
    for r in rows:
        if "skipped" in r:
            print(f"{r['size']} seed {r['seed']}: skipped: {r['skipped']}")
            continue
        print(f"{r['size']} seed {r['seed']}: {r['deaths']} deaths, {r['eligible_steps']} eligible "
              f"steps (skip {r['skip']}, dead_window {r['window']})")
        print(f"  at outlier steps (grad_norm > p99 = {fmt(r['p99_grad_norm'])}): "
              f"{fmt(r['death_frac_outlier'])} of deaths vs base rate "
              f"{fmt(r['base_rate_outlier'])} (P = {fmt(r['p_value_outlier'])})")
        print(f"  at local outlier steps (grad_norm / local median > p99): "
              f"{fmt(r['death_frac_outlier_local'])} vs base rate "
              f"{fmt(r['base_rate_outlier_local'])} (P = {fmt(r['p_value_outlier_local'])})")
        print(f"  grad_norm median: deaths {fmt(r['death_grad_norm_median'])} vs steps "
              f"{fmt(r['step_grad_norm_median'])}; / local median: "
              f"{fmt(r['death_grad_ratio_median'])} vs {fmt(r['step_grad_ratio_median'])}")
        print(f"  loss - local median: deaths {fmt(r['death_loss_excess_median'])} vs steps "
              f"{fmt(r['step_loss_excess_median'])}")
        print(f"  premax jump over the last-firing interval: deaths median "
              f"{fmt(r['death_jump_median'])} vs alive units {fmt(r['alive_jump_median'])}; "
              f"{fmt(r['death_frac_jump_below_p1'])} of deaths below the alive 1st percentile "
              f"{fmt(r['alive_jump_p1'])}")
        per = ", ".join(f"L{p['layer']} {p['deaths']} ({fmt(p['frac_outlier'])})"
                        for p in r["per_layer"])
        print(f"  per layer: deaths (fraction at outlier steps): {per}")
    for p in pooled(rows):
        print(f"{p['size']}, {p['runs']} runs pooled: {p['at_outlier']} of {p['deaths']} deaths at "
              f"outlier steps ({fmt(p['at_outlier'] / p['deaths'])}) vs {fmt(p['expected'])} "
              f"expected by the base rates ({fmt(p['expected'] / p['deaths'])}); local rule "
              f"{p['at_local']} vs {fmt(p['expected_local'])}")


def print_forks(rows):
    print("== forks: units alive at the fork and off at the end, overlap between forks")
    for r in rows:
        print(f"{r['size']} layer {r['layer']}: {r['forks']} forks from step {r['fork_step']} "
              f"to {r['end_step']}; {r['alive_at_fork']} alive at the fork; deaths "
              f"{r['deaths_per_fork']}; Jaccard {fmt(r['jaccard'])} vs chance "
              f"{fmt(r['jaccard_chance'])}; shared {fmt(r['shared_mean'])} vs chance "
              f"{fmt(r['shared_chance'])} (largest P over pairs {fmt(r['p_value_max'])}; "
              f"alive set from the {r['alive_from']})")


def print_resampling(rows):
    print("== resampling: units re-initialized, died again, lifetime (steps from the "
          "resampling to the last firing)")
    for r in rows:
        print(f"{r['size']} seed {r['seed']} layer {r['layer']}: resampled {r['resampled']}, "
              f"died again {r['redied']} ({fmt(r['frac_redied'])}), still alive "
              f"{r['alive_at_end']}, mean life {fmt(r['mean_life'])} steps "
              f"(dead_window {r['window']})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("attribution", "forks", "resample", "all"))
    p.add_argument("dataset", nargs="+", help="datasets (for `forks`: forks of one checkpoint, "
                   "e.g. run as separate jobs; the others: each analysed in turn)")
    p.add_argument("--forks", nargs="*", default=[], help="fork datasets (for `all`)")
    p.add_argument("--checkpoint", help="the fork's checkpoint (exact alive-at-fork sets)")
    p.add_argument("--skip", type=int, default=0, help="ignore deaths with last firing before")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = p.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)   # NaN means "no data" here
    result = {}
    datas = [Dataset(path) for path in a.dataset]
    if a.what in ("attribution", "all"):
        result["attribution"] = [row for d in datas for row in attribution(d, a.skip)]
        result["attribution_pooled"] = pooled(result["attribution"])
    if a.what in ("resample", "all"):
        result["resample"] = [row for d in datas for row in resampling(d)]
    if a.what == "forks":
        try:
            result["forks"] = fork_overlap(datas[0], a.checkpoint, datas[1:])
        except ValueError as e:
            print(f"interventions.py: error: {e}", file=sys.stderr)
            return 1
    for f in a.forks:
        result.setdefault("forks", []).extend(fork_overlap(Dataset(f), a.checkpoint))
    if a.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return 0
    if "attribution" in result:
        print_attribution(result["attribution"])
    if "forks" in result:
        print_forks(result["forks"])
    if "resample" in result:
        print_resampling(result["resample"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
