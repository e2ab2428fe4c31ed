"""reluscope's analysis package: read a sweep's dataset and make its report.

    import analysis
    ds = analysis.open_dataset("runs/demo/dataset.nc")   # tidy, lazy root dataset
    analysis.table1(ds)                  # usage at the end (training batch), a DataFrame
    analysis.table1(ds, "heldout")       # the same on the fixed held-out batch
    analysis.table2(ds)                  # units turning off / reviving per phase
    analysis.snapshots("runs/demo/dataset.nc")   # per-unit snapshots of every run

The report: /usr/bin/python3 -m analysis.report DATASET -o DIR (docs/analysis.md).
"""
import sys

sys.dont_write_bytecode = True   # no __pycache__ left in the checkout (or a read-only one)

from .load import open_dataset, snapshots  # noqa: E402
from .tables import table1, table2  # noqa: E402

__all__ = ["open_dataset", "snapshots", "table1", "table2"]
