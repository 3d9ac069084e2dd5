"""How a figure is written: rounded for people on a terminal or a page, exact in JSON, and
free of float noise in Prometheus text.

JSON documents keep each figure as computed (the statistics in ``stats`` carry 0.1 µs in
milliseconds); what people read is :func:`people`: four significant digits, at most three
decimals, no exponent (``796.6 qps``, ``0.144 ms``, ``1235 ms``), so no line claims a
precision the measurement does not have. A terminal table is :func:`text_table`: each
column as wide as its widest cell, two spaces between columns, so a value of 1,000 ms or
more never runs into its neighbour. Prometheus text shows a float's shortest repr, which
for a value computed as ``0.0321 / 1000`` is ``3.2099999999999994e-05``; :func:`clean`
drops that noise (12 significant digits) before a value is exposed.
"""

from __future__ import annotations

import math
from typing import Any, Collection, Sequence


def people(v: Any, sig: int = 4, max_decimals: int = 3) -> str:
    """A number for people: ``sig`` significant digits, at most ``max_decimals`` decimals,
    whole numbers as they are; ``-`` for None; anything else as text."""
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    decimals = sig - 1 - math.floor(math.log10(abs(v)))
    if decimals > max_decimals and round(v, max_decimals) == 0:
        return f"{v:.{sig}g}"  # a tiny figure keeps its digits rather than read 0.000
    return f"{v:.{min(max(decimals, 0), max_decimals)}f}"


def clean(v: float, sig: int = 12) -> float:
    """``v`` without float noise (``3.2099999999999994e-05`` -> ``3.21e-05``)."""
    return float(f"{v:.{sig}g}") if isinstance(v, float) and math.isfinite(v) else v


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int | Collection[int] = 1) -> list[str]:
    """Lines of a terminal table: each column as wide as its widest cell, two spaces apart;
    the columns in ``left`` (a count of leading columns, or their indices) left-aligned, the
    figures right-aligned."""
    lefts = set(range(left)) if isinstance(left, int) else set(left)
    cells = [list(head), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return [
        "  ".join(c.ljust(w) if i in lefts else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in cells
    ]
