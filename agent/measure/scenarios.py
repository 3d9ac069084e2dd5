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

#: The run lengths a verdict is judged by (``ScenarioSettings.rules``). ``edgebench``: the
#: options' own (--min-duration, --min-queries; by default 1 s and 64 queries, a quick check
#: that is NOT an MLPerf verdict); ``--mlperf loadgen``: LoadGen's TestSettings defaults
#: (min_duration_ms 10000, min_query_count 100); ``--mlperf submission``: mlperf.conf's for
#: a submission (min_duration 600000 ms for every scenario; MultiStream min_query_count 662;
#: Offline 24576 samples, ResNet-50's and most models').
MLPERF_LENGTHS: dict[str, dict[str, Any]] = {
    "loadgen": {
        "min_duration_s": 10.0,
        "min_queries": dict.fromkeys(SCENARIOS, 100),
        "name": "MLPerf LoadGen's default run lengths (TestSettings)",
    },
    "submission": {
        "min_duration_s": 600.0,
        "min_queries": {"single-stream": 100, "multi-stream": 662, "offline": 24576, "server": 100},
        "name": "MLPerf's run lengths for a submission (mlperf.conf)",
    },
}


def rules_text(s: "ScenarioSettings") -> str:
    """Which rules a scenario's verdict applies, in words, with the numbers."""
    unit = "samples" if s.scenario == "offline" else "queries"
    lengths = f"at least {s.min_duration_s:g} s and {s.min_queries} {unit}"
    if s.latency_bound_ms is not None:
        lengths += f", p{HEADLINE_PERCENTILE.get(s.scenario, 99.0):g} within {s.latency_bound_ms:g} ms"
    if s.rules in MLPERF_LENGTHS:
        return f"{MLPERF_LENGTHS[s.rules]['name']}: {lengths}"
    return (
        f"edgebench's run lengths: {lengths} (--min-duration, --min-queries); not an MLPerf verdict "
        "(LoadGen's: 10 s and 100 queries, --mlperf loadgen; a submission's: 600 s, --mlperf submission)"
    )


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
    #: the run lengths the verdict applies: "edgebench", or a key of MLPERF_LENGTHS
    rules: str = "edgebench"

    def check(self) -> None:
        """Raise ValueError naming every setting that cannot work, one line each."""
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(problems))

    def problems(self) -> list[str]:
        """Every setting that cannot work, one line each."""
        if self.scenario not in SCENARIOS:
            return [f"unknown scenario {self.scenario!r}: choose one of {', '.join(SCENARIOS)}"]
        rules = [
            (not self.duration_s > 0, "--duration must be more than 0 seconds"),
            (self.min_queries < 0 or self.min_duration_s < 0, "--min-queries and --min-duration must be 0 or more"),
            (self.queries is not None and self.queries < 1, "the number of queries must be at least 1"),
            (self.samples_per_query < 1, "--samples-per-query must be at least 1"),
            (self.batch < 1, "--batch must be at least 1"),
            (
                self.latency_bound_ms is not None and not self.latency_bound_ms > 0,
                "--latency-bound-ms must be more than 0",
            ),
            (self.arrivals not in ("poisson", "uniform"), "arrivals must be poisson or uniform"),
            (
                self.scenario == "server" and (self.target_qps is None or not self.target_qps > 0),
                "the server scenario needs --target-qps N (queries per second, more than 0)",
            ),
            (
                self.scenario == "server" and self.latency_bound_ms is None,
                "the server scenario needs --latency-bound-ms N (the p99 latency the rate must hold)",
            ),
            (
                self.max_duration_s is not None and self.max_duration_s < self.duration_s,
                "--max-duration must be at least --duration",
            ),
        ]
        return [text for bad, text in rules if bad]

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
            "rules": self.rules,
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


def _verdict(out: dict[str, Any], reasons: list[str], s: ScenarioSettings | None = None) -> dict[str, Any]:
    out["verdict"] = "INVALID" if reasons else "VALID"
    out["reasons"] = reasons
    if s is not None:
        out["rules"] = rules_text(s)
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
    return _verdict(out, reasons, s)


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
        # a margin larger than the first sizing's: the device just proved faster than the calibration
        grown = max(n + 1, math.ceil(1.25 * n * s.duration_s / max(dur, 1e-9)))
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
    return _verdict(out, reasons, s)


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


