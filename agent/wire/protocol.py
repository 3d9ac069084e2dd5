"""The edgebench wire protocol, defined once and shared by agent and collector.

Topics live under ``edgebench/v1/<device_id>/`` (see ``agent/wire/protocol.md``).
Every payload is a JSON object carrying ``schema`` ("<name>/<major>"); data
messages also carry the device's ``session`` and a strictly increasing ``seq``
so the collector can drop duplicates and count gaps.

This module is pure Python (no third-party imports): the agent uses it to build
messages, the collector to validate them (with the JSON Schemas below).
"""

from __future__ import annotations

import re
from typing import Any

TOPIC_ROOT = "edgebench"
VERSION = "v1"
PREFIX = f"{TOPIC_ROOT}/{VERSION}"

#: Per-frame latency stages, in pipeline order. ``e2e`` spans the frame's origin
#: (capture start, or its arrival for live sources) to postprocess end;
#: ``inference`` is ``interpreter.invoke()`` only.
STAGES = ("capture", "preprocess", "inference", "postprocess", "e2e")
#: Stages present only where frames wait: live sources and pipelined runs.
OPTIONAL_STAGES = ("queue",)
#: Summary statistics reported for every stage (milliseconds); p999 is p99.9.
STATS = ("mean", "std", "min", "p50", "p90", "p95", "p99", "p999", "max")
#: The ones every result must carry (schema edgebench.result/1 as first published).
REQUIRED_STATS = ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")

#: The protocol's name and major version, as in the topic root. Announced in ``info``.
PROTOCOL = f"{TOPIC_ROOT}/{VERSION}"

RESULT_SCHEMA = "edgebench.result/1"
STATUS_SCHEMA = "edgebench.status/1"
INFO_SCHEMA = "edgebench.info/1"
TELEMETRY_SCHEMA = "edgebench.telemetry/1"
RUN_META_SCHEMA = "edgebench.run_meta/1"
FRAMES_SCHEMA = "edgebench.frames/1"
SUMMARY_SCHEMA = "edgebench.summary/1"
CMD_RUN_SCHEMA = "edgebench.cmd_run/1"
CMD_ACK_SCHEMA = "edgebench.cmd_ack/1"
#: collector -> device: the seqs it has stored (see protocol.md, "Confirmation")
ACK_SCHEMA = "edgebench.ack/1"
#: At most this many seq ranges in one confirmation (a longer list goes out in several).
MAX_ACK_RANGES = 1000

#: States a device reports for a command on its cmd-ack topic.
CMD_ACK_STATES = ("accepted", "rejected", "started", "done", "failed")
#: Commands a device understands (``edgebench/v1/<device>/cmd/<name>``).
COMMANDS = ("run",)

#: Largest frame batch an agent sends in one message, and the largest payload
#: a collector accepts (the shipped Mosquitto config sets the same limit).
MAX_FRAMES_PER_BATCH = 2000
MAX_PAYLOAD_BYTES = 512 * 1024

DEVICE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
CMD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

STATUS_STATES = ("online", "stopped", "offline")


def check_device_id(device_id: str) -> str:
    if not isinstance(device_id, str) or not DEVICE_ID_RE.match(device_id):
        raise ValueError(
            f"invalid device id {device_id!r}: use 1-64 characters of a-z, 0-9, '-' or '_', "
            "starting with a letter or digit"
        )
    return device_id


# --------------------------------------------------------------------------- topics
def device_prefix(device_id: str) -> str:
    return f"{PREFIX}/{device_id}"


def status_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/status"


def info_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/info"


def telemetry_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/telemetry"


def run_topic(device_id: str, run_id: str, kind: str) -> str:
    if kind not in ("meta", "frames", "summary"):
        raise ValueError(f"unknown run topic kind {kind!r}")
    return f"{PREFIX}/{device_id}/run/{run_id}/{kind}"


def cmd_topic(device_id: str, name: str) -> str:
    return f"{PREFIX}/{device_id}/cmd/{name}"


def cmd_ack_topic(device_id: str) -> str:
    return f"{PREFIX}/{device_id}/cmd-ack"


def ack_topic(device_id: str) -> str:
    """Where collectors confirm what they stored of this device (only this device reads it)."""
    return f"{PREFIX}/{device_id}/ack"


def cmd_filter(device_id: str) -> str:
    """What a device subscribes to: its own commands (the broker's ACL allows no more)."""
    return f"{PREFIX}/{device_id}/cmd/#"


#: What a collector subscribes to.
ALL_DEVICES = f"{PREFIX}/+/#"
#: Every device's status (retained): how a commander finds the fleet.
ALL_STATUS = f"{PREFIX}/+/status"
#: Every device's command acknowledgements.
ALL_CMD_ACKS = f"{PREFIX}/+/cmd-ack"


