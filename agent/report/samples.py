"""Every measured frame of a run as CSV (``edgebench run --csv OUT``), and reading it back.

One row per frame and stage (long, "tidy" form: what pandas, R and spreadsheets pivot)::

    frame,stage,latency_ms,frame_start_s,frame_end_s,frame_end_utc
    0,capture,0.051234,0.000000000,0.000913311,2026-08-21T10:15:02.123456Z
    0,preprocess,0.402118,0.000000000,0.000913311,2026-08-21T10:15:02.123456Z
    ...

* ``frame``: the measured frame's index (warmup frames are not measured, not written);
* ``stage``: capture, preprocess, queue (only where frames wait), inference, postprocess,
  e2e: the result's ``latency_scope`` says what each covers;
* ``latency_ms``: the stage's time, milliseconds, to the nanosecond the clock gave;
* ``frame_start_s`` / ``frame_end_s``: when the frame began (its origin: capture start, or
  a live frame's arrival) and when its postprocess ended, seconds from the start of the
  measured window, on the monotonic clock the stages were timed with (so
  ``frame_end_s - frame_start_s`` is the frame's e2e);
* ``frame_end_utc``: the same end on the wall clock (the two clocks are tied once, when the
  file is written; a wall-clock step during the run is not followed).

The stage times are the samples the summary's percentiles were computed from, so
``edgebench compare`` judges noise from them by the shared block bootstrap
(edgebench.agent.wire.compare). Only numpy and the standard library: a plain run never
loads a plotting stack.
"""

from __future__ import annotations

import csv
import os
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from edgebench.agent.errors import UserError

COLUMNS = ("frame", "stage", "latency_ms", "frame_start_s", "frame_end_s", "frame_end_utc")


def _utc(ns: int) -> str:
    t = datetime.fromtimestamp(ns // 1000 / 1e6, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_samples_csv(path: str, kept: dict[str, np.ndarray], start_ns: int, stages: tuple[str, ...]) -> int:
    """Write ``kept`` (edgebench.agent.measure.loop Measurement.kept: int64 ns per stage and
    ``end``) as rows per frame and stage; returns the frames written."""
    wall_minus_mono = time.time_ns() - time.perf_counter_ns()
    end = kept["end"]
    start_s = [f"{(e - d - start_ns) / 1e9:.9f}" for e, d in zip(end.tolist(), kept["e2e"].tolist())]
    end_s = [f"{(e - start_ns) / 1e9:.9f}" for e in end.tolist()]
    end_utc = [_utc(e + wall_minus_mono) for e in end.tolist()]
    cols = {s: [f"{v / 1e6:.6f}" for v in kept[s].tolist()] for s in stages}
    d = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(d, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            for i in range(end.size):
                w.writerows((i, s, cols[s][i], start_s[i], end_s[i], end_utc[i]) for s in stages)
    except OSError as e:
        raise UserError(f"cannot write the CSV {path}: {e.strerror or e}") from None
    return int(end.size)


def read_samples_csv(path: str) -> dict[str, Any]:
    """``{"stages": {stage: latency ms in frame order}, "frame_end_s": ..., "frames": n}`` from
    a file written by :func:`write_samples_csv`; UserError naming the file when it is not one."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            head = next(rows, None)
            if head is None or tuple(head) != COLUMNS:
                raise UserError(
                    f"{path} is not a per-frame CSV of `edgebench run --csv` (its header should be {','.join(COLUMNS)})"
                )
            return _columns(path, rows)
    except OSError as e:
        raise UserError(f"cannot read the per-frame CSV {path}: {e.strerror or e}") from None


def _columns(path: str, rows) -> dict[str, Any]:
    by_stage: dict[str, list[float]] = {}
    ends: dict[int, float] = {}
    try:
        for row in rows:
            frame, stage, ms, _start, end = int(row[0]), row[1], float(row[2]), row[3], float(row[4])
            by_stage.setdefault(stage, []).append(ms)
            ends[frame] = end
    except (ValueError, IndexError):
        raise UserError(f"{path}: line {rows.line_num} is not frame,stage,latency_ms,... as written by --csv") from None
    sizes = {s: len(v) for s, v in by_stage.items()}
    if len(set(sizes.values())) > 1:
        raise UserError(f"{path}: the stages have different numbers of frames ({sizes}): the file is cut short?")
    return {
        "stages": {s: np.asarray(v, dtype=np.float64) for s, v in by_stage.items()},
        "frame_end_s": np.asarray([ends[k] for k in sorted(ends)], dtype=np.float64),
        "frames": len(ends),
    }


def from_kept(kept: dict[str, np.ndarray], start_ns: int, stages: tuple[str, ...]) -> dict[str, Any]:
    """A run's kept samples in the shape :func:`read_samples_csv` returns (for the pictures
    of the run just measured)."""
    return {
        "stages": {s: kept[s] / 1e6 for s in stages},
        "frame_end_s": (kept["end"] - start_ns) / 1e9,
        "frames": int(kept["end"].size),
    }
