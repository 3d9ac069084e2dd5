"""A plain run's pictures (``edgebench run --plot DIR`` and ``edgebench report --html``):

* latency over time, one panel per stage (small multiples on one time axis): the median of
  consecutive frames with their min-to-max band, so a million frames draw as fast as a
  hundred and a spike still shows;
* the distribution of each stage, p50 and p99 marked;
* the board over time where the probes read it: temperature per zone, CPU clock per core,
  power and the firmware's throttling flag, on the same time axis as the latency;
* from a document alone (no per-frame samples): the histograms it stores.

Every axis says its unit; log axes carry 1-2-5 ticks in plain numbers (agent/report/mpl.py).
"""

from __future__ import annotations

from typing import Any

from edgebench.agent.report import mpl
from edgebench.agent.wire import chartstyle as cs

TIME_AXIS = "time since the measured window started (s)"


def title(res: dict[str, Any]) -> str:
    rt = res["runtime"]
    threads = rt.get("num_threads")
    where = f"delegate {rt['delegate'].get('library', '?').rsplit('/', 1)[-1]}" if rt.get("delegate") else "CPU"
    how = f"{threads} thread{'s' if threads != 1 else ''}" if threads else "default threads"
    return f"{res['model']['name']} on {rt['name']} {rt['version']}, {where}, {how} ({res['device_id']}, {res['frames']} frames)"


def binned(t: Any, v: Any, bins: int = 400) -> tuple[Any, Any, Any, Any]:
    """(time, median, min, max) of consecutive frames in at most ``bins`` groups."""
    import numpy as np

    n = len(v)
    groups = np.array_split(np.arange(n), min(bins, n)) if n else []
    return (
        np.array([t[g].mean() for g in groups]),
        np.array([np.median(v[g]) for g in groups]),
        np.array([v[g].min() for g in groups]),
        np.array([v[g].max() for g in groups]),
    )


def latency_over_time(plt, samples: dict[str, Any], head: str):
    stages = list(samples["stages"])
    t = samples["frame_end_s"]
    fig, axes = mpl.subplots(plt, len(stages), 1, 1.6 + 1.3 * len(stages), sharex=True, squeeze=False)
    for ax, st in zip(axes[:, 0], stages):
        bt, med, lo, hi = binned(t, samples["stages"][st])
        ax.fill_between(bt, lo, hi, color=cs.PALETTE[0], alpha=0.2, lw=0, label="min to max")
        ax.plot(bt, med, color=cs.PALETTE[0], lw=1.2, label="median")
        ax.set_yscale("log")
        ax.set_ylabel(f"{st} (ms)")
        mpl.ticks(ax, x=False)
    mpl.ticks(axes[-1, 0], y=False)
    axes[-1, 0].set_xlabel(TIME_AXIS)
    per = "" if len(t) <= 400 else f"; a point = {len(t) // 400}+ frames"
    fig.suptitle(f"Latency over time per stage (median, band min to max{per})\n{head}")
    mpl.legend(axes[0, 0])
    return fig


def _histogram(ax, edges: list[float], counts: list[int], marks: dict[str, float | None], what: str) -> None:
    ax.stairs(counts, edges, fill=True, color=cs.PALETTE[0], alpha=0.55)
    ax.set_xscale("log")
    for (k, v), ls in zip(marks.items(), ("-", "--")):
        if v:
            ax.axvline(v, color="#333333", ls=ls, lw=1, label=f"{k} {cs.tick_label(round(v, 4))} ms")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel(what)
    mpl.ticks(ax)
    ax.legend(loc="upper right")


