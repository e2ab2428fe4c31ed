"""The tables and the dataset summary as shown on the page."""
import math
from collections import OrderedDict

from .deaths import CLASSES, LOOKBACK, SUDDEN_KEEP
from .htmlpage import Table, esc, fmt, pm
from .load import phases, recorded
from .tables import END_FRACTION, TABLE1_METRICS, TABLE2_METRICS

DIGITS1 = {"token_use": 2, "seq_use": 2, "batch_use": 2, "seq_over_token": 3,
           "batch_over_seq": 3}
DIGITS2 = {"": 1, "_pct": 2}


def table1(df, csv, source):
    rows = df.to_dict("records")
    ident = "table1" if source == "train" else "table1_heldout"
    what = f"the last {END_FRACTION:.0%} of each run's recorded steps" if source == "train" else \
        f"the last {END_FRACTION:.0%} of each run's recorded evaluations (at least one: the final weights)"
    header = [[("size", 1), ("layer", 1), ("seeds", 1)] + [(label, 1) for _, label in TABLE1_METRICS]]
    body = [[r["size"], r["layer"], r["n_seeds"]] +
            [pm(r[m + "_mean"], r[m + "_std"], DIGITS1[m]) for m, _ in TABLE1_METRICS]
            for r in rows]
    title = "Table 1: usage at the end of training" + \
        (" (training batch)" if source == "train" else " (held-out batch)")
    return Table(ident, title,
                 f"Per layer and size: token, sequence and batch usage (% of the layer's hidden "
                 f"units) on {df.attrs['batch']}, averaged over {what}, and the ratios "
                 f"sequence/token and batch/sequence of those means; mean ± sample std over the "
                 f"seeds (column 'seeds' = n; n/a with one seed).", header, body, csv)


def _by_size_layer(rows):
    """Rows grouped by (size, layer) in their order, phases in order inside."""
    groups = OrderedDict()
    for r in rows:
        groups.setdefault((r["size"], r["layer"]), []).append(r)
    return groups


def table2(df, data, csv, pct):
    """Table 2 as counts (pct = "") or as % of F (pct = "_pct")."""
    ph = phases(data.warmup, data.steps_planned)
    W = data.dead_window
    top = [("size", 1), ("layer", 1), ("seeds", 1)] + \
        [(f"{n}: steps {a}-{b - 1}" if b > a else f"{n}: no steps", len(TABLE2_METRICS))
         for n, a, b in ph] + [("end", 1)]
    sub = [("", 1)] * 3 + [(label, 1) for _ in ph for _, label in TABLE2_METRICS] + [("off at end", 1)]
    body = []
    for (size, layer), group in _by_size_layer(df.to_dict("records")).items():
        cells = [pm(r[m + pct + "_mean"], r[m + pct + "_std"], DIGITS2[pct])
                 for r in group for m, _ in TABLE2_METRICS]
        end = group[0]
        body.append([size, layer, max(r["n_seeds"] for r in group)] + cells +
                    [pm(end["off_at_end" + pct + "_mean"], end["off_at_end" + pct + "_std"],
                        DIGITS2[pct])])
    unit = "units" if not pct else "% of the layer's F hidden units"
    return Table("table2" + pct, "Table 2: units turning off and reviving" +
                 (" (% of F)" if pct else " (units)"),
                 f"Per layer and size, in {unit}, on {df.attrs['batch']}: units that turned off "
                 f"(turned_off), placed in the phase of their LAST FIRING (the tracker detects a "
                 f"death dead_window = {W} steps later; never-fired units count at step 0), units "
                 f"that revived (revived, at the step they fired again), and of the deaths those "
                 f"still off at the run's last snapshot (permanent) and the rest (transient = "
                 f"turned off − permanent); 'off at end' = units off at the run's last recorded "
                 f"step. Warmup = steps < warmup_steps = {data.warmup}, the remaining planned steps "
                 f"in three thirds. Units whose last firing lies in a run's last {W} steps are not "
                 f"yet counted as off. Mean ± sample std over the seeds that recorded steps "
                 f"(n/a with one seed).", [top, sub], body, csv)


def _sci(x):
    return "n/a" if not math.isfinite(x) else f"{x:.3g}"


def table3(rows, csv):
    cols = ["size", "layer", "phase", "steps", "mean lr", "deaths", "permanent", "transient"] + \
        list(CLASSES) + ["sudden share"]
    body = [[r["size"], r["layer"], r["phase"], f"{r['first_step']}-{r['end_step'] - 1}",
             _sci(r["mean_lr"]), r["deaths"], r["permanent"], r["transient"], r["sudden"],
             r["drift"], r["na"], fmt(r["sudden_share"], 2)] for r in rows]
    return Table("table3", "Table 3: deaths seen at the snapshots, by phase",
                 f"Death events (a unit off at a snapshot that was on at the previous one), all "
                 f"seeds pooled, by the phase of the unit's last firing, with the mean learning "
                 f"rate of the phase; permanent = the unit is still off at the run's last snapshot; "
                 f"sudden = the unit's firing rate one snapshot interval before the interval of its "
                 f"last firing was still >= {SUDDEN_KEEP:.0%} of its rate {LOOKBACK} intervals "
                 f"before it, drift = below, n/a = too little history or a zero reference rate; "
                 f"sudden share = sudden / (sudden + drift).", [[(c, 1) for c in cols]], body, csv)


def summary(data):
    """Provenance, the model sizes and how far each run got."""
    a = data.ds.attrs
    facts = [("dataset", data.path), ("source", a.get("source", "?")),
             ("git commit", a.get("git_commit", "?")), ("command", a.get("command_line", "?")),
             ("MPI layout", a.get("mpi_layout", "?")), ("started", a.get("start_time", "?"))]
    out = ["<table>" + "".join(f'<tr><th class="l">{esc(k)}</th><td class="l">{esc(v)}</td></tr>'
                               for k, v in facts) + "</table>"]
    out.append(_runs(data))
    if a.get("config_text"):
        out.append(f"<details><summary>config</summary><pre>{esc(a['config_text'])}</pre></details>")
    return "\n".join(out)


def _runs(data):
    """Sizes as rows, seeds as columns: recorded steps of each run."""
    shape = ["n_layer", "d_model", "n_head", "n_hidden", "n_ctx", "n_vocab"]
    head = "".join(f"<th>{h}</th>" for h in ["size", "L", "d", "h", "F", "T", "V",
                                             "batch tokens", "held-out tokens"]) + \
        "".join(f"<th>seed {s}</th>" for s in data.seeds)
    n = recorded(data.ds).values
    rows = []
    for i, size in enumerate(data.sizes):
        dims = [fmt(float(data.ds[v].values[i]), 0) if data.has(v) else "?" for v in shape]
        toks = [f"{t:,}" if t else "n/a" for t in data.tokens[i]]
        runs = [f"{n[i, j]}/{data.steps_planned} steps" +
                ("" if n[i, j] >= data.steps_planned else " (unfinished)")
                for j in range(len(data.seeds))]
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in [size] + dims + toks + runs) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
