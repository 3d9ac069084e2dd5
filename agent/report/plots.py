"""The pictures of results: PNGs for ``--plot DIR`` and the charts of ``edgebench report``.

* a sweep: latency and throughput against batch size (log-log), the latency/throughput
  frontier across threads and instances, and the latency distribution (CDF) of its points;
* a scenario: its latency distribution with the headline percentile and the bound, or for
  a max-QPS search the p99 at each offered load with the bound and the rate found;
* a plain run: agent/report/runplots.py.

One chart style with the dashboard (edgebench.agent.wire.chartstyle, applied to matplotlib
in agent/report/mpl.py): 1-2-5 log ticks in plain numbers, at most 8 series per chart (a
big sweep shows its best, worst and chosen configurations and points, and says so), labels
that do not collide, green for what passes and red for a bound or a failure, a unit on
every axis. The labels are also written into each PNG's text chunks (``x_label``,
``y_label``) so a reader can check them without looking at the picture.

matplotlib comes from the ``plot`` extra and is imported only inside these functions,
when a user asks for pictures: importing this module never loads it.
"""

from __future__ import annotations

from typing import Any

from edgebench.agent.report import mpl
from edgebench.agent.report.mpl import labels_of, require_matplotlib
from edgebench.agent.report.runplots import histogram_figures, run_figures
from edgebench.agent.wire import chartstyle as cs
from edgebench.agent.wire.stats import pareto_frontier

SWEEP_FIGURES = ("latency_vs_batch", "throughput_vs_batch", "frontier", "latency_distribution")
__all__ = [
    "SWEEP_FIGURES",
    "histogram_figures",
    "labels_of",
    "plot_run",
    "plot_scenario",
    "plot_sweep",
    "require_matplotlib",
    "run_figures",
    "scenario_figures",
    "sweep_figures",
]
BATCH_AXIS = "batch size (items per invoke)"


def _series_label(threads: int, instances: int) -> str:
    return f"{threads} thread{'s' if threads != 1 else ''}, {instances} instance{'s' if instances != 1 else ''}"


def _cdf(hist: dict[str, list]) -> tuple[list[float], list[float]]:
    """Upper bin edges and the cumulative fraction at each (from the stored histogram)."""
    edges, counts = hist.get("edges_ms") or [], hist.get("counts") or []
    total = sum(counts)
    if not total:
        return [], []
    xs, ys, acc = [edges[0]], [0.0], 0
    for e, c in zip(edges[1:], counts):
        acc += c
        xs.append(e)
        ys.append(acc / total)
    return xs, ys


