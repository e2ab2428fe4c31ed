#!/usr/bin/python3
"""Makes the awkward dataset of tests/t_report.sh case C from a copy of a
2 sizes x 2 seeds dataset (in place, with the netCDF4 API), the way a
merge with a missing task or a job stopped mid-run leaves one:

  damage.py FILE

- size 1, seed 1 is absent: every series is fill, its group name points
  nowhere (a run missing from a merge);
- size 0, seed 0 stopped after step 149: its steps and evaluations from 150
  on are fill (an unfinished run next to finished ones, so the step axis is
  padded for it);
- eff_rank is fill everywhere (spectra not computed).
"""
import sys

import netCDF4
import numpy as np

CUT = 150


def main(path):
    with netCDF4.Dataset(path, "a") as nc:
        eval_steps = np.asarray(nc.variables["eval_step"][:])
        for name, var in nc.variables.items():
            dims = var.dimensions
            if dims[:2] != ("size", "seed") or name == "run_group":
                continue
            var[1, 1] = np.ma.masked
            if len(dims) > 2 and dims[2] == "step":
                var[0, 0, CUT:] = np.ma.masked
            elif len(dims) > 2 and dims[2] == "eval":
                late = np.nonzero(eval_steps >= CUT)[0]
                if len(late):
                    var[0, 0, late[0]:] = np.ma.masked
        nc.variables["run_group"][1, 1] = "run_not_in_this_file"
        if "eff_rank" in nc.variables:
            nc.variables["eff_rank"][:] = np.ma.masked


if __name__ == "__main__":
    main(sys.argv[1])
