"""MLPerf LoadGen-style scenarios, as scheduling logic over a *service* callable.

``service(n)`` runs one query of ``n`` samples and returns when all of them are
done; a ``Clock`` gives the time and waits. With the real clock and a real
interpreter this is a benchmark; with :class:`VirtualClock` and a service that
advances it by known service times, every latency is known exactly (the tests
check the queueing delay of the server scenario against the Lindley recursion).

Scenarios (``SCENARIOS``):

* single-stream: one sample per query, the next query when the previous one
  finishes; headline: p90 query latency.
* multi-stream: ``samples_per_query`` samples per query (all ready at once),
  the next query when the previous one finishes; query latency = until its
  last sample is done; headline: p99.
* offline: one query holding every sample; headline: samples per second.
* server: single-sample queries arriving as a Poisson process at
  ``target_qps`` (seeded), served first come first served; each latency runs
  from the query's *scheduled* arrival to its completion, never from when it
  was issued, so a stalled system cannot hide its queueing (no coordinated
  omission). Headline: whether p99 stays within ``latency_bound_ms``.

Run length follows LoadGen: a run lasts until ``duration_s`` has passed *and*
``min_queries`` queries are done (or exactly ``queries`` if given), never past
``max_duration_s``. The verdict is INVALID, with reasons, when the run was
shorter than ``min_duration_s``, had fewer than ``min_queries`` queries, or
missed the latency bound.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

import numpy as np

from edgebench.agent.wire.protocol import SCENARIOS
from edgebench.agent.wire.stats import histogram_ms, summarize_ns

#: runs one query of n samples; returns when all of them are done
Service = Callable[[int], Any]

HEADLINE_PERCENTILE = {"single-stream": 90.0, "multi-stream": 99.0, "server": 99.0}
EARLY_STOPPING_CONFIDENCE = 0.99


class Clock(Protocol):
    def now_ns(self) -> int: ...

    def sleep_until(self, t_ns: int) -> None: ...


class RealClock:
    """The monotonic clock (``perf_counter_ns``, CLOCK_MONOTONIC on Linux)."""

    def now_ns(self) -> int:
        return time.perf_counter_ns()

    def sleep_until(self, t_ns: int) -> None:
        while True:
            left = t_ns - time.perf_counter_ns()
            if left <= 0:
                return
            time.sleep(left / 1e9)


class VirtualClock:
    """A clock that only moves when told: waits jump, services advance it."""

    def __init__(self, t_ns: int = 0):
        self.t = int(t_ns)

    def now_ns(self) -> int:
        return self.t

    def sleep_until(self, t_ns: int) -> None:
        self.t = max(self.t, int(t_ns))

    def advance(self, dt_ns: int) -> None:
        self.t += int(dt_ns)


@dataclass
class ScenarioSettings:
    scenario: str
    duration_s: float = 2.0
    min_duration_s: float = 1.0
    min_queries: int = 64
    max_duration_s: float | None = None
    queries: int | None = None
    samples_per_query: int = 8
    target_qps: float | None = None
    latency_bound_ms: float | None = None
    arrivals: str = "poisson"
    seed: int = 0
    offline_samples: int | None = None
    batch: int = 1
    stop_when_bound_missed: bool = True

    def check(self) -> None:
        """Raise ValueError with one line on a setting that cannot work."""
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}: choose one of {', '.join(SCENARIOS)}")
        if not self.duration_s > 0:
            raise ValueError("--duration must be more than 0 seconds")
        if self.min_queries < 0 or self.min_duration_s < 0:
            raise ValueError("--min-queries and --min-duration must be 0 or more")
        if self.queries is not None and self.queries < 1:
            raise ValueError("the number of queries must be at least 1")
        if self.samples_per_query < 1:
            raise ValueError("--samples-per-query must be at least 1")
        if self.batch < 1:
            raise ValueError("--batch must be at least 1")
        if self.latency_bound_ms is not None and not self.latency_bound_ms > 0:
            raise ValueError("--latency-bound-ms must be more than 0")
        if self.arrivals not in ("poisson", "uniform"):
            raise ValueError("arrivals must be poisson or uniform")
        if self.scenario == "server":
            if self.target_qps is None or not self.target_qps > 0:
                raise ValueError("the server scenario needs --target-qps N (queries per second, more than 0)")
            if self.latency_bound_ms is None:
                raise ValueError("the server scenario needs --latency-bound-ms N (the p99 latency the rate must hold)")
        if self.max_duration_s is not None and self.max_duration_s < self.duration_s:
            raise ValueError("--max-duration must be at least --duration")

    @property
    def cap_s(self) -> float:
        if self.max_duration_s is not None:
            return self.max_duration_s
        if self.scenario == "server":
            return 2 * self.duration_s + 5.0
        return max(60.0, 10 * self.duration_s)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "duration_s": self.duration_s,
            "min_duration_s": self.min_duration_s,
            "min_queries": self.min_queries,
            "max_duration_s": self.cap_s,
            "queries": self.queries,
        }
        if self.scenario == "multi-stream":
            d["samples_per_query"] = self.samples_per_query
        if self.scenario == "server":
            d.update(target_qps=self.target_qps, arrivals=self.arrivals, seed=self.seed)
        if self.scenario == "offline":
            d.update(offline_samples=self.offline_samples, batch=self.batch)
            d["min_queries_unit"] = "samples (offline has one query)"
        if self.latency_bound_ms is not None:
            d["latency_bound_ms"] = self.latency_bound_ms
        return d


# --------------------------------------------------------------------------- statistics
def early_stopping(
    latencies_ns: np.ndarray, percentile: float, confidence: float = EARLY_STOPPING_CONFIDENCE
) -> dict[str, Any]:
    """An upper confidence bound for the ``percentile``-th latency, as LoadGen's
    early stopping: the smallest order statistic X_(k) with
    P(X_(k) >= true percentile) = P(Binomial(n, p) <= k - 1) >= confidence.
    Needs at least ceil(log(1 - confidence) / log(p)) queries."""
    p = percentile / 100.0
    needed = math.ceil(math.log(1 - confidence) / math.log(p))
    n = int(latencies_ns.size)
    out: dict[str, Any] = {"percentile": percentile, "confidence": confidence, "queries_needed": needed, "queries": n}
    if n < needed:
        return {**out, "met": False, "estimate_ms": None}
    k = np.arange(n)
    # log pmf of Binomial(n, p) at 0..n-1 by the ratio recurrence
    steps = np.log((n - k[:-1]) / (k[:-1] + 1.0)) + math.log(p / (1 - p))
    logpmf = n * math.log(1 - p) + np.concatenate([[0.0], np.cumsum(steps)])
    cdf = np.cumsum(np.exp(logpmf))
    j = int(np.searchsorted(cdf, confidence))
    if j >= n:
        return {**out, "met": False, "estimate_ms": None}
    return {**out, "met": True, "estimate_ms": round(float(np.sort(latencies_ns)[j]) / 1e6, 4)}


def _pct_ms(lat_ns: np.ndarray, pct: float) -> float | None:
    if lat_ns.size == 0:
        return None
    return round(float(np.percentile(lat_ns, pct, method="linear")) / 1e6, 4)


def _length_reasons(s: ScenarioSettings, duration_s: float, count: int, unit: str = "queries") -> list[str]:
    reasons = []
    if duration_s < s.min_duration_s:
        reasons.append(
            f"too short: measured {duration_s:.3f} s; at least {s.min_duration_s:g} s needed (--min-duration)"
        )
    if count < s.min_queries:
        reasons.append(f"too few {unit}: {count}; at least {s.min_queries} needed (--min-queries)")
    return reasons


def _verdict(out: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    out["verdict"] = "INVALID" if reasons else "VALID"
    out["reasons"] = reasons
    return out


# --------------------------------------------------------------------------- closed loops
def _closed_loop(
    service: Service, s: ScenarioSettings, clock: Clock, samples: int
) -> tuple[np.ndarray, int, int, bool]:
    """Back-to-back queries: (latencies ns, start ns, end ns, stopped by the cap)."""
    t_start = clock.now_ns()
    dur, cap = int(s.duration_s * 1e9), int(s.cap_s * 1e9)
    lat: list[int] = []
    end = t_start
    capped = False
    while True:
        now = clock.now_ns()
        if s.queries is not None:
            if len(lat) >= s.queries:
                break
        elif end - t_start >= dur and len(lat) >= s.min_queries:
            break  # judged on the measured window (to the last query's end), as reported
        if now - t_start >= cap:
            capped = True
            break
        t0 = clock.now_ns()
        service(samples)
        end = clock.now_ns()
        lat.append(end - t0)
    return np.asarray(lat, dtype=np.int64), t_start, end, capped


def run_stream(service: Service, s: ScenarioSettings, clock: Clock) -> dict[str, Any]:
    """single-stream (1 sample per query) or multi-stream (samples_per_query)."""
    multi = s.scenario == "multi-stream"
    spq = s.samples_per_query if multi else 1
    lat, t0, t1, capped = _closed_loop(service, s, clock, spq)
    pct = HEADLINE_PERCENTILE[s.scenario]
    dur = (t1 - t0) / 1e9
    out: dict[str, Any] = {
        "scenario": s.scenario,
        "settings": s.to_dict(),
        "queries": int(lat.size),
        "samples": int(lat.size) * spq,
        "duration_s": round(dur, 6),
        "qps": round(lat.size / dur, 3) if dur > 0 else None,
        "samples_per_s": round(lat.size * spq / dur, 3) if dur > 0 else None,
        "latency_ms": summarize_ns(lat),
        "latency_histogram_ms": histogram_ms(lat / 1e6),
        "latency_scope": "per query: from issuing it to its last sample done; the next query is issued when it completes",
        "headline": {"metric": f"p{pct:g}_latency_ms", "value": _pct_ms(lat, pct), "unit": "ms"},
        "early_stopping": early_stopping(lat, pct),
        "_window_ns": (t0, t1),
    }
    reasons = _length_reasons(s, dur, int(lat.size))
    if capped:
        out["notes"] = [f"stopped at the --max-duration cap of {s.cap_s:g} s"]
    head = out["headline"]["value"]
    if s.latency_bound_ms is not None:
        within = head is not None and head <= s.latency_bound_ms
        out["within_bound"] = within
        if not within and head is not None:
            reasons.append(
                f"bound missed: p{pct:g} latency {head:.3f} ms exceeds the bound of {s.latency_bound_ms:g} ms"
            )
    if not out["early_stopping"]["met"]:
        out.setdefault("warnings", []).append(
            f"early stopping not met: {lat.size} queries; {out['early_stopping']['queries_needed']} needed to bound "
            f"p{pct:g} at {EARLY_STOPPING_CONFIDENCE:.0%} confidence (informative; not part of the verdict)"
        )
    return _verdict(out, reasons)


def run_offline(service: Service, s: ScenarioSettings, clock: Clock, calibrate_s: float = 0.2) -> dict[str, Any]:
    """One query holding every sample, processed ``batch`` samples at a time.

    Without ``offline_samples`` the query is sized like LoadGen's
    offline_expected_qps: from a short calibration (not measured), to last
    ``duration_s`` plus 10 %. If the device then finished sooner than
    ``duration_s`` (the calibration ran on a slower moment), the query is sized
    again from the measured rate and run again, at most twice; the result says so.
    """
    notes: list[str] = []
    n = s.offline_samples
    auto = n is None
    if auto:
        t0 = clock.now_ns()
        done = 0
        while clock.now_ns() - t0 < calibrate_s * 1e9 or done == 0:
            service(s.batch)
            done += s.batch
        rate = done / max((clock.now_ns() - t0) / 1e9, 1e-9)
        n = max(s.min_queries, math.ceil(1.1 * rate * s.duration_s))
        notes.append(f"query size {n} samples from a calibration of {rate:.1f} samples/s (not measured)")
    assert n is not None
    for attempt in range(3):
        lat, done, dur, capped, window = _offline_once(service, s, clock, n)
        if not auto or capped or dur >= s.duration_s or attempt == 2:
            break
        grown = max(n + 1, math.ceil(1.1 * n * s.duration_s / max(dur, 1e-9)))
        notes.append(f"{n} samples took {dur:.3f} s, under the {s.duration_s:g} s asked: run again with {grown}")
        n = grown
    left = n - done
    out: dict[str, Any] = {
        "scenario": "offline",
        "settings": s.to_dict(),
        "queries": 1,
        "samples": done,
        "samples_requested": n,
        "duration_s": round(dur, 6),
        "samples_per_s": round(done / dur, 3) if dur > 0 else None,
        "headline": {
            "metric": "samples_per_s",
            "value": round(done / dur, 3) if dur > 0 else None,
            "unit": "samples/s",
        },
        "latency_ms": summarize_ns(lat),
        "latency_histogram_ms": histogram_ms(lat / 1e6),
        "latency_scope": f"per batch of up to {s.batch} samples inside the one offline query",
        "query_latency_ms": round(dur * 1000, 4),
        "_window_ns": window,
    }
    reasons = _length_reasons(s, dur, done, unit="samples")
    if capped:
        reasons.append(f"stopped at the --max-duration cap of {s.cap_s:g} s with {left} of {n} samples not done")
    if notes:
        out["notes"] = notes
    return _verdict(out, reasons)


def _offline_once(
    service: Service, s: ScenarioSettings, clock: Clock, n: int
) -> tuple[np.ndarray, int, float, bool, tuple[int, int]]:
    cap = int(s.cap_s * 1e9)
    t0 = clock.now_ns()
    chunks: list[int] = []
    left = n
    end = t0
    capped = False
    while left > 0:
        if clock.now_ns() - t0 >= cap:
            capped = True
            break
        k = min(s.batch, left)
        a = clock.now_ns()
        service(k)
        end = clock.now_ns()
        chunks.append(end - a)
        left -= k
    return np.asarray(chunks, dtype=np.int64), n - left, (end - t0) / 1e9, capped, (t0, end)


# --------------------------------------------------------------------------- server
def arrival_schedule(s: ScenarioSettings) -> np.ndarray:
    """Scheduled arrival offsets in ns from the run's start (seeded)."""
    assert s.target_qps
    n = s.queries if s.queries is not None else max(math.ceil(s.target_qps * s.duration_s), s.min_queries, 1)
    if s.arrivals == "uniform":
        gaps = np.full(n, 1.0 / s.target_qps)
    else:
        gaps = np.random.default_rng(s.seed).exponential(1.0 / s.target_qps, n)
    return np.round(np.cumsum(gaps) * 1e9).astype(np.int64)


