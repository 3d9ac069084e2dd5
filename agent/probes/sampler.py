"""One background sampler for power, temperatures, clocks and system load.

It ticks at a configurable rate (default 10 Hz) on the measurement loop's clock
(``time.perf_counter_ns``, CLOCK_MONOTONIC on Linux), so its timestamps line up
with the measured frames. A reading that fails is a gap (``None`` plus the
reason), never a zero. The sampler counts its own CPU time (its thread, its
edge samples and the commands it runs), so its cost is reported, not assumed.

Energy comes from the timestamps, not from an average:

* instantaneous power (``trapezoid``): the trapezoid rule over the samples,
  clipped to the window with the power interpolated at the window edges (and
  held at the nearest reading beyond the first/last one);
* cumulative counters (``energy-counter``): the counter difference across the
  window, interpolated at its edges.

Gaps inside the window are bridged by the neighbouring readings, and reported
(``gaps``: failed readings; ``gap_s``: window time not between two consecutive
good readings).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from edgebench.agent.probes._fs import ProbeError
from edgebench.agent.probes.power import METHOD_COUNTER, PowerReading, PowerSource
from edgebench.agent.probes.system import SystemProbe, SystemReading
from edgebench.agent.probes.thermal import ThermalProbe, ThermalReading


@dataclass
class Sample:
    t_ns: int
    power: PowerReading | None = None
    power_error: str | None = None
    thermal: ThermalReading | None = None
    system: SystemReading | None = None
    read_ns: int = 0


class Sampler:
    """``start()`` takes a first sample and starts the thread; ``stop()`` stops it and
    takes a last sample, so any window between the two is bracketed."""

    def __init__(
        self,
        power: PowerSource | None = None,
        thermal: ThermalProbe | None = None,
        system: SystemProbe | None = None,
        hz: float = 10.0,
        clock: Callable[[], int] = time.perf_counter_ns,
        max_samples: int = 10_000,
    ):
        if not hz > 0:
            raise ValueError("the sampling rate must be > 0 Hz")
        #: A sample holds ~3 kB; past this many, every other one is dropped (failed
        #: readings are kept) and the period doubles, so a long run stays within
        #: ~30 MB at a lower rate. Counted in ``decimations``.
        self.max_samples = max(16, max_samples)
        self.decimations = 0
        self._full = 0
        self.power, self.thermal, self.system = power, thermal, system
        self.hz = float(hz)
        self.period_ns = int(1e9 / hz)
        self.clock = clock
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_s = 0.0
        self._last_power_t: int | None = None
        self.errors: dict[str, int] = {}
        self.started_ns = self.stopped_ns = 0

    # ------------------------------------------------------------------ taking samples
    def sample(self) -> Sample:
        t_a = self.clock()
        s = Sample(t_ns=t_a)
        if self.power is not None:
            try:
                r = self.power.read()
                t_b = self.clock()
                s.t_ns = (t_a + t_b) // 2
                if r.t_ns is not None and r.t_ns == self._last_power_t:
                    pass  # the source has no new reading since the last tick: neither a reading nor a gap
                else:
                    s.power = r
                    self._last_power_t = r.t_ns
            except (ProbeError, OSError, ValueError) as e:
                s.power_error = str(e) or type(e).__name__
                self.errors[s.power_error] = self.errors.get(s.power_error, 0) + 1
        if self.thermal is not None:
            try:
                s.thermal = self.thermal.read()
            except (ProbeError, OSError, ValueError):
                s.thermal = None
        if self.system is not None:
            try:
                s.system = self.system.read()
            except Exception:  # psutil.Error, OSError: a gap
                s.system = None
        s.read_ns = self.clock() - t_a
        with self._lock:
            self.samples.append(s)
            if s.power is not None or s.thermal is not None or s.system is not None:
                self._full += 1
            if self._full > self.max_samples:
                self._decimate()
        return s

    def _decimate(self) -> None:
        """Drop every other sample that holds readings (keeping the last); a dropped
        failed power reading stays as a light gap marker."""
        last = len(self.samples) - 1
        kept: list[Sample] = []
        n = 0
        for i, x in enumerate(self.samples):
            if x.power is None and x.thermal is None and x.system is None:
                kept.append(x)  # already a light marker
                continue
            if n % 2 == 0 or i == last:
                kept.append(x)
            elif x.power_error is not None:
                kept.append(Sample(t_ns=x.t_ns, power_error=x.power_error))
            n += 1
        self.samples = kept
        self._full = sum(1 for x in kept if x.power is not None or x.thermal is not None or x.system is not None)
        self.period_ns *= 2
        self.decimations += 1

    def _timed_sample(self) -> None:
        c0 = time.thread_time()
        self.sample()
        self._cpu_s += time.thread_time() - c0

    def _run(self) -> None:
        c0 = time.thread_time()
        nxt = self.clock() + self.period_ns
        while True:
            delay = (nxt - self.clock()) / 1e9
            if self._stop.wait(max(0.0, delay)):
                break
            self.sample()
            nxt += self.period_ns
            now = self.clock()
            if nxt < now:  # a slow reading: skip the missed ticks, do not burst
                nxt = now + self.period_ns
        with self._lock:
            self._cpu_s += time.thread_time() - c0

    def start(self) -> "Sampler":
        self.started_ns = self.clock()
        self._timed_sample()
        self._thread = threading.Thread(target=self._run, name="edgebench-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._timed_sample()
        self.stopped_ns = self.clock()

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def cpu_s(self) -> float:
        """CPU seconds the sampler's own thread and its edge samples used."""
        return self._cpu_s

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def stats(self) -> dict[str, Any]:
        samples = self.snapshot()
        wall = ((self.stopped_ns or self.clock()) - self.started_ns) / 1e9
        reads = [s.read_ns / 1e6 for s in samples]
        return {
            "sampler_hz_target": self.hz,
            "sampler_hz": round((len(samples) - 1) / wall, 3) if wall > 0 and len(samples) > 1 else None,
            "sampler_samples": len(samples),
            "sampler_span_s": round(wall, 3),
            "sampler_read_ms_mean": round(float(np.mean(reads)), 3) if reads else None,
            "sampler_read_ms_max": round(float(np.max(reads)), 3) if reads else None,
            "sampler_decimations": self.decimations,
        }


