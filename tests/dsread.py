#!/usr/bin/python3
"""Small reader for tests: print or compare variables of reluscope datasets.

  dsread.py get FILE VAR [INDEX...]     print the values (repr, full precision)
  dsread.py same FILE1 FILE2 VAR [--size I --seed J] [--steps A:B] [--rtol R]
      exit 0 if VAR agrees between the files (bitwise unless --rtol),
      over the given size/seed/step ranges; prints the first difference.
"""
import sys
import numpy as np
import netCDF4


def load(path, var, size=None, seed=None, steps=None):
    with netCDF4.Dataset(path) as ds:
        v = ds.variables[var]
        v.set_auto_mask(False)
        a = v[:]
        fill = getattr(v, "_FillValue", None)
    if size is not None:
        a = a[size]
    if seed is not None:
        a = a[seed]
    if steps is not None:
        a = a[steps[0]:steps[1]]
    return np.asarray(a), fill


def parse(args):
    opts = {"size": None, "seed": None, "steps": None, "rtol": 0.0, "size2": None, "seed2": None}
    pos = []
    i = 0
    while i < len(args):
        if args[i] in ("--size", "--seed", "--size2", "--seed2"):
            opts[args[i][2:]] = int(args[i + 1]); i += 2
        elif args[i] == "--steps":
            a, b = args[i + 1].split(":"); opts["steps"] = (int(a), int(b)); i += 2
        elif args[i] == "--rtol":
            opts["rtol"] = float(args[i + 1]); i += 2
        else:
            pos.append(args[i]); i += 1
    return pos, opts


def main():
    cmd, rest = sys.argv[1], sys.argv[2:]
    pos, o = parse(rest)
    if cmd == "get":
        a, _ = load(pos[0], pos[1], o["size"], o["seed"], o["steps"])
        np.set_printoptions(precision=17, threshold=100000)
        print(repr(a.tolist()))
        return 0
    f1, f2, var = pos
    s2 = o["size2"] if o["size2"] is not None else o["size"]
    k2 = o["seed2"] if o["seed2"] is not None else o["seed"]
    a, fill = load(f1, var, o["size"], o["seed"], o["steps"])
    b, _ = load(f2, var, s2, k2, o["steps"])
    if a.shape != b.shape:
        print(f"{var}: shapes differ {a.shape} vs {b.shape}")
        return 1
    if fill is not None and np.any(a == fill):
        print(f"{var}: {int(np.sum(a == fill))} fill values (missing steps) in {f1}")
        return 1
    if o["rtol"] == 0.0:
        bad = a.view(np.uint8) != b.view(np.uint8) if a.dtype.kind == "f" else a != b
        ok = not np.any(bad)
    else:
        ok = np.allclose(a, b, rtol=o["rtol"], atol=0.0)
    if not ok:
        idx = np.argwhere(a != b)[0] if np.any(a != b) else None
        print(f"{var}: differ, first at {idx}: {a[tuple(idx)]!r} vs {b[tuple(idx)]!r}"
              if idx is not None else f"{var}: differ")
        return 1
    print(f"{var}: equal ({a.size} values)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
