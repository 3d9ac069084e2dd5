"""PNG curves of a sweep or a scenario result (``--plot DIR``).

matplotlib comes from the ``plot`` extra and is imported only inside these
functions, when a user asks for plots: importing this module, or anything
else under agent/, never loads it. Every axis is named with its unit, and the
labels are also written into each PNG's text chunks (``x_label``, ``y_label``)
so a reader can check them without looking at the picture.
"""

from __future__ import annotations

import os
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire.stats import pareto_frontier

SWEEP_FIGURES = ("latency_vs_batch", "throughput_vs_batch", "frontier", "latency_distribution")


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'edgebench[plot]' (or leave out --plot)") from None


def _pyplot():
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


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


def _note(ax, lines: list[str]) -> None:
    if lines:
        ax.text(0.01, 0.01, "\n".join(lines), transform=ax.transAxes, fontsize=7, va="bottom", ha="left", color="0.35")


def sweep_figures(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The sweep's figures as (name, matplotlib Figure), not yet saved."""
    plt = _pyplot()
    points = doc["points"]
    ok = [p for p in points if p["status"] == "ok"]
    skipped_note = []
    for status in ("unsupported", "failed"):
        batches = sorted({p["batch"] for p in points if p["status"] == status})
        if batches:
            n = sum(p["status"] == status for p in points)
            skipped_note.append(f"not shown: {n} {status} point(s), batch {', '.join(map(str, batches))}")
    title = f"{doc['model']['name']} on {doc['runtime']['name']} {doc['runtime']['version']} ({doc['device_id']})"
    series: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for p in ok:
        series.setdefault((p["threads"], p["instances"]), []).append(p)
    for v in series.values():
        v.sort(key=lambda p: p["batch"])
    figs = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (t, i), ps in sorted(series.items()):
        b = [p["batch"] for p in ps]
        (line,) = ax.plot(b, [p["latency_ms"]["p50"] for p in ps], marker="o", label=f"p50, {_series_label(t, i)}")
        ax.plot(
            b,
            [p["latency_ms"]["p99"] for p in ps],
            marker="^",
            ls="--",
            color=line.get_color(),
            label=f"p99, {_series_label(t, i)}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (items per invoke)")
    ax.set_ylabel("latency per batch (ms)")
    ax.set_title(f"Latency vs batch size\n{title}", fontsize=9)
    _batch_ticks(ax, ok)
    _finish(ax, ok, skipped_note)
    figs.append(("latency_vs_batch", fig))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (t, i), ps in sorted(series.items()):
        ax.plot(
            [p["batch"] for p in ps], [p["throughput_items_per_s"] for p in ps], marker="o", label=_series_label(t, i)
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (items per invoke)")
    ax.set_ylabel("throughput (items/s)")
    ax.set_title(f"Throughput vs batch size\n{title}", fontsize=9)
    _batch_ticks(ax, ok)
    _finish(ax, ok, skipped_note)
    figs.append(("throughput_vs_batch", fig))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "osD^v<>ph*"
    inst_values = sorted({p["instances"] for p in ok})
    thr_values = sorted({p["threads"] for p in ok})
    cmap = plt.get_cmap("viridis")
    for p in ok:
        color = cmap(thr_values.index(p["threads"]) / max(1, len(thr_values) - 1) * 0.85)
        m = markers[inst_values.index(p["instances"]) % len(markers)]
        ax.scatter(p["latency_ms"]["p99"], p["throughput_items_per_s"], color=color, marker=m, s=40, zorder=3)
        ax.annotate(
            f"b{p['batch']} t{p['threads']} i{p['instances']}",
            (p["latency_ms"]["p99"], p["throughput_items_per_s"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    front = pareto_frontier(ok)
    if front:
        ax.plot(
            [p["latency_ms"]["p99"] for p in front],
            [p["throughput_items_per_s"] for p in front],
            color="0.4",
            ls=":",
            label="frontier (no point is both faster and higher)",
        )
    for t in thr_values:
        ax.scatter(
            [],
            [],
            color=cmap(thr_values.index(t) / max(1, len(thr_values) - 1) * 0.85),
            marker="s",
            label=f"{t} thread{'s' if t != 1 else ''}",
        )
    for i in inst_values:
        ax.scatter(
            [],
            [],
            color="0.5",
            marker=markers[inst_values.index(i) % len(markers)],
            label=f"{i} instance{'s' if i != 1 else ''}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("p99 latency per batch (ms)")
    ax.set_ylabel("throughput (items/s)")
    ax.set_title(f"Latency/throughput frontier (b = batch, t = threads, i = instances)\n{title}", fontsize=9)
    _finish(ax, ok, skipped_note)
    figs.append(("frontier", fig))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in ok:
        xs, ys = _cdf(p.get("latency_histogram_ms") or {})
        if xs:
            ax.step(xs, ys, where="post", label=f"batch {p['batch']}, {_series_label(p['threads'], p['instances'])}")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("latency per batch (ms)")
    ax.set_ylabel("fraction of batches (cumulative)")
    ax.set_title(f"Latency distribution per point (CDF)\n{title}", fontsize=9)
    _finish(ax, ok, skipped_note)
    figs.append(("latency_distribution", fig))
    return figs


def _batch_ticks(ax, ok: list[dict[str, Any]]) -> None:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    batches = sorted({p["batch"] for p in ok})
    if batches:
        ax.set_xticks(batches)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())


def _finish(ax, ok: list, note: list[str]) -> None:
    if not ok:
        ax.text(0.5, 0.5, "no point of the grid ran", transform=ax.transAxes, ha="center", va="center")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    _note(ax, note)
    ax.figure.tight_layout()


def scenario_figures(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    plt = _pyplot()
    title = f"{doc['model']['name']} on {doc['runtime']['name']} {doc['runtime']['version']} ({doc['device_id']})"
    figs = []
    if doc["scenario"] == "find-max-qps":
        fig, ax = plt.subplots(figsize=(7, 4.5))
        steps = [st for st in doc["steps"] if st["p99_latency_ms"] is not None]
        srt = sorted(steps, key=lambda st: st["target_qps"])
        ax.plot([st["target_qps"] for st in srt], [st["p99_latency_ms"] for st in srt], color="0.6", ls=":")
        for label, passed, m, c in (("pass", True, "o", "tab:green"), ("fail", False, "x", "tab:red")):
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
        ax.axhline(doc["latency_bound_ms"], color="tab:red", ls="--", label=f"bound {doc['latency_bound_ms']:g} ms")
        if doc["max_qps"] is not None:
            ax.axvline(doc["max_qps"], color="tab:green", ls="--", label=f"max {doc['max_qps']:g} qps")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (queries/s, Poisson)")
        ax.set_ylabel("p99 latency from scheduled arrival (ms)")
        ax.set_title(f"Server latency vs load: max-QPS search ({doc['verdict']})\n{title}", fontsize=9)
        _finish(ax, steps, [] if doc["max_qps"] is not None else ["no rate meets the bound"])
        figs.append(("max_qps_search", fig))
        return figs
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ys = _cdf(doc.get("latency_histogram_ms") or {})
    if xs:
        ax.step(xs, ys, where="post", label="queries")
    h = doc["headline"]
    if doc["scenario"] in ("single-stream", "multi-stream", "server"):
        pct = 0.9 if doc["scenario"] == "single-stream" else 0.99
        value = h.get("p99_latency_ms") if doc["scenario"] == "server" else h["value"]
        ax.axhline(pct, color="0.5", ls=":", lw=0.8)
        if value is not None:
            ax.axvline(value, color="tab:blue", ls=":", label=f"p{pct * 100:g} {value:.3f} ms")
    bound = doc.get("latency_bound_ms") or (doc.get("settings") or {}).get("latency_bound_ms")
    if bound:
        ax.axvline(bound, color="tab:red", ls="--", label=f"bound {bound:g} ms")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    unit, units = ("batch", "batches") if doc["scenario"] == "offline" else ("query", "queries")
    ax.set_xlabel(f"latency per {unit} (ms)")
    ax.set_ylabel(f"fraction of {units} (cumulative)")
    ax.set_title(f"{doc['scenario']} latency distribution (CDF), {doc['verdict']}\n{title}", fontsize=9)
    _finish(ax, [1] if xs else [], [])
    figs.append((f"{doc['scenario']}_latency_cdf", fig))
    return figs


def _save(figs: list[tuple[str, Any]], out_dir: str, prefix: str) -> list[str]:
    import matplotlib.pyplot as plt

    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the plot folder {out_dir}: {e.strerror}") from None
    paths = []
    for name, fig in figs:
        ax = fig.axes[0]
        path = os.path.join(out_dir, f"{prefix}{name}.png")
        fig.savefig(
            path,
            dpi=110,
            metadata={
                "Title": ax.get_title().splitlines()[0],
                "x_label": ax.get_xlabel(),
                "y_label": ax.get_ylabel(),
                "Software": "edgebench",
            },
        )
        plt.close(fig)
        paths.append(path)
    return paths


def plot_sweep(doc: dict[str, Any], out_dir: str) -> list[str]:
    """Write the sweep's PNGs into ``out_dir``; returns their paths."""
    return _save(sweep_figures(doc), out_dir, "sweep_")


def plot_scenario(doc: dict[str, Any], out_dir: str) -> list[str]:
    return _save(scenario_figures(doc), out_dir, "")
