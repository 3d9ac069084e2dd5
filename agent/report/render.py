"""The report's blocks (edgebench.agent.report.content) as Markdown or as one HTML file.

HTML: one self-contained file (styles inline, charts inline SVG, no script, nothing
fetched), laid out to be read on a phone as well as a desktop: a narrow column, tables
that scroll sideways inside their box, charts scaled to the width. The charts are drawn
with matplotlib (the ``plot`` extra); without it the report says so and keeps every
table. Markdown: the same facts, tables and notes for a ticket or a pull request (no
charts: a ticket cannot hold them inline).
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from html import escape
from typing import Any

from edgebench.agent.report.content import Charts, Facts, Notes, Section, Table, Verdict

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0 auto;
max-width:60em;padding:0 .8em 2em}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.5em 0 1em}
table{border-collapse:collapse;font-size:13px} caption{text-align:left;color:#666;font-size:12px;padding:.2em 0}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f4f4f4} td.l,th.l{text-align:left} table.facts td{white-space:normal}
table.facts td:first-child{color:#555;text-align:left} table.facts td:last-child{text-align:left}
.verdict{font-size:1.05em} .VALID{color:#1a7f37;font-weight:bold} .INVALID{color:#c62828;font-weight:bold}
.note{color:#666;font-size:13px} ul.note{padding-left:1.2em}
figure{margin:1em 0} figure svg{width:100%;height:auto;max-width:46em} figcaption{color:#666;font-size:12px}
nav a{display:inline-block;margin:0 .8em .3em 0}
"""


# ----------------------------------------------------------------------------- Markdown
def _md(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_block(b: Any) -> list[str]:
    if isinstance(b, Verdict):
        out = [f"**{_md(b.verdict)}** · {_md(b.text)}", ""]
        return out + [f"- reason: {_md(r)}" for r in b.reasons] + ([""] if b.reasons else [])
    if isinstance(b, Facts):
        return [f"- **{_md(k)}**: {_md(v)}" for k, v in b.items] + [""]
    if isinstance(b, Table):
        align = ["---" if i < b.left else "---:" for i in range(len(b.head))]
        out = [f"*{_md(b.caption)}*", ""] if b.caption else []
        out += ["| " + " | ".join(map(_md, b.head)) + " |", "|" + "|".join(align) + "|"]
        return out + ["| " + " | ".join(map(_md, r)) + " |" for r in b.rows] + [""]
    if isinstance(b, Notes):
        label = f"{_md(b.label)}: " if b.label else ""
        return [f"- {label}{_md(x)}" for x in b.items] + ([""] if b.items else [])
    if isinstance(b, Charts):
        return [f"*Charts ({_md(b.what)}): in the HTML report, `edgebench report ... --html OUT.html`.*", ""]
    return []


def markdown(sections: list[Section]) -> str:
    out = ["# edgebench report", ""]
    for s in sections:
        out += [f"## {_md(s.title)}", ""]
        for b in s.blocks:
            out += _md_block(b)
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- HTML
def _anchor(i: int) -> str:
    return f"s{i}"


def _table_html(t: Table, cls: str = "") -> str:
    def row(cells: list[str], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f'<{tag} class="{"l" if i < t.left else ""}">{escape(str(c))}</{tag}>' for i, c in enumerate(cells)
            )
            + "</tr>"
        )

    cap = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    head = f"<thead>{row(t.head, 'th')}</thead>" if any(t.head) else ""
    body = "".join(row(r, "td") for r in t.rows)
    return f'<div class=scroll><table class="{cls}">{cap}{head}<tbody>{body}</tbody></table></div>'


def figure_svg(fig: Any) -> str:
    """A matplotlib figure as inline SVG (text kept as text; sized by the page, not in points)."""
    import matplotlib
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "edgebench"}):
        fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)


def _charts_html(c: Charts, counter: list[int]) -> str:
    import importlib.util

    from edgebench.agent.report.plots import labels_of

    if importlib.util.find_spec("matplotlib") is None:
        return '<p class=note>Charts need matplotlib: pip install "edgebench[plot]", then make the report again.</p>'
    figs = c.make()
    out = []
    for _name, fig in figs:
        title = labels_of(fig)["Title"]
        counter[0] += 1
        svg = figure_svg(fig).replace('id="', f'id="c{counter[0]}-').replace("url(#", f"url(#c{counter[0]}-")
        svg = svg.replace('xlink:href="#', f'xlink:href="#c{counter[0]}-')
        out.append(f"<figure>{svg}<figcaption>{escape(title)}</figcaption></figure>")
    return "".join(out)


def _html_block(b: Any, counter: list[int]) -> str:
    if isinstance(b, Verdict):
        reasons = "".join(f"<li>{escape(r)}</li>" for r in b.reasons)
        return (
            f'<p class=verdict><span class="{escape(b.verdict)}">{escape(b.verdict)}</span> · {escape(b.text)}</p>'
            + (f"<ul>{reasons}</ul>" if reasons else "")
        )
    if isinstance(b, Facts):
        return _table_html(Table(["", ""], [list(x) for x in b.items], left=2), "facts")
    if isinstance(b, Table):
        return _table_html(b)
    if isinstance(b, Notes):
        label = f"{escape(b.label)}: " if b.label else ""
        items = "".join(f"<li>{label}{escape(x)}</li>" for x in b.items)
        return f"<ul class=note>{items}</ul>" if items else ""
    if isinstance(b, Charts):
        return _charts_html(b, counter)
    return ""


def html(sections: list[Section], files: list[str]) -> str:
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    counter = [0]
    nav = "".join(f'<a href="#{_anchor(i)}">{escape(s.title)}</a>' for i, s in enumerate(sections))
    body = []
    for i, s in enumerate(sections):
        blocks = "".join(_html_block(b, counter) for b in s.blocks)
        body.append(f'<section id="{_anchor(i)}"><h2>{escape(s.title)}</h2>{blocks}</section>')
    title = "edgebench report: " + ", ".join(files)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>edgebench report</h1><p class=note>made {made} from {escape(', '.join(files))}</p>"
        f"<nav>{nav}</nav>{''.join(body)}"
        "<p class=note>edgebench report · one file, nothing fetched: safe to attach to a ticket</p></body></html>\n"
    )