# --------------------------------------------------------------------------- windows and integrals
def window_slice(points: Sequence[tuple[int, Any]], t0: int, t1: int) -> list[tuple[int, Any]]:
    """The points from the last one at/before ``t0`` to the first one at/after ``t1``."""
    if not points:
        return []
    ts = [t for t, _ in points]
    i0 = int(np.searchsorted(ts, t0, side="right")) - 1
    i1 = int(np.searchsorted(ts, t1, side="left"))
    return list(points[max(0, i0) : min(len(points), i1 + 1)])


def _coverage(points: Sequence[tuple[int, Any]], t0: int, t1: int) -> tuple[int, int]:
    """(gaps, covered_ns): failed points inside the window, and window time between
    two consecutive good points."""
    gaps = sum(1 for t, v in points if v is None and t0 <= t <= t1)
    covered = 0
    for (ta, va), (tb, vb) in zip(points, points[1:]):
        if va is not None and vb is not None:
            covered += max(0, min(tb, t1) - max(ta, t0))
    return gaps, covered


@dataclass
class Integral:
    energy_j: float
    mean_w: float
    min_w: float | None
    max_w: float | None
    window_s: float
    samples: int
    gaps: int
    gap_s: float


def integrate_power(points: Sequence[tuple[int, float | None]], t0: int, t1: int) -> Integral | None:
    """Energy over [t0, t1] from instantaneous power samples ``(t_ns, W or None)``."""
    points = sorted(points, key=lambda p: p[0])
    valid = [(t, w) for t, w in points if w is not None]
    if not valid or t1 <= t0:
        return None
    xp = np.array([t for t, _ in valid], dtype=np.float64)
    fp = np.array([w for _, w in valid], dtype=np.float64)
    inside = xp[(xp > t0) & (xp < t1)]
    xs = np.concatenate(([t0], inside, [t1])).astype(np.float64)
    ys = np.interp(xs, xp, fp)  # linear between readings, held beyond the first/last
    energy = float(np.sum((ys[1:] + ys[:-1]) / 2.0 * np.diff(xs)) / 1e9)
    window_s = (t1 - t0) / 1e9
    gaps, covered = _coverage(points, t0, t1)
    return Integral(
        energy_j=energy,
        mean_w=energy / window_s,
        min_w=float(ys.min()),
        max_w=float(ys.max()),
        window_s=window_s,
        samples=int(((xp >= t0) & (xp <= t1)).sum()),
        gaps=gaps,
        gap_s=(t1 - t0 - covered) / 1e9,
    )


