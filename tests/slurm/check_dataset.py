#!/usr/bin/python3
"""Checks for tests/t_slurm.sh on reluscope NetCDF datasets (SPEC §5).

  check_dataset.py grid DS --sizes a,b --seeds 0,1,2 --steps N
      DS holds every listed size and seed (and nothing else), each with
      `loss` and `batch_use` present (no fill; for batch_use in every layer
      the size has) and finite at steps 0..N-1, and the step coordinate is
      0..N-1, each step once.
  check_dataset.py same A B --steps N VAR...
      A and B both hold steps 0..N-1 exactly once, and VAR is bitwise equal
      (same shape, no fill values) in A and B.
Prints one line per problem and exits 1 if there is any.
"""
import argparse
import sys

import netCDF4
import numpy as np


def names(ds, var):
    v = ds.variables[var]
    a = v[:]
    if v.dtype == str or (getattr(a, "dtype", None) is not None and a.dtype.kind in "OSU"):
        if a.dtype.kind == "S":          # char array: (n, strlen)
            a = netCDF4.chartostring(a)
        return [str(x) for x in np.asarray(a).tolist()]
    return [x for x in np.asarray(a).tolist()]


def check_steps(ds, n, path, problems):
    steps = np.asarray(ds.variables["step"][:]) if "step" in ds.variables else None
    if steps is None:
        problems.append(f"{path}: no step coordinate")
        return
    steps = steps[: len(steps)]
    if len(steps) != n or not np.array_equal(steps, np.arange(n)):
        uniq, counts = np.unique(steps, return_counts=True)
        dup = uniq[counts > 1].tolist()[:5]
        missing = sorted(set(range(n)) - set(uniq.tolist()))[:5]
        problems.append(f"{path}: step coordinate has {len(steps)} entries, want 0..{n - 1} once each"
                        f" (duplicates {dup}, missing {missing})")


def values(ds, var, path, problems):
    if var not in ds.variables:
        problems.append(f"{path}: no variable {var}")
        return None
    v = ds.variables[var]
    v.set_auto_mask(True)
    return v[:]


def cmd_grid(a):
    problems = []
    want_sizes = a.sizes.split(",")
    want_seeds = [int(s) for s in a.seeds.split(",")]
    with netCDF4.Dataset(a.ds) as ds:
        check_steps(ds, a.steps, a.ds, problems)
        sizes = names(ds, "size") if "size" in ds.variables else None
        seeds = names(ds, "seed") if "seed" in ds.variables else None
        if sizes is None or seeds is None:
            problems.append(f"{a.ds}: no size or seed coordinate")
        else:
            if all(isinstance(s, str) for s in sizes):
                if sorted(sizes) != sorted(want_sizes):
                    problems.append(f"{a.ds}: sizes {sizes}, want {want_sizes}")
            elif len(sizes) != len(want_sizes):
                problems.append(f"{a.ds}: {len(sizes)} sizes, want {len(want_sizes)}")
            if sorted(int(s) for s in seeds) != sorted(want_seeds):
                problems.append(f"{a.ds}: seeds {seeds}, want {want_seeds}")
        for var in ("loss", "batch_use"):
            x = values(ds, var, a.ds, problems)
            if x is None or sizes is None or seeds is None:
                continue
            for i, s in enumerate(sizes):
                for j, k in enumerate(seeds):
                    run = x[i, j, : a.steps]
                    if run.ndim == 2:
                        # (step, layer): a size with fewer layers than
                        # another is padded with fill in the missing layers
                        present = ~np.all(np.ma.getmaskarray(run), axis=0)
                        if not np.any(present):
                            problems.append(f"{a.ds}: {var} of size {s} seed {k}: no layer has data")
                            continue
                        run = run[:, present]
                    miss = int(np.ma.count_masked(run))
                    if run.shape[0] != a.steps or miss:
                        problems.append(f"{a.ds}: {var} of size {s} seed {k}: "
                                        f"{miss} of {a.steps} steps missing (shape {run.shape})")
                    elif not np.all(np.isfinite(np.ma.getdata(run))):
                        problems.append(f"{a.ds}: {var} of size {s} seed {k} is not finite")
    for p in problems:
        print(p)
    if not problems:
        print(f"{a.ds}: {len(want_sizes)} sizes x {len(want_seeds)} seeds x {a.steps} steps, complete")
    return 1 if problems else 0


def cmd_same(a):
    problems = []
    with netCDF4.Dataset(a.a) as da, netCDF4.Dataset(a.b) as db:
        check_steps(da, a.steps, a.a, problems)
        check_steps(db, a.steps, a.b, problems)
        for var in a.vars:
            x = values(da, var, a.a, problems)
            y = values(db, var, a.b, problems)
            if x is None or y is None:
                continue
            if x.shape != y.shape:
                problems.append(f"{var}: shapes differ {x.shape} vs {y.shape}")
                continue
            mx, my = np.ma.count_masked(x), np.ma.count_masked(y)
            if mx or my:
                problems.append(f"{var}: fill values (missing steps): {mx} in {a.a}, {my} in {a.b}")
                continue
            xd, yd = np.ascontiguousarray(np.ma.getdata(x)), np.ascontiguousarray(np.ma.getdata(y))
            bad = xd.view(np.uint8) != yd.view(np.uint8) if xd.dtype.kind == "f" else xd != yd
            if np.any(bad):
                idx = tuple(np.argwhere(xd != yd)[0]) if np.any(xd != yd) else None
                problems.append(f"{var}: differs, first at index {idx}: "
                                f"{xd[idx]!r} vs {yd[idx]!r}" if idx is not None else f"{var}: differs")
            else:
                print(f"{var}: bitwise equal ({xd.size} values)")
    for p in problems:
        print(p)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grid")
    g.add_argument("ds")
    g.add_argument("--sizes", required=True)
    g.add_argument("--seeds", required=True)
    g.add_argument("--steps", type=int, required=True)
    s = sub.add_parser("same")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("vars", nargs="+")
    a = ap.parse_args()
    return cmd_grid(a) if a.cmd == "grid" else cmd_same(a)


if __name__ == "__main__":
    sys.exit(main())
