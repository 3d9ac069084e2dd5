"""Hand-made edgebench.sweep/1 and edgebench.scenario/1 documents with known figures, in
the agent's exact shape (tests that need real measurements run the agent instead)."""

from __future__ import annotations

import time
from typing import Any

from edgebench.agent.wire import protocol
from tests.support.fleet import SHA

_HEAD = {
    "agent_version": "0.1.0",
    "started_at": "2026-11-22T10:00:00.000+00:00",
    "model": {
        "path": "/models/m.tflite",
        "name": "m.tflite",
        "sha256": SHA,
        "size_bytes": 1000,
        "batch_signature": [-1],
    },
    "runtime": {"name": "ai-edge-litert", "version": "2.3.0", "delegate": None, "xnnpack": True},
    "source": {"kind": "synthetic", "uri": "synthetic", "samples": 8},
    "notes": [],
}


def stats(p50: float, p99: float) -> dict[str, float]:
    return {
        "mean": round((p50 + p99) / 2, 4),
        "std": 0.1,
        "min": round(p50 / 2, 4),
        "p50": p50,
        "p90": round((p50 + p99) / 2, 4),
        "p95": round(0.3 * p50 + 0.7 * p99, 4),
        "p99": p99,
        "p999": p99,
        "max": p99,
    }


def ok_point(
    batch: int, threads: int, instances: int, p50: float, p99: float, throughput: float, verdict: str = "VALID"
) -> dict[str, Any]:
    batches = 200
    return {
        "batch": batch,
        "threads": threads,
        "instances": instances,
        "instance_mode": "threads",
        "status": "ok",
        "batches": batches,
        "items": batches * batch,
        "batches_per_instance": [batches // instances] * instances,
        "duration_s": 1.0,
        "throughput_items_per_s": throughput,
        "throughput_batches_per_s": throughput / batch,
        "latency_ms": stats(p50, p99),
        "latency_per_item_ms": {
            "mean": round(p50 / batch, 4),
            "p50": round(p50 / batch, 4),
            "p90": round(p99 / batch, 4),
            "p99": round(p99 / batch, 4),
        },
        "latency_histogram_ms": {"edges_ms": [p50 / 2, p50, p99, p99 * 1.001], "counts": [50, 140, 10]},
        "cpu_pct": 100.0 * threads * instances,
        "cpu_scope": "this process",
        "power": None,
        "power_reason": "power not measured: no power source on this board",
        "verdict": verdict,
        "reasons": [] if verdict == "VALID" else ["only 10 batches measured; at least 20 needed"],
    }


def sweep_doc(dev: str, run: str, *, unsupported: tuple[int, ...] = (8,)) -> dict[str, Any]:
    """batch 1,2,4(,8) x threads 1,2 x instances 1: throughput rises with batch; batch 8 unsupported."""
    batches = [1, 2, 4, *unsupported]
    points = []
    for b in batches:
        for t in (1, 2):
            if b in unsupported:
                points.append(
                    {
                        "batch": b,
                        "threads": t,
                        "instances": 1,
                        "instance_mode": "threads",
                        "status": "unsupported",
                        "reason": f"allocate_tensors failed at batch {b}: the model likely hard-codes batch 1",
                    }
                )
            else:
                points.append(
                    ok_point(
                        b, t, 1, p50=1.0 * b**0.8 / t, p99=1.5 * b**0.8 / t, throughput=round(1000.0 * b**0.2 * t, 3)
                    )
                )
    ok = [p for p in points if p["status"] == "ok"]
    top = max(ok, key=lambda p: p["throughput_items_per_s"])
    low = min(ok, key=lambda p: p["latency_ms"]["p99"])
    return {
        "schema": protocol.SWEEP_SCHEMA,
        "device_id": dev,
        "run_id": run,
        **_HEAD,
        "grid": {"batch": batches, "threads": [1, 2], "instances": [1], "instance_mode": "threads"},
        "settings": {"duration_s": 1.0, "frames": None, "warmup": 3, "min_frames": 20, "min_duration_s": 0.5},
        "latency_scope": "one batch",
        "throughput_scope": "items / window",
        "percentile_method": "linear",
        "points": points,
        "best": {
            "throughput": {
                "batch": top["batch"],
                "threads": top["threads"],
                "instances": 1,
                "throughput_items_per_s": top["throughput_items_per_s"],
                "verdict": "VALID",
            },
            "latency": {
                "batch": low["batch"],
                "threads": low["threads"],
                "instances": 1,
                "p99_ms": low["latency_ms"]["p99"],
                "verdict": "VALID",
            },
        },
        "counts": {s: sum(p["status"] == s for p in points) for s in protocol.SWEEP_POINT_STATUSES},
    }


def scenario_doc(dev: str, run: str, scenario: str = "server", *, valid: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": protocol.SCENARIO_SCHEMA,
        "device_id": dev,
        "run_id": run,
        **_HEAD,
        "scenario": scenario,
        "batch": 1,
        "queries": 500,
        "samples": 500,
        "duration_s": 2.0,
        "latency_ms": stats(2.0, 9.0),
        "latency_histogram_ms": {"edges_ms": [1.0, 2.0, 4.0, 9.0], "counts": [100, 395, 5]},
        "verdict": "VALID" if valid else "INVALID",
        "reasons": [] if valid else ["bound missed: p99 latency 9.000 ms exceeds the bound of 5 ms"],
    }
    if scenario == "server":
        bound = 20.0 if valid else 5.0
        doc.update(
            target_qps=250.0,
            completed_qps=249.0,
            latency_bound_ms=bound,
            within_bound=valid,
            queue_ms=stats(0.5, 4.0),
            service_ms=stats(1.5, 5.0),
            headline={"metric": "p99_within_bound", "value": valid, "p99_latency_ms": 9.0, "unit": "ms"},
        )
    elif scenario == "offline":
        doc["headline"] = {"metric": "samples_per_s", "value": 250.0, "unit": "samples/s"}
    else:
        pct = "p90" if scenario == "single-stream" else "p99"
        doc["headline"] = {"metric": f"{pct}_latency_ms", "value": doc["latency_ms"][pct], "unit": "ms"}
    return doc


def summary_of(doc: dict[str, Any], session: int = 1, seq: int = 2) -> dict[str, Any]:
    return {
        "schema": protocol.SUMMARY_SCHEMA,
        "device_id": doc["device_id"],
        "session": session,
        "seq": seq,
        "ts": time.time(),
        "run_id": doc["run_id"],
        "result": doc,
    }


def meta_of(doc: dict[str, Any], session: int = 1, seq: int = 1) -> dict[str, Any]:
    m = {
        "schema": protocol.RUN_META_SCHEMA,
        "device_id": doc["device_id"],
        "session": session,
        "seq": seq,
        "ts": time.time(),
        "run_id": doc["run_id"],
        "model": doc["model"],
        "runtime": doc["runtime"],
        "source": doc["source"],
        "result_schema": doc["schema"],
    }
    if doc["schema"] == protocol.SCENARIO_SCHEMA:
        m["scenario"] = doc["scenario"]
    return m
