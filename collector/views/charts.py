"""Charts as inline SVG, generated on the server: no JavaScript, nothing fetched by the
browser, nothing vendored; a page is complete as sent (and readable by a test)."""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

W, H = 720, 300
ML, MR, MT, MB = 64, 16, 28, 64
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def _frame(title: str, kind: str) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(kind)}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}"'
        f' viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    x = ML
    for i, n in enumerate(names):
        c = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{c}"/>')
        out.append(f'<text x="{x + 14}" y="{H - 5}" font-size="11">{escape(n)}</text>')
        x += 24 + 7 * len(n)
    return out


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], unit: str) -> str:
    """Grouped bars: one group per label, one bar per series."""
    vals = [v for s in series.values() for v in s if v is not None]
    out = _frame(title, "bars")
    if not labels or not vals:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(out)
    top = _nice_max(max(vals))
    pw, ph = W - ML - MR, H - MT - MB
    out.append(f'<line x1="{ML}" y1="{MT + ph}" x2="{ML + pw}" y2="{MT + ph}" stroke="#333"/>')
    for i in range(5):
        v = top * i / 4
        y = MT + ph - ph * i / 4
        out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{_fmt(v)}</text>')
    out.append(
        f'<text x="12" y="{MT + ph / 2}" font-size="11" transform="rotate(-90 12 {MT + ph / 2})"'
        f' text-anchor="middle">{escape(unit)}</text>'
    )
    gw = pw / len(labels)
    ns = len(series)
    bw = max(2.0, gw * 0.8 / ns)
    for gi, lab in enumerate(labels):
        x0 = ML + gi * gw + gw * 0.1
        for si, (name, s) in enumerate(series.items()):
            v = s[gi]
            if v is None:
                continue
            h = ph * v / top
            out.append(
                f'<rect class="bar" x="{x0 + si * bw:.1f}" y="{MT + ph - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}"'
                f' fill="{PALETTE[si % len(PALETTE)]}"><title>{escape(lab)} {escape(name)}: {v:.4g} {escape(unit)}'
                "</title></rect>"
            )
        short = lab if len(lab) <= 22 else lab[:20] + "…"
        out.append(
            f'<text x="{x0 + gw * 0.4:.1f}" y="{MT + ph + 14}" text-anchor="middle" font-size="10">{escape(short)}</text>'
        )
    out += _legend(list(series))
    out.append("</svg>")
    return "\n".join(out)


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
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no {escape(what)} stored</text></svg>')
        return "\n".join(out)
    top = _nice_max(max(counts))
    pw, ph = W - ML - MR, H - MT - MB
    f = math.log10 if log_x else (lambda v: v)
    lo, hi = f(edges[0]), f(edges[-1])
    span = (hi - lo) or 1.0

    def X(v: float) -> float:
        return ML + pw * (f(max(v, edges[0])) - lo) / span

    for i in range(5):
        y = MT + ph - ph * i / 4
        out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{_fmt(top * i / 4)}</text>')
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        h = ph * c / top
        out.append(
            f'<rect class="bar" x="{X(a):.1f}" y="{MT + ph - h:.1f}" width="{max(0.5, X(b) - X(a) - 0.5):.1f}"'
            f' height="{h:.1f}" fill="#3366cc"><title>{a:.4g}–{b:.4g} {escape(unit)}: {c} {escape(what)}</title></rect>'
        )
    for i in range(6):
        v = lo + span * i / 5
        out.append(
            f'<text x="{ML + pw * i / 5:.1f}" y="{MT + ph + 14}" text-anchor="middle" font-size="10">'
            f"{_fmt(10**v if log_x else v)}</text>"
        )
    xl = xlabel or f"latency ({unit})"
    out.append(
        f'<text class="xlabel" x="{ML + pw / 2}" y="{MT + ph + 30}" text-anchor="middle" font-size="11">'
        f"{escape(xl + (', log scale' if log_x else ''))}</text>"
    )
    out.append(
        f'<text class="ylabel" x="12" y="{MT + ph / 2}" font-size="11" transform="rotate(-90 12 {MT + ph / 2})"'
        f' text-anchor="middle">{escape(what)}</text>'
    )
    for i, (name, v) in enumerate((marks or {}).items()):
        if v is None or not edges[0] <= v <= edges[-1]:
            continue
        out.append(
            f'<line class="mark" x1="{X(v):.1f}" y1="{MT}" x2="{X(v):.1f}" y2="{MT + ph}" stroke="{PALETTE[(i + 1) % 8]}"'
            ' stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{X(v) + 3:.1f}" y="{MT + 10 + 12 * i}" font-size="10" fill="{PALETTE[(i + 1) % 8]}">'
            f"{escape(name)} {v:.4g}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


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
            c = PALETTE[i % len(PALETTE)]
            dash = (styles or {}).get(n, "")
            out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 14}" y2="{y - 4}" stroke="{c}" stroke-width="2"{dash}/>')
            out.append(f'<text class="legend" x="{x + 18}" y="{y}" font-size="11">{escape(n)}</text>')
            x += 24 + 6.5 * len(n)
    return out


