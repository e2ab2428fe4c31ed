"""The report's Interventions section (docs/interventions.md): outlier
attribution, fork overlap and resampling, each a table, a CSV file and a
one-line reading. The numbers are those of analysis/interventions.py (this
module only lays them out); a test that does not apply says why in one line.
"""
import functools
import math
import os
import warnings

import numpy as np

from . import interventions as iv
from .htmlpage import Table, esc
from .tables import write_csv

HEADING = "Interventions: what makes units die"
ALPHA = 0.05     # the P below which a reading calls a result unlikely by chance

ATTRIBUTION_COLUMNS = [
    "size", "seed", "deaths", "deaths_at_outlier", "eligible_steps", "skip", "window",
    "p99_grad_norm", "death_frac_outlier", "base_rate_outlier", "p_value_outlier",
    "death_frac_outlier_local", "base_rate_outlier_local", "p_value_outlier_local",
    "death_grad_norm_median", "step_grad_norm_median", "death_grad_ratio_median",
    "step_grad_ratio_median", "death_loss_excess_median", "step_loss_excess_median",
    "death_jump_median", "alive_jump_median", "alive_jump_p1", "death_frac_jump_below_p1"]
EVENT_COLUMNS = ["size", "seed", "layer", "unit", "last_fire", "outlier", "jump"]
FORK_COLUMNS = ["size", "layer", "forks", "fork_step", "end_step", "alive_at_fork",
                "deaths_per_fork", "jaccard", "jaccard_chance", "shared_mean", "shared_chance",
                "p_value_max", "alive_from"]
RESAMPLE_COLUMNS = ["size", "seed", "layer", "resampled", "redied", "frac_redied",
                    "alive_at_end", "mean_life", "window"]


def sections(data, out, fork_checkpoint=None):
    """The section as (heading, [makers]) for report.build()."""
    opened = functools.lru_cache(maxsize=1)(lambda: iv.Dataset(data.path))
    intro = ("The three tests of <code>docs/interventions.md</code> (the same numbers as "
             "<code>analysis/interventions.py</code>): are deaths at outlier steps, do the same "
             "units die in forks with other batch orders, do resampled units die again?")
    return [(HEADING, [lambda: intro,
                       lambda: attribution(data, opened(), out),
                       lambda: forks(data, opened(), out, fork_checkpoint),
                       lambda: resampling(data, opened(), out)])]