def parse_topic(topic: str) -> dict[str, str] | None:
    """Split a topic into ``device_id``, ``kind`` and (for runs) ``run_id``.

    ``kind`` is one of status, info, telemetry, meta, frames, summary, cmd, cmd_ack, ack.
    Returns None for a topic outside the v1 tree or of unknown shape.
    """
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != TOPIC_ROOT or parts[1] != VERSION:
        return None
    device_id = parts[2]
    rest = parts[3:]
    if len(rest) == 1 and rest[0] in ("status", "info", "telemetry"):
        return {"device_id": device_id, "kind": rest[0]}
    if rest == ["cmd-ack"]:
        return {"device_id": device_id, "kind": "cmd_ack"}
    if rest == ["ack"]:
        return {"device_id": device_id, "kind": "ack"}
    if len(rest) == 3 and rest[0] == "run" and rest[2] in ("meta", "frames", "summary"):
        return {"device_id": device_id, "kind": rest[2], "run_id": rest[1]}
    if len(rest) >= 2 and rest[0] == "cmd":
        return {"device_id": device_id, "kind": "cmd", "name": "/".join(rest[1:])}
    return None


# --------------------------------------------------------------------------- bounds
# Every number a message carries is bounded to what is physically meaningful and what the
# store and every view can hold and compute with (sums, means, differences of seq) without
# overflowing a 64-bit integer or a double: anything beyond is rejected as invalid.
#: Largest seq or session: the largest integer a double (JSON in JavaScript) holds exactly;
#: differences and sums of these stay within a 64-bit integer.
MAX_SEQ = 2**53 - 1
#: Longest latency or duration in milliseconds: one day (an offline query may be long).
MAX_MS = 86_400_000
#: Longest run, in seconds: a year.
MAX_DURATION_S = 366 * 86_400
#: Most frames (or items, queries, samples) one run may count: 10^12 (a year at 30,000 FPS).
MAX_COUNT = 10**12
#: Latest timestamp (s since the epoch): 2100-01-01.
MAX_TS = 4_102_444_800
#: Largest rate (frames, items or queries per second) and any other quantity.
MAX_RATE = 10**9
MAX_QUANTITY = 10**12

# --------------------------------------------------------------------------- schemas
_NUM_MS = {"type": "number", "minimum": 0, "maximum": MAX_MS}
_NUM_OR_NULL = {"type": ["number", "null"], "minimum": -MAX_QUANTITY, "maximum": MAX_QUANTITY}
_COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
_SEQ = {"type": "integer", "minimum": 0, "maximum": MAX_SEQ}
_TS = {"type": "number", "minimum": 0, "maximum": MAX_TS}
_DURATION_S = {"type": "number", "minimum": 0, "maximum": MAX_DURATION_S}
_RATE_OR_NULL = {"type": ["number", "null"], "minimum": 0, "maximum": MAX_RATE}
_MS_OR_NULL = {"type": ["number", "null"], "minimum": 0, "maximum": MAX_MS}
#: What the device's outbox had to drop of a run (see agent/wire/protocol.md, "Outbox bound").
_DROPPED = {
    "type": "object",
    "required": ["messages", "frames", "frame_ranges"],
    "properties": {
        "messages": _COUNT,
        "frames": _COUNT,
        "frame_ranges": {
            "type": "array",
            "items": {"type": "array", "items": _COUNT, "minItems": 2, "maxItems": 2},
        },
    },
}
_ENVELOPE = {
    "schema": {"type": "string"},
    "device_id": {"type": "string", "pattern": DEVICE_ID_RE.pattern},
    "session": _SEQ,
    "seq": _SEQ,
    "ts": _TS,
    "replayed": {"type": "boolean"},
}
_RUN_ID = {"type": "string", "pattern": RUN_ID_RE.pattern}

_STAT_BLOCK = {
    "type": "object",
    "required": list(REQUIRED_STATS),
    "properties": {s: _MS_OR_NULL for s in STATS},
}

#: the moments a result's ``memory`` section gives the resident memory at (MB)
MEMORY_POINTS = (
    "before_load_mb",
    "after_load_mb",
    "after_allocate_mb",
    "after_first_inference_mb",
    "after_run_mb",
    "peak_mb",
)
_NUM_OR_NULL_MB = {"type": ["number", "null"], "minimum": 0}

