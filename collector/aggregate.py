"""Aggregations over stored frames. Percentiles are computed from the stored
per-frame latencies of the whole group (exact), never averaged across runs."""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.stats import PERCENTILE_METHOD

REPORT_PCTS = (50, 90, 99)


def _pcts(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {f"p{p}": None for p in REPORT_PCTS}
    arr = np.percentile(np.asarray(values, np.float64), REPORT_PCTS, method=PERCENTILE_METHOD)
    return {f"p{p}": round(float(v), 4) for p, v in zip(REPORT_PCTS, arr)}


def fleet_rows(store) -> list[dict[str, Any]]:
    """One row per device and model: runs, frames, FPS, inference and e2e percentiles (ms)."""
    groups = store.query(
        "SELECT device_id, model_name, model_sha256, COUNT(*),"
        " SUM(CASE WHEN summary IS NOT NULL THEN frames END),"
        " SUM(CASE WHEN summary IS NOT NULL THEN duration_s END)"
        " FROM runs GROUP BY device_id, model_name, model_sha256 ORDER BY device_id, model_name"
    )
    rows = []
    for device_id, model, sha, runs, sum_frames, sum_dur in groups:
        lat = store.query(
            "SELECT f.inference_ms, f.e2e_ms FROM frames f JOIN runs r"
            " ON r.device_id = f.device_id AND r.run_id = f.run_id"
            " WHERE r.device_id = ? AND r.model_sha256 IS ?",
            (device_id, sha),
        )
        inf = [x[0] for x in lat]
        e2e = [x[1] for x in lat]
        rows.append(
            {
                "device_id": device_id,
                "model": model,
                "model_sha256": sha,
                "runs": runs,
                "frames": len(lat),
                "fps": round(sum_frames / sum_dur, 2) if sum_frames and sum_dur else None,
                "inference_ms": _pcts(inf),
                "e2e_ms": _pcts(e2e),
            }
        )
    return rows
