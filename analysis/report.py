"""reluscope report: figures and tables of a sweep's dataset, as one HTML page.

usage: /usr/bin/python3 -m analysis.report DATASET -o DIR   (from the checkout)

Writes DIR/index.html, the figures as DIR/*.png (and *.pdf) and the tables
as DIR/table1.csv, DIR/table1_heldout.csv, DIR/table2.csv,
DIR/table3_deaths.csv and, where the intervention tests apply
(docs/interventions.md), DIR/table4_attribution.csv (with
table4_attribution_events.csv), DIR/table5_forks.csv and
DIR/table6_resampling.csv. docs/analysis.md describes every figure and table
and the definitions behind them.
"""
import argparse
import os
import sys
import time
import traceback

from . import (deaths, figures, figures_deaths, figures_eval, htmlpage, report_interventions,
               tables, views)
from .load import open_data


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m analysis.report", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", help="a reluscope NetCDF dataset (e.g. runs/demo/dataset.nc)")
    p.add_argument("-o", "--out", required=True, help="output folder (created if missing)")
    p.add_argument("--fork-checkpoint", metavar="FILE",
                   help="for a fork dataset: the checkpoint the forks started from (their exact "
                        "alive-at-fork sets, docs/interventions.md)")
    args = p.parse_args(argv)
    if args.fork_checkpoint and not os.path.isfile(args.fork_checkpoint):
        p.error(f"--fork-checkpoint: {args.fork_checkpoint}: no such file")
    return args


def usage_sections(data, out):
    return [
        ("Batch-level usage (the study's Figure 1)", [
            lambda: figures.batch_use(data, out), lambda: figures.batch_use_heldout(data, out)]),
        ("Token- and sequence-level usage", [
            lambda: figures.quantiles(data, out, "token_use", early=False),
            lambda: figures.quantiles(data, out, "token_use", early=True),
            lambda: figures.quantiles(data, out, "seq_use", early=False),
            lambda: figures.quantiles(data, out, "seq_use", early=True)]),
    ]


def _table1(data, out, source):
    df = tables.table1(data.ds, source)
    name = "table1.csv" if source == "train" else "table1_heldout.csv"
    return views.table1(df, tables.write_csv(df, os.path.join(out, name), tables.table1_columns()),
                        source)


def _table2(data, out):
    df = tables.table2(data.ds)
    csv = tables.write_csv(df, os.path.join(out, "table2.csv"), tables.table2_columns())
    return [views.table2(df, data, csv, ""), views.table2(df, data, csv, "_pct")]


def table_sections(data, out):
    return [("Usage at the end of training", [lambda: _table1(data, out, "train"),
                                              lambda: _table1(data, out, "heldout")]),
            ("Units turning off and reviving", [lambda: _table2(data, out),
                                                lambda: figures.dead_frac(data, out)])]


def death_sections(data, out, notes):
    try:
        events, more = deaths.collect(data)
    except Exception as e:  # noqa: BLE001 - a damaged group must not cost the report
        traceback.print_exc()
        events, more = deaths.no_events(data), [f"snapshot groups unreadable: {e}"]
    notes.extend(more)
    t3 = deaths.table3(data, events)
    f3 = tables.write_csv(t3, os.path.join(out, "table3_deaths.csv"), deaths.table3_columns())
    return [("How units die", [lambda: figures_deaths.aligned(data, out, events),
                               lambda: figures_deaths.classes(data, out, events),
                               lambda: views.table3(t3, f3),
                               lambda: figures_deaths.versus_lr(data, out),
                               lambda: figures_deaths.density(data, out)])]


def other_sections(data, out):
    return [("Held-out evaluation", [lambda: figures_eval.heldout(data, out),
                                     lambda: figures_eval.eff_rank(data, out)]),
            ("Loss", [lambda: figures.loss(data, out)])]


def build(sections, notes):
    """Make every item; one that fails is reported on the page and on stderr
    instead of costing the whole report (a long sweep's report is still
    worth having if one figure trips over an unforeseen dataset)."""
    built = []
    for heading, makers in sections:
        items = []
        for make in makers:
            try:
                made = make()
                items.extend(made if isinstance(made, list) else [made])
            except Exception as e:  # noqa: BLE001 - any failure of one item
                traceback.print_exc()
                notes.append(f"an item of '{heading}' could not be made: {type(e).__name__}: {e}")
        built.append((heading, items))
    return built


def main(argv):
    args = parse_args(argv)
    try:
        data = open_data(args.dataset)
    except (OSError, ValueError, KeyError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"analysis.report: error: {args.dataset}: not a readable reluscope dataset ({reason})",
              file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    notes = list(data.notes)
    sections = build(usage_sections(data, args.out) + table_sections(data, args.out) +
                     death_sections(data, args.out, notes) +
                     report_interventions.sections(data, args.out, args.fork_checkpoint) +
                     other_sections(data, args.out), notes)
    title = f"reluscope report: {os.path.basename(args.dataset)}"
    with open(os.path.join(args.out, "index.html"), "w", encoding="utf-8") as f:
        f.write(htmlpage.page(title, views.summary(data), notes, sections))
    print(f"report: {os.path.join(args.out, 'index.html')} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
