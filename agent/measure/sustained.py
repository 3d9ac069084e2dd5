"""``edgebench run --scenario sustained``: what a board sustains, interval by interval.

A sustained run is the per-frame run (every frame timed, the probes sampling the board on
the same monotonic clock) held for ``--duration`` (600 s unless given), then cut into
intervals of ``--interval`` seconds (30 by default). :func:`analyze` turns the frames and the
probes' timeline (edgebench.agent.probes.timeline) into the ``sustained`` section of the
result:

* per interval: frames, FPS, p50 and p99 of e2e, the hottest zone's highest temperature,
  the mean CPU clock, and whether the board said it was throttled;
* ``time_to_first_throttle_s``: the first reading the board reported as throttled (the
  Raspberry Pi firmware's bits; None with the reason when it never did or cannot say);
* the steady state: once the last three intervals agree within noise (each with the next,
  and the first with the last) (FPS and p50 of e2e, and p99 where each
  interval has the frames to judge it, by the project's block bootstrap,
  edgebench.agent.wire.compare ``judge``). The steady FPS and p99 come from the frames of
  the last three intervals pooled. ``steady_since_s`` is where the stretch of intervals that each agree with the next, ending
  at the last one, begins. None
  with the reason when the last three intervals still differ;
* ``minute1_vs_steady``: the FPS of the first minute divided by the steady FPS (above 1: the
  board was faster cold).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgebench.agent.wire.compare import judge, percentile_stat


def _fps_stat(a, axis):
    return 1000.0 / a.mean(axis=axis)


def _max_temp(tl: dict[str, Any], m: np.ndarray) -> float | None:
    vals = [v for series in (tl.get("temps_c") or {}).values() for v, k in zip(series, m) if k and v is not None]
    return round(max(vals), 2) if vals else None


def _mean_clock(tl: dict[str, Any], m: np.ndarray) -> float | None:
    vals = [v for series in (tl.get("cpu_mhz") or {}).values() for v, k in zip(series, m) if k and v is not None]
    return round(float(np.mean(vals)), 1) if vals else None


def _member(end_s: np.ndarray, t0: float, t1: float, last: bool) -> np.ndarray:
    """Frames that ended in [t0, t1); the last interval also keeps a frame ending at or just
    past the window's end (its start was inside), so the intervals add up to the run's frames."""
    return (end_s >= t0) & ((end_s < t1) | last)


def _interval(
    k: int, t0: float, t1: float, end_s: np.ndarray, e2e: np.ndarray, tl: dict | None, last: bool = False
) -> dict[str, Any]:
    x = e2e[_member(end_s, t0, t1, last)]
    out: dict[str, Any] = {
        "index": k,
        "t0_s": round(t0, 3),
        "t1_s": round(t1, 3),
        "frames": int(x.size),
        "fps": round(x.size / (t1 - t0), 3) if t1 > t0 else None,
        "p50_ms": round(float(np.percentile(x, 50)), 4) if x.size else None,
        "p99_ms": round(float(np.percentile(x, 99)), 4) if x.size else None,
        "temp_max_c": None,
        "cpu_mhz_mean": None,
        "throttled": None,
    }
    if tl and tl.get("t_s"):
        t = np.asarray(tl["t_s"], dtype=float)
        m = (t >= t0) & (t < t1)
        out["temp_max_c"] = _max_temp(tl, m)
        out["cpu_mhz_mean"] = _mean_clock(tl, m)
        thr = tl.get("throttled")
        if thr:
            vals = [v for v, k in zip(thr, m) if k and v is not None]
            out["throttled"] = bool(any(vals)) if vals else None
    return out


def _agree(a: np.ndarray, b: np.ndarray) -> bool:
    """Two intervals' frames agree: neither FPS nor p50 (nor p99, where judged) differs beyond noise."""
    checks = [
        judge("fps", "frames/s", _fps_stat, a, b, None, None),
        judge("p50", "ms", percentile_stat(50), a, b, None, None, 50),
        judge("p99", "ms", percentile_stat(99), a, b, None, None, 99),
    ]
    return not any(c["beyond_noise"] for c in checks)


def _first_throttle(tl: dict[str, Any] | None) -> tuple[float | None, str | None]:
    if not tl or not tl.get("throttled"):
        return None, "the board does not report throttling (no firmware throttle state among the probes)"
    for t, v in zip(tl["t_s"], tl["throttled"]):
        if v:
            return round(float(t), 3), None
    return None, "no throttle event during the run"