RESULT_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "schema",
        "device_id",
        "run_id",
        "model",
        "runtime",
        "source",
        "frames",
        "warmup_frames",
        "duration_s",
        "fps",
        "init_ms",
        "first_inference_ms",
        "latency_ms",
    ],
    "properties": {
        "schema": {"const": RESULT_SCHEMA},
        "device_id": _ENVELOPE["device_id"],
        "run_id": _RUN_ID,
        "model": {
            "type": "object",
            "required": ["path", "sha256", "inputs"],
            "properties": {
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "inputs": {"type": "array", "maxItems": 64},
                # a model the registry knows: "trained" or "latency only" (untrained weights)
                "registry": {"type": "object", "required": ["name", "trained", "status"]},
            },
        },
        "runtime": {
            "type": "object",
            "required": ["name", "version", "delegate", "num_threads"],
        },
        "source": {"type": ["object", "string"]},
        "frames": _COUNT,
        "warmup_frames": _COUNT,
        "duration_s": _DURATION_S,
        "fps": _RATE_OR_NULL,
        "init_ms": _NUM_MS,
        "first_inference_ms": _MS_OR_NULL,
        "latency_ms": {
            "type": "object",
            "required": list(STAGES),
            "properties": {s: _STAT_BLOCK for s in STAGES + OPTIONAL_STAGES},
        },
        "predictions": {"type": "array"},
        # what ran where (issue 13): the op table (every operator's backend, the delegate
        # partitions, "N of M operators on X"; GPU compatibility and per-operator times with --ops)
        "ops": {
            "type": ["object", "null"],
            "properties": {
                "total": _COUNT,
                "delegated": _COUNT,
                "ops": {"type": "array", "items": {"type": "object", "required": ["index", "type", "backend"]}},
                "times": {"type": "object", "required": ["method", "sum_ms", "whole_invoke_ms"]},
            },
        },
        # resident memory (MB) after load, allocation, the first inference, and the peak
        "memory": {"type": "object", "properties": {k: _NUM_OR_NULL_MB for k in MEMORY_POINTS}},
        # a local file only: where `edgebench run --json R.json --csv R.csv` wrote the per-frame
        # CSV, relative to the document (what `edgebench compare` judges noise from)
        "samples_csv": {"type": "string", "maxLength": 4096},
        # accuracy mode (--accuracy): fractions of `images`, and whether top-1 fell below the floor
        "accuracy": {
            "type": "object",
            "required": ["top1", "top5", "images", "floor", "below_floor"],
            "properties": {
                "top1": {"type": "number", "minimum": 0, "maximum": 1},
                "top5": {"type": "number", "minimum": 0, "maximum": 1},
                "images": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
                "below_floor": {"type": "boolean"},
            },
        },
    },
}

# --------------------------------------------------------------------------- sweeps and scenarios
# `edgebench sweep` and `edgebench run --scenario` write these documents locally
# (--json) and publish them as the `result` of their run's summary (see agent/wire/protocol.md,
# "Sweeps and scenarios"): plain dicts in the run result's vocabulary.
SWEEP_SCHEMA = "edgebench.sweep/1"
SCENARIO_SCHEMA = "edgebench.scenario/1"
#: ``edgebench tune``'s search run as an agent job (agent/measure/tune.py): its points, winner and verdict.
TUNE_SCHEMA = "edgebench.tune/1"
#: What a summary's ``result`` may be: a per-frame run, a sweep, a scenario result or a tune search.
RESULT_SCHEMAS = (RESULT_SCHEMA, SWEEP_SCHEMA, SCENARIO_SCHEMA, TUNE_SCHEMA)
SCENARIOS = ("single-stream", "multi-stream", "offline", "server")
#: ``scenario`` of a scenario document: one of SCENARIOS, or the max-QPS search.
SCENARIO_KINDS = (*SCENARIOS, "find-max-qps")
VERDICTS = ("VALID", "INVALID")
SWEEP_POINT_STATUSES = ("ok", "unsupported", "failed")
#: Largest sweep grid (points); a larger one is refused before it runs.
MAX_SWEEP_POINTS = 512
#: Largest latency histogram a document may carry (the agent writes 40 bins).
MAX_HISTOGRAM_BINS = 256

_NONNEG = {"type": "number", "minimum": 0, "maximum": MAX_QUANTITY}
_NONNEG_OR_NULL = {"type": ["number", "null"], "minimum": 0, "maximum": MAX_QUANTITY}
_TEXT = {"type": "string"}  # bounded by the payload limit; a reason is never cut short
_TEXTS = {"type": "array", "items": _TEXT}
_LATENCY_STATS = {"type": "object", "required": list(REQUIRED_STATS), "properties": {s: _MS_OR_NULL for s in STATS}}
_PER_ITEM_STATS = {"type": "object", "properties": {s: _MS_OR_NULL for s in ("mean", "p50", "p90", "p99")}}
_HISTOGRAM = {
    "type": "object",
    "required": ["edges_ms", "counts"],
    "properties": {
        "edges_ms": {"type": "array", "items": _NUM_MS, "maxItems": MAX_HISTOGRAM_BINS + 1},
        "counts": {"type": "array", "items": _COUNT, "maxItems": MAX_HISTOGRAM_BINS},
    },
}
_GRID_VALUE = {"type": "integer", "minimum": 1, "maximum": 1_000_000}
_DOC_HEAD = {
    "device_id": {"type": "string", "pattern": DEVICE_ID_RE.pattern},
    "run_id": {"type": "string", "pattern": RUN_ID_RE.pattern},
    "agent_version": {"type": "string", "maxLength": 64},
    "started_at": {"type": "string", "maxLength": 64},
    "model": {
        "type": "object",
        "required": ["path", "name", "sha256"],
        "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
    },
    "runtime": {"type": "object", "required": ["name", "version"]},
    "notes": _TEXTS,
}

