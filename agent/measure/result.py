"""The result document (schema ``edgebench.result/1``): the contract other tools read."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
from datetime import datetime, timezone
from typing import Any

from edgebench.agent import __version__
from edgebench.agent.measure.loop import Measurement
from edgebench.agent.runtime.interpreter import Runtime
from edgebench.agent.wire import protocol

#: What each latency stage covers, written into every result so no figure is ambiguous.
STAGE_SCOPE = {
    "capture": "source.read(): grabbing (and for files, decoding) one frame; for live sources, the wait for it",
    "preprocess": "color order, resize, normalization/quantization and set_tensor",
    "queue": "time a ready frame waited: since arrival (live sources) or between preprocess and invoke (pipelined)",
    "inference": "interpreter.invoke() only (comparable to TFLite benchmark_model)",
    "postprocess": "get_tensor and output decoding (top-k, detections)",
    "e2e": "one frame from its origin (capture start; arrival for live sources) to postprocess end",
}


#: what the stages cover when LiteRT's CompiledModel runs (--accelerator)
COMPILED_SCOPE = {
    "preprocess": "color order, resize, normalization/quantization and TensorBuffer.write into the model's input buffer",
    "inference": "CompiledModel.run_by_index() only (what litert-benchmark times)",
    "postprocess": "TensorBuffer.read of the outputs and output decoding (top-k, detections)",
}


def scope_of(stage: str, rt: Runtime) -> str:
    if getattr(rt, "accelerators_asked", None):
        return COMPILED_SCOPE.get(stage, STAGE_SCOPE[stage])
    return STAGE_SCOPE[stage]


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def default_device_id() -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().lower()).strip("-_") or "device"
    return name[:64]


def build_result(
    *,
    device_id: str,
    run_id: str,
    rt: Runtime,
    model_sha256: str,
    task: str,
    source: dict[str, Any],
    preprocess: dict[str, Any] | None,
    m: Measurement,
    started_at: float,
    config: dict[str, Any],
    notes: list[str],
    validity: dict[str, Any],
    warnings: list[str],
    process: dict[str, Any],
    pacing: str,
) -> dict[str, Any]:
    stages = m.stages
    methods = {s: m.stats[s].method for s in stages}
    result: dict[str, Any] = {
        "schema": protocol.RESULT_SCHEMA,
        "device_id": device_id,
        "run_id": run_id,
        "agent_version": __version__,
        "started_at": datetime.fromtimestamp(started_at, timezone.utc).isoformat(timespec="milliseconds"),
        "model": {
            "path": os.path.abspath(rt.model_path),
            "name": os.path.basename(rt.model_path),
            "sha256": model_sha256,
            "size_bytes": os.path.getsize(rt.model_path),
            "task": task,
            "inputs": [t.to_dict() for t in rt.inputs],
            "outputs": [t.to_dict() for t in rt.outputs],
        },
        "runtime": rt.describe(),
        "source": source,
        "preprocess": preprocess,
        "config": config,
        "mode": m.mode,
        "pacing": pacing,
        "frames": m.frames,
        "warmup_frames": m.warmup_frames,
        "warmup_s": round(m.warmup_s, 6),
        "duration_s": round(m.duration_s, 6),
        "fps": None if m.fps is None else round(m.fps, 3),
        "init_ms": round(rt.init_ms, 3),
        "load_ms": round(rt.load_ms, 3),
        "allocate_ms": round(rt.allocate_ms, 3),
        "delegate_load_ms": None if rt.delegate_load_ms is None else round(rt.delegate_load_ms, 3),
        "first_inference_ms": None if m.first_inference_ms is None else round(m.first_inference_ms, 3),
        "latency_ms": {stage: m.stats[stage].summary_ms() for stage in stages},
        "latency_histogram_ms": {s: m.stats[s].histogram_ms() for s in ("inference", "e2e")},
        "latency_scope": {s: scope_of(s, rt) for s in stages},
        "percentile_method": methods["e2e"] if len(set(methods.values())) == 1 else methods,
        "process": process,
        "validity": validity,
        "warnings": warnings,
        "source_ended_early": m.ended_early,
        "notes": notes,
    }
    if m.predictions:
        result["predictions"] = m.predictions
        if m.predictions_truncated:
            result["predictions_truncated"] = True
    return result


def write_json(path: str, result: dict[str, Any]) -> None:
    """Write atomically, so a crash never leaves half a result."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def utc_now() -> float:
    return time.time()
