"""The tables and the dataset summary as shown on the page."""
import math
from collections import OrderedDict

from deaths import CLASSES, LOOKBACK, SUDDEN_KEEP
from htmlpage import Table, esc, fmt, pm
from load import phases, recorded_steps
from tables import END_FRACTION, TABLE1_METRICS, TABLE2_METRICS

DIGITS1 = {"token_use": 2, "seq_use": 2, "batch_use": 2, "seq_over_token": 3,
           "batch_over_seq": 3}
DIGITS2 = 1


def table1(rows, csv):
    header = [[("size", 1), ("layer", 1), ("seeds", 1)] + [(label, 1) for _, label in TABLE1_METRICS]]
    body = [[r["size"], r["layer"], r["n_seeds"]] +
            [pm(r[m + "_mean"], r[m + "_std"], DIGITS1[m]) for m, _ in TABLE1_METRICS]
            for r in rows]
    return Table("table1", "Table 1: usage at the end of training",
                 f"Per layer and size: token, sequence and batch usage (% of the layer's hidden "
                 f"units) averaged over the last {END_FRACTION:.0%} of each run's recorded steps "
                 f"(at least one step), and the ratios sequence/token and batch/sequence of those "
                 f"means; mean ± sample std over seeds (n/a with one seed).", header, body, csv)


def _by_size_layer(rows):
    """Rows grouped by (size, layer) in their order, phases in order inside."""
    groups = OrderedDict()
    for r in rows:
        groups.setdefault((r["size"], r["layer"]), []).append(r)
    return groups


def table2(rows, data, csv):
    ph = phases(data.warmup, data.steps_planned)
    top = [("size", 1), ("layer", 1)] + [(f"{n}: steps {a}-{b - 1}" if b > a else f"{n}: no steps",
                                          len(TABLE2_METRICS)) for n, a, b in ph]
    sub = [("", 1), ("", 1)] + [(label, 1) for _ in ph for _, label in TABLE2_METRICS]
    body = [[size, layer] + [pm(r[m + "_mean"], r[m + "_std"], DIGITS2)
                             for r in group for m, _ in TABLE2_METRICS]
            for (size, layer), group in _by_size_layer(rows).items()]
    return Table("table2", "Table 2: units turning off and reviving",
                 f"Per layer and size: units that turned off (turned_off) and revived (revived), "
                 f"summed over the steps of each phase (warmup = steps < warmup_steps = "
                 f"{data.warmup}; the remaining planned steps in three thirds); mean ± sample std "
                 f"over the seeds that recorded steps in the phase (n/a with one seed or none).",
                 [top, sub], body, csv)


def _sci(x):
    return "n/a" if not math.isfinite(x) else f"{x:.3g}"


def table3(rows, csv):
    cols = ["size", "layer", "phase", "steps", "mean lr", "deaths"] + list(CLASSES) + ["sudden share"]
    body = [[r["size"], r["layer"], r["phase"], f"{r['first_step']}-{r['end_step'] - 1}",
             _sci(r["mean_lr"]), r["deaths"], r["sudden"], r["drift"], r["na"],
             fmt(r["sudden_share"], 2)] for r in rows]
    return Table("table3", "Table 3: deaths seen at the snapshots, by phase",
                 f"Death events (a unit off at a snapshot that was on at the previous one), all "
                 f"seeds pooled, by the phase of the death step (last firing + dead_window), with "
                 f"the mean learning rate of the phase; sudden = the unit's firing rate one "
                 f"snapshot interval before the interval of its last firing was still >= "
                 f"{SUDDEN_KEEP:.0%} of its rate {LOOKBACK} intervals before it, drift = below, "
                 f"n/a = too little history or a zero reference rate; sudden share = sudden / "
                 f"(sudden + drift).", [[(c, 1) for c in cols]], body, csv)


def summary(data):
    """Provenance, the model sizes and how far each run got."""
    a = data.ds.attrs
    facts = [("dataset", data.path), ("source", a.get("source", "?")),
             ("git commit", a.get("git_commit", "?")), ("command", a.get("command_line", "?")),
             ("MPI layout", a.get("mpi_layout", "?")), ("started", a.get("start_time", "?"))]
    out = ["<table>" + "".join(f'<tr><th class="l">{esc(k)}</th><td class="l">{esc(v)}</td></tr>'
                               for k, v in facts) + "</table>"]
    out.append(_runs(data))
    if data.config:
        text = "\n".join(f"{k} = {v}" for k, v in data.config.items())
        out.append(f"<details><summary>config</summary><pre>{esc(text)}</pre></details>")
    return "\n".join(out)


def _runs(data):
    """Sizes as rows, seeds as columns: recorded steps of each run."""
    shape = ["n_layer", "d_model", "n_head", "n_hidden", "n_ctx", "n_vocab"]
    head = "".join(f"<th>{h}</th>" for h in ["size", "L", "d", "h", "F", "T", "V"]) + \
        "".join(f"<th>seed {s}</th>" for s in data.seeds)
    rows = []
    for i, size in enumerate(data.sizes):
        dims = [fmt(float(data.ds[v].values[i]), 0) if data.has(v) else "?" for v in shape]
        runs = []
        for j in range(len(data.seeds)):
            n = recorded_steps(data, i, j)
            mark = "" if n >= data.steps_planned else " (unfinished)"
            runs.append(f"{n}/{data.steps_planned} steps{mark}")
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in [size] + dims + runs) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
