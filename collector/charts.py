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
    out.append(f'<text x="12" y="{MT + ph / 2}" font-size="11" transform="rotate(-90 12 {MT + ph / 2})"'
               f' text-anchor="middle">{escape(unit)}</text>')
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
        out.append(f'<text x="{x0 + gw * 0.4:.1f}" y="{MT + ph + 14}" text-anchor="middle" font-size="10">{escape(short)}</text>')
    out += _legend(list(series))
    out.append("</svg>")
    return "\n".join(out)


def histogram_svg(title: str, counts: Sequence[int], edges: Sequence[float], unit: str = "ms",
                  marks: dict[str, float] | None = None) -> str:
    out = _frame(title, "histogram")
    if not counts:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no frames stored</text></svg>')
        return "\n".join(out)
    top = _nice_max(max(counts))
    pw, ph = W - ML - MR, H - MT - MB
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0

    def X(v: float) -> float:
        return ML + pw * (v - lo) / span

    for i in range(5):
        y = MT + ph - ph * i / 4
        out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{_fmt(top * i / 4)}</text>')
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        h = ph * c / top
        out.append(f'<rect class="bar" x="{X(a):.1f}" y="{MT + ph - h:.1f}" width="{max(0.5, X(b) - X(a) - 0.5):.1f}"'
                   f' height="{h:.1f}" fill="#3366cc"><title>{a:.4g}–{b:.4g} {escape(unit)}: {c} frames</title></rect>')
    for i in range(6):
        v = lo + span * i / 5
        out.append(f'<text x="{X(v):.1f}" y="{MT + ph + 14}" text-anchor="middle" font-size="10">{_fmt(v)}</text>')
    out.append(f'<text x="{ML + pw / 2}" y="{MT + ph + 30}" text-anchor="middle" font-size="11">latency ({escape(unit)})</text>')
    out.append(f'<text x="12" y="{MT + ph / 2}" font-size="11" transform="rotate(-90 12 {MT + ph / 2})"'
               ' text-anchor="middle">frames</text>')
    for i, (name, v) in enumerate((marks or {}).items()):
        if v is None or not lo <= v <= hi:
            continue
        out.append(f'<line x1="{X(v):.1f}" y1="{MT}" x2="{X(v):.1f}" y2="{MT + ph}" stroke="{PALETTE[(i + 1) % 8]}"'
                   ' stroke-dasharray="4 3"/>')
        out.append(f'<text x="{X(v) + 3:.1f}" y="{MT + 10 + 12 * i}" font-size="10" fill="{PALETTE[(i + 1) % 8]}">'
                   f"{escape(name)} {v:.3f}</text>")
    out.append("</svg>")
    return "\n".join(out)


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str,
               log: bool = True) -> str:
    """Lines with points; log-log axes by default (sweeps span batch 1..256)."""
    pts = [(x, y) for s in series.values() for x, y in s if x is not None and y is not None and (not log or (x > 0 and y > 0))]
    out = _frame(title, "lines")
    if not pts:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(out)
    f = math.log10 if log else (lambda v: v)
    xs, ys = [f(x) for x, _ in pts], [f(y) for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pw, ph = W - ML - MR, H - MT - MB

    def P(x, y):
        return ML + pw * (f(x) - x0) / (x1 - x0), MT + ph - ph * (f(y) - y0) / (y1 - y0)

    out.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        y = MT + ph - ph * i / 4
        lab = _fmt(10 ** yv if log else yv)
        out.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{lab}</text>')
        xv = x0 + (x1 - x0) * i / 4
        x = ML + pw * i / 4
        out.append(f'<text x="{x:.1f}" y="{MT + ph + 14}" text-anchor="middle" font-size="10">{_fmt(10 ** xv if log else xv)}</text>')
    out.append(f'<text x="{ML + pw / 2}" y="{MT + ph + 30}" text-anchor="middle" font-size="11">{escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{MT + ph / 2}" font-size="11" transform="rotate(-90 12 {MT + ph / 2})"'
               f' text-anchor="middle">{escape(ylabel)}</text>')
    for i, (name, s) in enumerate(series.items()):
        c = PALETTE[i % len(PALETTE)]
        good = sorted((x, y) for x, y in s if x is not None and y is not None and (not log or (x > 0 and y > 0)))
        if not good:
            continue
        path = " ".join(f"{'M' if j == 0 else 'L'}{P(x, y)[0]:.1f},{P(x, y)[1]:.1f}" for j, (x, y) in enumerate(good))
        out.append(f'<path d="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in good:
            px, py = P(x, y)
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{c}"><title>{escape(name)}: {x:g}, {y:.4g}</title></circle>')
    out += _legend(list(series))
    out.append("</svg>")
    return "\n".join(out)