def _quiet(fn, *args):
    """fn(*args) with NaN warnings off (NaN means "no data" there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)


def _f(x, digits=3):
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _g(x):
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _line(text):
    return f"<p><i>{esc(text)}</i></p>"


def is_fork(data):
    return bool(str(data.config.get("fork_from", "") or "").strip())


def first_step(data):
    """The first step any run recorded (a fork's step; 0 for a run from scratch)."""
    written = np.nonzero(data.ds["loss"].notnull().any(("size", "seed")).values)[0]
    return int(written[0]) if len(written) else 0


# ------------------------------------------------------------------ attribution

def attribution(data, d, out):
    if data.snapshot_every <= 0:
        return _line("Outlier attribution: no snapshots (it needs snapshot_every > 0).")
    skip = first_step(data) if is_fork(data) else 0
    rows = _quiet(iv.attribution, d, skip)
    done = [r for r in rows if "skipped" not in r]
    if not done:
        why = "every run resampled dead units (resample_dead restarts last_fire, so their " \
            "deaths cannot be attributed)" if rows else "no run has two or more snapshots"
        return _line(f"Outlier attribution: {why}.")
    for r in done:
        r["deaths_at_outlier"] = int(sum(r["events"]["outlier"]))
    csv = write_csv(done, os.path.join(out, "table4_attribution.csv"), ATTRIBUTION_COLUMNS)
    events = write_csv(_events(done), os.path.join(out, "table4_attribution_events.csv"),
                       EVENT_COLUMNS)
    return [_attribution_table(done, skip, data.dead_window, csv),
            f'<p>Every death with its step and pre-activation jump: '
            f'<a href="{esc(events)}">{esc(events)}</a>.</p>',
            _line(_attribution_reading(rows, done, len(data.sizes) * len(data.seeds)))]


def _events(rows):
    """One row per death: run, layer, unit, last firing step, outlier (0/1), jump."""
    out = []
    for r in rows:
        ev = r["events"]
        for k in range(len(ev["layer"])):
            out.append(dict(size=r["size"], seed=r["seed"], layer=ev["layer"][k],
                            unit=ev["unit"][k], last_fire=ev["last_fire"][k],
                            outlier=int(ev["outlier"][k]), jump=float(ev["jump"][k])))
    return out


def _attribution_table(rows, skip, window, csv):
    rule = [("share at outlier", 1), ("base rate", 1), ("P", 1)]
    header = [[("size", 1), ("seed", 1), ("deaths", 1), ("eligible steps", 1),
               ("global rule: grad_norm > p99", 3), ("local rule: grad_norm / local median > p99", 3),
               ("jump below alive p1", 1), ("deaths per layer (at outlier)", 1)],
              [("", 1)] * 4 + rule + rule + [("", 1), ("", 1)]]
    body = [[r["size"], r["seed"], r["deaths"], r["eligible_steps"],
             _f(r["death_frac_outlier"]), _f(r["base_rate_outlier"]), _g(r["p_value_outlier"]),
             _f(r["death_frac_outlier_local"]), _f(r["base_rate_outlier_local"]),
             _g(r["p_value_outlier_local"]), _f(r["death_frac_jump_below_p1"]),
             ", ".join(f"L{p['layer']} {p['deaths']} ({_f(p['frac_outlier'], 2)})"
                       for p in r["per_layer"])] for r in rows]
    since = f"steps >= {skip} (the fork step; earlier last firings are the parent run's) and " \
        if skip else ""
    return Table(
        "table4", "Table 4: deaths at outlier steps (outlier attribution)",
        f"Per run: the deaths seen at the snapshots (a unit off, dead_window = {window} steps "
        f"without firing, that was on at the previous snapshot), and the fraction whose last "
        f"firing step is an outlier step, against the base rate (the fraction of eligible steps "
        f"that are outliers: {since}steps <= last snapshot − dead_window) and the binomial P of "
        f"at least that many deaths at outlier steps by chance. Global rule: grad_norm above "
        f"the run's {iv.PCT:g}th percentile; local rule: grad_norm / its median within ±"
        f"{iv.LOCAL} steps above that ratio's {iv.PCT:g}th percentile (the global rule mostly "
        f"flags early training). Jump: the unit's premax change over the interval of its last "
        f"firing; the column gives the fraction of deaths below the 1st percentile of alive "
        f"units' changes (a sudden drop). The CSV also has the medians of grad_norm, its local "
        f"ratio and the loss excess at deaths and at all eligible steps.", header, body, csv)


def _attribution_reading(rows, done, n_runs):
    n = sum(r["deaths"] for r in done)
    at = sum(r["deaths_at_outlier"] for r in done)
    exp = sum(r["deaths"] * r["base_rate_outlier"] for r in done)
    sig = sum(1 for r in done if r["deaths"] and r["p_value_outlier"] < ALPHA)
    sig_l = sum(1 for r in done if r["deaths"] and r["p_value_outlier_local"] < ALPHA)
    with_deaths = sum(1 for r in done if r["deaths"])
    left = [f"{n_runs - len(rows)} run(s) without snapshots"] if n_runs > len(rows) else []
    left += [f"{len(rows) - len(done)} resampling run(s)"] if len(rows) > len(done) else []
    tail = f" (left out: {', '.join(left)})" if left else ""
    if not n:
        return f"Reading: no deaths in the {len(done)} attributed run(s){tail}."
    head = (f"Reading: {at} of {n} deaths ({at / n:.1%}) lie at outlier steps, where the base "
            f"rates predict {exp:.1f}; ")
    if sig or sig_l:
        return head + (f"deaths are at outlier steps more often than chance (P < {ALPHA}) in "
                       f"{sig} of {with_deaths} run(s) with deaths by the global rule and "
                       f"{sig_l} by the local rule{tail}.")
    return head + (f"in none of the {with_deaths} run(s) with deaths are they at outlier steps "
                   f"more often than chance (P < {ALPHA}, either rule)"
                   f"{': outlier steps do not explain these deaths' if at <= exp else ''}{tail}.")


# ------------------------------------------------------------------ forks

def forks(data, d, out, checkpoint):
    if not is_fork(data):
        extra = " (--fork-checkpoint ignored)" if checkpoint else ""
        return _line("Fork overlap: not a fork dataset (no fork_from in its config); run it on "
                     f"the dataset of a fork sweep (docs/interventions.md){extra}.")
    rows = _quiet(iv.fork_overlap, d, checkpoint)
    if not rows:
        return _line("Fork overlap: fewer than 2 forks with snapshots in this dataset.")
    if checkpoint:
        cstep = iv.checkpoint_last_fire(checkpoint)[0]
        if any(r["fork_step"] != cstep for r in rows):
            raise ValueError(f"{checkpoint} is at step {cstep}, but the forks start at step "
                             f"{rows[0]['fork_step']}: not their forkpoint")
    for r in rows:
        r["deaths_per_fork"] = " ".join(str(x) for x in r["deaths_per_fork"])
    csv = write_csv(rows, os.path.join(out, "table5_forks.csv"), FORK_COLUMNS)
    body = [[r["size"], r["layer"], r["forks"], f"{r['fork_step']}-{r['end_step']}",
             r["alive_at_fork"], r["deaths_per_fork"], _f(r["jaccard"]), _f(r["jaccard_chance"]),
             _f(r["shared_mean"], 1), _f(r["shared_chance"], 1), _g(r["p_value_max"]),
             r["alive_from"]] for r in rows]
    cols = ["size", "layer", "forks", "steps", "alive at fork", "deaths per fork", "Jaccard",
            "chance", "shared", "chance", "largest P", "alive set from"]
    table = Table(
        "table5", "Table 5: the same units die in forks? (fork overlap)",
        "Per size and layer, over every pair of forks (the runs of this dataset, one per data "
        "seed, from one checkpoint): the units alive at the fork and off at the last snapshot, "
        "their mean Jaccard overlap against its expectation for random sets of the same sizes "
        "among the alive units, the mean number shared against chance, and the largest over "
        "pairs of the hypergeometric P(shared >= observed). The alive set comes from the "
        "checkpoint (report option --fork-checkpoint) or else from each fork's first snapshot.",
        [[(c, 1) for c in cols]], body, csv)
    return [table, _line(_fork_reading(rows))]


def _fork_reading(rows):
    dead = [r for r in rows if math.isfinite(r["jaccard"])]
    same = [r for r in dead if r["jaccard"] > r["jaccard_chance"] and r["p_value_max"] < ALPHA]
    names = ", ".join(f"{r['size']} L{r['layer']}" for r in same)
    return (f"Reading: of {len(rows)} layer(s), {len(rows) - len(dead)} had no deaths after the "
            f"fork; of the {len(dead)} with deaths, {len(same)} show the same units dying whatever "
            f"the batch order (Jaccard above chance, P < {ALPHA} for every pair of forks: "
            f"dynamics){': ' + names if names else ''} and {len(dead) - len(same)} do not (the "
            f"overlap is within chance for some pair: the batches decide, or too few deaths to "
            f"tell).")


# ------------------------------------------------------------------ resampling

def resampling(data, d, out):
    if not data.has("resampled"):
        return _line("Resampling: the dataset has no 'resampled' variable (written before "
                     "resample_dead existed).")
    rows = _quiet(iv.resampling, d)
    if not sum(r["resampled"] for r in rows):
        return _line("Resampling: no unit was resampled (resample_dead = 0 in every run).")
    csv = write_csv(rows, os.path.join(out, "table6_resampling.csv"), RESAMPLE_COLUMNS)
    body = [[r["size"], r["seed"], r["layer"], r["resampled"], r["redied"],
             _f(r["frac_redied"]), r["alive_at_end"], _f(r["mean_life"], 1), r["window"]]
            for r in rows]
    cols = ["size", "seed", "layer", "resampled", "died again", "fraction", "still alive",
            "mean life (steps)", "dead_window"]
    table = Table(
        "table6", "Table 6: resampled units (resample_dead)",
        "Per run and layer: units re-initialized because they were off (resampled), those that "
        "turned off again (died again, and the fraction), those still alive at the end, and the "
        "mean life of the ones that died again (steps from the resampling to their last firing; "
        "0 = never fired again), next to dead_window. Units that die again quickly point to "
        "the dynamics rather than to the batches.", [[(c, 1) for c in cols]], body, csv)
    n = sum(r["resampled"] for r in rows)
    again = sum(r["redied"] for r in rows)
    life = sum(r["mean_life"] * r["redied"] for r in rows if r["redied"])
    mean = f", after {life / again:.1f} steps on average (dead_window = {rows[0]['window']})" \
        if again else ""
    return [table, _line(f"Reading: of {n} resampled units, {again} ({again / n:.0%}) died "
                         f"again{mean}; {n - again} were still alive at the end.")]
