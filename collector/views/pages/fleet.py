"""The fleet overview (``/``): devices and their state, per-frame runs per device and model
with a latency chart, the newest scenario results and sweeps, and links to compare a model
across boards."""

from __future__ import annotations

from typing import Any

from edgebench.collector.aggregate import (
    device_rows,
    group_rows,
    quarantine_counts,
    scenario_rows,
    sweep_rows,
)
from edgebench.collector.store.rollups import METHOD as ROLLUP_METHOD
from edgebench.collector.views.pages.cells import Link, model_href
from edgebench.collector.views.pages.tables import devices_table, documents, fleet_table, latency_chart

#: a row per board and what ran on it: the runtime, the accelerator and the threads matter as
#: much as the model when boards are compared
_GROUP = ("device_id", "model", "runtime", "delegate", "threads")
#: Scenario results and sweeps listed on the overview (the device pages list all).
OVERVIEW_DOCUMENTS = 20


def overview(store) -> tuple[str, dict[str, Any]]:
    devs = device_rows(store)
    # on PostgreSQL from the per-minute rollups: the overview covers all history, fast at any size
    rows = group_rows(store, _GROUP, rollups=True)
    qc = quarantine_counts(store)
    return "overview.html", {
        "title": "Fleet",
        "devices": len(devs),
        "states": {s: sum(1 for d in devs if d["state"] == s) for s in ("online", "stopped", "offline")},
        "quarantine": ", ".join(f"{k} {v}" for k, v in qc.items()) or "none",
        "devices_table": devices_table(devs),
        "fleet": fleet_table(rows, _GROUP),
        "latency_method": ROLLUP_METHOD if store.has_rollups else None,
        "chart": latency_chart(rows, ("device_id", "model", "threads"), "Latency per device, model and threads (ms)"),
        **documents(scenario_rows(store), sweep_rows(store), limit=OVERVIEW_DOCUMENTS),
        "models": [Link(model_href(m), m) for m in sorted({r["model"] for r in rows if r["model"]})],
    }
