"""Runs and their samples: the run list (newest first), one run found by reference, a run's
detail (its columns, stored summary and meta, latency per stage over its stored frames, a
sweep's points), its per-frame latencies in frame order, and a histogram of them."""

from __future__ import annotations

import json
from typing import Any, Iterable

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.wire.protocol import STAGES
from edgebench.collector.aggregate.common import filters, named, select, stage_stats
from edgebench.collector.aggregate.documents import sweep_points
from edgebench.collector.store import ALL_STAGES

#: A field whose runs column is not its name.
_EXPRESSIONS = {"model": "r.model_name", "kind": "COALESCE(r.kind, 'run')"}


def _columns(*names: str) -> list[tuple[str, str]]:
    return [(n, _EXPRESSIONS.get(n, f"r.{n}")) for n in names]


_LIST_COLUMNS = _columns(
    "device_id", "run_id", "model", "runtime", "runtime_version", "delegate", "num_threads", "scenario", "frames",
    "frames_stored",
    "fps", "energy_mj_gross", "throttled", "has_sweep", "summary_at", "first_seen", "started_at", "source_kind",
    "kind", "verdict", "headline_metric", "headline_value", "headline_unit", "within_bound",
)  # fmt: skip
_DETAIL_COLUMNS = _columns(
    "model", "runtime", "runtime_version", "delegate", "num_threads", "scenario", "board", "source_kind", "frames",
    "frames_stored", "duration_s", "fps", "power_mean_w", "energy_mj_gross", "energy_mj_net", "power_source",
    "throttled", "temp_max_c", "summary", "duplicates", "replayed", "started_at", "session", "kind", "verdict",
    "headline_metric", "headline_value", "headline_unit", "within_bound", "latency_bound_ms", "target_qps", "meta",
)  # fmt: skip


def run_list(store, device_id: str | None = None, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` runs (by summary, else first seen), of a device or a model."""
    where, params = filters({"device_id": device_id, "model": model}, None, None, "")
    q = store.query(
        f"SELECT {select(_LIST_COLUMNS)}"
        f" FROM runs r WHERE {where} ORDER BY COALESCE(r.summary_at, r.first_seen) DESC LIMIT {int(limit)}",
        params,
    )
    return [named(_LIST_COLUMNS, r) for r in q]


def placement_rows(store, device_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """What ran where on a device, per model and runtime setting: from the newest summary of
    each (model, runtime, delegate, threads) among its newest ``limit`` runs, the result's
    ``ops`` (``N of M operators on X`` and the operators left to the CPU) or, for a LiteRT
    CompiledModel, whether it was fully accelerated. Runs without an op table are left out."""
    q = store.query(
        "SELECT r.run_id, r.model_name, r.runtime, r.delegate, r.num_threads, r.summary FROM runs r"
        " WHERE r.device_id = ? AND r.summary IS NOT NULL ORDER BY r.summary_at DESC"
        f" LIMIT {int(limit)}",
        (device_id,),
    )
    out: dict[tuple, dict[str, Any]] = {}
    for run_id, model, runtime, delegate, threads, summary in q:
        key = (model, runtime, delegate, threads)
        if key in out:
            continue
        ops = (json.loads(summary) or {}).get("ops")
        if not isinstance(ops, dict):
            continue
        if "ops" in ops:
            placement, fallback = ops.get("summary"), ", ".join(ops.get("fallback") or []) or "none"
        else:
            placement, fallback = f"CompiledModel, fully accelerated: {ops.get('fully_accelerated')}", None
        out[key] = {
            "model": model, "runtime": runtime, "delegate": delegate, "num_threads": threads,
            "placement": placement, "fallback": fallback, "run_id": run_id,
        }  # fmt: skip
    return list(out.values())


def find_run(store, ref: str) -> tuple[str, str]:
    """``DEVICE/RUN_ID`` or a bare run id (when unique)."""
    if "/" in ref:
        dev, run = ref.split("/", 1)
        rows = store.query("SELECT device_id, run_id FROM runs WHERE device_id = ? AND run_id = ?", (dev, run))
    else:
        rows = store.query("SELECT device_id, run_id FROM runs WHERE run_id = ?", (ref,))
    if not rows:
        raise UserError(f"no run {ref!r} in the database (see `edgebench-collector report --by device_id,run_id`)")
    if len(rows) > 1:
        raise UserError(f"run id {ref!r} exists on several devices: write it as DEVICE/RUN_ID")
    return rows[0][0], rows[0][1]


def run_detail(store, device_id: str, run_id: str) -> dict[str, Any]:
    """One run: its columns, its summary and meta documents, latency per stage over its
    stored frames (an optional stage only where measured) and a sweep's points."""
    row = store.query(
        f"SELECT {select(_DETAIL_COLUMNS)} FROM runs r WHERE r.device_id = ? AND r.run_id = ?", (device_id, run_id)
    )
    if not row:
        raise UserError(f"no run {device_id}/{run_id} in the database")
    d = named(_DETAIL_COLUMNS, row[0])
    d["summary"] = json.loads(d["summary"]) if d["summary"] else None
    d["meta"] = json.loads(d["meta"]) if d["meta"] else None
    d["device_id"], d["run_id"] = device_id, run_id
    samples = run_samples(store, device_id, run_id, ALL_STAGES)
    d["latency_ms"] = {s: stage_stats(samples[s]) for s in ALL_STAGES if s in STAGES or samples[s].size}
    d["sweep"] = sweep_points(d["summary"])
    return d


def run_samples(store, device_id: str, run_id: str, stages: Iterable[str] = STAGES) -> dict[str, np.ndarray]:
    """The stored per-frame latencies (ms) of one run, in frame order."""
    stages = list(stages)
    rows = store.frame_samples("b.device_id = ? AND b.run_id = ?", (device_id, run_id), stages, keys=["b.first_frame"])
    rows.sort(key=lambda r: r[0])
    out = {}
    for i, s in enumerate(stages):
        arrs = [r[2 + i] for r in rows if r[2 + i] is not None]
        out[s] = np.concatenate(arrs) if arrs else np.empty(0)
    return out


def histogram(values: np.ndarray, bins: int = 40) -> dict[str, Any]:
    """Counts over ``bins`` equal bins between the smallest and the largest value."""
    if values.size == 0:
        return {"counts": [], "edges": []}
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-3
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return {"counts": counts.tolist(), "edges": [round(float(e), 4) for e in edges]}
