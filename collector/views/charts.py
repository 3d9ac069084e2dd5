"""Charts as inline SVG, generated on the server: no JavaScript, nothing fetched by the
browser, nothing vendored; a page is complete as sent (and readable by a test).

They follow the house chart style (edgebench.agent.wire.chartstyle, which the agent's
matplotlib pictures follow too): the same palette, 1-2-5 ticks on log axes labelled as
plain numbers (``0.05``, ``200``), linear axes in 1-2-5 steps, green for what is met or
better and red for a bound, a failure or what is worse, at most 8 series per chart (the
pages pick which), point labels moved apart so they do not collide, and a unit on every
axis. Drawn by hand rather than with matplotlib so the collector needs no plotting stack.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

from edgebench.agent.wire import chartstyle as cs

W, H = 720, 300
ML, MR, MT, MB = 64, 16, 28, 64
PALETTE = cs.PALETTE
#: C0 controls but tab, newline and carriage return; DEL; C1 controls: XML has no escape for them
_CONTROLS = {c: 0xFFFD for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))}


def escape(text: object) -> str:
    """Text for SVG: markup escaped, control characters (from the fleet's names) as U+FFFD."""
    return html.escape(str(text)).translate(_CONTROLS)


#: pixels a tick label's character takes, and the room between two labels
_CHAR_PX, _GAP_PX = 6.2, 14
#: the height of a note line under a chart's title
NOTE_PX = 14


def _fmt(v: float) -> str:
    """A value in a tooltip or a mark: 4 significant digits, no exponent."""
    if v == 0:
        return "0"
    return cs.tick_label(float(f"{v:.4g}"))


def _frame(title: str, kind: str, h: int = H) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(kind)}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}"'
        f' viewBox="0 0 {W} {h}" role="img" aria-label="{escape(title)}" font-family="system-ui,sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="{cs.TITLE_PX}" font-weight="bold">{escape(title)}</text>',
    ]


