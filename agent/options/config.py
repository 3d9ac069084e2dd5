"""The agent's YAML configuration, validated key by key.

    device_id: pi-kitchen
    run:                      # what `edgebench run` does; its flags override these
      model: /opt/edgebench/models/shapes_int8.tflite
      source: synthetic
      frames: 300
    mqtt:
      url: mqtts://broker.example:8883
      username: pi-kitchen
      password_file: /etc/edgebench/mqtt-password
    outbox:                   # results wait here until the broker acknowledges them
      max_mb: 256
    jobs:                     # what `edgebench agent` runs (same keys as `run`)
      - name: hourly
        model: ...
        every_s: 3600

Every unknown key or bad value is a one-line UserError naming the key
(``config agent.yaml: run.frames: expected a whole number >= 1, got 'ten'``).
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Callable

from edgebench.agent.errors import UserError

Check = Callable[[Any], Any]


class _Bad(Exception):
    pass


def _int(lo: int | None = None, hi: int | None = None) -> Check:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"expected a whole number{f' >= {lo}' if lo is not None else ''}, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise _Bad(f"expected a whole number {rng}, got {v!r}")
        return v

    return check


def _num(lo: float | None = None, positive: bool = False) -> Check:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Bad(f"expected a number, got {v!r}")
        if positive and v <= 0:
            raise _Bad(f"expected a number > 0, got {v!r}")
        if lo is not None and v < lo:
            raise _Bad(f"expected a number >= {lo}, got {v!r}")
        return float(v)

    return check


def _fraction(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise _Bad(f"expected a fraction between 0 and 1 (0.9 for 90%), got {v!r}")
    return float(v)


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad(f"expected a non-empty string, got {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"expected true or false, got {v!r}")
    return v


def _choice(*options: str) -> Check:
    def check(v: Any) -> str:
        if v not in options:
            raise _Bad(f"expected one of {', '.join(options)}, got {v!r}")
        return v

    return check


def _str_map(v: Any) -> dict[str, str]:
    if not isinstance(v, dict):
        raise _Bad(f"expected a mapping of key: value, got {v!r}")
    return {str(k): str(val) for k, val in v.items()}


def _floats3(v: Any) -> list[float]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return [float(v)] * 3
    if (
        isinstance(v, list)
        and len(v) in (1, 3)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    ):
        return [float(x) for x in v] * (3 if len(v) == 1 else 1)
    raise _Bad(f"expected a number or a list of 1 or 3 numbers, got {v!r}")


def _normalization(v: Any) -> dict[str, list[float]]:
    if not isinstance(v, dict) or set(v) != {"mean", "std"}:
        raise _Bad(f"expected a mapping with mean and std, got {v!r}")
    out = {"mean": _floats3(v["mean"]), "std": _floats3(v["std"])}
    if any(s == 0 for s in out["std"]):
        raise _Bad("std must not be zero")
    return out


#: Keys of a benchmark job (the `run` section, and each entry of `jobs`).
RUN_KEYS: dict[str, Check] = {
    "model": _str,
    "source": _str,
    "frames": _int(1),
    "duration_s": _num(positive=True),
    "warmup": _int(0),
    "warmup_s": _num(lo=0),
    "threads": _int(1),
    "runtime": _choice("auto", "ai-edge-litert", "tflite-runtime", "tensorflow"),
    "labels": _str,
    "top_k": _int(1, 100),
    "resize": _choice("stretch", "crop", "letterbox"),
    "color": _choice("RGB", "BGR"),
    "normalization": _normalization,
    "delegate": _str,
    "delegate_options": _str_map,
    "cpu_fallback": _bool,
    "xnnpack": _bool,
    "pacing": _choice("fast", "realtime"),
    "fps": _num(positive=True),
    "pipelined": _bool,
    "stall_timeout_s": _num(positive=True),
    "reconnects": _int(0, 100),
    "min_frames": _int(0),
    "min_duration_s": _num(lo=0),
    "accuracy": _str,
    "accuracy_floor": _fraction,
    "scenario": _choice("single-stream", "multi-stream", "offline", "server"),
    "target_qps": _num(positive=True),
    "latency_bound_ms": _num(positive=True),
    "samples_per_query": _int(1),
    "min_queries": _int(0),
    "max_duration_s": _num(positive=True),
    "batch": _int(1),
    "find_max_qps": _bool,
    "max_qps_steps": _int(1, 100),
    "seed": _int(0),
}

JOB_KEYS: dict[str, Check] = {
    **RUN_KEYS,
    "name": _str,
    "every_s": _num(positive=True),
}

SECTIONS: dict[str, dict[str, Check]] = {
    "run": RUN_KEYS,
    "mqtt": {
        "url": _str,
        "username": _str,
        "password_file": _str,
        "password_env": _str,
        "ca": _str,
        "cert": _str,
        "key": _str,
        "protocol": _choice("auto", "5", "3.1.1"),
        "client_id": _str,
        "keepalive_s": _int(5, 3600),
        "reconnect_min_s": _num(positive=True),
        "reconnect_max_s": _num(positive=True),
    },
    "outbox": {
        "path": _str,
        "max_mb": _num(positive=True),
        "synchronous": _choice("full", "normal"),
        "drain_wait_s": _num(lo=0),
    },
    "telemetry": {
        "interval_s": _num(positive=True),
    },
    "commands": {
        "enabled": _bool,
        "models_dir": _str,
    },
    "probes": {  # see agent/probes/session.py ProbeOptions; `run` flags override these
        "enabled": _bool,
        "sample_hz": _num(positive=True),
        "power": _str,
        "idle_baseline_s": _num(lo=0),
        "cool_below_c": _num(),
        "cool_timeout_s": _num(positive=True),
        "soak": _bool,
        "soak_max_s": _num(positive=True),
        "soak_window_s": _num(positive=True),
        "soak_steady_c": _num(positive=True),
    },
}

TOP_KEYS = {"device_id", "jobs", *SECTIONS}


def _unknown(key: str, known: set[str] | dict, where: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {where}{close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown key {where}{key}{hint}"


def _section(data: Any, spec: dict[str, Check], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Bad(f"{where.rstrip('.')}: expected a mapping, got {data!r}")
    out = {}
    for k, v in data.items():
        if k not in spec:
            raise _Bad(_unknown(str(k), spec, where))
        try:
            out[k] = spec[k](v)
        except _Bad as e:
            raise _Bad(f"{where}{k}: {e}") from None
    return out


def validate(data: Any) -> dict[str, Any]:
    """Validate a parsed config; raise _Bad with 'key: problem'."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _Bad("the file must hold a mapping of sections (run, mqtt, jobs, ...)")
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k not in TOP_KEYS:
            raise _Bad(_unknown(str(k), TOP_KEYS, ""))
        if k == "device_id":
            from edgebench.agent.wire.protocol import check_device_id

            try:
                out[k] = check_device_id(v)
            except ValueError as e:
                raise _Bad(f"device_id: {e}") from None
        elif k == "jobs":
            if not isinstance(v, list):
                raise _Bad(f"jobs: expected a list of jobs, got {v!r}")
            out[k] = [_section(job, JOB_KEYS, f"jobs[{i}].") for i, job in enumerate(v)]
        else:
            out[k] = _section(v, SECTIONS[k], f"{k}.")
    return out


def validate_job(data: Any, where: str = "job.") -> dict[str, Any]:
    """Validate one job (a `jobs` entry, or a remote command's job); UserError on a bad key."""
    try:
        return _section(data, JOB_KEYS, where)
    except _Bad as e:
        raise UserError(str(e)) from None


def load(path: str) -> dict[str, Any]:
    """Read and validate a YAML config file; every problem is one UserError line."""
    import yaml

    if not os.path.exists(path):
        raise UserError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"config {path}: not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read config {path}: {e}") from None
    try:
        return validate(data)
    except _Bad as e:
        raise UserError(f"config {path}: {e}") from None