def analyze(
    end_s: np.ndarray, e2e_ms: np.ndarray, timeline: dict[str, Any] | None, duration_s: float, interval_s: float
) -> dict[str, Any]:
    """The ``sustained`` section from every frame's end time (s from the window's start) and
    e2e latency (ms), and the board's timeline over the same window."""
    n = max(1, math.ceil(duration_s / interval_s - 1e-9))
    bounds = [(k * interval_s, min((k + 1) * interval_s, duration_s)) for k in range(n)]
    if n > 1 and bounds[-1][1] - bounds[-1][0] < interval_s / 10:  # the window's last instant: one interval
        bounds = [*bounds[:-2], (bounds[-2][0], duration_s)]
        n -= 1
    frames = [e2e_ms[_member(end_s, a, b, k == n - 1)] for k, (a, b) in enumerate(bounds)]
    intervals = [_interval(k, a, b, end_s, e2e_ms, timeline, k == n - 1) for k, (a, b) in enumerate(bounds)]
    throttle_s, throttle_why = _first_throttle(timeline)
    out: dict[str, Any] = {
        "interval_s": interval_s,
        "intervals": intervals,
        "time_to_first_throttle_s": throttle_s,
        "throttle_note": throttle_why,
        "steady": None,
        "steady_since_s": None,
        "minute1_vs_steady": None,
    }
    if n < 3:
        out["steady_note"] = (
            f"{n} interval(s): a steady state needs three (a longer --duration or a shorter --interval)"
        )
        return out
    agree = [_agree(frames[k], frames[k + 1]) for k in range(n - 1)]
    if not (agree[-1] and agree[-2] and _agree(frames[-3], frames[-1])):
        out["steady_note"] = "not steady: the last three intervals still differ beyond noise"
        return out
    since = n - 3
    while since > 0 and agree[since - 1]:  # back while each interval agrees with the next
        since -= 1
    pooled = np.concatenate(frames[-3:])
    span = bounds[-1][1] - bounds[-3][0]
    steady_fps = pooled.size / span if span > 0 else None
    out["steady"] = {
        "fps": round(steady_fps, 3) if steady_fps else None,
        "p50_ms": round(float(np.percentile(pooled, 50)), 4),
        "p99_ms": round(float(np.percentile(pooled, 99)), 4),
        "from_intervals": [n - 3, n - 2, n - 1],
    }
    out["steady_since_s"] = round(bounds[since][0], 3)
    minute = min(60.0, duration_s)
    first = int(np.count_nonzero(end_s < minute))
    if steady_fps:
        out["minute1_vs_steady"] = round(first / minute / steady_fps, 4)
    return out


def summary_lines(s: dict[str, Any]) -> list[str]:
    """The sustained section for people."""
    lines = []
    for iv in s["intervals"]:
        extra = ""
        if iv["temp_max_c"] is not None:
            extra += f", {iv['temp_max_c']:g} C"
        if iv["cpu_mhz_mean"] is not None:
            extra += f", {iv['cpu_mhz_mean']:g} MHz"
        if iv["throttled"]:
            extra += ", THROTTLED"
        lines.append(
            f"  {iv['t0_s']:>7.1f}-{iv['t1_s']:<7.1f} s: {iv['fps'] or 0:.1f} FPS, p50 {iv['p50_ms']} ms, "
            f"p99 {iv['p99_ms']} ms{extra}"
        )
    t = s["time_to_first_throttle_s"]
    lines.append(f"first throttle: {t:g} s" if t is not None else f"first throttle: none ({s['throttle_note']})")
    st = s["steady"]
    if st:
        lines.append(
            f"steady state since {s['steady_since_s']:g} s: {st['fps']:g} FPS, p99 {st['p99_ms']:g} ms; "
            f"minute 1 / steady FPS = {s['minute1_vs_steady']}"
        )
    else:
        lines.append(f"steady state: none ({s['steady_note']})")
    return lines


def attach(outcome: Any, interval_s: float) -> dict[str, Any]:
    """Add the ``sustained`` section to a run's result (a RunOutcome measured with its
    samples kept), from its frames and its probes' timeline; returns the section."""
    res, m = outcome.result, outcome.measurement
    end_s = (np.asarray(m.kept["end"]) - m.start_ns) / 1e9
    e2e_ms = np.asarray(m.kept["e2e"]) / 1e6
    res["sustained"] = analyze(end_s, e2e_ms, outcome.timeline, res["duration_s"], interval_s)
    return res["sustained"]