def integrate_counter(points: Sequence[tuple[int, float | None]], t0: int, t1: int) -> Integral | None:
    """Energy over [t0, t1] from a cumulative counter ``(t_ns, J or None)``: the counter
    difference, interpolated at the window edges (extrapolated at the edge rate
    beyond the first/last reading)."""
    points = sorted(points, key=lambda p: p[0])
    valid = [(t, e) for t, e in points if e is not None]
    if len(valid) < 2 or t1 <= t0:
        return None
    xp = np.array([t for t, _ in valid], dtype=np.float64)
    fp = np.array([e for _, e in valid], dtype=np.float64)

    def at(t: float) -> float:
        if t < xp[0]:
            return float(fp[0] - (fp[1] - fp[0]) / (xp[1] - xp[0]) * (xp[0] - t))
        if t > xp[-1]:
            return float(fp[-1] + (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]) * (t - xp[-1]))
        return float(np.interp(t, xp, fp))

    energy = at(t1) - at(t0)
    rates = [
        (fp[i + 1] - fp[i]) / ((xp[i + 1] - xp[i]) / 1e9)
        for i in range(len(xp) - 1)
        if xp[i + 1] > t0 and xp[i] < t1 and xp[i + 1] > xp[i]
    ]
    window_s = (t1 - t0) / 1e9
    gaps, covered = _coverage(points, t0, t1)
    return Integral(
        energy_j=energy,
        mean_w=energy / window_s,
        min_w=float(min(rates)) if rates else None,
        max_w=float(max(rates)) if rates else None,
        window_s=window_s,
        samples=int(((xp >= t0) & (xp <= t1)).sum()),
        gaps=gaps,
        gap_s=(t1 - t0 - covered) / 1e9,
    )


def power_points(samples: Sequence[Sample], counter: bool, rail: str | None = None) -> list[tuple[int, float | None]]:
    """The power (or cumulative energy) trace of one rail, or of the total, with gaps as None."""
    out: list[tuple[int, float | None]] = []
    for s in samples:
        if s.power is not None:
            r = s.power
            t = r.t_ns if r.t_ns is not None else s.t_ns
            if rail is None:
                v = r.energy_j if counter else r.total_w
            else:
                v = (r.rails_j if counter else r.rails_w).get(rail)
            out.append((t, v))
        elif s.power_error is not None:
            out.append((s.t_ns, None))
    out.sort(key=lambda p: p[0])
    return out


def _r(v: float | None, nd: int = 6) -> float | None:
    return None if v is None else round(float(v), nd) + 0.0  # + 0.0: no "-0.0" from rounding


ENERGY_SCOPE = (
    "measured frames only (warmup excluded): from the first measured frame's capture start to the last "
    "one's postprocess end; per inference = energy / measured frames (each a whole frame: capture, "
    "preprocess, invoke, postprocess); net = gross minus the idle baseline power times the window"
)


def summarize_power(
    samples: Sequence[Sample],
    source: PowerSource,
    window: tuple[int, int],
    frames: int,
    idle: tuple[int, int] | None,
    hz: float,
    span_s: float | None = None,
) -> dict[str, Any]:
    """The result's ``power`` section for a window of ``frames`` measured frames."""
    counter = source.method == METHOD_COUNTER
    integrate = integrate_counter if counter else integrate_power
    t0, t1 = window
    pts = power_points(samples, counter)
    out: dict[str, Any] = {"available": True, **source.describe()}
    out.pop("rails", None)
    it = integrate(pts, t0, t1)
    good = sum(1 for _, v in pts if v is not None)
    out.update(
        sampling_rate_target_hz=hz,
        sampling_rate_hz=_r((good - 1) / span_s, 3) if span_s and good > 1 else None,
        window_s=_r((t1 - t0) / 1e9),
    )
    if it is None:
        out.update(
            mean_w=None,
            energy_j=None,
            energy_per_inference_mj={"gross": None, "net": None},
            samples=0,
            gaps=sum(1 for _, v in pts if v is None),
            note="no good power reading around the measured window",
        )
        return out
    out.update(
        mean_w=_r(it.mean_w),
        min_w=_r(it.min_w),
        max_w=_r(it.max_w),
        energy_j=_r(it.energy_j),
        samples=it.samples,
        gaps=it.gaps,
        gap_s=_r(it.gap_s),
    )
    idle_it = integrate(pts, idle[0], idle[1]) if idle else None
    idle_w = idle_it.mean_w if idle_it else None
    net = it.energy_j - idle_w * it.window_s if idle_w is not None else None
    out.update(
        idle_w=_r(idle_w),
        idle_s=_r(idle_it.window_s) if idle_it else None,
        idle_samples=idle_it.samples if idle_it else 0,
        net_energy_j=_r(net),
        energy_per_inference_mj={
            "gross": _r(it.energy_j / frames * 1000.0) if frames else None,
            "net": _r(net / frames * 1000.0) if frames and net is not None else None,
        },
        energy_scope=ENERGY_SCOPE,
    )
    if idle is None:
        out["idle_note"] = "no idle baseline measured (--idle-baseline-s 0): net figures are absent"
    rails: dict[str, float | None] = {}
    for rail in source.rails:
        r_it = integrate(power_points(samples, counter, rail), t0, t1)
        rails[rail] = _r(r_it.mean_w) if r_it else None
    if rails:
        out["rails_mean_w"] = rails
    return out
