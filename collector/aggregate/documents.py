"""Sweeps and scenario results: what their stored documents (edgebench.sweep/1,
edgebench.scenario/1) come to. One row per stored document (newest first), a sweep's
points and its overview (best figures, the latency/throughput frontier). The figures are
the agent's, computed over every query or batch of the run; none is averaged across runs."""

from __future__ import annotations

import json
from typing import Any

from edgebench.agent.wire.protocol import SWEEP_SCHEMA
from edgebench.agent.wire.stats import pareto_frontier
from edgebench.collector.aggregate.common import filters, named, select

#: The runs columns of a stored document: (name, SQL expression)
_DOCUMENT_COLUMNS = [
    (c, f"r.{c}")
    for c in (
        "device_id",
        "run_id",
        "model_name",
        "runtime",
        "runtime_version",
        "delegate",
        "num_threads",
        "board",
        "scenario",
        "verdict",
        "headline_metric",
        "headline_value",
        "headline_unit",
        "within_bound",
        "latency_bound_ms",
        "target_qps",
        "duration_s",
        "power_mean_w",
        "summary",
        "summary_at",
    )
]


def sweep_points(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The points of a stored edgebench.sweep/1 document, every one (unsupported and failed
    ones too, with their reason), in the document's field names, each with its ``index``."""
    if not isinstance(doc, dict) or doc.get("schema") != SWEEP_SCHEMA:
        return []
    return [{"index": i, **p} for i, p in enumerate(doc["points"])]


def point_label(p: dict[str, Any] | None) -> str | None:
    if not p:
        return None
    return f"batch {p['batch']}, threads {p['threads']}, instances {p['instances']}"


def sweep_overview(doc: dict[str, Any]) -> dict[str, Any]:
    """What a sweep came to: points by status, INVALID points, the best throughput and the
    lowest p99 (as the agent picked them: VALID points first) and the latency/throughput
    frontier (points no other point beats on both p99 latency and throughput)."""

    pts = doc["points"]
    ok = [p for p in pts if p["status"] == "ok"]
    best = doc.get("best") or {}
    return {
        "grid": doc["grid"],
        "points": len(pts),
        "counts": {s: sum(p["status"] == s for p in pts) for s in ("ok", "unsupported", "failed")},
        "invalid_points": sum(p.get("verdict") == "INVALID" for p in ok),
        "best_throughput_items_per_s": (best.get("throughput") or {}).get("throughput_items_per_s"),
        "best_throughput_at": point_label(best.get("throughput")),
        "best_throughput_verdict": (best.get("throughput") or {}).get("verdict"),
        "lowest_p99_ms": (best.get("latency") or {}).get("p99_ms"),
        "lowest_p99_at": point_label(best.get("latency")),
        "frontier": [
            {
                "batch": p["batch"],
                "threads": p["threads"],
                "instances": p["instances"],
                "p99_ms": p["latency_ms"]["p99"],
                "throughput_items_per_s": p["throughput_items_per_s"],
            }
            for p in pareto_frontier(ok)
        ],
        "unsupported_batches": sorted({p["batch"] for p in pts if p["status"] == "unsupported"}),
    }


def _document_runs(store, kind: str, since, until, where) -> list[dict[str, Any]]:
    """The stored documents of one kind in the window (by when the summary arrived), newest first."""
    w, p = filters(where, since, until, "COALESCE(r.summary_at, r.first_seen)")
    rows = store.query(
        f"SELECT {select(_DOCUMENT_COLUMNS)}"
        f" FROM runs r WHERE r.kind = ? AND r.summary IS NOT NULL AND {w}"
        " ORDER BY r.summary_at DESC, r.device_id, r.run_id",
        [kind, *p],
    )
    return [named(_DOCUMENT_COLUMNS, r) for r in rows]


def scenario_rows(
    store, *, since: float | None = None, until: float | None = None, where: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per stored scenario result (newest first): its verdict and reasons, its
    headline (metric, value, unit: p90/p99 query latency in ms, offline samples/s, server p99
    in ms with whether it held the bound, find-max-qps the highest rate in queries/s), the
    offered and completed rate, the bound, queries and samples. The figures are the agent's,
    computed over every query of the run; no percentile is averaged across runs."""
    return [_scenario_row(r, json.loads(r["summary"])) for r in _document_runs(store, "scenario", since, until, where)]


def _scenario_row(r: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": r["device_id"],
        "run_id": r["run_id"],
        "model": r["model_name"],
        "runtime": r["runtime"],
        "runtime_version": r["runtime_version"],
        "delegate": r["delegate"],
        "num_threads": r["num_threads"],
        "board": r["board"],
        "scenario": r["scenario"],
        "batch": doc.get("batch"),
        "verdict": r["verdict"],
        "reasons": doc.get("reasons", []),
        "headline": {"metric": r["headline_metric"], "value": r["headline_value"], "unit": r["headline_unit"]},
        "within_bound": None if r["within_bound"] is None else bool(r["within_bound"]),
        "latency_bound_ms": r["latency_bound_ms"],
        "target_qps": r["target_qps"],
        "completed_qps": doc.get("completed_qps"),
        "max_qps": doc.get("max_qps"),
        "steps": len(doc["steps"]) if isinstance(doc.get("steps"), list) else None,
        "queries": doc.get("queries"),
        "samples": doc.get("samples"),
        "duration_s": r["duration_s"],
        # absent for a find-max-qps search (each step is its own server run; see its steps)
        "latency_ms": {k: (doc.get("latency_ms") or {}).get(k) for k in ("p50", "p90", "p99", "mean")},
        "power_mean_w": r["power_mean_w"],
        "received_at": r["summary_at"],
    }


def sweep_rows(
    store, *, since: float | None = None, until: float | None = None, where: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per stored sweep (newest first): the grid, points by status, INVALID points,
    the best throughput and the lowest p99 with the point that gave each."""
    rows = []
    for r in _document_runs(store, "sweep", since, until, where):
        ov = sweep_overview(json.loads(r["summary"]))
        rows.append(
            {
                "device_id": r["device_id"],
                "run_id": r["run_id"],
                "model": r["model_name"],
                "runtime": r["runtime"],
                "runtime_version": r["runtime_version"],
                "delegate": r["delegate"],
                "board": r["board"],
                **{k: v for k, v in ov.items() if k != "frontier"},
                "frontier_points": len(ov["frontier"]),
                "received_at": r["summary_at"],
            }
        )
    return rows


def tune_rows(
    store, *, since: float | None = None, until: float | None = None, where: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per stored tune search (edgebench.tune/1, newest first): the bound and the
    objective, the winner's configuration and figures (none when nothing met the bound), the
    verdict of its re-measurement against the runner-up, and what was measured and pruned."""
    out = []
    for r in _document_runs(store, "tune", since, until, where):
        doc = json.loads(r["summary"])
        best = doc.get("best") or {}
        out.append(
            {
                "device_id": r["device_id"],
                "run_id": r["run_id"],
                "model": r["model_name"],
                "board": r["board"],
                "bound_ms": doc.get("bound_ms"),
                "objective": doc.get("objective"),
                "best_config": best.get("config"),
                "best_items_per_s": best.get("throughput_items_per_s"),
                "best_p99_ms": best.get("batch_p99_ms"),
                "verdict": (doc.get("verdict") or {}).get("verdict"),
                "points": len(doc.get("points") or []),
                "pruned": len(doc.get("pruned") or []),
                "received_at": r["summary_at"],
            }
        )
    return out