SWEEP_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "device_id", "run_id", "model", "runtime", "grid", "points", "counts"],
    "properties": {
        "schema": {"const": SWEEP_SCHEMA},
        **_DOC_HEAD,
        "grid": {
            "type": "object",
            "required": ["batch", "threads", "instances", "instance_mode"],
            "properties": {
                "instance_mode": {"enum": ["threads", "processes"]},
                **{
                    k: {"type": "array", "minItems": 1, "maxItems": MAX_SWEEP_POINTS, "items": _GRID_VALUE}
                    for k in ("batch", "threads", "instances")
                },
            },
        },
        "points": {
            "type": "array",
            "maxItems": MAX_SWEEP_POINTS,
            "items": {
                "type": "object",
                "required": ["batch", "threads", "instances", "instance_mode", "status"],
                "properties": {
                    "batch": _GRID_VALUE,
                    "threads": _GRID_VALUE,
                    "instances": _GRID_VALUE,
                    "instance_mode": {"enum": ["threads", "processes"]},
                    "status": {"enum": list(SWEEP_POINT_STATUSES)},
                    "reason": _TEXT,
                    "verdict": {"enum": list(VERDICTS)},
                    "reasons": _TEXTS,
                    "batches": _COUNT,
                    "items": _COUNT,
                    "duration_s": _NONNEG,
                    "latency_ms": _LATENCY_STATS,
                    "latency_per_item_ms": _PER_ITEM_STATS,
                    "latency_histogram_ms": _HISTOGRAM,
                    "throughput_items_per_s": _NONNEG_OR_NULL,
                    "throughput_batches_per_s": _NONNEG_OR_NULL,
                    "cpu_pct": _NONNEG_OR_NULL,
                    "power": {
                        "type": ["object", "null"],
                        "properties": {k: _NONNEG_OR_NULL for k in ("mean_w", "energy_j", "energy_per_item_mj")},
                    },
                },
                "if": {"properties": {"status": {"const": "ok"}}},
                "then": {
                    "required": [
                        "latency_ms",
                        "latency_per_item_ms",
                        "throughput_items_per_s",
                        "cpu_pct",
                        "power",
                        "verdict",
                        "reasons",
                    ]
                },
                "else": {"required": ["reason"]},
            },
        },
        "counts": {
            "type": "object",
            "required": list(SWEEP_POINT_STATUSES),
            "properties": {s: _COUNT for s in SWEEP_POINT_STATUSES},
        },
        "best": {"type": "object"},
    },
}

SCENARIO_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "device_id", "run_id", "model", "runtime", "scenario", "verdict", "reasons", "headline"],
    "properties": {
        "schema": {"const": SCENARIO_SCHEMA},
        **_DOC_HEAD,
        "scenario": {"enum": list(SCENARIO_KINDS)},
        "verdict": {"enum": list(VERDICTS)},
        "reasons": _TEXTS,
        "headline": {
            "type": "object",
            "required": ["metric", "value", "unit"],
            "properties": {
                "metric": {"type": "string", "maxLength": 64},
                "value": {"type": ["number", "boolean", "null"], "minimum": -MAX_QUANTITY, "maximum": MAX_QUANTITY},
                "unit": {"type": "string", "maxLength": 32},
                "p99_latency_ms": _NONNEG_OR_NULL,
            },
        },
        "batch": _GRID_VALUE,
        "queries": _COUNT,
        "samples": _COUNT,
        "duration_s": _NONNEG,
        "qps": _NONNEG_OR_NULL,
        "samples_per_s": _NONNEG_OR_NULL,
        "target_qps": _NONNEG_OR_NULL,
        "completed_qps": _NONNEG_OR_NULL,
        "latency_bound_ms": _NONNEG_OR_NULL,
        "within_bound": {"type": "boolean"},
        "max_qps": _NONNEG_OR_NULL,
        "latency_ms": _LATENCY_STATS,
        "queue_ms": _LATENCY_STATS,
        "service_ms": _LATENCY_STATS,
        "waiting_ms": _LATENCY_STATS,
        "queries_waiting": _COUNT,
        "queries_not_due": _COUNT,
        "latency_histogram_ms": _HISTOGRAM,
        "steps": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["target_qps", "verdict", "passed"],
                "properties": {
                    "target_qps": _NONNEG,
                    "verdict": {"enum": list(VERDICTS)},
                    "passed": {"type": "boolean"},
                    "p99_latency_ms": _NONNEG_OR_NULL,
                    "completed_qps": _NONNEG_OR_NULL,
                },
            },
        },
        "power": {"type": "object"},
        "warnings": _TEXTS,
    },
}

