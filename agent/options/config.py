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
    sweep:                    # what `edgebench sweep` does; its flags override these
      batch: 1..16
      threads: [1, 2, 4]
    jobs:                     # what `edgebench agent` runs (same keys as `run`)
      - name: hourly
        model: ...
        every_s: 3600

The sections and their keys are the table's (agent/options/table.py): each key's kind
checks its value. Every unknown key and every bad value is reported, all of them at once,
one line each naming the key, in one UserError
(``config agent.yaml: run.frames: expected a whole number >= 1, got 'ten'``); the command
line prints each line as ``edgebench: error: ...`` and exits 2. An unknown key says which
known key it is probably meant to be (``did you mean run.frames?``).
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.options.kinds import Bad
from edgebench.agent.options.table import SECTIONS, TOP, Option, get, options

#: each section's keys (the table's options of that section)
SECTION_KEYS: dict[str, dict[str, Option]] = {s: {o.key: o for o in options(s)} for s in SECTIONS}
#: keys of a benchmark job (each entry of `jobs`, and a remote command's job): `run`'s, plus its own,
#: plus the `tune` section's own search keys (a job with ``tune: true`` runs edgebench tune's search)
JOB_KEYS: dict[str, Option] = {
    **SECTION_KEYS["run"],
    **{k: o for k, o in SECTION_KEYS["tune"].items() if k not in SECTION_KEYS["run"]},
    **{o.key: o for o in options("job")},
}
TOP_KEYS = {"device_id", "jobs", *SECTIONS}


def _unknown(key: str, known: set[str] | dict, where: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {where}{close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown key {where}{key}{hint}"


def _section(data: Any, spec: dict[str, Option], where: str, problems: list[str]) -> dict[str, Any]:
    """The keys of one section that pass; every problem appended to ``problems``."""
    if not isinstance(data, dict):
        problems.append(f"{where.rstrip('.')}: expected a mapping, got {data!r}")
        return {}
    out = {}
    for k, v in data.items():
        if k not in spec:
            problems.append(_unknown(str(k), spec, where))
            continue
        try:
            out[k] = spec[k].kind.from_config(v)
        except Bad as e:
            problems.append(f"{where}{k}: {e}")
    return out


def _jobs(v: Any, problems: list[str]) -> list[dict[str, Any]]:
    if not isinstance(v, list):
        problems.append(f"jobs: expected a list of jobs, got {v!r}")
        return []
    return [_section(job, JOB_KEYS, f"jobs[{i}].", problems) for i, job in enumerate(v)]


def check(data: Any) -> tuple[dict[str, Any], list[str]]:
    """Check a parsed config: (the values that passed, every problem as 'key: problem')."""
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, ["the file must hold a mapping of sections (run, mqtt, jobs, ...)"]
    out: dict[str, Any] = {}
    problems: list[str] = []
    for k, v in data.items():
        if k not in TOP_KEYS:
            problems.append(_unknown(str(k), TOP_KEYS, ""))
        elif k == "device_id":
            try:
                out[k] = get(TOP, k).kind.from_config(v)
            except Bad as e:
                problems.append(f"device_id: {e}")
        elif k == "jobs":
            out[k] = _jobs(v, problems)
        else:
            out[k] = _section(v, SECTION_KEYS[k], f"{k}.", problems)
    return out, problems


def validate(data: Any) -> dict[str, Any]:
    """A parsed config, checked; UserError with every problem, a line each."""
    out, problems = check(data)
    if problems:
        raise UserError("\n".join(problems))
    return out


def validate_job(data: Any, where: str = "job.") -> dict[str, Any]:
    """Validate one job (a `jobs` entry, or a remote command's job); UserError with every bad key."""
    problems: list[str] = []
    out = _section(data, JOB_KEYS, where, problems)
    if problems:
        raise UserError("\n".join(problems))
    return out


def load(path: str) -> dict[str, Any]:
    """Read and validate a YAML config file; UserError with every problem, a line each."""
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
    out, problems = check(data)
    if problems:
        raise UserError("\n".join(f"config {path}: {p}" for p in problems))
    return out
