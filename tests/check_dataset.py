#!/usr/bin/python3
"""Reader-side checks of reluscope datasets with xarray (tests/t_dataset_xarray.sh).

  check_dataset.py sample FILE      the 2 sizes x 2 seeds sample of test_ncout
                                    --write-sample: layout, names, attributes, values
  check_dataset.py same FILE1 FILE2 every variable of the root group and of every
                                    snapshot group equal (a merge vs a direct write)
  check_dataset.py live FILE PID    read FILE again and again while process PID
                                    (test_ncout --live) writes it: every read works
                                    and shows right values (or fill past its end)

The sample's values are pure functions of (run, step, variable, layer, q):
see expect() in tests/test_ncout.c, mirrored below.
"""
import re
import sys

import numpy as np
import xarray as xr

ROOT_VARS = ["loss", "lr", "grad_norm", "tokens_seen", "step_time", "token_use_mean",
             "seq_use_mean", "batch_use", "dead_frac", "turned_off", "revived", "token_use_q",
             "seq_use_q", "eval_loss", "eval_tokens", "eval_token_use_mean", "eval_seq_use_mean",
             "eval_batch_use", "eval_token_use_q", "eval_seq_use_q", "eff_rank",
             "participation_ratio", "stable_rank_fc", "stable_rank_proj", "singular_values"]
GROUP_VARS = ["tokens_since", "fires_since", "last_fire", "premax", "premean", "b_in",
              "fc_norm", "proj_norm"]
LEVELS = [0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1]


def expect(vi, grun, step, layer=0, q=0):
    """tests/test_ncout.c expect() for double variables."""
    return vi * 1e6 + grun * 1e4 + step + layer * 0.125 + q * 0.0078125


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def check_layout(ds):
    want = {"size": 2, "seed": 2, "step": 40, "layer": 3, "quantile": 11, "eval": 4, "sv": 4}
    check(dict(ds.sizes) == want, f"dimensions {dict(ds.sizes)} != {want}")
    check(list(ds["size"].values) == ["small", "big"], f"size labels {ds['size'].values}")
    check(ds["seed"].dtype == np.uint64 and list(ds["seed"].values) == [7, 11], "seed coordinate")
    check(ds["step"].dtype == np.int64 and list(ds["step"].values) == list(range(40)), "step")
    check(list(ds["layer"].values) == [0, 1, 2], "layer coordinate")
    check(np.array_equal(ds["quantile"].values, LEVELS), "quantile levels")
    check("eval_step" in ds.coords and list(ds["eval_step"].values) == [0, 10, 20, 30],
          "eval_step is a coordinate of the eval series")
    for name in ROOT_VARS + ["n_layer", "d_model", "n_head", "n_hidden", "n_ctx", "n_vocab"]:
        check(name in ds.data_vars, f"{name} missing from the Dataset")
    check(ds["loss"].dims == ("size", "seed", "step"), f"loss dims {ds['loss'].dims}")
    check(ds["token_use_q"].dims == ("size", "seed", "step", "layer", "quantile"), "token_use_q dims")
    check(ds["singular_values"].dims == ("size", "seed", "eval", "layer", "sv"), "sv dims")
    check(list(ds["n_layer"].values) == [2, 3] and list(ds["n_hidden"].values) == [16, 24],
          "model shapes per size")


def check_attributes(ds):
    check(ds.attrs.get("Conventions") == "CF-1.8", "Conventions")
    for key in ("title", "config", "reluscope_version", "git_commit", "mpi_layout",
                "command_line", "start_time", "history"):
        check(key in ds.attrs, f"global attribute {key} missing")
    check(re.search(r"^sizes = small, ?big$", ds.attrs["config"], re.M) is not None,
          "the config text is stored whole")
    for name, var in ds.variables.items():
        check("long_name" in var.attrs, f"{name} has no long_name")
        if var.dtype.kind != "O":
            check("units" in var.attrs, f"{name} has no units")
    check(ds["loss"].attrs["units"] == "nats" and ds["step_time"].attrs["units"] == "s", "units")
    check(ds["step_time"].dtype == np.float64, "step_time decoded as seconds (float), not timedelta")