# ----------------------------------------------------------------------------------- sweeps
class _Sweep:
    """What every sweep figure needs: the points that ran, by configuration, the best one,
    the title and the note on points that did not run."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.ok = [p for p in doc["points"] if p["status"] == "ok"]
        self.configs: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for p in sorted(self.ok, key=lambda p: (p["threads"], p["instances"], p["batch"])):
            self.configs.setdefault((p["threads"], p["instances"]), []).append(p)
        bt = (doc.get("best") or {}).get("throughput") or {}
        self.best = next(
            (
                p
                for p in self.ok
                if (p["batch"], p["threads"], p["instances"])
                == tuple(bt.get(k) for k in ("batch", "threads", "instances"))
            ),
            None,
        )
        rt = doc["runtime"]
        self.title = f"{doc['model']['name']} on {rt['name']} {rt['version']} ({doc['device_id']})"
        self.skipped = []
        for status in ("unsupported", "failed"):
            batches = sorted({p["batch"] for p in doc["points"] if p["status"] == status})
            if batches:
                n = sum(p["status"] == status for p in doc["points"])
                self.skipped.append(f"not shown: {n} {status} point(s), batch {', '.join(map(str, batches))}")

    def chosen_config(self) -> tuple[int, int] | None:
        return (self.best["threads"], self.best["instances"]) if self.best else None

    def pick_configs(self, limit: int, score) -> tuple[list[tuple[int, int]], list[str]]:
        keys = list(self.configs)
        chosen = self.chosen_config()
        kept, why = cs.pick(keys, lambda k: score(self.configs[k]), chosen if chosen in keys else None, limit)
        return kept, self.skipped + ([f"configurations: {why}"] if why else [])

    def batch_ticks(self, ax) -> None:
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        batches = sorted({p["batch"] for p in self.ok})
        if batches:
            ax.xaxis.set_major_locator(FixedLocator(batches))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: cs.tick_label(v)))
            ax.xaxis.set_minor_locator(NullLocator())


def _median_p99(ps: list[dict[str, Any]]) -> float:
    vals = sorted(p["latency_ms"]["p99"] for p in ps)
    return vals[len(vals) // 2]


def _latency_vs_batch(plt, s: _Sweep):
    from matplotlib.lines import Line2D

    fig, ax = mpl.subplots(plt)
    kept, notes = s.pick_configs(cs.MAX_SERIES // 2, _median_p99)  # two lines per configuration
    for i, key in enumerate(kept):
        ps = s.configs[key]
        b = [p["batch"] for p in ps]
        c = cs.series_color(i)
        ax.plot(b, [p["latency_ms"]["p50"] for p in ps], marker="o", color=c, label=_series_label(*key))
        ax.plot(b, [p["latency_ms"]["p99"] for p in ps], marker="^", ls="--", color=c)
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color=cs.MUTED, marker="o"), Line2D([], [], color=cs.MUTED, marker="^", ls="--")]
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(BATCH_AXIS)
    ax.set_ylabel("latency per batch (ms)")
    fig.suptitle(f"Latency vs batch size (p50 solid, p99 dashed)\n{s.title}")
    s.batch_ticks(ax)
    mpl.ticks(ax, x=False)
    mpl.legend(ax, handles, [*labels, "p50", "p99"])
    mpl.note(ax, notes)
    return fig


def _throughput_vs_batch(plt, s: _Sweep):
    fig, ax = mpl.subplots(plt)
    kept, notes = s.pick_configs(cs.MAX_SERIES, lambda ps: -max(p["throughput_items_per_s"] or 0 for p in ps))
    for i, key in enumerate(kept):
        ps = s.configs[key]
        ax.plot(
            [p["batch"] for p in ps],
            [p["throughput_items_per_s"] for p in ps],
            marker="o",
            color=cs.series_color(i),
            label=_series_label(*key),
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(BATCH_AXIS)
    ax.set_ylabel("throughput (items/s)")
    fig.suptitle(f"Throughput vs batch size\n{s.title}")
    s.batch_ticks(ax)
    mpl.finish(ax, not s.ok, notes, x_ticks=False)
    return fig


def _label_points(ax, pts: list[tuple[float, float, str]]) -> None:
    """Text labels beside points, moved apart vertically so no two overlap (chartstyle.spread
    in display pixels), each joined to its point by a thin line when it had to move."""
    if not pts:
        return
    ax.figure.canvas.draw()
    trans = ax.transData
    disp = [trans.transform((x, y)) for x, y, _ in pts]
    gap = cs.TICK_PX * 1.5
    ys = cs.spread([d[1] for d in disp], gap)
    for (x, y, text), d, ny in zip(pts, disp, ys):
        moved = abs(ny - d[1]) > 1
        ax.annotate(
            text,
            (x, y),
            xytext=(6, (ny - d[1]) * 72 / ax.figure.dpi),
            textcoords="offset points",
            fontsize=cs.TICK_PX - 2,
            va="center",
            color="#333333",
            arrowprops={"arrowstyle": "-", "color": "#aaaaaa", "lw": 0.6} if moved else None,
        )


def _frontier(plt, s: _Sweep):
    fig, ax = mpl.subplots(plt)
    thr_values = sorted({p["threads"] for p in s.ok})
    inst_values = sorted({p["instances"] for p in s.ok})
    markers = "osD^v<>ph*"
    for p in s.ok:
        ax.scatter(
            p["latency_ms"]["p99"],
            p["throughput_items_per_s"],
            color=cs.series_color(thr_values.index(p["threads"])),
            marker=markers[inst_values.index(p["instances"]) % len(markers)],
            s=36,
            zorder=3,
        )
    front = pareto_frontier(s.ok)
    if front:
        ax.plot(
            [p["latency_ms"]["p99"] for p in front],
            [p["throughput_items_per_s"] for p in front],
            color=cs.BETTER,
            ls=":",
            label="frontier (no point is both faster and higher)",
        )
    for t in thr_values[: cs.MAX_SERIES]:
        ax.scatter(
            [], [], color=cs.series_color(thr_values.index(t)), marker="s", label=f"{t} thread{'s' if t != 1 else ''}"
        )
    for i in inst_values[: cs.MAX_SERIES]:
        ax.scatter(
            [],
            [],
            color=cs.MUTED,
            marker=markers[inst_values.index(i) % len(markers)],
            label=f"{i} instance{'s' if i != 1 else ''}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("p99 latency per batch (ms)")
    ax.set_ylabel("throughput (items/s)")
    fig.suptitle(f"Latency/throughput frontier (labels: frontier points, b batch t threads i instances)\n{s.title}")
    mpl.finish(ax, not s.ok, s.skipped)
    _label_points(
        ax,
        [
            (p["latency_ms"]["p99"], p["throughput_items_per_s"], f"b{p['batch']} t{p['threads']} i{p['instances']}")
            for p in front
        ],
    )
    return fig


def _distribution(plt, s: _Sweep):
    fig, ax = mpl.subplots(plt)
    with_hist = [p for p in s.ok if _cdf(p.get("latency_histogram_ms") or {})[0]]
    chosen = s.best if s.best in with_hist else None
    kept, why = cs.pick(with_hist, lambda p: p["latency_ms"]["p99"], chosen)
    for i, p in enumerate(kept):
        xs, ys = _cdf(p["latency_histogram_ms"])
        best = " (best throughput)" if p is s.best else ""
        ax.step(
            xs,
            ys,
            where="post",
            color=cs.series_color(i),
            label=f"batch {p['batch']}, {_series_label(p['threads'], p['instances'])}{best}",
        )
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("latency per batch (ms)")
    ax.set_ylabel("fraction of batches (cumulative)")
    fig.suptitle(f"Latency distribution per point (CDF)\n{s.title}")
    mpl.finish(ax, not kept, s.skipped + ([f"points: {why} (by p99)"] if why else []))
    return fig


def sweep_figures(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The sweep's figures as (name, matplotlib Figure), not yet saved."""
    plt = mpl.pyplot()
    s = _Sweep(doc)
    return [
        ("latency_vs_batch", _latency_vs_batch(plt, s)),
        ("throughput_vs_batch", _throughput_vs_batch(plt, s)),
        ("frontier", _frontier(plt, s)),
        ("latency_distribution", _distribution(plt, s)),
    ]


