"""The report page: one HTML file that shows the figures (PNG
files next to it, linked by relative paths, so the folder opens offline and
can be copied as a whole) and the tables.

(Named htmlpage, not html: a module called html in this folder would shadow
the standard library's html, which this module and xarray import.)"""
import html
import math
from dataclasses import dataclass

from .plotkit import Figure

STYLE = """
body { font-family: sans-serif; max-width: 1500px; margin: 1em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .92em; color: #333; max-width: 70em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
.notes li { color: #8a4b00; } pre { background: #f7f7f7; padding: .6em; font-size: .85em; }
"""


@dataclass
class Table:
    """A table of the page: header rows of (text, colspan) and body rows of text."""
    ident: str
    title: str
    caption: str
    header: list
    body: list
    csv: str = ""


def esc(x):
    return html.escape(str(x))


def fmt(value, digits):
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def pm(mean, std, digits):
    """'mean ± std' as shown in the tables; a missing std (one seed) is 'n/a'."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    return f"{fmt(mean, digits)} ± {fmt(std, digits)}"


def _figure(f, number):
    return (f'<figure id="{esc(f.file[:-4])}"><img src="{esc(f.file)}" alt="{esc(f.title)}">'
            f"<figcaption><b>Figure {number}. {esc(f.title)}.</b> {esc(f.caption)}</figcaption></figure>")


def _table(t):
    head = "".join("<tr>" + "".join(f'<th colspan="{span}">{esc(text)}</th>' for text, span in row)
                   + "</tr>" for row in t.header)
    body = "".join("<tr>" + "".join(f'<td class="l">{esc(c)}</td>' if k < 2 else f"<td>{esc(c)}</td>"
                                    for k, c in enumerate(row)) + "</tr>" for row in t.body)
    link = f' (CSV: <a href="{esc(t.csv)}">{esc(t.csv)}</a>)' if t.csv else ""
    return (f"<p><b>{esc(t.title)}.</b> {esc(t.caption)}{link}</p>"
            f'<table id="{esc(t.ident)}"><thead>{head}</thead><tbody>{body}</tbody></table>')


def _item(item, counter):
    if isinstance(item, Figure):
        counter[0] += 1
        return _figure(item, counter[0])
    if isinstance(item, Table):
        return _table(item)
    return f"<p>{item}</p>"   # trusted HTML written by the report itself


def page(title, summary_html, notes, sections):
    """The whole page: sections are (heading, [Figure | Table | html text])."""
    counter = [0]
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>", summary_html]
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    for heading, items in sections:
        parts.append(f"<h2>{esc(heading)}</h2>")
        parts.extend(_item(it, counter) for it in items)
    parts.append("</body></html>\n")
    return "\n".join(parts)