@dataclass
class _ServerRun:
    """One server run as its steps go: the schedule, what was served, why it stopped."""

    s: ScenarioSettings
    clock: Clock
    arrivals: np.ndarray  # scheduled arrival offsets, ns from t0
    t0: int
    bound_ns: int | None
    #: this many queries over the bound put p99 over it whatever the rest do
    certain_over: int
    lat: np.ndarray
    wait: np.ndarray
    served: int = 0
    over: int = 0
    stop_reason: str | None = None

    @property
    def n(self) -> int:
        return int(self.arrivals.size)


@dataclass
class _Backlog:
    """The queries the run did not serve, when it stopped: those due (waiting, with their
    waits so far) and those not yet due."""

    due: int
    waits_ns: np.ndarray
    not_due: int

    @property
    def waiting(self) -> int:
        return int(self.waits_ns.size)


def run_server(service: Service, s: ScenarioSettings, clock: Clock) -> dict[str, Any]:
    """Poisson (or uniform) arrivals at ``target_qps``, one server, FIFO.

    Each query starts when it has arrived and the previous one is done; its
    latency runs from its scheduled arrival to its completion, so it is never shorter
    than its service time. If the device falls so far behind that enough queries are
    already over the bound for p99 to be over it whatever the rest do (served ones over
    it, plus waiting ones whose wait alone is over it), the bound is certainly missed and
    the run stops (``stop_when_bound_missed``). The queries still waiting then have no
    latency: they stay out of the latency distribution, are counted
    (``queries_waiting``) and their waits so far reported apart (``waiting_ms``). A rate
    failure counts only queries that were due when the run stopped.
    """
    s.check()
    run = _server_start(s, clock)
    _serve(service, run)
    t_end = clock.now_ns()
    backlog = _backlog(run, t_end)
    out = _server_document(run, t_end, backlog)
    return _verdict(out, _server_reasons(run, out, backlog), s)


def _server_start(s: ScenarioSettings, clock: Clock) -> _ServerRun:
    arrivals = arrival_schedule(s)
    n = int(arrivals.size)
    pct = HEADLINE_PERCENTILE["server"]
    return _ServerRun(
        s=s,
        clock=clock,
        arrivals=arrivals,
        t0=clock.now_ns(),
        bound_ns=int(s.latency_bound_ms * 1e6) if s.latency_bound_ms else None,
        # p99 (linear interpolation) is certainly over the bound once the sample at
        # rank floor(0.99 * (n - 1)) is: that is, once this many queries are over it
        certain_over=n - math.floor(pct / 100.0 * (n - 1)),
        lat=np.zeros(n, dtype=np.int64),
        wait=np.zeros(n, dtype=np.int64),
    )


def _serve(service: Service, run: _ServerRun) -> None:
    """Serve the queries in order, each once it is due, until done or a stop rule says stop."""
    clock = run.clock
    for i in range(run.n):
        due = run.t0 + int(run.arrivals[i])
        clock.sleep_until(due)
        now = clock.now_ns()
        run.stop_reason = _stop_reason(run, i, now)
        if run.stop_reason:
            return
        service(1)
        run.lat[i] = clock.now_ns() - due
        run.wait[i] = now - due
        if run.bound_ns is not None and run.lat[i] > run.bound_ns:
            run.over += 1
        run.served += 1