def run_server(service: Service, s: ScenarioSettings, clock: Clock) -> dict[str, Any]:
    """Poisson (or uniform) arrivals at ``target_qps``, one server, FIFO.

    Each query starts when it has arrived and the previous one is done; its
    latency runs from its scheduled arrival. If the device falls so far behind
    that enough queries are already over the bound for p99 to be over it
    whatever the rest do, the bound is certainly missed and the run stops (``stop_when_bound_missed``);
    queries still waiting then count with the wait they had so far (a lower
    bound on their latency), so the figure is never flattered.
    """
    s.check()
    arrivals = arrival_schedule(s)
    n = int(arrivals.size)
    bound_ns = int(s.latency_bound_ms * 1e6) if s.latency_bound_ms else None
    pct = HEADLINE_PERCENTILE["server"]
    # p99 (linear interpolation) is certainly over the bound once the sample at
    # rank floor(0.99 * (n - 1)) is: that is, once this many queries are over it
    certain_over = n - math.floor(pct / 100.0 * (n - 1))
    cap = int(s.cap_s * 1e9)
    lat = np.zeros(n, dtype=np.int64)
    wait = np.zeros(n, dtype=np.int64)
    t0 = clock.now_ns()
    served = 0
    over = 0
    stop_reason = None
    for i in range(n):
        due = t0 + int(arrivals[i])
        now = clock.now_ns()
        if now < due:
            clock.sleep_until(due)
            now = clock.now_ns()
        if now - t0 > cap:
            stop_reason = f"stopped at the --max-duration cap of {s.cap_s:g} s"
            break
        if bound_ns is not None and s.stop_when_bound_missed:
            # served over the bound, plus those waiting that are already over it
            waiting_over = max(0, int(np.searchsorted(arrivals, now - t0 - bound_ns, side="right")) - i)
            if over + waiting_over >= certain_over:
                stop_reason = (
                    f"stopped early: {over + waiting_over} of {n} queries already exceeded the "
                    f"{s.latency_bound_ms:g} ms bound, so p{pct:g} cannot meet it"
                )
                break
        service(1)
        end = clock.now_ns()
        lat[i] = end - due
        wait[i] = now - due
        if bound_ns is not None and lat[i] > bound_ns:
            over += 1
        served += 1
    t_end = clock.now_ns()
    # queries that had arrived but were not served: their latency is at least their wait so far
    arrived = int(np.searchsorted(arrivals, t_end - t0, side="right"))
    unserved = max(0, arrived - served)
    not_arrived = n - max(arrived, served)
    censored = (t_end - t0) - arrivals[served : served + unserved]
    all_lat = np.concatenate([lat[:served], censored])
    dur = (t_end - t0) / 1e9
    span = arrivals[n - 1] / 1e9 if n else 0.0
    p99 = _pct_ms(all_lat, pct)
    within = (
        p99 is not None and bound_ns is not None and p99 <= s.latency_bound_ms and unserved == 0 and not_arrived == 0
    )
    out: dict[str, Any] = {
        "scenario": "server",
        "settings": s.to_dict(),
        "target_qps": s.target_qps,
        "scheduled_qps": round(n / span, 3) if span > 0 else None,
        "completed_qps": round(served / dur, 3) if dur > 0 else None,
        "queries_scheduled": n,
        "queries": served,
        "queries_unserved": unserved,
        "queries_not_arrived": not_arrived,
        "duration_s": round(dur, 6),
        "latency_bound_ms": s.latency_bound_ms,
        "overlatency_queries": int((all_lat > bound_ns).sum()) if bound_ns is not None else None,
        "latency_ms": summarize_ns(all_lat),
        "latency_histogram_ms": histogram_ms(all_lat / 1e6),
        "queue_ms": summarize_ns(wait[:served]),
        "service_ms": summarize_ns(lat[:served] - wait[:served]),
        "latency_scope": (
            "per query: from its scheduled arrival (not from when it was issued) to its completion; "
            "queue_ms is the wait from arrival to start, service_ms the query itself"
            + ("; queries not served when the run stopped count with their wait so far" if unserved else "")
        ),
        "headline": {"metric": "p99_within_bound", "value": bool(within), "p99_latency_ms": p99, "unit": "ms"},
        "within_bound": bool(within),
        "_window_ns": (t0, t_end),
    }
    reasons = _length_reasons(s, dur, served)
    if stop_reason:
        reasons.append(stop_reason)
    if unserved or not_arrived:
        reasons.append(
            f"the device could not hold {s.target_qps:g} qps: {unserved + not_arrived} of {n} scheduled queries "
            f"were not served ({unserved} waiting, {not_arrived} not yet due when the run stopped)"
        )
    if p99 is not None and s.latency_bound_ms is not None and p99 > s.latency_bound_ms:
        reasons.append(f"bound missed: p99 latency {p99:.3f} ms exceeds the bound of {s.latency_bound_ms:g} ms")
    return _verdict(out, reasons)