def _axes(
    f,
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    pw: float,
    ph: float,
    log_x: bool,
    log_y: bool,
    xlabel: str,
    ylabel: str,
    xticks: Sequence[float] | None = None,
) -> list[str]:
    out = [f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        y = MT + ph - ph * i / 4
        out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(
            f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{_fmt(10**yv if log_y else yv)}</text>'
        )
    if xticks:
        for xv in xticks:
            x = ML + pw * (f(xv, log_x) - x0) / (x1 - x0)
            out.append(f'<text x="{x:.1f}" y="{MT + ph + 14}" text-anchor="middle" font-size="10">{_fmt(xv)}</text>')
    else:
        for i in range(5):
            xv = x0 + (x1 - x0) * i / 4
            out.append(
                f'<text x="{ML + pw * i / 4:.1f}" y="{MT + ph + 14}" text-anchor="middle" font-size="10">'
                f"{_fmt(10**xv if log_x else xv)}</text>"
            )
    scales = [n for n, on in (("x", log_x), ("y", log_y)) if on]
    note = f" ({'log-log' if len(scales) == 2 else 'log ' + scales[0]})" if scales else ""
    out.append(
        f'<text class="xlabel" x="{ML + pw / 2}" y="{MT + ph + 30}" text-anchor="middle" font-size="11">'
        f"{escape(xlabel)}</text>"
    )
    out.append(
        f'<text class="ylabel" x="12" y="{MT + ph / 2}" font-size="11" transform="rotate(-90 12 {MT + ph / 2})"'
        f' text-anchor="middle">{escape(ylabel)}</text>'
    )
    if note:
        out.append(
            f'<text x="{W - MR}" y="{MT - 4}" text-anchor="end" font-size="10" fill="#888">{escape(note.strip())}</text>'
        )
    return out


def _tf(v: float, log: bool) -> float:
    return math.log10(v) if log else v


def _ok(x, y, log_x: bool, log_y: bool) -> bool:
    return x is not None and y is not None and (not log_x or x > 0) and (not log_y or y > 0)


class _Area:
    """Data coordinates to the plot area's pixels: [x0, x1] x [y0, y1] in transformed (log10
    where ``log``) units."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, log: bool):
        self.x0, self.x1, self.y0, self.y1, self.log = x0, x1, y0, y1, log
        self.pw, self.ph = W - ML - MR, H - MT - MB

    def x(self, v: float) -> float:
        return ML + self.pw * (_tf(v, self.log) - self.x0) / (self.x1 - self.x0)

    def y(self, v: float) -> float:
        return MT + self.ph - self.ph * (_tf(v, self.log) - self.y0) / (self.y1 - self.y0)

    def axes(self, xlabel: str, ylabel: str, xticks: Sequence[float] | None = None) -> list[str]:
        return _axes(
            _tf, self.x0, self.x1, self.y0, self.y1, self.pw, self.ph, self.log, self.log, xlabel, ylabel, xticks
        )


def _widened(lo: float, hi: float) -> tuple[float, float]:
    """A range that is not empty (one value: half a unit either side)."""
    return (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)


def _tall_frame(title: str, kind: str, legend_rows: list) -> list[str]:
    """The chart's frame, taller by a line for each legend row past the first."""
    h = H + 16 * (len(legend_rows) - 1)
    out = _frame(title, kind).copy()
    out[0] = out[0].replace(f'height="{H}" viewBox="0 0 {W} {H}"', f'height="{h}" viewBox="0 0 {W} {h}"')
    return out


def _path(area: _Area, pts: Sequence[tuple]) -> str:
    return " ".join(f"{'M' if j == 0 else 'L'}{area.x(p[0]):.1f},{area.y(p[1]):.1f}" for j, p in enumerate(pts))


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
) -> str:
    """Lines with points, log-log by default (sweeps span batch 1..256). A point is (x, y)
    or (x, y, note): a note draws it hollow, with the note in its tooltip (e.g. an INVALID
    point and why). ``missing`` marks x values that have no point, e.g. a batch size the
    model cannot take: a cross on the x axis with its reason. ``colors`` gives series their
    palette index (e.g. one color for the p50 and p99 of a configuration)."""
    pts = [(p[0], p[1]) for s in series.values() for p in s if _ok(p[0], p[1], log, log)]
    miss = [(x, why) for x, why in missing if x is not None and (not log or x > 0)]
    cidx = {name: (colors or {}).get(name, i) for i, name in enumerate(series)}
    rows = _legend_rows(list(series), [cidx[n] for n in series])
    out = _tall_frame(title, kind, rows)
    if not pts:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no point ran</text>')
        for _x, why in miss:
            out.append(
                f'<text class="unsupported" x="{W / 2}" y="{H / 2 + 16}" text-anchor="middle" font-size="11">'
                f"{escape(why)}</text>"
            )
        out.append("</svg>")
        return "\n".join(out)
    xs = [_tf(x, log) for x, _ in pts] + [_tf(x, log) for x, _ in miss]
    ys = [_tf(y, log) for _, y in pts]
    x0, x1 = _widened(min(xs), max(xs))
    y0, y1 = _widened(min(ys), max(ys))
    pad = (x1 - x0) * 0.03
    area = _Area(x0 - pad, x1 + pad, y0, y1, log)
    out += area.axes(xlabel, ylabel, xticks)
    styles = {name: ' stroke-dasharray="5 3"' if name in dashed else "" for name in series}
    for name, s in series.items():
        out += _line_series(area, name, s, PALETTE[cidx[name] % len(PALETTE)], styles[name])
    for x, why in miss:
        px, py = area.x(x), MT + area.ph - 6
        out.append(
            f'<path class="unsupported" d="M{px - 5:.1f},{py - 5:.1f} L{px + 5:.1f},{py + 5:.1f} M{px - 5:.1f},'
            f'{py + 5:.1f} L{px + 5:.1f},{py - 5:.1f}" stroke="#dc3912" stroke-width="2">'
            f"<title>{escape(why)}</title></path>"
        )
    out += _legend_svg(rows, MT + area.ph + 50, styles)
    out.append("</svg>")
    return "\n".join(out)


