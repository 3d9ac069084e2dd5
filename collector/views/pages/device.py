"""A device's page (``/device/<id>``): its state, its per-frame runs per model, runtime,
delegate and scenario, its scenario results and sweeps, every run, its sessions' data
quality (seq gaps, duplicates, replays) and its inventory."""

from __future__ import annotations

import json
from typing import Any

from edgebench.collector.aggregate import device_rows, group_rows, run_list, scenario_rows, sweep_rows
from edgebench.collector.views.pages.cells import Table
from edgebench.collector.views.pages.tables import devices_table, documents, fleet_table, latency_chart, runs_table
from edgebench.collector.views.report import iso

_GROUP = ("model", "runtime", "delegate", "threads", "scenario")
#: Sessions listed, newest first.
SESSIONS_SHOWN = 50


def device(store, device_id: str) -> tuple[str, dict[str, Any]]:
    devs = [d for d in device_rows(store) if d["device_id"] == device_id]
    if not devs:
        raise LookupError(f"no device {device_id!r}")
    rows = group_rows(store, _GROUP, where={"device_id": device_id})
    mine = {"device_id": device_id}
    return "device.html", {
        "title": f"Device {device_id}",
        "devices_table": devices_table(devs),
        "fleet": fleet_table(rows, _GROUP),
        "chart": latency_chart(
            rows,
            (),
            f"Latency on {device_id} (ms)",
            labels=[
                ", ".join(
                    str(x)
                    for x in (f"{r['threads'] if r['threads'] is not None else '?'} thr", r["delegate"], r["model"])
                    if x
                )
                for r in rows
            ],
        ),
        **documents(scenario_rows(store, where=mine), sweep_rows(store, where=mine)),
        "runs": runs_table(run_list(store, device_id=device_id)),
        "sessions": sessions_table(store, device_id),
        "inventory": json.dumps(devs[0]["inventory"], indent=2)[:20000],
    }


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