def run_scenario(service: Service, s: ScenarioSettings, clock: Clock | None = None) -> dict[str, Any]:
    s.check()
    clock = clock or RealClock()
    if s.scenario == "server":
        return run_server(service, s, clock)
    if s.scenario == "offline":
        return run_offline(service, s, clock)
    return run_stream(service, s, clock)


# --------------------------------------------------------------------------- max QPS search
@dataclass
class SearchSettings:
    latency_bound_ms: float
    start_qps: float
    max_steps: int = 10
    rel_tolerance: float = 0.05
    min_qps: float | None = None
    #: the latency of one query alone (e.g. single-stream p99): if it exceeds the
    #: bound no rate can meet it, and the search stops after its first step
    floor_latency_ms: float | None = None
    steps_log: list[dict[str, Any]] = field(default_factory=list)


def find_max_qps(run_at: Callable[[float], dict[str, Any]], ss: SearchSettings) -> dict[str, Any]:
    """The highest server rate whose run is VALID (p99 within the bound), by
    bracketing (doubling up or halving down from ``start_qps``) then binary
    search until the bracket is within ``rel_tolerance``. Every step is a full
    server run and is reported."""
    if not ss.start_qps > 0:
        raise ValueError("the starting rate must be more than 0 qps")
    min_qps = ss.min_qps if ss.min_qps is not None else ss.start_qps / 64
    steps: list[dict[str, Any]] = []

    def step(rate: float, phase: str) -> bool:
        res = run_at(rate)
        passed = res["verdict"] == "VALID"
        steps.append(
            {
                "phase": phase,
                "target_qps": round(rate, 4),
                "passed": passed,
                "verdict": res["verdict"],
                "reasons": res["reasons"],
                "p99_latency_ms": res["headline"].get("p99_latency_ms"),
                "completed_qps": res.get("completed_qps"),
                "queries": res.get("queries"),
                "duration_s": res.get("duration_s"),
            }
        )
        return passed

    lo: float | None = None
    hi: float | None = None
    rate = ss.start_qps
    notes: list[str] = []
    while len(steps) < ss.max_steps:
        if step(rate, "bracket"):
            lo = rate
            if hi is not None:
                break
            rate *= 2
        else:
            hi = rate
            if lo is not None:
                break
            if ss.floor_latency_ms is not None and ss.floor_latency_ms > ss.latency_bound_ms:
                notes.append(
                    f"one query alone takes {ss.floor_latency_ms:.3f} ms (p99 without queueing), more than the "
                    f"{ss.latency_bound_ms:g} ms bound: no rate can meet it"
                )
                break
            rate /= 2
            if rate < min_qps:
                notes.append(f"gave up below {min_qps:.4g} qps")
                break
    while lo is not None and hi is not None and len(steps) < ss.max_steps and (hi - lo) / lo > ss.rel_tolerance:
        mid = (lo + hi) / 2
        if step(mid, "bisect"):
            lo = mid
        else:
            hi = mid
    reasons = []
    if lo is None:
        tried = ", ".join(f"{st['target_qps']:g}" for st in steps)
        reasons.append(
            f"no rate meets the bound: every rate tried ({tried} qps) "
            f"had p99 above {ss.latency_bound_ms:g} ms or could not be held"
        )
    elif hi is None:
        notes.append(f"no failing rate found within {ss.max_steps} steps: the maximum is at least {lo:g} qps")
    elif (hi - lo) / lo > ss.rel_tolerance:
        notes.append(f"the search stopped after {ss.max_steps} steps with the maximum between {lo:g} and {hi:g} qps")
    out = {
        "scenario": "find-max-qps",
        "latency_bound_ms": ss.latency_bound_ms,
        "max_qps": None if lo is None else round(lo, 4),
        "bracket_qps": [None if lo is None else round(lo, 4), None if hi is None else round(hi, 4)],
        "steps": steps,
        "headline": {"metric": "max_qps", "value": None if lo is None else round(lo, 4), "unit": "queries/s"},
        "search": {
            "start_qps": ss.start_qps,
            "max_steps": ss.max_steps,
            "rel_tolerance": ss.rel_tolerance,
            "min_qps": min_qps,
        },
        "notes": notes,
    }
    return _verdict(out, reasons)


def server_at(
    service: Service, base: ScenarioSettings, clock: Clock | None = None
) -> Callable[[float], dict[str, Any]]:
    """run_at(rate) for find_max_qps: a full server run at that rate."""
    clock = clock or RealClock()
    return lambda rate: run_server(service, replace(base, scenario="server", target_qps=rate), clock)