_TUNE_POINT = {
    "type": "object",
    "required": ["config", "status"],
    "properties": {
        "config": {"type": "object"},
        "status": {"enum": list(SWEEP_POINT_STATUSES)},
        "reason": {"type": ["string", "null"]},
        "throughput_items_per_s": _NONNEG_OR_NULL,
        "batch_p50_ms": _NONNEG_OR_NULL,
        "batch_p99_ms": _NONNEG_OR_NULL,
        "batches": _COUNT,
        "energy_per_item_mj": _NONNEG_OR_NULL,
        "meets_bound": {"type": "boolean"},
    },
}
_TUNE_POINT_OR_NULL = {"oneOf": [{"type": "null"}, _TUNE_POINT]}

TUNE_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "device_id", "run_id", "model", "runtime", "bound_ms", "objective", "points", "verdict"],
    "properties": {
        "schema": {"const": TUNE_SCHEMA},
        **_DOC_HEAD,
        "bound_ms": {"type": "number", "exclusiveMinimum": 0},
        "objective": {"enum": ["throughput", "latency", "energy"]},
        "budget_s": _NONNEG,
        "space": _TEXTS,
        "point_s": _NONNEG,
        "default": _TUNE_POINT_OR_NULL,
        "points": {"type": "array", "maxItems": MAX_SWEEP_POINTS, "items": _TUNE_POINT},
        "pruned": {
            "type": "array",
            "maxItems": MAX_SWEEP_POINTS,
            "items": {"type": "object", "required": ["config", "reason"]},
        },
        "best": _TUNE_POINT_OR_NULL,
        "runner_up": _TUNE_POINT_OR_NULL,
        "verdict": {"type": "object", "required": ["verdict"], "properties": {"verdict": _TEXT}},
        "run_section": {"type": ["object", "null"]},
    },
}

#: A summary's ``result``: which of the four documents is told by its ``schema``;
#: each is then checked against its own schema (errors name the document's own fields).
SUMMARY_RESULT_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema"],
    "properties": {"schema": {"enum": list(RESULT_SCHEMAS)}},
    "allOf": [
        {"if": {"properties": {"schema": {"const": name}}}, "then": schema}
        for name, schema in (
            (RESULT_SCHEMA, RESULT_JSON_SCHEMA),
            (SWEEP_SCHEMA, SWEEP_JSON_SCHEMA),
            (SCENARIO_SCHEMA, SCENARIO_JSON_SCHEMA),
            (TUNE_SCHEMA, TUNE_JSON_SCHEMA),
        )
    ],
}


