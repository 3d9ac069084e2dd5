"""The tables and the chart several pages share: devices, fleet groups, runs, scenario
results and sweeps, and latency per group."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from edgebench.collector.views import charts
from edgebench.collector.views.pages.cells import Cell, Link, Mark, Table, dev_href, fmt, marked, model_href, run_href
from edgebench.collector.views.report import headline_text, iso
from edgebench.collector.views.templating import svg

_FLEET_FIGURES = [
    "runs",
    "frames",
    "FPS",
    "inference p50 ms",
    "p90",
    "p99",
    "e2e p50 ms",
    "p90",
    "p99",
    "mJ/inference gross",
    "net",
    "throttled runs",
    "missing frames",
    "duplicates",
    "replayed",
]


def devices_table(devs: list[dict[str, Any]]) -> Table:
    return Table(
        "devices",
        ["device", "state", "last seen", "agent", "board", "runs", "seq gaps", "duplicates", "replayed"],
        [
            [
                Link(dev_href(d["device_id"]), d["device_id"]),
                Mark(d["state"], d["state"]),
                iso(d["last_seen"]),
                fmt(d["agent_version"]),
                fmt(d["board"]),
                *(str(d[k]) for k in ("runs", "seq_gaps", "duplicates", "replayed")),
            ]
            for d in devs
        ],
        left=5,
    )


def _group_cell(k: str, v: Any) -> Cell:
    if k == "device_id" and v:
        return Link(dev_href(v), v)
    if k == "model" and v:
        return Link(model_href(v), v)
    return fmt(v)


def fleet_table(rows: list[dict[str, Any]], by: tuple[str, ...], tid: str = "fleet") -> Table:
    """Groups of per-frame runs (group_rows): the group's keys, then its figures."""
    out = []
    for r in rows:
        lat = r["latency_ms"]
        e = r.get("energy_per_inference_mj") or {}
        thr = r.get("throttled_runs")
        out.append(
            [
                *(_group_cell(k, r.get(k)) for k in by),
                str(r["runs"]),
                str(r["frames"]),
                fmt(r["fps"], ".1f"),
                *(fmt(lat["inference"][k]) for k in ("p50", "p90", "p99")),
                *(fmt(lat["e2e"][k]) for k in ("p50", "p90", "p99")),
                fmt(e.get("gross")),
                fmt(e.get("net")),
                "-" if thr is None else f"{thr}/{r['thermal_runs']}",
                str(r["missing_frames"]),
                str(r["duplicates"]),
                str(r["replayed"]),
            ]
        )
    head = [{"device_id": "device"}.get(k, k) for k in by] + _FLEET_FIGURES
    return Table(tid, head, out, left=len(by))


def latency_chart(
    rows: list[dict[str, Any]], label_keys: tuple[str, ...], title: str, labels: list[str] | None = None
) -> Markup:
    """e2e p50/p99 and inference p50 per row; a bar's label is its ``label_keys`` joined, or ``labels``."""
    labels = labels or [" / ".join(str(r.get(k) or "-") for k in label_keys) for r in rows]
    return svg(
        charts.bar_chart(
            title,
            labels,
            {
                "e2e p50": [r["latency_ms"]["e2e"]["p50"] for r in rows],
                "e2e p99": [r["latency_ms"]["e2e"]["p99"] for r in rows],
                "inference p50": [r["latency_ms"]["inference"]["p50"] for r in rows],
            },
            "ms",
        )
    )


def _received(r: dict[str, Any]) -> str:
    """When a run's summary arrived; else when it was first seen (a sweep or scenario still running)."""
    if r["summary_at"]:
        return iso(r["summary_at"] or r["first_seen"])
    return iso(r["first_seen"]) + (" (in progress)" if r["kind"] != "run" else "")


def _stored(r: dict[str, Any]) -> str:
    """What the collector stores of a run: its frames, or for a sweep or a scenario (which
    publish no frames, so "0" would read as data lost) its document."""
    if r["kind"] == "run":
        return fmt(r["frames_stored"])
    what = {"sweep": "the sweep's points", "scenario": "the scenario result"}.get(r["kind"], "its document")
    return what if r["summary_at"] else "its announcement (result pending)"


def runs_table(runs: list[dict[str, Any]]) -> Table:
    head = ["run", "device", "kind", "model", "runtime", "delegate", "threads", "scenario", "verdict", "headline"]
    head += ["frames", "stored", "FPS", "mJ/inf", "throttled", "received"]
    rows = [
        [
            Link(run_href(r["device_id"], r["run_id"]), r["run_id"]),
            r["device_id"],
            r["kind"],
            *(fmt(r[k]) for k in ("model", "runtime", "delegate", "num_threads", "scenario")),
            marked(r["verdict"]),
            headline_text(
                r["headline_metric"],
                r["headline_value"],
                r["headline_unit"],
                None if r["within_bound"] is None else bool(r["within_bound"]),
            ),
            fmt(r["frames"]),
            _stored(r),
            fmt(r["fps"], ".1f"),
            fmt(r["energy_mj_gross"]),
            {None: "-", 0: "no", 1: "yes"}.get(r["throttled"], "-"),
            _received(r),
        ]
        for r in runs
    ]
    return Table("runs", head, rows, left=3)


def scenarios_table(scen: list[dict[str, Any]], limit: int) -> Table:
    head = ["run", "device", "model", "threads", "scenario", "verdict", "headline", "target qps", "done qps"]
    head += ["queries", "reasons", "received"]
    rows = [
        [
            Link(run_href(r["device_id"], r["run_id"]), r["run_id"]),
            r["device_id"],
            fmt(r["model"]),
            fmt(r["num_threads"]),
            fmt(r["scenario"]),
            marked(r["verdict"]),
            headline_text(
                r["headline"]["metric"],
                r["headline"]["value"],
                r["headline"]["unit"],
                r["within_bound"],
                r["latency_bound_ms"],
            ),
            fmt(r["target_qps"], ".4g"),
            fmt(r["completed_qps"], ".4g"),
            fmt(r["queries"]),
            "; ".join(r["reasons"]) or "-",
            iso(r["received_at"]),
        ]
        for r in scen[:limit]
    ]
    return Table("scenarios", head, rows, left=7)


def sweeps_table(sweeps: list[dict[str, Any]], limit: int) -> Table:
    head = ["run", "device", "model", "points ok", "unsupported", "failed", "INVALID", "best items/s", "at"]
    head += ["lowest p99 ms", "at", "received"]
    rows = [
        [
            Link(run_href(r["device_id"], r["run_id"]), r["run_id"]),
            r["device_id"],
            fmt(r["model"]),
            *(str(r["counts"][s]) for s in ("ok", "unsupported", "failed")),
            str(r["invalid_points"]),
            fmt(r["best_throughput_items_per_s"], ".1f"),
            fmt(r["best_throughput_at"]),
            fmt(r["lowest_p99_ms"], ".4f"),
            fmt(r["lowest_p99_at"]),
            iso(r["received_at"]),
        ]
        for r in sweeps[:limit]
    ]
    return Table("sweeps", head, rows, left=3)


def documents(scen: list[dict[str, Any]], sweeps: list[dict[str, Any]], limit: int = 200) -> dict[str, Table | None]:
    """The tables of scenario results (verdict, headline, reasons) and sweeps (points, best
    figures), each None when there is none."""
    return {
        "scenarios": scenarios_table(scen, limit) if scen else None,
        "sweeps": sweeps_table(sweeps, limit) if sweeps else None,
    }
