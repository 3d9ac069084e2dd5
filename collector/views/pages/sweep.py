"""A sweep's page, from its stored edgebench.sweep/1 document: what it came to (grid, points
by status, best throughput, lowest p99), latency and throughput against batch size (one
series per threads x instances; points that did not run marked on the axis), the
latency/throughput frontier across threads and instances, the latency distribution of one
point (``?point=N``, else the best-throughput point) and a table of every point, unsupported
and failed ones with their reason."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from edgebench.agent.wire import chartstyle as cs
from edgebench.collector.aggregate import sweep_overview
from edgebench.collector.views import charts
from edgebench.collector.views.pages.cells import Link, Mark, Table, fmt, run_href
from edgebench.collector.views.templating import svg

_POINT_HEAD = ["#", "batch", "threads", "instances", "status", "items/s", "p50 ms", "p90 ms", "p99 ms"]
_POINT_HEAD += ["per item p50 ms", "CPU %", "mJ/item", "power W", "reason", "distribution"]


def series_name(p: dict[str, Any]) -> str:
    return f"{p['threads']} thread{'s' if p['threads'] != 1 else ''}, {p['instances']} instance{'s' if p['instances'] != 1 else ''}"


def invalid(p: dict[str, Any]) -> str | None:
    """Why a point that ran is INVALID; None for a VALID one."""
    return None if p.get("verdict") == "VALID" else "INVALID: " + "; ".join(p.get("reasons") or [])


def sweep(d: dict[str, Any], doc: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
    """The sweep section's data: summary, notes, charts and the points table."""
    pts = d["sweep"]
    ok = [p for p in pts if p["status"] == "ok"]
    ov = sweep_overview(doc)
    return {
        "grid": doc["grid"],
        "overview": ov,
        "latency_scope": doc.get("latency_scope", ""),
        "throughput_scope": doc.get("throughput_scope", ""),
        "charts": _curves(pts, ok, ov),
        **_chosen_point(ok, doc, q),
        "points": points_table(pts, run_href(d["device_id"], d["run_id"])),
        "notes": doc.get("notes", []),
    }