SCHEMAS: dict[str, dict[str, Any]] = {
    STATUS_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "session", "state"],
        "properties": {
            **_ENVELOPE,
            "state": {"enum": list(STATUS_STATES)},
            "agent_version": {"type": "string", "maxLength": 64},
        },
    },
    INFO_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "session", "agent_version"],
        "properties": {
            **_ENVELOPE,
            "agent_version": {"type": "string", "maxLength": 64},
            "inventory": {"type": "object"},
            "capabilities": {"type": "array", "items": {"type": "string"}, "maxItems": 256},
            "protocol": {"type": "string", "maxLength": 64},
            "schemas": {"type": "array", "items": {"type": "string"}, "maxItems": 256},
        },
    },
    TELEMETRY_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "session", "seq", "ts"],
        "properties": {
            **_ENVELOPE,
            "cpu_pct": _NUM_OR_NULL,
            "mem_used_pct": _NUM_OR_NULL,
            "mem_available_mb": _NUM_OR_NULL,
            "load_1m": _NUM_OR_NULL,
            "load_5m": _NUM_OR_NULL,
            "load_15m": _NUM_OR_NULL,
            "uptime_s": _NUM_OR_NULL,
            "temps_c": {
                "type": "object",
                "maxProperties": 256,
                "additionalProperties": {"type": ["number", "null"], "minimum": -273.15, "maximum": 10_000},
            },
            "gpu_load_pct": _NUM_OR_NULL,
            "gpu_freq_mhz": _NUM_OR_NULL,
            "emc_load_pct": _NUM_OR_NULL,
            "emc_freq_mhz": _NUM_OR_NULL,
            "gpu_source": {"type": "string", "maxLength": 64},
            "probes": {"type": "object"},
            "outbox": {
                "type": "object",
                "properties": {
                    "queued_messages": _COUNT,
                    "queued_bytes": _COUNT,
                    "max_bytes": _COUNT,
                    "dropped_messages": _COUNT,
                    "dropped_frames": _COUNT,
                    "dropped_by_kind": {"type": "object", "additionalProperties": _COUNT},
                },
            },
            "link": {"type": "object"},
        },
    },
    RUN_META_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "session", "seq", "run_id", "model", "runtime", "source"],
        "properties": {
            **_ENVELOPE,
            "run_id": _RUN_ID,
            "model": {"type": "object"},
            "runtime": {"type": "object"},
            "source": {"type": ["object", "string"]},
            # what the run's summary will carry (absent: a per-frame run, edgebench.result/1)
            "result_schema": {"enum": list(RESULT_SCHEMAS)},
            "scenario": {"enum": list(SCENARIO_KINDS)},
            "config": {"type": "object"},
        },
    },
    FRAMES_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "session", "seq", "run_id", "first_frame", "n", "latency_ms"],
        "properties": {
            **_ENVELOPE,
            "run_id": _RUN_ID,
            "first_frame": _COUNT,
            "n": {"type": "integer", "minimum": 1, "maximum": MAX_FRAMES_PER_BATCH},
            "replayed": {"type": "boolean"},
            "latency_ms": {
                "type": "object",
                "required": list(STAGES),
                "additionalProperties": False,
                "properties": {
                    s: {"type": "array", "items": _NUM_MS, "maxItems": MAX_FRAMES_PER_BATCH}
                    for s in STAGES + OPTIONAL_STAGES
                },
            },
        },
    },
    SUMMARY_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "session", "seq", "run_id", "result"],
        "properties": {
            **_ENVELOPE,
            "run_id": _RUN_ID,
            "result": SUMMARY_RESULT_JSON_SCHEMA,
            "dropped": _DROPPED,
        },
    },
    CMD_ACK_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "session", "seq", "ts", "cmd_id", "state"],
        "properties": {
            **_ENVELOPE,
            "cmd_id": {"type": ["string", "null"], "maxLength": 80},
            "command": {"type": "string", "maxLength": 64},
            "state": {"enum": list(CMD_ACK_STATES)},
            "reason": {"type": "string", "maxLength": 1000},
            "run_id": _RUN_ID,
            "queued": _COUNT,
            "frames": _COUNT,
            "fps": _RATE_OR_NULL,
            # `done` of a scenario job: its verdict and headline
            "scenario": {"enum": list(SCENARIO_KINDS)},
            "verdict": {"enum": list(VERDICTS)},
            "headline": {"type": "object"},
        },
    },
    ACK_SCHEMA: {
        "type": "object",
        "required": ["schema", "device_id", "ts", "collector", "seqs"],
        "additionalProperties": False,
        "properties": {
            "schema": {"const": ACK_SCHEMA},
            "device_id": _ENVELOPE["device_id"],
            "ts": _ENVELOPE["ts"],
            # the confirming collector's MQTT client id (several collectors: each confirms its own)
            "collector": {"type": "string", "maxLength": 256},
            # inclusive [first, last] ranges of the device's seq now stored (or quarantined)
            "seqs": {
                "type": "array",
                "maxItems": MAX_ACK_RANGES,
                "items": {"type": "array", "items": _COUNT, "minItems": 2, "maxItems": 2},
            },
        },
    },
    CMD_RUN_SCHEMA: {
        "type": "object",
        "required": ["schema", "cmd_id", "issued_at", "job"],
        "properties": {
            "schema": {"const": CMD_RUN_SCHEMA},
            "cmd_id": {"type": "string", "pattern": CMD_ID_RE.pattern},
            "issued_at": _TS,
            "ttl_s": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_S},
            "issued_by": {"type": "string", "maxLength": 128},
            "job": {"type": "object"},
        },
    },
}

#: Which schema each topic kind must carry.
KIND_SCHEMA = {
    "status": STATUS_SCHEMA,
    "info": INFO_SCHEMA,
    "telemetry": TELEMETRY_SCHEMA,
    "meta": RUN_META_SCHEMA,
    "frames": FRAMES_SCHEMA,
    "summary": SUMMARY_SCHEMA,
    "cmd_ack": CMD_ACK_SCHEMA,
}

#: Which topic kinds go through the device's outbox (numbered by ``seq``, replayable).
#: ``status`` is connection state instead: retained, superseded by ``session``, never replayed.
OUTBOX_KINDS = ("info", "telemetry", "meta", "frames", "summary", "cmd_ack")
#: Retained topic kinds (the broker keeps the last one for new subscribers).
RETAINED_KINDS = ("status", "info", "meta")


