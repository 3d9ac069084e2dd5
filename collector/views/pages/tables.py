"""The tables and the chart several pages share: devices, fleet groups, runs, scenario
results and sweeps, and latency per group."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from edgebench.agent.wire import words
from edgebench.collector.views import charts
from edgebench.collector.views.pages.cells import Cell, Link, Mark, Table, dev_href, fmt, marked, model_href, run_href
from edgebench.collector.views.report import headline_text, iso, waiting_text
from edgebench.collector.views.templating import svg

#: the figures of a group of per-frame runs, in this order (the group's keys come first);
#: what a board comparison needs, narrow enough to fit 1,400 px with runtime, accelerator and
#: threads beside them (data quality per session is on the device page)
_FLEET_FIGURES = [
    "runs",
    "frames",
    "FPS",
    "inference p50 (ms)",
    "p99",
    "e2e p50 (ms)",
    "p99",
    "mJ per inference",
    "throttled runs",
    "missing frames",
]
#: how a group key is headed
_KEY_HEAD = {"device_id": "device", "delegate": "accelerator", "num_threads": "threads"}


def accelerator(delegate: str | None) -> str:
    """What a stored run ran on: its delegate's name, else the CPU."""
    return delegate or "CPU"


def threads(n: Any) -> str:
    return "runtime default" if n is None else str(n)


def devices_table(devs: list[dict[str, Any]]) -> Table:
    return Table(
        "devices",
        [
            "device",
            "state",
            "last seen",
            "agent",
            "board",
            "runs",
            "seq gaps",
            "duplicates",
            "replayed",
            "stored to seq",
            "waiting on device",
        ],
        [
            [
                Link(dev_href(d["device_id"]), d["device_id"]),
                Mark(d["state"], d["state"]),
                iso(d["last_seen"]),
                fmt(d["agent_version"]),
                fmt(d["board"]),
                *(str(d[k]) for k in ("runs", "seq_gaps", "duplicates", "replayed")),
                fmt(d.get("stored_seq")),
                waiting_text(d),
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
    if k == "delegate":
        return accelerator(v)
    if k == "threads":
        return threads(v)
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
                *(fmt(lat[s][k]) for s in ("inference", "e2e") for k in ("p50", "p99")),
                fmt(e.get("gross")),
                "-" if thr is None else f"{thr} of {r['thermal_runs']}",
                str(r["missing_frames"]),
            ]
        )
    head = [_KEY_HEAD.get(k, k) for k in by] + _FLEET_FIGURES
    return Table(tid, head, out, left=len(by))


def group_label(r: dict[str, Any], k: str) -> str:
    if k == "delegate":
        return accelerator(r.get(k))
    if k == "threads":
        return f"{threads(r.get(k))} threads" if r.get(k) != 1 else "1 thread"
    return str(r.get(k) or "-")


def latency_chart(rows: list[dict[str, Any]], label_keys: tuple[str, ...], title: str) -> Markup:
    labels = [" / ".join(group_label(r, k) for k in label_keys) for r in rows]
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
    """What the collector stores of a run: its frames (of those measured), or for a sweep or a
    scenario (which publish no frames, so "0" would read as data lost) its document."""
    if r["kind"] == "run":
        return "-" if r["frames"] is None else f"{r['frames']} ({r['frames_stored']})"
    what = {"sweep": "the sweep's points", "scenario": "the scenario result"}.get(r["kind"], "its document")
    return what if r["summary_at"] else "its announcement (result pending)"


def runs_table(runs: list[dict[str, Any]], device: bool = True) -> Table:
    """Every run: what it was, what it ran on (runtime, accelerator, threads), what it came
    to; ``device=False`` on a device's own page."""
    head = ["run", *(["device"] if device else []), "kind", "model", "runtime", "accelerator", "threads", "verdict"]
    head += ["headline", "frames (stored)", "FPS", "mJ per inference", "throttled", "received"]
    rows = [
        [
            Link(run_href(r["device_id"], r["run_id"]), r["run_id"]),
            *([r["device_id"]] if device else []),
            r["scenario"] or r["kind"] if r["kind"] == "scenario" else r["kind"],
            fmt(r["model"]),
            " ".join(x for x in (r["runtime"], r.get("runtime_version")) if x) or "-",
            accelerator(r["delegate"]),
            "per point" if r["kind"] == "sweep" else threads(r["num_threads"]),
            marked(r["verdict"]),
            headline_text(
                r["headline_metric"],
                r["headline_value"],
                r["headline_unit"],
                None if r["within_bound"] is None else bool(r["within_bound"]),
            ),
            _stored(r),
            fmt(r["fps"], ".1f"),
            fmt(r["energy_mj_gross"]),
            {None: "-", 0: "no", 1: "yes"}.get(r["throttled"], "-"),
            _received(r),
        ]
        for r in runs
    ]
    return Table("runs", head, rows, left=9 if device else 8)


def scenarios_table(scen: list[dict[str, Any]], limit: int) -> Table:
    """Scenario results: what ran, the verdict, the headline in words, the reasons; then the
    rates (queries/s) and counts."""
    head = ["run", "device", "model", "threads", "scenario", "verdict", "headline", "reasons"]
    head += ["target (queries/s)", "completed (queries/s)", "queries", "received"]
    rows = [
        [
            Link(run_href(r["device_id"], r["run_id"]), r["run_id"]),
            r["device_id"],
            fmt(r["model"]),
            fmt(r["num_threads"]),
            fmt(r["scenario"]),
            marked(r["verdict"]),
            words.headline(r["headline"], r["latency_bound_ms"]),
            "; ".join(r["reasons"]) or "-",
            words.number(r["target_qps"]),
            words.number(r["completed_qps"]),
            fmt(r["queries"]),
            iso(r["received_at"]),
        ]
        for r in scen[:limit]
    ]
    return Table("scenarios", head, rows, left=8)


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
