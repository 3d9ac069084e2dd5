"""A device's page (``/device/<id>``): its state, its telemetry over time (hottest
temperature, power, CPU clock, throttling; ``?hours=N``, default 6), its inventory as a
table, its per-frame runs per model, runtime, accelerator and threads, its scenario results,
sweeps and tune searches (the newest first), every run, and its sessions' data quality (seq gaps, duplicates, replays).
Laid out to fit 1,400 px: the telemetry charts two abreast, tables with only the columns a
device needs."""

from __future__ import annotations

import time
from typing import Any

from markupsafe import Markup

from edgebench.agent.wire.words import flatten
from edgebench.collector.aggregate import (
    device_rows,
    group_rows,
    placement_rows,
    run_list,
    scenario_rows,
    sweep_rows,
    telemetry_series,
    tune_rows,
)
from edgebench.collector.views import charts
from edgebench.collector.views.pages.cells import Link, Table, run_href
from edgebench.collector.views.pages.tables import (
    accelerator,
    devices_table,
    documents,
    fleet_table,
    latency_chart,
    runs_table,
    threads,
)
from edgebench.collector.views.pages.tune import tunes_table
from edgebench.collector.views.report import iso
from edgebench.collector.views.templating import svg

_GROUP = ("model", "runtime", "delegate", "threads")
#: Sessions listed, newest first.
SESSIONS_SHOWN = 50
#: the telemetry charts: (reading, title, y axis, series name)
TELEMETRY_CHARTS = (
    ("max_temp_c", "Hottest temperature", "temperature (°C)", "hottest zone"),
    ("power_w", "Power", "power (W)", "board"),
    ("cpu_mhz", "CPU clock", "clock (MHz)", "mean over the cores"),
    ("throttled", "Throttling", "throttled (1 = yes)", "the board's own flag"),
)
DEFAULT_HOURS = 6.0


def device(store, device_id: str, q: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    devs = [d for d in device_rows(store) if d["device_id"] == device_id]
    if not devs:
        raise LookupError(f"no device {device_id!r}")
    rows = group_rows(store, _GROUP, where={"device_id": device_id})
    mine = {"device_id": device_id}
    hours = _hours((q or {}).get("hours"))
    return "device.html", {
        "title": f"Device {device_id}",
        "devices_table": devices_table(devs),
        "hours": f"{hours:g}",
        "telemetry": telemetry_charts(telemetry_series(store, device_id, since=time.time() - hours * 3600)),
        "inventory": inventory_table(devs[0]["inventory"]),
        "fleet": fleet_table(rows, _GROUP),
        "chart": latency_chart(rows, ("model", "delegate", "threads"), f"Latency on {device_id} (ms)"),
        **documents(scenario_rows(store, where=mine), sweep_rows(store, where=mine)),
        "placement": placement_table(placement_rows(store, device_id), device_id),
        "tunes": tunes_table(tunes) if (tunes := tune_rows(store, where=mine)) else None,
        "runs": runs_table(run_list(store, device_id=device_id), device=False),
        "sessions": sessions_table(store, device_id),
    }


def placement_table(rows: list[dict[str, Any]], device_id: str) -> Table | None:
    """What ran where, per model and setting (the newest run's op table); None when no run has one."""
    if not rows:
        return None
    return Table(
        "device-placement",
        ["model", "runtime", "accelerator", "threads", "operators on the accelerator", "left to the CPU", "run"],
        [
            [
                r["model"],
                r["runtime"],
                accelerator(r["delegate"]),
                threads(r["num_threads"]),
                r["placement"],
                r["fallback"] or "-",
                Link(run_href(device_id, r["run_id"]), r["run_id"]),
            ]
            for r in rows
        ],
    )


def _hours(text: str | None) -> float:
    try:
        h = float(text) if text else DEFAULT_HOURS
    except ValueError:
        h = DEFAULT_HOURS
    return min(max(h, 0.1), 24 * 90)


def telemetry_charts(series: dict[str, list]) -> list[Markup]:
    """One chart per reading the device sent, on one time axis (minutes since the first
    reading shown); none when the device sent no telemetry in the window."""
    ts = series["ts"]
    if not ts:
        return []
    t0 = ts[0]
    minutes = [(t - t0) / 60.0 for t in ts]
    axis = f"minutes since {iso(t0)} (device clock)"
    out = []
    for key, title, ylabel, name in TELEMETRY_CHARTS:
        vals = series[key]
        if all(v is None for v in vals):
            continue
        out.append(
            svg(
                charts.line_chart(
                    f"{title}, {len(ts)} readings",
                    {name: list(zip(minutes, vals))},
                    axis,
                    ylabel,
                    log=False,
                    kind=f"telemetry-{key}",
                    yticks=[0, 1] if key == "throttled" else None,
                )
            )
        )
    return out


#: inventory keys in words, in the order shown; others follow, flattened (``os.id``)
_INVENTORY_WORDS = {
    "model": "board",
    "vendor": "vendor",
    "soc": "SoC",
    "cpu.model": "CPU",
    "cpu.arch": "architecture",
    "cpu.cores": "CPU cores",
    "cpu.max_freq_mhz": "CPU clock max (MHz)",
    "cpu.governor": "CPU governor",
    "memory_total_mb": "memory (MB)",
    "swap_total_mb": "swap (MB)",
    "os.name": "operating system",
    "kernel": "kernel",
    "python": "Python",
    "hostname": "host name",
    "accelerators": "accelerators",
}
_SKIP = ("model_source", "sensors", "runtime", "os.id", "os.version_id")


def _value(v: Any) -> str:
    if isinstance(v, list):
        return (
            "; ".join(
                " ".join(str(x) for x in item.values() if x not in (None, "")) if isinstance(item, dict) else str(item)
                for item in v
            )
            or "none"
        )
    if isinstance(v, float):
        return f"{v:g}"
    return "-" if v is None else str(v)


def inventory_table(inv: dict[str, Any] | None) -> Table:
    """The device's inventory as rows of (what, value), in words, the known facts first."""
    flat = {k: v for k, v in flatten(inv or {}).items() if not any(k == s or k.startswith(s + ".") for s in _SKIP)}
    rows = [[words, _value(flat.pop(key))] for key, words in _INVENTORY_WORDS.items() if key in flat]
    rows += [[key.replace("_", " ").replace(".", ": "), _value(v)[:300]] for key, v in sorted(flat.items())]
    return Table("inventory", ["", ""], rows, left=2)


def sessions_table(store, device_id: str) -> Table:
    """The device's newest sessions: seq range, stored, gaps, duplicates, replayed."""
    sessions = store.query(
        "SELECT session, first_seq, last_seq, received, duplicates, replayed, first_seen, last_seen FROM sessions"
        f" WHERE device_id = ? ORDER BY session DESC LIMIT {SESSIONS_SHOWN}",
        (device_id,),
    )
    head = ["session", "first seq", "last seq", "stored", "seq gaps", "duplicates", "replayed", "first seen"]
    return Table(
        "sessions",
        [*head, "last seen"],
        [
            [*(str(x) for x in (s, a, b, n, max(0, b - a + 1 - n), du, rp)), iso(f), iso(la)]
            for s, a, b, n, du, rp, f, la in sessions
        ],
        left=1,
    )