def _stop_reason(run: _ServerRun, i: int, now: int) -> str | None:
    """Why the run stops before query ``i`` (the cap, or the bound certainly missed), or None."""
    s = run.s
    if now - run.t0 > int(s.cap_s * 1e9):
        return f"stopped at the --max-duration cap of {s.cap_s:g} s"
    if run.bound_ns is None or not s.stop_when_bound_missed:
        return None
    # served over the bound, plus those waiting whose wait alone is already over it
    waiting_over = max(0, int(np.searchsorted(run.arrivals, now - run.t0 - run.bound_ns, side="right")) - i)
    if run.over + waiting_over < run.certain_over:
        return None
    return (
        f"stopped early: {run.over + waiting_over} of {run.n} queries already exceeded the "
        f"{s.latency_bound_ms:g} ms bound ({run.over} served, {waiting_over} still waiting), "
        f"so p{HEADLINE_PERCENTILE['server']:g} cannot meet it"
    )


def _backlog(run: _ServerRun, t_end: int) -> _Backlog:
    elapsed = t_end - run.t0
    due = max(int(np.searchsorted(run.arrivals, elapsed, side="right")), run.served)
    return _Backlog(due=due, waits_ns=elapsed - run.arrivals[run.served : due], not_due=run.n - due)


def _server_document(run: _ServerRun, t_end: int, backlog: _Backlog) -> dict[str, Any]:
    """The scenario document's server figures: latency over the served queries only."""
    s, n, served = run.s, run.n, run.served
    lat, wait = run.lat[:served], run.wait[:served]
    dur = (t_end - run.t0) / 1e9
    span = run.arrivals[n - 1] / 1e9 if n else 0.0
    p99 = _pct_ms(lat, HEADLINE_PERCENTILE["server"])
    complete = backlog.waiting == 0 and backlog.not_due == 0
    within = bool(p99 is not None and run.bound_ns is not None and p99 <= s.latency_bound_ms and complete)
    bound = run.bound_ns
    return {
        "scenario": "server",
        "settings": s.to_dict(),
        "target_qps": s.target_qps,
        "scheduled_qps": n / span if span > 0 else None,
        "completed_qps": served / dur if dur > 0 else None,
        "queries_scheduled": n,
        "queries": served,
        "queries_waiting": backlog.waiting,
        "queries_not_due": backlog.not_due,
        "duration_s": dur,
        "latency_bound_ms": s.latency_bound_ms,
        "overlatency_queries": int((lat > bound).sum()) if bound is not None else None,
        "waiting_over_bound": int((backlog.waits_ns > bound).sum()) if bound is not None else None,
        "latency_ms": summarize_ns(lat),
        "latency_histogram_ms": histogram_ms(lat / 1e6),
        "queue_ms": summarize_ns(wait),
        "service_ms": summarize_ns(lat - wait),
        **({"waiting_ms": summarize_ns(backlog.waits_ns)} if backlog.waiting else {}),
        "latency_scope": (
            "per served query: from its scheduled arrival (not from when it was issued) to its completion; "
            "queue_ms is the wait from arrival to start, service_ms the query itself"
            + (
                "; waiting_ms: the waits so far of the queries still waiting when the run stopped (not latencies: "
                "they never completed, and are not in latency_ms)"
                if backlog.waiting
                else ""
            )
        ),
        "headline": {"metric": "p99_within_bound", "value": within, "p99_latency_ms": p99, "unit": "ms"},
        "within_bound": within,
        "_window_ns": (run.t0, t_end),
    }


def _server_reasons(run: _ServerRun, out: dict[str, Any], backlog: _Backlog) -> list[str]:
    s = run.s
    reasons = _length_reasons(s, out["duration_s"], run.served)
    if run.stop_reason:
        reasons.append(run.stop_reason)
    if backlog.waiting:
        longest = float(backlog.waits_ns.max()) / 1e6
        reasons.append(
            f"the device could not hold {s.target_qps:g} qps: {backlog.waiting} of the {backlog.due} queries due "
            f"by the stop were still waiting (the longest for {longest:.4g} ms)"
        )
    p99 = out["headline"]["p99_latency_ms"]
    if p99 is not None and s.latency_bound_ms is not None and p99 > s.latency_bound_ms:
        reasons.append(f"bound missed: p99 latency {p99:.4g} ms exceeds the bound of {s.latency_bound_ms:g} ms")
    if backlog.not_due:
        out.setdefault("notes", []).append(
            f"{backlog.not_due} of {run.n} scheduled queries were not yet due when the run stopped (not a rate failure)"
        )
    return reasons


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