def _no_data(out: list[str], what: str, extra: Sequence[str] = ()) -> str:
    out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="{cs.MUTED}">{escape(what)}</text>')
    for i, line in enumerate(extra):
        out.append(
            f'<text class="unsupported" x="{W / 2}" y="{H / 2 + 16 * (i + 1)}" text-anchor="middle"'
            f' font-size="{cs.LABEL_PX}" fill="{cs.WORSE}">{escape(line)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


class Scale:
    """One axis: values in [lo, hi] (log10 when ``log``) onto pixels [p0, p1], and its ticks."""

    def __init__(self, lo: float, hi: float, log: bool, p0: float, p1: float):
        self.lo, self.hi, self.log, self.p0, self.p1 = lo, hi, log, p0, p1

    def _t(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def __call__(self, v: float) -> float:
        a, b = self._t(self.lo), self._t(self.hi)
        return self.p0 + (self.p1 - self.p0) * (self._t(max(v, self.lo) if self.log else v) - a) / ((b - a) or 1.0)

    def ticks(self, horizontal: bool) -> list[float]:
        """The most 1-2-5 ticks whose labels fit along the axis."""
        length = abs(self.p1 - self.p0)
        for n in range(cs.MAX_TICKS, 1, -1):
            t = cs.log_ticks(self.lo, self.hi, n) if self.log else cs.linear_ticks(self.lo, self.hi, n)
            need = sum(len(cs.tick_label(v)) * _CHAR_PX + _GAP_PX for v in t) if horizontal else len(t) * 18
            if need <= length:
                return t
        return t


def _padded(lo: float, hi: float, log: bool, frac: float) -> tuple[float, float]:
    """[lo, hi] widened by ``frac`` of its span (in log space for a log axis); never empty."""
    if log:
        a, b = math.log10(lo), math.log10(hi)
        if a == b:
            a, b = a - 0.15, b + 0.15
        pad = (b - a) * frac
        return 10 ** (a - pad), 10 ** (b + pad)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * frac
    return lo - pad, hi + pad


def _axes(
    xs: Scale,
    ys: Scale,
    xlabel: str,
    ylabel: str,
    xticks: Sequence[float] | None = None,
    yticks: Sequence[float] | None = None,
    scale_note: bool = True,
) -> list[str]:
    """The plot frame, grid lines at the ticks, tick labels, both axis labels, and (unless
    the labels already say it) which axes are logarithmic, above the plot's right corner."""
    x0, x1, y0, y1 = xs.p0, xs.p1, ys.p1, ys.p0  # y pixels grow downwards
    out = [f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#ccc"/>']
    for v in yticks if yticks else ys.ticks(False):
        y = ys(v)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{cs.GRID}"/>')
        out.append(
            f'<text class="ytick" x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="{cs.TICK_PX}">'
            f"{cs.tick_label(v)}</text>"
        )
    for v in xticks if xticks else xs.ticks(True):
        x = xs(v)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="{cs.GRID}"/>')
        out.append(
            f'<text class="xtick" x="{x:.1f}" y="{y1 + 14}" text-anchor="middle" font-size="{cs.TICK_PX}">'
            f"{cs.tick_label(v)}</text>"
        )
    scales = [n for n, s in (("x", xs), ("y", ys)) if s.log]
    note = ("log-log" if len(scales) == 2 else f"log {scales[0]}") if scales else ""
    out.append(
        f'<text class="xlabel" x="{(x0 + x1) / 2}" y="{y1 + 30}" text-anchor="middle" font-size="{cs.LABEL_PX}">'
        f"{escape(xlabel)}</text>"
    )
    out.append(
        f'<text class="ylabel" x="12" y="{(y0 + y1) / 2}" font-size="{cs.LABEL_PX}" transform="rotate(-90 12 {(y0 + y1) / 2})"'
        f' text-anchor="middle">{escape(ylabel)}</text>'
    )
    if note and scale_note:
        out.append(
            f'<text x="{W - MR}" y="{MT - 4}" text-anchor="end" font-size="{cs.TICK_PX}" fill="{cs.MUTED}">{note}</text>'
        )
    return out


def _plot_scales(
    xs: Sequence[float], ys: Sequence[float], log_x: bool, log_y: bool, pad: float = 0.04
) -> tuple[Scale, Scale]:
    xlo, xhi = _padded(min(xs), max(xs), log_x, pad)
    ylo, yhi = _padded(min(ys), max(ys), log_y, pad * 2)
    return Scale(xlo, xhi, log_x, ML, W - MR), Scale(ylo, yhi, log_y, H - MB, MT)


def _ok(x, y, log_x: bool, log_y: bool) -> bool:
    return x is not None and y is not None and (not log_x or x > 0) and (not log_y or y > 0)


# ------------------------------------------------------------------------------------ legends
def _legend_rows(names: Sequence[str], colors: Sequence[int] | None = None) -> list[list[tuple[int, str]]]:
    """Legend entries (palette index, name) in rows that fit the chart's width."""
    rows: list[list[tuple[int, str]]] = [[]]
    x = ML
    for i, n in enumerate(names):
        w = 24 + 6.5 * len(n)
        if rows[-1] and x + w > W - MR:
            rows.append([])
            x = ML
        rows[-1].append((colors[i] if colors is not None else i, n))
        x += w
    return rows


def _legend_svg(rows: list[list[tuple[int, str]]], top: float, styles: dict[str, str] | None = None) -> list[str]:
    out = []
    for r, row in enumerate(rows):
        x, y = ML, top + 16 * r
        for i, n in row:
            c = cs.series_color(i)
            dash = (styles or {}).get(n, "")
            out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 14}" y2="{y - 4}" stroke="{c}" stroke-width="2"{dash}/>')
            out.append(f'<text class="legend" x="{x + 18}" y="{y}" font-size="{cs.LABEL_PX}">{escape(n)}</text>')
            x += 24 + 6.5 * len(n)
    return out


def _tall_frame(title: str, kind: str, legend_rows: list, extra: int = 0) -> list[str]:
    """The chart's frame, taller by a line for each legend row past the first (and ``extra`` px)."""
    return _frame(title, kind, H + 16 * max(0, len(legend_rows) - 1) + extra)


# ------------------------------------------------------------------------------------- bars
#: a bar chart's row of bars per group, and the room for its group labels on the left
_BAR_PX, _LABEL_CHARS = 10, 46


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], unit: str) -> str:
    """Grouped horizontal bars: one row of bars per label (so long labels, a board and a
    model, read whole on the left instead of colliding under the bars), one bar per series
    (at most 8: the caller picks); the value axis at the bottom, in ``unit``, from 0."""
    vals = [v for s in series.values() for v in s if v is not None]
    # long labels lose their middle, so both what they start with (a device) and what they end
    # with (its threads) still show; the whole label is the tooltip
    half = (_LABEL_CHARS - 1) // 2
    shorts = [lab if len(lab) <= _LABEL_CHARS else lab[:half] + "…" + lab[-half:] for lab in labels]
    ml = 12 + int(max((len(x) for x in shorts), default=4) * _CHAR_PX)
    group_h = _BAR_PX * max(1, len(series)) + 8
    ph = max(120, group_h * len(labels))
    rows = _legend_rows(list(series))
    h = MT + ph + 40 + 16 * len(rows) + 4
    out = _frame(title, "bars", h)
    if not labels or not vals:
        return _no_data(out, "no data")
    xs = Scale(0.0, cs.nice_max(max(vals)), False, ml, W - MR)
    top, bottom = MT, MT + ph
    for v in xs.ticks(True):
        x = xs(v)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{cs.GRID}"/>')
        out.append(
            f'<text class="xtick" x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" font-size="{cs.TICK_PX}">{cs.tick_label(v)}</text>'
        )
    out.append(f'<line x1="{ml}" y1="{top}" x2="{ml}" y2="{bottom}" stroke="#333"/>')
    out.append(
        f'<text class="xlabel" x="{(ml + W - MR) / 2}" y="{bottom + 30}" text-anchor="middle" font-size="{cs.LABEL_PX}">'
        f"{escape(unit)}</text>"
    )
    gh = ph / len(labels)
    for gi, (lab, short) in enumerate(zip(labels, shorts)):
        y0 = top + gi * gh + (gh - _BAR_PX * len(series)) / 2
        out.append(
            f'<text class="glabel" x="{ml - 6}" y="{top + gi * gh + gh / 2 + 4:.1f}" text-anchor="end" font-size="{cs.TICK_PX}">'
            f"{escape(short)}<title>{escape(lab)}</title></text>"
        )
        for si, (name, s) in enumerate(series.items()):
            v = s[gi]
            if v is None:
                continue
            out.append(
                f'<rect class="bar" x="{ml}" y="{y0 + si * _BAR_PX:.1f}" width="{max(0.5, xs(v) - ml):.1f}" height="{_BAR_PX - 1}"'
                f' fill="{cs.series_color(si)}"><title>{escape(lab)} {escape(name)}: {_fmt(v)} {escape(unit)}</title></rect>'
            )
    out += _legend_svg(rows, bottom + 50)
    out.append("</svg>")
    return "\n".join(out)


