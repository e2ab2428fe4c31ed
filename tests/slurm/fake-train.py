#!/usr/bin/python3
"""A stand-in for bin/reluscope in tests/t_slurm.sh part (c), to test the job
scripts' logic without training.

`train ... out_dir=DIR` writes DIR/fake.started.<restart>, then waits:
SIGUSR1 or SIGTERM make it write DIR/fake.stopped.<restart> and exit 75 (as
the program stops at a checkpoint); DIR/fake.finish makes it write
DIR/dataset.nc and exit 0. Any other command (--blas-coretype, --version)
prints nothing. (Python, not bash: the job starts ranks with SIGUSR1 ignored
until the program sets its handlers, and bash cannot trap a signal that was
ignored when it started.)
"""
import os
import signal
import sys
import time

if len(sys.argv) < 2 or sys.argv[1] != "train":
    sys.exit(0)
out = next((a[len("out_dir="):] for a in sys.argv if a.startswith("out_dir=")), None)
if not out:
    sys.exit("fake-train: no out_dir=")
n = os.environ.get("SLURM_RESTART_COUNT", "0")


def stop(signum, frame):
    open(os.path.join(out, f"fake.stopped.{n}"), "w").close()
    os._exit(75)


signal.signal(signal.SIGUSR1, stop)
signal.signal(signal.SIGTERM, stop)
open(os.path.join(out, f"fake.started.{n}"), "w").close()
while not os.path.exists(os.path.join(out, "fake.finish")):
    time.sleep(0.2)
open(os.path.join(out, "dataset.nc"), "w").close()