# ------------------------------------------------------------------------------- scenarios
def _title_of(doc: dict[str, Any]) -> str:
    return f"{doc['model']['name']} on {doc['runtime']['name']} {doc['runtime']['version']} ({doc['device_id']})"


def _max_qps_search(plt, doc: dict[str, Any]):
    fig, ax = mpl.subplots(plt)
    steps = sorted((st for st in doc["steps"] if st["p99_latency_ms"] is not None), key=lambda st: st["target_qps"])
    ax.plot([st["target_qps"] for st in steps], [st["p99_latency_ms"] for st in steps], color=cs.MUTED, ls=":")
    for label, passed, m, c in (("within the bound", True, "o", cs.BETTER), ("over the bound", False, "x", cs.WORSE)):
        sel = [st for st in steps if st["passed"] == passed]
        if sel:
            ax.scatter(
                [st["target_qps"] for st in sel],
                [st["p99_latency_ms"] for st in sel],
                marker=m,
                color=c,
                label=label,
                zorder=3,
            )
    bound = doc["latency_bound_ms"]
    ax.axhline(bound, color=cs.WORSE, ls="--", lw=1, label=f"bound {cs.tick_label(bound)} ms")
    if doc["max_qps"] is not None:
        ax.axvline(
            doc["max_qps"],
            color=cs.BETTER,
            ls="--",
            lw=1,
            label=f"max {cs.tick_label(round(doc['max_qps'], 3))} queries/s",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (queries/s, Poisson)")
    ax.set_ylabel("p99 latency from scheduled arrival (ms)")
    fig.suptitle(f"Server latency vs load: max-QPS search ({doc['verdict']})\n{_title_of(doc)}")
    mpl.finish(ax, not steps, [] if doc["max_qps"] is not None else ["no rate meets the bound"])
    return fig


def _scenario_cdf(plt, doc: dict[str, Any]):
    fig, ax = mpl.subplots(plt)
    xs, ys = _cdf(doc.get("latency_histogram_ms") or {})
    unit, units = ("batch", "batches") if doc["scenario"] == "offline" else ("query", "queries")
    if xs:
        ax.step(xs, ys, where="post", color=cs.PALETTE[0], label=units)
    h = doc["headline"]
    if doc["scenario"] in ("single-stream", "multi-stream", "server"):
        pct = 0.9 if doc["scenario"] == "single-stream" else 0.99
        value = h.get("p99_latency_ms") if doc["scenario"] == "server" else h["value"]
        ax.axhline(pct, color=cs.GRID, lw=0.8)
        if value is not None:
            ax.axvline(value, color=cs.PALETTE[0], ls=":", label=f"p{pct * 100:g} {cs.tick_label(round(value, 4))} ms")
    bound = doc.get("latency_bound_ms") or (doc.get("settings") or {}).get("latency_bound_ms")
    if bound:
        ax.axvline(bound, color=cs.WORSE, ls="--", label=f"bound {cs.tick_label(bound)} ms")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"latency per {unit} (ms)")
    ax.set_ylabel(f"fraction of {units} (cumulative)")
    fig.suptitle(f"{doc['scenario']} latency distribution (CDF), {doc['verdict']}\n{_title_of(doc)}")
    mpl.finish(ax, not xs, [])
    return fig