# -------------------------------------------------------------------------------- histograms
def _marks(xs: Scale, marks: dict[str, float | None], top: float, bottom: float) -> list[str]:
    """Vertical marks (p50, p99, a bound in red), their labels moved apart so none overlap."""
    shown = [(n, v) for n, v in marks.items() if v is not None and xs.lo <= v <= xs.hi]
    out = []
    label_x = cs.spread([xs(v) for _, v in shown], 66, xs.p0, xs.p1 - 66)
    for i, ((name, v), lx) in enumerate(zip(shown, label_x)):
        c = cs.WORSE if name == "bound" else cs.series_color(i + 1)
        x = xs(v)
        out.append(
            f'<line class="mark" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{c}" stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{lx + 3:.1f}" y="{top + 10}" font-size="{cs.TICK_PX}" fill="{c}">{escape(name)} {_fmt(v)}</text>'
        )
    return out


def histogram_svg(
    title: str,
    counts: Sequence[int],
    edges: Sequence[float],
    unit: str = "ms",
    marks: dict[str, float | None] | None = None,
    *,
    log_x: bool = False,
    what: str = "frames",
    xlabel: str | None = None,
) -> str:
    """Bars between ``edges``; ``log_x`` for log-spaced edges (the agent's sweep and scenario
    histograms), so each bin is as wide as it is on a log scale. ``what`` names the counts."""
    out = _frame(title, "histogram")
    if not counts or not edges or (log_x and edges[0] <= 0):
        return _no_data(out, f"no {what} stored")
    xs = Scale(edges[0], edges[-1], log_x, ML, W - MR)
    ys = Scale(0.0, cs.nice_max(max(counts)), False, H - MB, MT)
    out += _axes(xs, ys, (xlabel or f"latency ({unit})") + (", log scale" if log_x else ""), what, scale_note=False)
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        y = ys(c)
        out.append(
            f'<rect class="bar" x="{xs(a):.1f}" y="{y:.1f}" width="{max(0.5, xs(b) - xs(a) - 0.5):.1f}"'
            f' height="{ys.p0 - y:.1f}" fill="{cs.PALETTE[0]}"><title>{_fmt(a)}–{_fmt(b)} {escape(unit)}: {c} {escape(what)}</title></rect>'
        )
    out += _marks(xs, marks or {}, MT, H - MB)
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------- lines
def _path(xs: Scale, ys: Scale, pts: Sequence[tuple]) -> str:
    return " ".join(f"{'M' if j == 0 else 'L'}{xs(p[0]):.1f},{ys(p[1]):.1f}" for j, p in enumerate(pts))


