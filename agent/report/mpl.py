"""matplotlib in the house chart style (edgebench.agent.wire.chartstyle): the same palette,
1-2-5 log ticks with plain numbers, linear 1-2-5 steps, font sizes and green/red meaning
as the dashboard's SVG charts. Also what every picture shares: a note in the corner, the
finish (grid, ticks, legend), saving a PNG with its labels in its text chunks.

matplotlib comes from the ``plot`` extra and is imported only inside these functions.
"""

from __future__ import annotations

import os
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire import chartstyle as cs

#: the chart style as matplotlib settings (points at the PNGs' 110 dpi read like the SVG's pixels)
RC = {
    "font.size": cs.TICK_PX,
    "axes.titlesize": cs.LABEL_PX,
    "axes.labelsize": cs.LABEL_PX,
    "xtick.labelsize": cs.TICK_PX - 1,
    "ytick.labelsize": cs.TICK_PX - 1,
    "legend.fontsize": cs.TICK_PX - 1,
    "figure.titlesize": cs.LABEL_PX,
    "axes.edgecolor": "#999999",
    "axes.grid": True,
    "grid.color": cs.GRID,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'edgebench[plot]' (or leave out --plot)") from None


def pyplot():
    """matplotlib.pyplot on the Agg backend, in the house style."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib import cycler

    matplotlib.rcParams.update({**RC, "axes.prop_cycle": cycler(color=list(cs.PALETTE))})
    return plt


#: inches per character of a tick label, and between two labels (at the tick font size)
_CHAR_IN, _GAP_IN, _LINE_IN = 0.075, 0.25, 0.3


def _fitting(lo: float, hi: float, log: bool, length_in: float, horizontal: bool) -> list[float]:
    """The most ticks (up to chartstyle.MAX_TICKS) whose labels fit side by side along the axis."""
    for n in range(cs.MAX_TICKS, 1, -1):
        ticks = cs.log_ticks(lo, hi, n) if log and lo > 0 else cs.linear_ticks(lo, hi, n)
        if horizontal:
            need = sum(len(cs.tick_label(t)) * _CHAR_IN + _GAP_IN for t in ticks)
        else:
            need = len(ticks) * _LINE_IN
        if need <= length_in:
            return ticks
    return ticks


def _axis_ticks(axis, lim: tuple[float, float], log: bool) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    lo, hi = sorted(lim)
    ax = axis.axes
    w, h = ax.figure.get_size_inches()
    box = ax.get_position()
    horizontal = axis is ax.xaxis
    ticks = _fitting(lo, hi, log, box.width * w if horizontal else box.height * h, horizontal)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: cs.tick_label(v)))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def ticks(ax, x: bool = True, y: bool = True) -> None:
    """The house ticks on both axes (log: 1-2-5, plain numbers; linear: 1-2-5 steps), for the
    axes' current limits. ``x=False`` keeps ticks set by hand (a sweep's batch sizes)."""
    for on, axis, lim, scale in (
        (x, ax.xaxis, ax.get_xlim(), ax.get_xscale()),
        (y, ax.yaxis, ax.get_ylim(), ax.get_yscale()),
    ):
        if on:
            _axis_ticks(axis, lim, scale == "log")


def subplots(plt, rows: int = 1, cols: int = 1, height: float = 4.6, **kw):
    """A figure 7 in wide (a page's or a phone's width) laid out by matplotlib's constrained
    layout, which keeps room for a legend and notes outside the plot area."""
    return plt.subplots(rows, cols, figsize=(7, height), layout="constrained", **kw)


def note(ax, lines: list[str]) -> None:
    """Small grey lines above the plot's left corner (what is not shown, and why): never over
    the data. The figure's title is its suptitle, so the axes' left title is free for this."""
    if lines:
        ax.set_title("\n".join(lines), loc="left", fontsize=cs.TICK_PX - 2, color=cs.MUTED)


def legend(ax, handles=None, labels=None) -> None:
    """The legend under the plot, in columns: it never hides a line or a point."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if handles:
        ncol = 1 if len(handles) == 1 else 2 if max(len(x) for x in labels) > 28 else 3
        ax.figure.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(handles)))


def finish(ax, empty: bool, lines: list[str], x_ticks: bool = True) -> None:
    """Ticks, the legend (if any series is named) and the notes, outside the plot area."""
    if empty:
        ax.text(0.5, 0.5, "nothing to draw", transform=ax.transAxes, ha="center", va="center", color=cs.MUTED)
    else:
        ticks(ax, x=x_ticks)
    legend(ax)
    note(ax, lines)


def labels_of(fig) -> dict[str, str]:
    """The figure's title and its axes' labels (each distinct one once, ``; ``-joined): what a
    PNG's text chunks carry so a test or a reader can check them without the picture."""
    axes = [ax for ax in fig.axes if ax.get_visible()]
    sup = fig._suptitle.get_text() if fig._suptitle is not None else ""
    title = sup or next((ax.get_title() for ax in axes if ax.get_title()), "")

    def joined(get) -> str:
        return "; ".join(dict.fromkeys(x for x in (get(ax) for ax in axes) if x))

    return {
        "Title": title.splitlines()[0] if title else "",
        "x_label": joined(lambda ax: ax.get_xlabel()),
        "y_label": joined(lambda ax: ax.get_ylabel()),
    }


def save(figs: list[tuple[str, Any]], out_dir: str, prefix: str) -> list[str]:
    """Each figure as ``<out_dir>/<prefix><name>.png``; returns the paths."""
    import matplotlib.pyplot as plt

    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the plot folder {out_dir}: {e.strerror}") from None
    paths = []
    for name, fig in figs:
        path = os.path.join(out_dir, f"{prefix}{name}.png")
        fig.savefig(path, dpi=110, metadata={**labels_of(fig), "Software": "edgebench"})
        plt.close(fig)
        paths.append(path)
    return paths
