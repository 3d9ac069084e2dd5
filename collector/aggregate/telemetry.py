"""Devices' telemetry over time (the ``telemetry`` table: one row per telemetry message,
written by store/rows.py): a device's series for its page, and every device's newest
readings for /metrics. Times are the device's clock (``ts``); a reading the device did not
have is None, never 0."""

from __future__ import annotations

from typing import Any

#: the readings of a row, in the table's column order
READINGS = ("cpu_pct", "mem_used_pct", "max_temp_c", "power_w", "cpu_mhz", "throttled")
#: at most this many points per series on a page (older rows are thinned evenly)
MAX_POINTS = 1000


def telemetry_series(store, device_id: str, since: float | None = None) -> dict[str, list]:
    """``{"ts": [...], "<reading>": [...]}`` of one device since ``since`` (epoch s), oldest
    first, thinned to at most MAX_POINTS rows (every k-th, the newest kept)."""
    cols = ", ".join(("ts", *READINGS))
    rows = store.query(
        f"SELECT {cols} FROM telemetry WHERE device_id = ? AND ts >= ? ORDER BY ts",
        (device_id, since if since is not None else 0.0),
    )
    if len(rows) > MAX_POINTS:
        step = -(-len(rows) // MAX_POINTS)
        rows = rows[::-1][::step][::-1]
    return {name: [r[i] for r in rows] for i, name in enumerate(("ts", *READINGS))}


def latest_telemetry(store) -> list[dict[str, Any]]:
    """Every device's newest telemetry row: ``device_id``, ``ts`` and the readings."""
    cols = ", ".join(f"t.{c}" for c in ("device_id", "ts", *READINGS))
    rows = store.query(
        f"SELECT {cols} FROM telemetry t JOIN (SELECT device_id, MAX(ts) AS ts FROM telemetry GROUP BY device_id) n"
        " ON n.device_id = t.device_id AND n.ts = t.ts ORDER BY t.device_id"
    )
    out, seen = [], set()
    for r in rows:
        if r[0] in seen:  # two rows with the same newest ts: one is enough
            continue
        seen.add(r[0])
        out.append(dict(zip(("device_id", "ts", *READINGS), r)))
    return out