def check_values(ds):
    loss = ds["loss"].sel(size="big", seed=11, step=5).item()
    check(loss == expect(0, 3, 5), f"loss(big, 11, 5) = {loss!r}")
    q = ds["token_use_q"].sel(size="small", seed=7, step=3, layer=1, quantile=0.5).item()
    check(q == expect(11, 0, 3, 1, 5), f"token_use_q = {q!r}")
    off = ds["turned_off"].sel(size="big", seed=7, step=4, layer=1).item()
    check(off == 9 * 1000000 + 2 * 100000 + 4 * 10 + 1, f"turned_off = {off!r}")
    pad = ds["token_use_mean"].sel(size="small", layer=2)
    check(bool(pad.isnull().all()), "layer 2 of the 2-layer size is _FillValue (NaN)")
    check(not bool(ds["batch_use"].sel(size="big").isnull().any()), "no gaps in the series")
    ev = ds["eval_loss"].sel(size="small", seed=11).values
    check(list(ev) == [expect(13, 1, s) for s in (0, 10, 20, 30)], f"eval_loss {ev}")
    sv = ds["singular_values"].sel(size="big", seed=11, layer=2).isel(eval=3).values
    check(list(sv) == [expect(24, 3, 30, 2, k) for k in range(4)], f"singular values {sv}")
    # what an analysis does: one curve per layer, averaged over seeds
    curve = ds["batch_use"].sel(size="big").mean("seed")
    check(curve.dims == ("step", "layer") and curve.shape == (40, 3), "seed-mean of batch_use")


def check_group(path):
    g = xr.open_dataset(path, group="run_big_seed11")
    check(dict(g.sizes) == {"snapshot": 2, "layer": 3, "unit": 24}, f"group dims {dict(g.sizes)}")
    check(list(g["snapshot_step"].values) == [0, 20], "snapshot_step")
    fires = g["fires_since"].isel(snapshot=1).sel(layer=2, unit=5).item()
    check(fires == 20 * 100000 + 2 * 1000 + 5 + 3 * 7, f"fires_since {fires}")
    check(g["premax"].dtype == np.float32 and g["fires_since"].dims == ("snapshot", "layer", "unit"),
          "per-unit variables")
    g.close()


def groups_of(path):
    import netCDF4
    with netCDF4.Dataset(path) as nc:
        return sorted(nc.groups)


def same(a, b):
    """Values, dimensions and coordinates equal (attributes such as history differ)."""
    da, db = xr.open_dataset(a), xr.open_dataset(b)
    names = ROOT_VARS + ["n_layer", "d_model", "n_head", "n_hidden", "n_ctx", "n_vocab"]
    xr.testing.assert_equal(da[names], db[names])
    check(groups_of(a) == groups_of(b), f"groups {groups_of(a)} vs {groups_of(b)}")
    for grp in groups_of(a):
        ga, gb = xr.open_dataset(a, group=grp), xr.open_dataset(b, group=grp)
        xr.testing.assert_equal(ga[GROUP_VARS], gb[GROUP_VARS])
    print(f"same: {a} == {b} (root series and {len(groups_of(a))} snapshot groups)")


def live(path, pid):
    import os
    import time

    def alive():
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

    reads = 0
    while alive():
        try:
            with xr.open_dataset(path) as ds:
                loss = ds["loss"].values
                ds["token_use_q"].load()
        except FileNotFoundError:
            time.sleep(0.01)
            continue
        except Exception as e:  # any other failure is the writer's fault
            fail(f"read {reads + 1} of {path} while it is written: {e}")
        for si in range(2):
            for ki in range(2):
                row = loss[si, ki]
                steps = np.nonzero(~np.isnan(row))[0]
                want = expect(0, si * 2 + ki, steps)
                check(np.array_equal(row[steps], want), f"read {reads + 1}: wrong loss values")
        reads += 1
    check(reads >= 5, f"only {reads} reads while the writer ran")
    print(f"live: {reads} reads of {path} during the writes, all complete and right")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "sample":
        ds = xr.open_dataset(sys.argv[2])
        check_layout(ds)
        check_attributes(ds)
        check_values(ds)
        check_group(sys.argv[2])
        print(f"sample: {sys.argv[2]} reads as one Dataset with every series")
    elif len(sys.argv) == 4 and sys.argv[1] == "same":
        same(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "live":
        live(sys.argv[2], int(sys.argv[3]))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