@dataclass
class _Search:
    """A max-QPS search as its steps go: every server run, and the bracket [lo, hi]."""

    run_at: Callable[[float], dict[str, Any]]
    ss: SearchSettings
    min_qps: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    lo: float | None = None  # the highest rate that passed
    hi: float | None = None  # the lowest rate that failed
    notes: list[str] = field(default_factory=list)

    @property
    def more(self) -> bool:
        return len(self.steps) < self.ss.max_steps

    def step(self, rate: float, phase: str) -> bool:
        """One full server run at ``rate``, recorded; whether it passed (VALID)."""
        res = self.run_at(rate)
        passed = res["verdict"] == "VALID"
        self.steps.append(
            {
                "phase": phase,
                "target_qps": rate,
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


def find_max_qps(run_at: Callable[[float], dict[str, Any]], ss: SearchSettings) -> dict[str, Any]:
    """The highest server rate whose run is VALID (p99 within the bound), by
    bracketing (doubling up or halving down from ``start_qps``) then binary
    search until the bracket is within ``rel_tolerance``. Every step is a full
    server run and is reported."""
    if not ss.start_qps > 0:
        raise ValueError("the starting rate must be more than 0 qps")
    search = _Search(run_at, ss, ss.min_qps if ss.min_qps is not None else ss.start_qps / 64)
    _bracket(search)
    _bisect(search)
    return _search_document(search)


def _bracket(search: _Search) -> None:
    """Double up from the start while rates pass, or halve down while they fail, until one
    of each is found (or the floor latency or the lowest rate says no rate can pass)."""
    ss, rate = search.ss, search.ss.start_qps
    while search.more:
        if search.step(rate, "bracket"):
            search.lo = rate
            if search.hi is not None:
                return
            rate *= 2
            continue
        search.hi = rate
        if search.lo is not None:
            return
        if ss.floor_latency_ms is not None and ss.floor_latency_ms > ss.latency_bound_ms:
            search.notes.append(
                f"one query alone takes {ss.floor_latency_ms:.4g} ms (p99 without queueing), more than the "
                f"{ss.latency_bound_ms:g} ms bound: no rate can meet it"
            )
            return
        rate /= 2
        if rate < search.min_qps:
            search.notes.append(f"gave up below {search.min_qps:.4g} qps")
            return


def _bisect(search: _Search) -> None:
    """Halve the bracket until it is within the tolerance or the steps run out."""
    while search.lo is not None and search.hi is not None and search.more:
        if (search.hi - search.lo) / search.lo <= search.ss.rel_tolerance:
            return
        mid = (search.lo + search.hi) / 2
        if search.step(mid, "bisect"):
            search.lo = mid
        else:
            search.hi = mid


def _search_document(search: _Search) -> dict[str, Any]:
    ss, lo, hi, notes = search.ss, search.lo, search.hi, search.notes
    reasons = []
    if lo is None:
        tried = ", ".join(f"{st['target_qps']:.4g}" for st in search.steps)
        reasons.append(
            f"no rate meets the bound: every rate tried ({tried} qps) "
            f"had p99 above {ss.latency_bound_ms:g} ms or could not be held"
        )
    elif hi is None:
        notes.append(f"no failing rate found within {ss.max_steps} steps: the maximum is at least {lo:.4g} qps")
    elif (hi - lo) / lo > ss.rel_tolerance:
        notes.append(
            f"the search stopped after {ss.max_steps} steps with the maximum between {lo:.4g} and {hi:.4g} qps"
        )
    out = {
        "scenario": "find-max-qps",
        "latency_bound_ms": ss.latency_bound_ms,
        "max_qps": lo,
        "bracket_qps": [lo, hi],
        "steps": search.steps,
        "headline": {"metric": "max_qps", "value": lo, "unit": "queries/s"},
        "search": {
            "start_qps": ss.start_qps,
            "max_steps": ss.max_steps,
            "rel_tolerance": ss.rel_tolerance,
            "min_qps": search.min_qps,
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