def scenario_figures(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    plt = mpl.pyplot()
    if doc["scenario"] == "find-max-qps":
        return [("max_qps_search", _max_qps_search(plt, doc))]
    return [(f"{doc['scenario']}_latency_cdf", _scenario_cdf(plt, doc))]


# ----------------------------------------------------------------------------------- files
def plot_sweep(doc: dict[str, Any], out_dir: str) -> list[str]:
    """Write the sweep's PNGs into ``out_dir``; returns their paths."""
    return mpl.save(sweep_figures(doc), out_dir, "sweep_")


def plot_scenario(doc: dict[str, Any], out_dir: str) -> list[str]:
    return mpl.save(scenario_figures(doc), out_dir, "")


def plot_run(res: dict[str, Any], samples: dict[str, Any], timeline: dict[str, Any] | None, out_dir: str) -> list[str]:
    """Write a plain run's PNGs into ``out_dir`` (prefix ``run_``); returns their paths."""
    return mpl.save(run_figures(res, samples, timeline), out_dir, "run_")


def plot_sustained(res: dict[str, Any], timeline: dict[str, Any] | None, out_dir: str) -> list[str]:
    """A sustained run's picture: throughput per interval and temperature over time."""
    from edgebench.agent.report.runplots import sustained_over_time, title

    return mpl.save([("sustained", sustained_over_time(mpl.pyplot(), res, timeline, title(res)))], out_dir, "run_")