def _configs(ok: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The points that ran by configuration (threads x instances), in batch order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(ok, key=lambda p: (p["threads"], p["instances"], p["batch"])):
        out.setdefault(series_name(p), []).append(p)
    return out


def _best_config(ok: list[dict[str, Any]]) -> str | None:
    best = max(ok, key=lambda p: p["throughput_items_per_s"] or 0, default=None)
    return series_name(best) if best else None


def _picked(configs: dict[str, list], limit: int, score, chosen: str | None) -> tuple[list[str], str | None]:
    """At most ``limit`` configurations (chartstyle.pick: best, worst, chosen, some between)."""
    names = list(configs)
    return cs.pick(names, lambda n: score(configs[n]), chosen if chosen in names else None, limit)


def _curves(pts: list[dict[str, Any]], ok: list[dict[str, Any]], ov: dict[str, Any]) -> list[Markup]:
    """Latency and throughput vs batch size, and the latency/throughput frontier; a big grid
    shows at most 8 lines per chart: its best, worst and best-throughput configurations and
    some between, and says so."""
    configs = _configs(ok)
    chosen = _best_config(ok)
    lat_names, lat_why = _picked(
        configs, cs.MAX_SERIES // 2, lambda ps: sorted(p["latency_ms"]["p99"] for p in ps)[len(ps) // 2], chosen
    )
    thr_names, thr_why = _picked(
        configs, cs.MAX_SERIES, lambda ps: -max(p["throughput_items_per_s"] or 0 for p in ps), chosen
    )
    lat: dict[str, list] = {}
    for n in lat_names:
        for q in ("p50", "p99"):
            lat[f"{q}, {n}"] = [(p["batch"], p["latency_ms"][q], invalid(p)) for p in configs[n]]
    thr = {n: [(p["batch"], p["throughput_items_per_s"], invalid(p)) for p in configs[n]] for n in thr_names}
    missing = [
        (
            p["batch"],
            f"batch {p['batch']}, threads {p['threads']}, instances {p['instances']}: {p['status']}: {p.get('reason', '')}",
        )
        for p in pts
        if p["status"] != "ok"
    ]
    batches = sorted({p["batch"] for p in pts})
    axis = "batch size (items per invoke)"
    return [
        svg(
            charts.line_chart(
                "Latency vs batch size (p50 solid, p99 dashed)",
                lat,
                axis,
                "latency per batch (ms)",
                dashed=[n for n in lat if n.startswith("p99")],
                missing=missing,
                kind="sweep-latency",
                xticks=batches,
                colors={n: lat_names.index(n.split(", ", 1)[1]) for n in lat},
                note=f"configurations: {lat_why}" if lat_why else None,
            )
        ),
        svg(
            charts.line_chart(
                "Throughput vs batch size",
                thr,
                axis,
                "throughput (items/s)",
                missing=missing,
                kind="sweep-throughput",
                xticks=batches,
                note=f"configurations: {thr_why}" if thr_why else None,
            )
        ),
        _frontier_chart(ok, ov["frontier"]),
    ]


def _frontier_chart(ok: list[dict[str, Any]], front: list[dict[str, Any]]) -> Markup:
    """Every point that ran, coloured by its thread count; the frontier's points labelled."""
    on_front = {(f["batch"], f["threads"], f["instances"]) for f in front}
    threads = sorted({p["threads"] for p in ok})
    groups = [f"{t} thread{'s' if t != 1 else ''}" for t in threads]
    scatter = [
        {
            "x": p["latency_ms"]["p99"],
            "y": p["throughput_items_per_s"],
            "group": groups[threads.index(p["threads"])],
            "label": f"b{p['batch']} t{p['threads']} i{p['instances']}"
            if (p["batch"], p["threads"], p["instances"]) in on_front
            else None,
            "hollow": invalid(p) is not None,
            "note": f"batch {p['batch']}, {series_name(p)}" + (f"; {invalid(p)}" if invalid(p) else ""),
        }
        for p in ok
    ]
    return svg(
        charts.scatter_chart(
            "Latency/throughput frontier (labels: frontier points; b = batch, t = threads, i = instances)",
            scatter,
            "p99 latency per batch (ms)",
            "throughput (items/s)",
            line=[(f["p99_ms"], f["throughput_items_per_s"]) for f in front],
            line_name="frontier (no point is both faster and higher)",
            groups=groups,
            kind="sweep-frontier",
        )
    )


def _chosen_point(ok: list[dict[str, Any]], doc: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
    """The latency distribution of one point: ``?point=N``, else the best-throughput point.
    ``point_histogram`` is None when no point that ran is chosen; ``point_without_histogram``
    when the chosen point was published without one."""
    bt = (doc.get("best") or {}).get("throughput") or {}
    best = (bt.get("batch"), bt.get("threads"), bt.get("instances"))
    default = next(
        (p["index"] for p in ok if (p["batch"], p["threads"], p["instances"]) == best),
        ok[0]["index"] if ok else None,
    )
    try:
        sel = int(q.get("point", default if default is not None else -1))
    except ValueError:
        sel = default if default is not None else -1
    chosen = next((p for p in ok if p["index"] == sel), None)
    if chosen is None:
        return {"point_histogram": None, "point_without_histogram": False}
    hist = chosen.get("latency_histogram_ms") or {}
    chart = charts.histogram_svg(
        f"Latency per batch at batch {chosen['batch']}, threads {chosen['threads']}, instances "
        f"{chosen['instances']} ({chosen.get('batches', '-')} batches)",
        hist.get("counts") or [],
        hist.get("edges_ms") or [],
        "ms",
        {"p50": chosen["latency_ms"]["p50"], "p99": chosen["latency_ms"]["p99"]},
        log_x=True,
        what="batches",
        xlabel="latency per batch (ms)",
    )
    return {"point_histogram": svg(chart), "point_without_histogram": not hist}


def _why(p: dict[str, Any], told: set[int]) -> str:
    """A point's reason; an unsupported batch size's once, its other points pointing to it."""
    if p["status"] == "unsupported":
        if p["batch"] in told:
            return f"batch {p['batch']} unsupported: the reason is on its first row"
        told.add(p["batch"])
    return p.get("reason") or "; ".join(p.get("reasons") or []) or "-"


def points_table(pts: list[dict[str, Any]], href: str) -> Table:
    """Every point of the grid: its figures, or why it did not run; a link to its distribution."""
    rows = []
    told: set[int] = set()  # batch sizes whose unsupported reason a row above gives
    for p in pts:
        pw = p.get("power") or {}
        per = p.get("latency_per_item_ms") or {}
        lat = p.get("latency_ms") or {}
        status = p["status"] if p["status"] != "ok" else (p.get("verdict") or "ok")
        rows.append(
            [
                *(str(p[k]) for k in ("index", "batch", "threads", "instances")),
                Mark(status, status),
                fmt(p.get("throughput_items_per_s"), ".1f"),
                *(fmt(lat.get(k), ".4f") for k in ("p50", "p90", "p99")),
                fmt(per.get("p50"), ".4f"),
                fmt(p.get("cpu_pct"), ".1f"),
                fmt(pw.get("energy_per_item_mj"), ".4f"),
                fmt(pw.get("mean_w"), ".3f"),
                _why(p, told),
                Link(f"{href}?point={p['index']}", "histogram") if p["status"] == "ok" else "-",
            ]
        )
    return Table("sweep", _POINT_HEAD, rows, left=0)