def line_chart(
    title: str,
    series: dict[str, list[tuple]],
    xlabel: str,
    ylabel: str,
    log: bool = True,
    *,
    dashed: Sequence[str] = (),
    missing: Sequence[tuple[float, str]] = (),
    kind: str = "lines",
    xticks: Sequence[float] | None = None,
    colors: dict[str, int] | None = None,
    log_x: bool | None = None,
    note: str | None = None,
    yticks: Sequence[float] | None = None,
) -> str:
    """Lines with points, log-log by default (sweeps span batch 1..256; ``log_x`` apart for a
    time axis). A point is (x, y) or (x, y, note): a note draws it hollow, with the note in
    its tooltip (e.g. an INVALID point and why). ``missing`` marks x values that have no
    point, e.g. a batch size the model cannot take: a red cross on the x axis with its
    reason. ``colors`` gives series their palette index (one color for the p50 and p99 of a
    configuration). ``note``: a grey line under the title (what the chart leaves out)."""
    lx = log if log_x is None else log_x
    pts = [(p[0], p[1]) for s in series.values() for p in s if _ok(p[0], p[1], lx, log)]
    miss = [(x, why) for x, why in missing if x is not None and (not lx or x > 0)]
    cidx = {name: (colors or {}).get(name, i) for i, name in enumerate(series)}
    rows = _legend_rows(list(series), [cidx[n] for n in series])
    out = _tall_frame(title, kind, rows, NOTE_PX if note else 0)
    end = "</svg>"
    if note:  # a line under the title; the rest of the chart moves down to make room
        out.append(
            f'<text class="note" x="{ML}" y="{MT + 4}" font-size="{cs.TICK_PX}" fill="{cs.MUTED}">{escape(note)}</text>'
        )
        out.append(f'<g transform="translate(0 {NOTE_PX})">')
        end = "</g></svg>"
    if not pts:
        return _no_data(out, "no point ran", [why for _x, why in miss]).removesuffix("</svg>") + end
    xs, ys = _plot_scales([x for x, _ in pts] + [x for x, _ in miss], [y for _, y in pts], lx, log)
    if yticks:
        ys = Scale(min(ys.lo, *yticks), max(ys.hi, *yticks), ys.log, ys.p0, ys.p1)
    out += _axes(xs, ys, xlabel, ylabel, xticks, yticks)
    styles = {name: ' stroke-dasharray="5 3"' if name in dashed else "" for name in series}
    for name, s in series.items():
        out += _line_series(xs, ys, name, s, cs.series_color(cidx[name]), styles[name])
    for x, why in miss:
        px, py = xs(x), ys.p0 - 6
        out.append(
            f'<path class="unsupported" d="M{px - 5:.1f},{py - 5:.1f} L{px + 5:.1f},{py + 5:.1f} M{px - 5:.1f},'
            f'{py + 5:.1f} L{px + 5:.1f},{py - 5:.1f}" stroke="{cs.WORSE}" stroke-width="2">'
            f"<title>{escape(why)}</title></path>"
        )
    out += _legend_svg(rows, H - MB + 50, styles)
    out.append(end)
    return "\n".join(out)