def _line_series(area: _Area, name: str, s: list[tuple], c: str, dash: str) -> list[str]:
    """One series: its line through the points in x order, and each point (hollow with a note)."""
    good = sorted((p for p in s if _ok(p[0], p[1], area.log, area.log)), key=lambda p: p[0])
    if not good:
        return []
    out = [f'<path class="series" d="{_path(area, good)}" fill="none" stroke="{c}" stroke-width="2"{dash}/>']
    for p in good:
        note = p[2] if len(p) > 2 and p[2] else None
        fill = "#fff" if note else c
        tip = f"{name}: {p[0]:g}, {p[1]:.4g}" + (f" ({note})" if note else "")
        out.append(
            f'<circle class="{"point hollow" if note else "point"}" cx="{area.x(p[0]):.1f}" cy="{area.y(p[1]):.1f}" r="3.5"'
            f' fill="{fill}" stroke="{c}" stroke-width="1.5"><title>{escape(tip)}</title></circle>'
        )
    return out


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
) -> str:
    """Labelled points ({x, y, label, group, hollow, note}), an optional connecting line (e.g.
    the latency/throughput frontier) and reference lines (a latency bound, a rate)."""
    pts = [p for p in points if _ok(p["x"], p["y"], log, log)]
    names = list(groups) + ([line_name] if line_name and line else [])
    rows = _legend_rows(names)
    out = _tall_frame(title, kind, rows)
    if not pts:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no point ran</text></svg>')
        return "\n".join(out)
    xs = [_tf(p["x"], log) for p in pts]
    ys = [_tf(p["y"], log) for p in pts]
    for ref, axis in ((hline, ys), (vline, xs)):
        if _drawable(ref, log):
            axis.append(_tf(ref[0], log))
    x0, x1 = _widened(min(xs), max(xs))
    y0, y1 = _widened(min(ys), max(ys))
    px_, py_ = (x1 - x0) * 0.05, (y1 - y0) * 0.08
    area = _Area(x0 - px_, x1 + px_, y0 - py_, y1 + py_, log)
    out += area.axes(xlabel, ylabel)
    out += _reference_lines(area, hline, vline)
    good_line = [(x, y) for x, y in line if _ok(x, y, log, log)]
    if good_line:
        out.append(
            f'<path class="frontier" d="{_path(area, good_line)}" fill="none" stroke="{PALETTE[len(groups) % len(PALETTE)]}"'
            ' stroke-width="1.5" stroke-dasharray="2 3"/>'
        )
    for p in pts:
        out += _scatter_point(area, p, groups)
    styles = {line_name: ' stroke-dasharray="2 3"'} if line_name else {}
    out += _legend_svg(rows, MT + area.ph + 50, styles)
    out.append("</svg>")
    return "\n".join(out)


