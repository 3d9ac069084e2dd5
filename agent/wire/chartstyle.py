"""One chart style for every picture edgebench draws: the agent's PNGs and report charts
(matplotlib, agent/report/plots.py) and the dashboard's inline SVGs (drawn by hand,
collector/views/charts.py). Pure data and small functions, no drawing library.

It lives in the wire contract because that is the one place both sides may import (the
collector imports nothing else of the agent, and must not need matplotlib: the dashboard
stays a few lines of SVG on a server without a plotting stack). Each side draws with its
own means and takes from here:

* the colours: a palette of 8 series colours that holds no green and no red, because
  green means better and red means worse (``BETTER``, ``WORSE``; a bound is drawn in
  ``WORSE``, a reached target in ``BETTER``);
* the ticks: a log axis gets 1-2-5 ticks (1, 2, 5, 10, 20, 50...) labelled as plain numbers
  (``0.05``, ``200``, ``10000``, never ``2x10^1``), thinned to decades when they would
  crowd; a linear axis gets steps of 1, 2 or 5 times a power of ten;
* labels that do not collide: :func:`spread` moves label positions apart by at least
  their height, keeping their order;
* at most ``MAX_SERIES`` series per chart: :func:`pick` keeps the best, the worst and the
  chosen (and as many evenly spread others as fit) of a bigger set, and says which;
* the font sizes, in pixels for SVG and in points for matplotlib at the PNGs' dpi.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

#: series colours (Tableau-like, colour-blind-safer order), with no green and no red
PALETTE = ("#3366cc", "#ff9900", "#7b3294", "#17becf", "#996633", "#e377c2", "#7f7f7f", "#bcbd22")
#: an improvement, a target met, a pass
BETTER = "#1a7f37"
#: a regression, a bound, a fail
WORSE = "#c62828"
#: reference lines and notes
MUTED = "#666666"
GRID = "#e6e6e6"
#: at most this many series in one chart; more become best, worst and chosen (``pick``)
MAX_SERIES = 8
#: font sizes in pixels (the SVG charts); matplotlib uses the same in points at 100 dpi
TITLE_PX = 13
LABEL_PX = 11
TICK_PX = 10
#: at most this many tick labels on an axis
MAX_TICKS = 8


def tick_label(v: float) -> str:
    """A tick as a plain number: ``0.05``, ``2``, ``150``, ``20000``; never an exponent."""
    if v == 0:
        return "0"
    r = float(f"{v:.6g}")  # drop float noise: 0.30000000000000004 -> 0.3
    if abs(r) >= 1 and r == int(r):
        return str(int(r))
    return f"{r:.12f}".rstrip("0").rstrip(".")


def log_ticks(lo: float, hi: float, max_ticks: int = MAX_TICKS) -> list[float]:
    """1-2-5 ticks within [lo, hi] (both > 0) on a log axis; decades only (1, 10, 100...) when
    1-2-5 would give more than ``max_ticks``, every other decade past that; plain linear
    ticks when the range is too narrow to hold two of them."""
    if not (lo > 0 and hi > 0):
        raise ValueError("a log axis needs a positive range")
    lo, hi = min(lo, hi), max(lo, hi)
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mantissas, every in (((1, 2, 5), 1), ((1,), 1), ((1,), 2), ((1,), 3), ((1,), 5), ((1,), 10)):
        ticks = [
            m * 10.0**e
            for e in range(e0, e1 + 1)
            if (e - e0) % every == 0 or mantissas != (1,)
            for m in mantissas
            if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)
        ]
        if len(ticks) <= max_ticks:
            break
    if len(ticks) < 2:
        return linear_ticks(lo, hi, min(max_ticks, 5))
    return [float(tick_label(t)) for t in ticks]


def nice_step(span: float, max_ticks: int = 6) -> float:
    """The smallest of 1, 2, 5 x 10^k that cuts ``span`` into at most ``max_ticks - 1`` steps."""
    if span <= 0:
        return 1.0
    raw = span / max(1, max_ticks - 1)
    e = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * e >= raw * (1 - 1e-9):
            return m * e
    return 10 * e


def linear_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Ticks at multiples of a 1-2-5 step within [lo, hi]."""
    lo, hi = min(lo, hi), max(lo, hi)
    if hi == lo:
        return [lo]
    step = nice_step(hi - lo, max_ticks)
    first = math.ceil(lo / step - 1e-9)
    out = []
    k = first
    while k * step <= hi * (1 + 1e-12) + 1e-12:
        out.append(float(tick_label(k * step)))
        k += 1
    return out


def nice_max(v: float) -> float:
    """The axis top for values up to ``v`` (a bar chart's, from 0): the first multiple of the
    1-2-5 step at or above ``v``, so no more than a step is left empty."""
    if v <= 0:
        return 1.0
    step = nice_step(v, 6)
    return float(tick_label(math.ceil(v / step - 1e-9) * step))


def spread(positions: Sequence[float], gap: float, lo: float | None = None, hi: float | None = None) -> list[float]:
    """Label positions moved apart so that neighbours are at least ``gap`` apart, in their
    order, each as near its own position as that allows, and kept within [lo, hi] when given
    (pixels: a label's height on the y axis, its width on the x axis)."""
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    placed = [float(positions[i]) for i in order]

    def push_forward(start: float | None) -> None:
        if placed and start is not None:
            placed[0] = max(placed[0], start)
        for i in range(1, len(placed)):
            placed[i] = max(placed[i], placed[i - 1] + gap)

    push_forward(None)  # push down the ones that crowd the one before
    if hi is not None and placed and placed[-1] > hi:  # then back up from the far edge
        placed[-1] = hi
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    if lo is not None and placed and placed[0] < lo:  # no room for all: the near edge wins
        push_forward(lo)
    out = [0.0] * len(positions)
    for rank, i in enumerate(order):
        out[i] = placed[rank]
    return out


def pick(
    items: Sequence[T], score: Callable[[T], float], chosen: T | None = None, limit: int = MAX_SERIES
) -> tuple[list[T], str | None]:
    """At most ``limit`` of ``items`` for one chart: all when they fit; else the best (lowest
    ``score``), the worst, the chosen one, and evenly spread others by score up to the limit.
    Returns them in their original order and a note saying what was left out (None when all)."""
    if len(items) <= limit:
        return list(items), None
    ranked = sorted(range(len(items)), key=lambda i: score(items[i]))
    keep = [ranked[0], ranked[-1]]
    if chosen is not None and chosen in items:
        keep.append(list(items).index(chosen))
    keep = list(dict.fromkeys(keep))
    # then the ranks between, evenly spread, skipping any already kept, until the chart is full
    room = limit - len(keep)
    between = [ranked[round(j * (len(ranked) - 1) / (room + 1))] for j in range(1, room + 1)]
    for i in between + ranked:
        if len(keep) >= limit:
            break
        if i not in keep:
            keep.append(i)
    kept = sorted(keep)
    what = "the best, the worst" + (", the chosen one" if chosen is not None else "") + " and some between"
    return [items[i] for i in kept], f"{len(kept)} of {len(items)} shown: {what}"


def series_color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]
