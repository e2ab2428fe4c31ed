#!/usr/bin/python3
"""Reader-side checks of reluscope datasets with xarray (tests/t_dataset_xarray.sh).

  check_dataset.py sample FILE      the 2 sizes x 2 seeds sample of test_ncout
                                    --write-sample: layout, names, attributes, values
  check_dataset.py same FILE1 FILE2 every variable of the root group and of every
                                    snapshot group equal (a merge vs a direct write)
  check_dataset.py live FILE DONE   read FILE again and again until the file DONE
                                    exists (test_ncout --live writes FILE meanwhile):
                                    every read works and shows right values (or fill
                                    past its end); DONE.ready says it has started

The variables (names, dimensions, types, units, long names) come from the
program's own table: `reluscope schema --json` (the binary is $RELUSCOPE,
else bin/reluscope next to this folder). The sample's values are pure
functions of (variable index in that table, run, step, layer, q): see
expect() in tests/ncout_sample.h, mirrored below.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import xarray as xr

_BIN = os.environ.get("RELUSCOPE") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "bin", "reluscope")
TABLE = json.loads(subprocess.run([_BIN, "schema", "--json"], check=True, capture_output=True,
                                  text=True).stdout)["variables"]
INDEX = {v["name"]: i for i, v in enumerate(TABLE)}
ROOT_VARS = [v["name"] for v in TABLE if v["group"] == "root"]
GROUP_VARS = [v["name"] for v in TABLE if v["group"] == "run"]
DTYPE = {"double": np.float64, "int64": np.int64, "int32": np.int32, "float": np.float32}
LEVELS = [0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1]


def expect(name, grun, step, layer=0, k=0):
    """tests/ncout_sample.h expect(), by the variable's name."""
    vi, v = INDEX[name], TABLE[INDEX[name]]
    if v["type"] == "int32":
        return vi * 1000000 + grun * 100000 + step * 10 + layer
    if v["type"] == "int64":
        unit = "unit" in v["dims"]
        return step * 100000 + layer * 1000 + k + grun * 7 + vi if unit else step * 512 + grun + vi
    if v["type"] == "float":
        return grun + step * 0.5 + layer * 0.25 + k * 0.125 + vi
    return vi * 1e6 + grun * 1e4 + step + layer * 0.125 + k * 0.0078125


def check_table(group_ds, names):
    """Every variable of the table: present, with its dims, type, units, long_name."""
    for name in names:
        v = TABLE[INDEX[name]]
        check(name in group_ds.variables, f"{name} missing")
        var = group_ds[name]
        check(list(var.dims) == v["dims"], f"{name} dims {var.dims} != {v['dims']}")
        check(var.dtype == DTYPE[v["type"]], f"{name} type {var.dtype} != {v['type']}")
        check(var.attrs.get("units") == v["units"], f"{name} units")
        check(var.attrs.get("long_name") == v["long_name"], f"{name} long_name")


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
    check("eval" in ds.coords and list(ds["eval"].values) == [0, 1, 2, 3],
          "eval has a coordinate variable (the evaluation's index)")
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
    check(ds["loss"].attrs["units"] == "1" and "nats" in ds["loss"].attrs["long_name"] and
          ds["step_time"].attrs["units"] == "s", "units (nats is not a UDUNITS unit: 1)")
    check(ds["step_time"].dtype == np.float64, "step_time decoded as seconds (float), not timedelta")


def check_values(ds):
    loss = ds["loss"].sel(size="big", seed=11, step=5).item()
    check(loss == expect("loss", 3, 5), f"loss(big, 11, 5) = {loss!r}")
    q = ds["token_use_q"].sel(size="small", seed=7, step=3, layer=1, quantile=0.5).item()
    check(q == expect("token_use_q", 0, 3, 1, 5), f"token_use_q = {q!r}")
    off = ds["turned_off"].sel(size="big", seed=7, step=4, layer=1).item()
    check(off == expect("turned_off", 2, 4, 1), f"turned_off = {off!r}")
    hot = ds["hot_frac"].sel(size="big", seed=7, step=4, layer=2).item()
    check(hot == expect("hot_frac", 2, 4, 2), f"hot_frac = {hot!r}")
    pad = ds["token_use_mean"].sel(size="small", layer=2)
    check(bool(pad.isnull().all()), "layer 2 of the 2-layer size is _FillValue (NaN)")
    check(not bool(ds["batch_use"].sel(size="big").isnull().any()), "no gaps in the series")
    ev = ds["eval_loss"].sel(size="small", seed=11).values
    check(list(ev) == [expect("eval_loss", 1, s) for s in (0, 10, 20, 30)], f"eval_loss {ev}")
    sv = ds["singular_values"].sel(size="big", seed=11, layer=2).isel(eval=3).values
    check(list(sv) == [expect("singular_values", 3, 30, 2, k) for k in range(4)],
          f"singular values {sv}")
    # what an analysis does: one curve per layer, averaged over seeds
    curve = ds["batch_use"].sel(size="big").mean("seed")
    check(curve.dims == ("step", "layer") and curve.shape == (40, 3), "seed-mean of batch_use")


def check_group(path):
    g = xr.open_dataset(path, group="run_big_seed11")
    check(dict(g.sizes) == {"snapshot": 2, "layer": 3, "unit": 24}, f"group dims {dict(g.sizes)}")
    check(list(g["snapshot_step"].values) == [0, 20], "snapshot_step")
    check(list(g["snapshot"].values) == [0, 1], "snapshot has a coordinate variable")
    fires = g["fires_since"].isel(snapshot=1).sel(layer=2, unit=5).item()
    check(fires == expect("fires_since", 3, 20, 2, 5), f"fires_since {fires}")
    g.close()
    g = xr.open_dataset(path, group="run_big_seed11", mask_and_scale=False)
    check_table(g, GROUP_VARS)
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


def live(path, done):
    """Read PATH until the file DONE exists; DONE.ready is created first, so
    that the test starts the writer only once this reader is up (a loaded
    machine could otherwise finish the writer before Python has imported)."""
    import os
    import time

    open(done + ".ready", "w").close()
    reads = 0
    while not os.path.exists(done):
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
                want = expect("loss", si * 2 + ki, steps)
                check(np.array_equal(row[steps], want), f"read {reads + 1}: wrong loss values")
        reads += 1
    check(reads >= 5, f"only {reads} reads while the writer ran")
    print(f"live: {reads} reads of {path} during the writes, all complete and right")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "sample":
        ds = xr.open_dataset(sys.argv[2])
        with xr.open_dataset(sys.argv[2], mask_and_scale=False) as raw:
            check_table(raw, ROOT_VARS)
        check_layout(ds)
        check_attributes(ds)
        check_values(ds)
        check_group(sys.argv[2])
        print(f"sample: {sys.argv[2]} reads as one Dataset with every series")
    elif len(sys.argv) == 4 and sys.argv[1] == "same":
        same(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "live":
        live(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