def _line_series(xs: Scale, ys: Scale, name: str, s: list[tuple], c: str, dash: str) -> list[str]:
    """One series: its line through the points in x order, and each point (hollow with a note).
    A None y breaks the line (a gap in telemetry is not drawn across)."""
    good = sorted((p for p in s if p[0] is not None and (not xs.log or p[0] > 0)), key=lambda p: p[0])
    runs: list[list[tuple]] = [[]]
    for p in good:
        if _ok(p[0], p[1], xs.log, ys.log):
            runs[-1].append(p)
        elif runs[-1]:
            runs.append([])
    out = [
        f'<path class="series" d="{_path(xs, ys, r)}" fill="none" stroke="{c}" stroke-width="2"{dash}/>'
        for r in runs
        if r
    ]
    many = sum(len(r) for r in runs) > 60  # a dense series (telemetry) is a line, not dots
    for p in (q for r in runs for q in r):
        note = p[2] if len(p) > 2 and p[2] else None
        if many and not note:
            continue
        fill = "#fff" if note else c
        tip = f"{name}: {_fmt(p[0])}, {_fmt(p[1])}" + (f" ({note})" if note else "")
        out.append(
            f'<circle class="{"point hollow" if note else "point"}" cx="{xs(p[0]):.1f}" cy="{ys(p[1]):.1f}" r="3.5"'
            f' fill="{fill}" stroke="{c}" stroke-width="1.5"><title>{escape(tip)}</title></circle>'
        )
    return out


# ------------------------------------------------------------------------------------ scatter
def scatter_chart(
    title: str,
    points: Sequence[dict],
    xlabel: str,
    ylabel: str,
    *,
    log: bool = True,
    line: Sequence[tuple[float, float]] = (),
    line_name: str | None = None,
    hline: tuple[float, str] | None = None,
    vline: tuple[float, str] | None = None,
    groups: Sequence[str] = (),
    kind: str = "scatter",
    group_colors: dict[str, str] | None = None,
) -> str:
    """Points ({x, y, label, group, hollow, note}) with their labels moved apart so none
    overlap, an optional connecting line (the latency/throughput frontier, in green) and
    reference lines (a bound in red, a rate reached in green). ``group_colors`` overrides a
    group's colour (``pass`` green, ``fail`` red)."""
    pts = [p for p in points if _ok(p["x"], p["y"], log, log)]
    names = list(groups) + ([line_name] if line_name and line else [])
    rows = _legend_rows(names)
    out = _tall_frame(title, kind, rows)
    if not pts:
        return _no_data(out, "no point ran")
    xv, yv = [p["x"] for p in pts], [p["y"] for p in pts]
    if _drawable(hline, log):
        yv.append(hline[0])
    if _drawable(vline, log):
        xv.append(vline[0])
    xs, ys = _plot_scales(xv, yv, log, log, 0.06)
    out += _axes(xs, ys, xlabel, ylabel)
    out += _reference_lines(xs, ys, hline, vline)
    good_line = [(x, y) for x, y in line if _ok(x, y, log, log)]
    if good_line:
        out.append(
            f'<path class="frontier" d="{_path(xs, ys, good_line)}" fill="none" stroke="{cs.BETTER}"'
            ' stroke-width="1.5" stroke-dasharray="2 3"/>'
        )
    colors = {g: (group_colors or {}).get(g, cs.series_color(i)) for i, g in enumerate(groups)}
    for p in pts:
        out += _scatter_point(xs, ys, p, colors)
    out += _point_labels(xs, ys, [p for p in pts if p.get("label")])
    styles = {line_name: ' stroke-dasharray="2 3"'} if line_name else {}
    legend_colors = {**{g: c for g, c in colors.items()}, **({line_name: cs.BETTER} if line_name else {})}
    out += _legend_colored(rows, H - MB + 50, styles, legend_colors)
    out.append("</svg>")
    return "\n".join(out)


def _legend_colored(rows, top: float, styles: dict, colors: dict[str, str]) -> list[str]:
    out = []
    for r, row in enumerate(rows):
        x, y = ML, top + 16 * r
        for _i, n in row:
            c = colors.get(n, cs.MUTED)
            out.append(
                f'<line x1="{x}" y1="{y - 4}" x2="{x + 14}" y2="{y - 4}" stroke="{c}" stroke-width="2"{styles.get(n, "")}/>'
            )
            out.append(f'<text class="legend" x="{x + 18}" y="{y}" font-size="{cs.LABEL_PX}">{escape(n)}</text>')
            x += 24 + 6.5 * len(n)
    return out