def _drawable(ref: tuple[float, str] | None, log: bool) -> bool:
    return bool(ref) and ref[0] is not None and (not log or ref[0] > 0)


def _reference_lines(area: _Area, hline: tuple[float, str] | None, vline: tuple[float, str] | None) -> list[str]:
    """A horizontal bound (red) and a vertical rate (green), each with its label."""
    out = []
    if _drawable(hline, area.log):
        y = area.y(hline[0])
        out.append(
            f'<line class="bound" x1="{ML}" y1="{y:.1f}" x2="{ML + area.pw}" y2="{y:.1f}" stroke="#dc3912" stroke-dasharray="6 3"/>'
        )
        out.append(
            f'<text x="{ML + area.pw - 4}" y="{y - 4:.1f}" text-anchor="end" font-size="10" fill="#dc3912">{escape(hline[1])}</text>'
        )
    if _drawable(vline, area.log):
        x = area.x(vline[0])
        out.append(
            f'<line class="rate" x1="{x:.1f}" y1="{MT}" x2="{x:.1f}" y2="{MT + area.ph}" stroke="#109618" stroke-dasharray="6 3"/>'
        )
        out.append(f'<text x="{x + 4:.1f}" y="{MT + 12}" font-size="10" fill="#109618">{escape(vline[1])}</text>')
    return out


def _scatter_point(area: _Area, p: dict, groups: Sequence[str]) -> list[str]:
    """A point in its group's color (hollow if so marked), its tooltip and its label."""
    x, y = area.x(p["x"]), area.y(p["y"])
    gi = list(groups).index(p["group"]) if p.get("group") in groups else 0
    c = PALETTE[gi % len(PALETTE)]
    tip = f"{p.get('label') or ''}: {p['x']:.4g}, {p['y']:.4g}" + (f" ({p['note']})" if p.get("note") else "")
    out = [
        f'<circle class="{"point hollow" if p.get("hollow") else "point"}" cx="{x:.1f}" cy="{y:.1f}" r="4"'
        f' fill="{"#fff" if p.get("hollow") else c}" stroke="{c}" stroke-width="1.5"><title>{escape(tip)}</title></circle>'
    ]
    if p.get("label"):
        out.append(
            f'<text class="point-label" x="{x + 5:.1f}" y="{y - 5:.1f}" font-size="9" fill="#555">{escape(p["label"])}</text>'
        )
    return out