def stage_histograms(plt, res: dict[str, Any], samples: dict[str, Any], head: str):
    from edgebench.agent.wire.stats import histogram_ms

    stages = list(samples["stages"])
    rows = -(-len(stages) // 2)
    fig, axes = mpl.subplots(plt, rows, 2, 1.4 + 2.2 * rows, squeeze=False)
    for ax, st in zip(axes.flat, stages):
        h = histogram_ms(samples["stages"][st], 30)
        lat = res["latency_ms"].get(st) or {}
        if h["counts"]:
            _histogram(ax, h["edges_ms"], h["counts"], {"p50": lat.get("p50"), "p99": lat.get("p99")}, "frames (count)")
        ax.set_title(st)
    for ax in list(axes.flat)[len(stages) :]:
        ax.set_visible(False)
    fig.suptitle(f"Latency distribution per stage\n{head}")
    return fig


def histogram_figures(res: dict[str, Any]) -> list[tuple[str, Any]]:
    """A run's figure from its document alone: the stored histograms (inference and e2e)."""
    plt = mpl.pyplot()
    hists = {k: v for k, v in (res.get("latency_histogram_ms") or {}).items() if v.get("counts")}
    fig, axes = mpl.subplots(plt, 1, max(1, len(hists)), 3.6, squeeze=False)
    for ax, (st, h) in zip(axes[0], hists.items()):
        lat = res["latency_ms"].get(st) or {}
        _histogram(ax, h["edges_ms"], h["counts"], {"p50": lat.get("p50"), "p99": lat.get("p99")}, "frames (count)")
        ax.set_title(st)
    fig.suptitle(f"Latency distribution (the result's histograms)\n{title(res)}")
    return [("latency_histograms", fig)]


def _few(series: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """At most MAX_SERIES series: past that the hottest, the coolest and some between."""
    names = list(series)
    kept, why = cs.pick(names, lambda n: -max((v for v in series[n] if v is not None), default=0))
    return {n: series[n] for n in kept}, why


def board_panels(timeline: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(y label, {series name: values}) of the board's panels that have data."""
    panels = []
    if timeline.get("temps_c"):
        panels.append(("temperature (°C)", timeline["temps_c"]))
    if timeline.get("cpu_mhz"):
        panels.append(("CPU clock (MHz)", timeline["cpu_mhz"]))
    if timeline.get("power_w"):
        panels.append(("power (W)", {"board": timeline["power_w"]}))
    if timeline.get("throttled"):
        panels.append(("throttled (1 = yes)", {"firmware": timeline["throttled"]}))
    return panels


def board_over_time(plt, timeline: dict[str, Any], head: str):
    import numpy as np

    panels = board_panels(timeline)
    t = np.asarray(timeline["t_s"], dtype=float)
    fig, axes = mpl.subplots(plt, len(panels), 1, 1.6 + 1.7 * len(panels), sharex=True, squeeze=False)
    for ax, (label, series) in zip(axes[:, 0], panels):
        shown, why = _few(series)
        throttle = label.startswith("throttled")
        for name, vals in shown.items():
            y = np.array([np.nan if v is None else v for v in vals], dtype=float)
            color = cs.WORSE if throttle else None
            ax.plot(t, y, lw=1.3, label=name, color=color, drawstyle="steps-post" if throttle else "default")
        ax.set_ylabel(label)
        if throttle:
            ax.set_ylim(-0.1, 1.1)
            ax.set_yticks([0, 1])
        else:
            mpl.ticks(ax, x=False)
        if len(shown) > 1:
            ax.legend(ncol=min(4, len(shown)), loc="best")
        if why:
            ax.set_title(why, loc="left", fontsize=cs.TICK_PX - 2, color=cs.MUTED)
    mpl.ticks(axes[-1, 0], y=False)
    axes[-1, 0].set_xlabel(TIME_AXIS)
    fig.suptitle(f"The board during the run\n{head}")
    return fig


def run_figures(res: dict[str, Any], samples: dict[str, Any], timeline: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """A plain run's figures: latency over time per stage, the distribution per stage, and
    the board (temperature, clock, power, throttling) over time when the probes saw any."""
    plt = mpl.pyplot()
    head = title(res)
    figs = [
        ("latency_over_time", latency_over_time(plt, samples, head)),
        ("latency_per_stage", stage_histograms(plt, res, samples, head)),
    ]
    if timeline and board_panels(timeline):
        figs.append(("board_over_time", board_over_time(plt, timeline, head)))
    return figs


def _temperature(timeline: dict[str, Any] | None):
    """(t, the hottest zone per reading) from the probes' timeline, or None."""
    import numpy as np

    if not timeline or not timeline.get("temps_c"):
        return None
    zones = list(timeline["temps_c"].values())
    hot = [max((z[i] for z in zones if z[i] is not None), default=np.nan) for i in range(len(timeline["t_s"]))]
    return np.asarray(timeline["t_s"], dtype=float), np.asarray(hot, dtype=float)


def sustained_over_time(plt, res: dict[str, Any], timeline: dict[str, Any] | None, head: str):
    """Throughput per interval over the run, the steady state marked, and the hottest
    temperature the probes read on the same time axis (with the first throttle marked)."""
    import textwrap

    s = res["sustained"]
    ivs = s["intervals"]
    temp = _temperature(timeline)
    if temp is None:  # one panel, and the reason there is no second
        fig, ax = mpl.subplots(plt, 1, 1, 4.2)
        axes = [ax]
    else:
        fig, (ax, tx) = mpl.subplots(plt, 2, 1, 6.2, sharex=True, squeeze=True)
        axes = [ax, tx]
    mid = [(iv["t0_s"] + iv["t1_s"]) / 2 for iv in ivs]
    ax.step([iv["t0_s"] for iv in ivs] + [ivs[-1]["t1_s"]], [iv["fps"] or 0 for iv in ivs] + [ivs[-1]["fps"] or 0],
            where="post", color=cs.PALETTE[0], lw=1.6, label="FPS per interval")  # fmt: skip
    ax.plot(mid, [iv["fps"] or 0 for iv in ivs], "o", color=cs.PALETTE[0], ms=3)
    if s["steady"]:
        ax.axhline(s["steady"]["fps"], color=cs.BETTER, ls="--", lw=1.2, label=f"steady {s['steady']['fps']:.4g} FPS")
        ax.axvline(s["steady_since_s"], color=cs.BETTER, ls=":", lw=1)
    ax.set_ylabel("throughput (frames/s)")
    ax.set_ylim(bottom=0)
    mpl.ticks(ax, x=False)
    mpl.legend(ax)
    if temp is not None:
        tx.plot(temp[0], temp[1], color=cs.PALETTE[1], lw=1.3, label="hottest zone")
        tx.set_ylabel("temperature (°C)")
        mpl.ticks(tx, x=False)
    else:
        mpl.note(ax, ["no temperature reading on this board: throughput only"])
    t_thr = s["time_to_first_throttle_s"]
    if t_thr is not None:
        for a in axes:
            a.axvline(t_thr, color=cs.WORSE, lw=1.2)
        axes[-1].text(t_thr, 0.02, " first throttle", color=cs.WORSE, transform=axes[-1].get_xaxis_transform())
    mpl.ticks(axes[-1], y=False)
    axes[-1].set_xlabel(TIME_AXIS)
    what = "and temperature over time" if temp is not None else "over time"
    head = "\n".join(textwrap.wrap(head, 90))
    fig.suptitle(f"Sustained: throughput per {s['interval_s']:g} s {what}\n{head}")
    return fig