def _drawable(ref: tuple[float, str] | None, log: bool) -> bool:
    return bool(ref) and ref[0] is not None and (not log or ref[0] > 0)


def _reference_lines(xs: Scale, ys: Scale, hline, vline) -> list[str]:
    """A horizontal bound (red) and a vertical rate reached (green), each with its label."""
    out = []
    if _drawable(hline, ys.log):
        y = ys(hline[0])
        out.append(
            f'<line class="bound" x1="{xs.p0}" y1="{y:.1f}" x2="{xs.p1}" y2="{y:.1f}" stroke="{cs.WORSE}" stroke-dasharray="6 3"/>'
        )
        out.append(
            f'<text x="{xs.p1 - 4}" y="{y - 4:.1f}" text-anchor="end" font-size="{cs.TICK_PX}" fill="{cs.WORSE}">{escape(hline[1])}</text>'
        )
    if _drawable(vline, xs.log):
        x = xs(vline[0])
        out.append(
            f'<line class="rate" x1="{x:.1f}" y1="{ys.p1}" x2="{x:.1f}" y2="{ys.p0}" stroke="{cs.BETTER}" stroke-dasharray="6 3"/>'
        )
        out.append(
            f'<text x="{x + 4:.1f}" y="{ys.p1 + 12}" font-size="{cs.TICK_PX}" fill="{cs.BETTER}">{escape(vline[1])}</text>'
        )
    return out


def _scatter_point(xs: Scale, ys: Scale, p: dict, colors: dict[str, str]) -> list[str]:
    """A point in its group's color (hollow if so marked) and its tooltip."""
    x, y = xs(p["x"]), ys(p["y"])
    c = colors.get(p.get("group"), cs.PALETTE[0])
    tip = f"{p.get('label') or ''}: {_fmt(p['x'])}, {_fmt(p['y'])}" + (f" ({p['note']})" if p.get("note") else "")
    return [
        f'<circle class="{"point hollow" if p.get("hollow") else "point"}" cx="{x:.1f}" cy="{y:.1f}" r="4"'
        f' fill="{"#fff" if p.get("hollow") else c}" stroke="{c}" stroke-width="1.5"><title>{escape(tip)}</title></circle>'
    ]


def _clusters(extents: list[tuple[float, float]]) -> list[list[int]]:
    """Indices of labels whose horizontal extents overlap, transitively (they may collide)."""
    order = sorted(range(len(extents)), key=lambda i: extents[i][0])
    groups: list[list[int]] = []
    right = -math.inf
    for i in order:
        if not groups or extents[i][0] > right:
            groups.append([])
            right = extents[i][1]
        groups[-1].append(i)
        right = max(right, extents[i][1])
    return groups


def _point_labels(xs: Scale, ys: Scale, pts: Sequence[dict]) -> list[str]:
    """Each label right of its point; labels that share columns are moved up or down just
    enough that none overlap (chartstyle.spread), with a thin leader when moved."""
    if not pts:
        return []
    want = [ys(p["y"]) - 5 for p in pts]
    ext = [(xs(p["x"]) + 7, xs(p["x"]) + 7 + len(p["label"]) * _CHAR_PX) for p in pts]
    placed = list(want)
    for group in _clusters(ext):
        for i, y in zip(group, cs.spread([want[i] for i in group], cs.TICK_PX + 2, ys.p1 + 8, ys.p0 - 2)):
            placed[i] = y
    out = []
    for p, w, y in zip(pts, want, placed):
        x, py = xs(p["x"]), ys(p["y"])
        if abs(y - w) > 1:
            out.append(f'<line x1="{x:.1f}" y1="{py:.1f}" x2="{x + 6:.1f}" y2="{y - 3:.1f}" stroke="#bbb"/>')
        out.append(
            f'<text class="point-label" x="{x + 7:.1f}" y="{y:.1f}" font-size="{cs.TICK_PX - 1}" fill="#444">{escape(p["label"])}</text>'
        )
    return out
