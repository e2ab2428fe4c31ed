#!/usr/bin/python3
"""Dataset and checkpoint checks of tests/t_faults.sh (one process per check).

  dscheck.py opens FILE
      the file opens with netCDF4 and every root variable reads.
  dscheck.py prefix FILE REF LAST_LOGGED FLUSH_EVERY [MAX_STEP [COMPARE_TO]]
      FILE (a dataset left by a failed job, after its journal was applied)
      holds steps 0..H with no hole, where H >= LAST_LOGGED - FLUSH_EVERY
      (at most the unflushed interval is lost: the trainer logs a step before
      flushing it, and flushes at least every FLUSH_EVERY steps) and
      H <= MAX_STEP (default LAST_LOGGED); nothing after H; no NaN; and
      steps 0..min(H, COMPARE_TO) equal REF (an uninterrupted run) bit for
      bit (COMPARE_TO: the last step before an injected fault changed the
      numbers; default H). Prints H.
  dscheck.py same FILE REF
      every step series and evaluation of the first run equals REF bit for
      bit over the whole run (resume == uninterrupted).
  dscheck.py ckpt-finite CKPT
      every parameter and optimizer value of the checkpoint is finite
      (layout: docs/checkpoint.md). Prints its step.
"""
import struct
import sys

import netCDF4
import numpy as np

STEP_VARS = ["loss", "lr", "grad_norm", "tokens_seen", "token_use_mean", "seq_use_mean",
             "batch_use", "dead_frac", "turned_off", "revived", "token_use_q", "seq_use_q"]
EVAL_VARS = ["eval_loss", "eval_batch_use", "eval_token_use_q", "eff_rank"]


def fail(msg):
    print("dscheck: " + msg)
    sys.exit(1)


def series(ds, var):
    v = ds[var]
    v.set_auto_mask(False)
    a = np.asarray(v[0, 0])          # first size, first seed: (step[, layer[, q]])
    return a, getattr(v, "_FillValue", None)


def held_steps(ds):
    a, fill = series(ds, "loss")
    ok = a != fill
    if not ok.any():
        return -1
    last = int(np.nonzero(ok)[0].max())
    holes = np.nonzero(~ok[: last + 1])[0]
    if len(holes):
        fail(f"steps missing inside the stored range 0..{last}: {holes[:10].tolist()}")
    return last


def cmd_opens(path):
    with netCDF4.Dataset(path) as ds:
        n = 0
        for g in [ds] + list(ds.groups.values()):
            for v in g.variables.values():
                v[:]
                n += 1
    print(f"{path}: opens, all {n} variables read")


def equal(a, b):
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a.view(np.uint8), b.view(np.uint8))
    return np.array_equal(a, b)


def cmd_prefix(path, ref, last_logged, flush_every, max_step=None, compare_to=None):
    last_logged, flush_every = int(last_logged), int(flush_every)
    max_step = last_logged if max_step is None else int(max_step)
    with netCDF4.Dataset(path) as ds, netCDF4.Dataset(ref) as dr:
        h = held_steps(ds)
        if h < last_logged - flush_every:
            fail(f"{path}: holds steps 0..{h}, but steps up to {last_logged - flush_every} "
                 f"were flushed (last logged step {last_logged}, flush_every {flush_every})")
        if h > max_step:
            fail(f"{path}: holds steps up to {h}, beyond step {max_step}")
        c = h if compare_to is None else min(h, int(compare_to))
        for var in STEP_VARS:
            a, fill = series(ds, var)
            b, _ = series(dr, var)
            if a.dtype.kind == "f" and np.isnan(a[: h + 1]).any():
                fail(f"{path}: {var} holds NaN")
            if not equal(a[: c + 1], b[: c + 1]):
                i = int(np.nonzero((a[: c + 1] != b[: c + 1]).reshape(c + 1, -1).any(1))[0][0])
                fail(f"{path}: {var} differs from the uninterrupted run at step {i}")
            if fill is not None and h + 1 < len(a) and not (a[h + 1:] == fill).all():
                fail(f"{path}: {var} has values after step {h}")
    print(h)


def cmd_same(path, ref):
    with netCDF4.Dataset(path) as ds, netCDF4.Dataset(ref) as dr:
        for var in STEP_VARS + [v for v in EVAL_VARS if v in dr.variables]:
            a, fill = series(ds, var)
            b, _ = series(dr, var)
            if fill is not None and (a == fill).any():
                fail(f"{path}: {var} has missing values (fill) in the resumed run")
            if not equal(a, b):
                bad = np.nonzero((a != b).reshape(a.shape[0], -1).any(1))[0] \
                    if a.shape == b.shape else []
                where = f"first at index {int(bad[0])}" if len(bad) else f"shapes {a.shape} {b.shape}"
                fail(f"{path}: {var} differs from the uninterrupted run ({where})")
    print(f"{path}: equals {ref} in {len(STEP_VARS)} step series and the evaluations")


def cmd_ckpt_finite(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"RSCKPT01":
        fail(f"{path}: not a checkpoint")
    step = struct.unpack_from("<q", data, 80)[0]
    P, C = struct.unpack_from("<QQ", data, 144)
    table = (160 + C + 7) // 8 * 8
    vals = np.frombuffer(data, dtype="<f4", count=3 * P, offset=table + 1024)
    if not np.isfinite(vals).all():
        fail(f"{path}: {int((~np.isfinite(vals)).sum())} parameter/optimizer values are not finite")
    print(step)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"opens": cmd_opens, "prefix": cmd_prefix, "same": cmd_same,
     "ckpt-finite": cmd_ckpt_finite}[cmd](*args)


if __name__ == "__main__":
    main()