def semantic_errors(kind: str, topic_info: dict[str, str], msg: dict[str, Any]) -> list[str]:
    """Checks JSON Schema cannot express: topic/payload agreement, column lengths, and the
    inner consistency of a summary's sweep or scenario document."""
    errors = []
    if msg.get("device_id") != topic_info["device_id"]:
        errors.append(
            f"payload device_id {msg.get('device_id')!r} does not match topic device {topic_info['device_id']!r}"
        )
    if "run_id" in topic_info and msg.get("run_id") != topic_info["run_id"]:
        errors.append(f"payload run_id {msg.get('run_id')!r} does not match topic run {topic_info['run_id']!r}")
    if kind == "frames":
        n = msg["n"]
        for stage, values in msg["latency_ms"].items():
            if len(values) != n:
                errors.append(f"latency_ms.{stage} has {len(values)} values, n is {n}")
    if kind == "summary":
        res = msg["result"]
        if res.get("device_id") != msg.get("device_id") or res.get("run_id") != msg.get("run_id"):
            errors.append("summary result device_id/run_id disagree with the envelope")
        errors += document_errors(res)
    return errors


def _histogram_errors(h: Any, where: str) -> list[str]:
    if not isinstance(h, dict):
        return []
    e, c = h.get("edges_ms") or [], h.get("counts") or []
    if (e or c) and len(e) != len(c) + 1:
        return [f"{where}: {len(e)} edges for {len(c)} counts (need one more edge than counts)"]
    if any(b < a for a, b in zip(e, e[1:])):
        return [f"{where}: edges_ms are not in rising order"]
    return []


def _sweep_point_errors(p: dict[str, Any], g: dict[str, Any], where: str) -> list[str]:
    errors = []
    for k in ("batch", "threads", "instances"):
        if p[k] not in g[k]:
            errors.append(f"{where}: {k} {p[k]} is not in the grid's {k} {g[k]}")
    if p["instance_mode"] != g["instance_mode"]:
        errors.append(f"{where}: instance_mode {p['instance_mode']!r} but the grid's is {g['instance_mode']!r}")
    if p["status"] == "ok":
        items, batches = p.get("items"), p.get("batches")
        if items is not None and batches is not None and items != batches * p["batch"]:
            errors.append(f"{where}: items {items} is not batches {batches} x batch {p['batch']}")
        if (p["verdict"] == "VALID") == bool(p["reasons"]):
            errors.append(f"{where}: verdict {p['verdict']} with {len(p['reasons'])} reason(s)")
    return errors + _histogram_errors(p.get("latency_histogram_ms"), f"{where}.latency_histogram_ms")


def _sweep_errors(doc: dict[str, Any]) -> list[str]:
    """Every grid point reported exactly once, within the grid, counts that add up."""
    g = doc["grid"]
    errors: list[str] = []
    keys = set()
    for i, p in enumerate(doc["points"]):
        key = (p["batch"], p["threads"], p["instances"])
        if key in keys:
            errors.append(f"points[{i}]: batch {key[0]}, threads {key[1]}, instances {key[2]} reported twice")
        keys.add(key)
        errors += _sweep_point_errors(p, g, f"points[{i}]")
    want = len(g["batch"]) * len(g["threads"]) * len(g["instances"])
    if len(doc["points"]) != want:
        errors.append(
            f"the grid has {want} points but the document reports {len(doc['points'])}: every point must be reported"
        )
    for status in SWEEP_POINT_STATUSES:
        n = sum(p["status"] == status for p in doc["points"])
        if doc["counts"][status] != n:
            errors.append(f"counts.{status} is {doc['counts'][status]} but {n} point(s) have status {status}")
    return errors


def _scenario_errors(doc: dict[str, Any]) -> list[str]:
    """A verdict that agrees with its reasons, a headline of the scenario's kind."""
    errors = []
    if (doc["verdict"] == "VALID") == bool(doc["reasons"]):
        errors.append(f"verdict {doc['verdict']} with {len(doc['reasons'])} reason(s)")
    value = doc["headline"]["value"]
    if doc["scenario"] == "find-max-qps":
        if "steps" not in doc:
            errors.append("a find-max-qps result has no steps")
        if doc.get("max_qps") != value:
            errors.append(f"max_qps {doc.get('max_qps')} differs from the headline value {value}")
    elif doc["scenario"] == "server":
        if not isinstance(value, bool):
            errors.append("a server headline value says whether p99 is within the bound: true or false")
    elif isinstance(value, bool):
        errors.append(f"a {doc['scenario']} headline value is a number, not {value}")
    return errors + _histogram_errors(doc.get("latency_histogram_ms"), "latency_histogram_ms")


