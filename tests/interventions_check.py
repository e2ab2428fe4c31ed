#!/usr/bin/python3
"""The statistics of analysis/interventions.py against brute force (run by
t_interventions.sh): death events against a step-by-step replay of the
tracker's rule, the chance Jaccard and overlap tail against enumeration and
simulation, the binomial tail against a direct sum, and the local-median
ratio against a slow loop."""
import itertools
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "analysis"))
import interventions as iv  # noqa: E402

rng = np.random.default_rng(7)
fails = []


def check(ok, what):
    if not ok:
        fails.append(what)


# --- death events: random firing histories, snapshots every 12 steps -------
W, S, L, F = 5, 150, 2, 30
fires = rng.random((S, L, F)) < np.linspace(0.9, 0.0, F)[None, None, :] ** 0.3
fires[:, :, ::7] &= rng.random((S, L, (F + 6) // 7)) < 0.05   # units that die and revive
snap = np.arange(0, S, 12)   # longer than W: a unit can revive and die again in between
last = np.full((L, F), -1)
hist = []
for t in range(S):
    last = np.where(fires[t], t, last)
    if t in snap:
        hist.append(last.copy())
last_snap = np.stack(hist)
k, lay, u, s = iv.deaths(snap, last_snap, W)
# brute force: a death of (l, f) at snapshot j when off at j and (not off at
# j-1, or its last firing changed), and it fired at least once
want = set()
for j, t in enumerate(snap):
    for ll in range(L):
        for f in range(F):
            lf = last_snap[j, ll, f]
            off = lf >= 0 and t - lf >= W
            if j == 0:
                new = off
            else:
                plf = last_snap[j - 1, ll, f]
                poff = plf >= 0 and snap[j - 1] - plf >= W
                new = off and (not poff or plf != lf)
            if new:
                want.add((j, ll, f, lf))
got = set(zip(k.tolist(), lay.tolist(), u.tolist(), s.tolist()))
check(got == want and len(want) > 10, f"deaths: {len(got ^ want)} differ of {len(want)}")

# --- chance Jaccard and overlap tail: enumeration for a small N ------------
N, a, b = 9, 3, 4
subsets_b = list(itertools.combinations(range(N), b))
A = set(range(a))   # by symmetry one A is enough
js = [len(A & set(B)) / len(A | set(B)) for B in subsets_b]
ej, ei = iv.hyper_jaccard(N, a, b)
check(abs(ej - np.mean(js)) < 1e-12, f"hyper_jaccard {ej} vs enumeration {np.mean(js)}")
check(abs(ei - np.mean([len(A & set(B)) for B in subsets_b])) < 1e-12, "expected overlap")
for x in range(0, 4):
    tail = np.mean([len(A & set(B)) >= x for B in subsets_b])
    check(abs(iv.hyper_tail(N, a, b, x) - tail) < 1e-12, f"hyper_tail x={x}")
# larger N: simulation
N, a, b = 200, 20, 30
sim = []
for _ in range(20000):
    Bs = rng.choice(N, b, replace=False)
    c = int((Bs < a).sum())
    sim.append(c / (a + b - c))
ej, _ = iv.hyper_jaccard(N, a, b)
check(abs(ej - np.mean(sim)) < 4 * np.std(sim) / math.sqrt(len(sim)),
      f"hyper_jaccard {ej} vs simulation {np.mean(sim)}")

# --- binomial tail ----------------------------------------------------------
n, p = 12, 0.13
for kk in range(0, 13):
    direct = sum(math.comb(n, x) * p ** x * (1 - p) ** (n - x) for x in range(kk, n + 1))
    check(abs(iv.binom_tail(kk, n, p) - direct) < 1e-12, f"binom_tail k={kk}")
check(iv.binom_tail(1, 10, 0.0) == 0.0 and iv.binom_tail(0, 10, 0.3) == 1.0, "binom edges")
# thousands of deaths (a study run): an exact rational sum, no float overflow
from fractions import Fraction
for kk, n, q in ((12, 2000, Fraction(1, 250)), (30, 2000, Fraction(1, 100)),
                 (1500, 2000, Fraction(1, 100))):
    exact = sum(math.comb(n, x) * q ** x * (1 - q) ** (n - x) for x in range(kk, n + 1))
    got = iv.binom_tail(kk, n, float(q))
    check(abs(got - float(exact)) <= 1e-9 * max(float(exact), 1e-300), f"binom_tail n={n} k={kk}")

# --- local ratio --------------------------------------------------------------
x = rng.random(40) + 0.5
x[5] = np.nan
r = iv.local_ratio(x, 3)
for t in range(40):
    if t == 5:
        check(np.isnan(r[t]), "local_ratio keeps NaN")
        continue
    w = x[max(0, t - 3):t + 4]
    check(abs(r[t] - x[t] / np.median(w[np.isfinite(w)])) < 1e-12, f"local_ratio t={t}")

if fails:
    print("FAIL:", *fails, sep="\n  ")
    sys.exit(1)
print("interventions_check: deaths, chance Jaccard/overlap, binomial tail, local ratio agree "
      "with brute force")