def document_errors(doc: dict[str, Any]) -> list[str]:
    """What a sweep or scenario document must satisfy beyond its JSON Schema (it already
    passed it): every grid point reported exactly once, counts that add up, a verdict that
    agrees with its reasons, histograms with one more edge than counts."""
    schema = doc.get("schema")
    if schema == SWEEP_SCHEMA:
        return _sweep_errors(doc)
    if schema == SCENARIO_SCHEMA:
        return _scenario_errors(doc)
    return []


def frames_message(
    device_id: str,
    session: int,
    seq: int,
    run_id: str,
    first_frame: int,
    columns: dict[str, list[float]],
    ts: float,
    replayed: bool | None = None,
) -> dict[str, Any]:
    """One column-wise batch of per-frame latencies (milliseconds).

    ``replayed`` is normally left out here and set when the message leaves the
    outbox (``with_replayed``)."""
    n = len(columns["e2e"])
    latency = {s: columns[s] for s in STAGES}
    latency.update({s: columns[s] for s in OPTIONAL_STAGES if s in columns})
    msg = {
        "schema": FRAMES_SCHEMA,
        "device_id": device_id,
        "session": session,
        "seq": seq,
        "ts": ts,
        "run_id": run_id,
        "first_frame": first_frame,
        "n": n,
        "latency_ms": latency,
    }
    if replayed is not None:
        msg["replayed"] = replayed
    return msg


def status_message(device_id: str, session: int, state: str, ts: float | None, **extra: Any) -> dict[str, Any]:
    """``status``: connection state. No ``seq``: it is retained, superseded by ``session``
    and never replayed (the ``offline`` one is the will, fixed before CONNECT)."""
    if state not in STATUS_STATES:
        raise ValueError(f"unknown status state {state!r}")
    msg: dict[str, Any] = {"schema": STATUS_SCHEMA, "device_id": device_id, "session": session, "state": state}
    if ts is not None:
        msg["ts"] = ts
    msg.update(extra)
    return msg


def with_replayed(payload: bytes, replayed: bool) -> bytes:
    """Append the ``replayed`` flag to a compact JSON object as it leaves the outbox.

    The outbox stores each message once, without the flag; whether a message is
    live or replayed is only known when it is sent."""
    if not payload.endswith(b"}"):
        raise ValueError("payload is not a compact JSON object")
    sep = b"," if len(payload) > 2 else b""
    return payload[:-1] + sep + (b'"replayed":true}' if replayed else b'"replayed":false}')


def seq_ranges(seqs: Any) -> list[list[int]]:
    """Sorted seqs as inclusive [first, last] ranges."""
    out: list[list[int]] = []
    for q in sorted(set(seqs)):
        if out and q == out[-1][1] + 1:
            out[-1][1] = q
        else:
            out.append([q, q])
    return out


def ack_messages(device_id: str, collector: str, seqs: Any, ts: float) -> list[dict[str, Any]]:
    """The confirmations of ``seqs`` for one device (several if the ranges are many)."""
    ranges = seq_ranges(seqs)
    return [
        {
            "schema": ACK_SCHEMA,
            "device_id": device_id,
            "ts": ts,
            "collector": collector,
            "seqs": ranges[i : i + MAX_ACK_RANGES],
        }
        for i in range(0, len(ranges), MAX_ACK_RANGES)
    ]


def ack_errors(device_id: str, body: Any) -> list[str]:
    """What is wrong with a confirmation a device received (the agent has no JSON Schema
    validator: the schema above, checked by hand; kept in step by a test)."""
    if not isinstance(body, dict):
        return ["not a JSON object"]
    errors = []
    if body.get("schema") != ACK_SCHEMA:
        errors.append(f"schema {str(body.get('schema'))[:80]!r} is not {ACK_SCHEMA!r}")
    if body.get("device_id") != device_id:
        errors.append(f"device_id {str(body.get('device_id'))[:80]!r} is not this device's")
    if not isinstance(body.get("collector"), str) or len(body["collector"]) > 256:
        errors.append("collector is not a string of at most 256 characters")
    ts = body.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts < 0:
        errors.append("ts is not a non-negative number")
    seqs = body.get("seqs")
    if not isinstance(seqs, list) or len(seqs) > MAX_ACK_RANGES:
        errors.append(f"seqs is not a list of at most {MAX_ACK_RANGES} ranges")
    elif not all(isinstance(r, list) and len(r) == 2 and all(type(v) is int and v >= 0 for v in r) for r in seqs):
        errors.append("seqs holds something that is not a [first, last] pair of non-negative integers")
    extra = set(body) - {"schema", "device_id", "ts", "collector", "seqs"}
    if extra:
        errors.append(f"unknown field(s) {', '.join(sorted(extra))[:120]}")
    return errors
