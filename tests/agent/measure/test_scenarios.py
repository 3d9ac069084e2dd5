"""The scenario scheduling logic against a deterministic fake service on a virtual
clock, where every latency and queueing delay is known exactly."""

from dataclasses import replace

import numpy as np
import pytest

from edgebench.agent.measure.scenarios import (
    ScenarioSettings,
    SearchSettings,
    VirtualClock,
    arrival_schedule,
    early_stopping,
    find_max_qps,
    run_scenario,
    run_server,
    server_at,
)

MS = 1_000_000


class FakeService:
    """Takes exactly ``per_sample_ns`` per sample (plus ``per_query_ns``), on the virtual clock."""

    def __init__(self, clock: VirtualClock, per_sample_ns: int, per_query_ns: int = 0):
        self.clock, self.per_sample_ns, self.per_query_ns = clock, per_sample_ns, per_query_ns
        self.calls: list[tuple[int, int]] = []  # (start ns, samples)

    def __call__(self, n: int) -> None:
        self.calls.append((self.clock.now_ns(), n))
        self.clock.advance(self.per_query_ns + n * self.per_sample_ns)


def lindley(arrivals_ns: np.ndarray, service_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact FIFO single-server latencies and waits: start_i = max(a_i, finish_{i-1})."""
    finish = -1
    lat, wait = [], []
    for a in arrivals_ns:
        start = max(int(a), finish)
        finish = start + service_ns
        lat.append(finish - a)
        wait.append(start - a)
    return np.array(lat), np.array(wait)


def server_settings(**kw):
    base = dict(
        scenario="server",
        target_qps=100.0,
        latency_bound_ms=50.0,
        duration_s=3.0,
        min_queries=10,
        min_duration_s=1.0,
        seed=7,
    )
    base.update(kw)
    return ScenarioSettings(**base)


def test_server_poisson_latencies_match_the_lindley_recursion_exactly():
    clock = VirtualClock(5 * 10**9)  # any origin
    svc = FakeService(clock, 6 * MS)
    s = server_settings(target_qps=120.0, latency_bound_ms=1000.0)  # 72 % load: queues form and drain
    res = run_server(svc, s, clock)
    arrivals = arrival_schedule(s)
    lat, wait = lindley(arrivals, 6 * MS)
    assert res["queries"] == len(arrivals) == 360
    assert res["queries_waiting"] == 0
    assert wait.max() > 6 * MS  # the test has real queueing in it
    for k in ("mean", "p50", "p90", "p99", "max"):
        fn = {"mean": np.mean, "max": np.max}.get(k, lambda a, q=k: np.percentile(a, float(q[1:])))
        assert res["latency_ms"][k] == pytest.approx(fn(lat) / MS, abs=1e-4), k
        assert res["queue_ms"][k] == pytest.approx(fn(wait) / MS, abs=1e-4), k
    assert res["service_ms"]["min"] == res["service_ms"]["max"] == 6.0
    # each query started exactly when it had arrived and the previous one was done
    starts = np.array([t for t, _ in svc.calls]) - 5 * 10**9
    assert np.array_equal(starts, arrivals + wait)
    assert res["verdict"] == "VALID" and res["within_bound"] is True


def test_server_latency_counts_from_scheduled_arrival_when_the_system_falls_behind():
    # uniform arrivals every 10 ms, each query takes 12 ms: query i finishes at
    # (i + 1) * 12 ms after the first arrival, so its latency is 12 + 2 * i ms exactly
    clock = VirtualClock()
    s = server_settings(
        target_qps=100.0, arrivals="uniform", latency_bound_ms=10_000.0, queries=50, min_queries=0, min_duration_s=0
    )
    res = run_server(FakeService(clock, 12 * MS), s, clock)
    expected = 12.0 + 2.0 * np.arange(50)
    assert res["latency_ms"]["min"] == 12.0
    assert res["latency_ms"]["max"] == pytest.approx(expected[-1])
    assert res["latency_ms"]["mean"] == pytest.approx(expected.mean())
    assert res["queue_ms"]["max"] == pytest.approx(2.0 * 49)
    # measured from issue time instead, every query would look like 12 ms: that is coordinated omission
    assert res["service_ms"]["max"] == 12.0


def test_server_below_capacity_has_no_queueing_and_meets_the_bound():
    clock = VirtualClock()
    s = server_settings(target_qps=50.0, arrivals="uniform", latency_bound_ms=5.0)
    res = run_server(FakeService(clock, 4 * MS), s, clock)
    assert res["latency_ms"]["min"] == res["latency_ms"]["max"] == 4.0
    assert res["queue_ms"]["max"] == 0.0
    assert res["verdict"] == "VALID" and res["headline"] == {
        "metric": "p99_within_bound",
        "value": True,
        "p99_latency_ms": 4.0,
        "unit": "ms",
    }
    assert res["completed_qps"] == pytest.approx(150 / res["duration_s"], rel=1e-4)


def test_server_that_cannot_hold_the_rate_is_invalid_with_the_reasons_and_stops_early():
    clock = VirtualClock()
    s = server_settings(target_qps=1000.0, latency_bound_ms=20.0, duration_s=5.0)  # 5000 queries, capacity 250/s
    res = run_server(FakeService(clock, 4 * MS), s, clock)
    assert res["verdict"] == "INVALID"
    text = " ".join(res["reasons"])
    assert "stopped early" in text and "could not hold 1000 qps" in text and "bound missed" in text
    assert res["queries"] < 200  # it did not grind through the whole backlog
    assert res["queries_waiting"] > 0
    # the served queries' p99 is over the bound; the waiting ones are counted apart
    assert res["headline"]["p99_latency_ms"] > 20.0
    assert res["within_bound"] is False


def test_server_cap_stops_a_run_that_never_ends():
    clock = VirtualClock()
    s = server_settings(target_qps=400.0, latency_bound_ms=10_000.0, duration_s=2.0, max_duration_s=3.0)
    res = run_server(FakeService(clock, 4 * MS), s, clock)
    assert res["duration_s"] <= 3.0 + 0.005
    assert any("--max-duration cap" in r for r in res["reasons"])
    assert res["queries_waiting"] + res["queries_not_due"] > 0


def test_server_schedule_is_seeded_poisson():
    s = server_settings(target_qps=200.0, duration_s=50.0)
    a = arrival_schedule(s)
    assert np.array_equal(a, arrival_schedule(s))
    assert not np.array_equal(a, arrival_schedule(replace(s, seed=8)))
    gaps = np.diff(a) / 1e9
    assert gaps.mean() == pytest.approx(1 / 200, rel=0.05)
    assert gaps.std() == pytest.approx(1 / 200, rel=0.1)  # exponential: std == mean


def test_single_stream_multi_stream_and_offline_are_exact_on_the_virtual_clock():
    clock = VirtualClock()
    svc = FakeService(clock, 3 * MS, per_query_ns=1 * MS)
    ss = run_scenario(svc, ScenarioSettings("single-stream", duration_s=1.0, min_queries=10), clock)
    assert ss["queries"] == 250 and ss["latency_ms"]["p90"] == 4.0
    assert ss["headline"] == {"metric": "p90_latency_ms", "value": 4.0, "unit": "ms"}
    assert ss["verdict"] == "VALID" and ss["early_stopping"]["met"] and ss["early_stopping"]["estimate_ms"] == 4.0
    ms = run_scenario(svc, ScenarioSettings("multi-stream", duration_s=1.0, min_queries=10, samples_per_query=8), clock)
    assert ms["latency_ms"]["p99"] == 25.0 and ms["samples"] == 8 * ms["queries"]
    assert ms["headline"]["metric"] == "p99_latency_ms"
    assert all(n == 8 for _, n in svc.calls[-ms["queries"] :])
    off = run_scenario(
        svc, ScenarioSettings("offline", duration_s=1.0, min_queries=10, offline_samples=1000, batch=4), clock
    )
    # 250 batches of 4 samples, each 1 + 4 * 3 ms
    assert off["samples"] == 1000 and off["duration_s"] == pytest.approx(250 * 0.013)
    assert off["headline"]["value"] == pytest.approx(1000 / (250 * 0.013), rel=1e-6)


def test_runs_last_until_duration_and_min_queries_are_both_met():
    clock = VirtualClock()
    res = run_scenario(
        FakeService(clock, 100 * MS), ScenarioSettings("single-stream", duration_s=1.0, min_queries=30), clock
    )
    assert res["queries"] == 30 and res["duration_s"] == pytest.approx(3.0)
    assert res["verdict"] == "VALID"


@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(duration_s=0.2, min_duration_s=1.0, queries=20, min_queries=10), "too short"),
        (dict(duration_s=5.0, queries=5, min_queries=64), "too few queries: 5"),
        (dict(duration_s=1.0, min_queries=10, latency_bound_ms=3.0), "bound missed: p90 latency 4.000 ms"),
    ],
)
def test_invalid_verdicts_say_why(settings, words):
    clock = VirtualClock()
    res = run_scenario(FakeService(clock, 4 * MS), ScenarioSettings("single-stream", **settings), clock)
    assert res["verdict"] == "INVALID"
    assert any(words in r for r in res["reasons"]), res["reasons"]


def test_early_stopping_matches_a_brute_force_binomial():
    from math import comb

    lat = np.arange(1, 101, dtype=np.int64) * MS  # 1..100 ms
    es = early_stopping(lat, 90.0, 0.99)
    # smallest k with P(Binomial(100, 0.9) <= k - 1) >= 0.99
    cdf = 0.0
    for k in range(1, 101):
        cdf += comb(100, k - 1) * 0.9 ** (k - 1) * 0.1 ** (101 - k)
        if cdf >= 0.99:
            break
    assert es["met"] and es["estimate_ms"] == float(k)
    assert es["queries_needed"] == 44
    assert early_stopping(lat[:43], 90.0)["met"] is False


def test_find_max_qps_brackets_and_bisects_to_the_capacity():
    # uniform arrivals, 4 ms per query: every rate up to 250 qps has no queueing at all
    clock = VirtualClock()
    base = server_settings(arrivals="uniform", latency_bound_ms=20.0, duration_s=2.0)
    res = find_max_qps(
        server_at(FakeService(clock, 4 * MS), base, clock), SearchSettings(latency_bound_ms=20.0, start_qps=40.0)
    )
    lo, hi = res["bracket_qps"]
    assert res["verdict"] == "VALID" and res["max_qps"] == lo
    assert lo >= 250.0 and hi > lo and (hi - lo) / lo <= 0.05
    assert [st["phase"] for st in res["steps"][:4]] == ["bracket"] * 4  # 40, 80, 160, 320
    assert [st["target_qps"] for st in res["steps"][:4]] == [40.0, 80.0, 160.0, 320.0]
    passed = {st["target_qps"]: st["passed"] for st in res["steps"]}
    assert passed[lo] is True and passed[hi] is False
    assert all(st["passed"] == (st["target_qps"] <= lo) for st in res["steps"])


def test_find_max_qps_reports_no_rate_meets_an_impossible_bound():
    clock = VirtualClock()
    base = server_settings(latency_bound_ms=3.0, duration_s=1.0)
    res = find_max_qps(
        server_at(FakeService(clock, 4 * MS), base, clock),
        SearchSettings(latency_bound_ms=3.0, start_qps=100.0, floor_latency_ms=4.0),
    )
    assert res["verdict"] == "INVALID" and res["max_qps"] is None
    assert "no rate meets the bound" in res["reasons"][0]
    assert len(res["steps"]) == 1 and "no rate can meet it" in res["notes"][0]


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(scenario="server", latency_bound_ms=10.0), "needs --target-qps"),
        (dict(scenario="server", target_qps=10.0), "needs --latency-bound-ms"),
        (dict(scenario="batch-stream"), "unknown scenario"),
        (dict(scenario="multi-stream", samples_per_query=0), "--samples-per-query"),
    ],
)
def test_bad_settings_are_one_line(kw, words):
    with pytest.raises(ValueError, match=words.replace("-", r"\-")):
        ScenarioSettings(**kw).check()


def test_early_stop_only_when_the_bound_is_certainly_missed():
    # 100 uniform queries; the first two take 30 ms (over a 20 ms bound), the rest 1 ms.
    # p99 over 100 samples sits between the 99th and 100th values, so two over the
    # bound do decide it (x[98] > bound) but one alone does not: no early stop at one.
    clock = VirtualClock()
    times = iter([30 * MS, 1 * MS] + [1 * MS] * 98)

    def svc(n):
        clock.advance(next(times))

    s = server_settings(target_qps=10.0, arrivals="uniform", latency_bound_ms=20.0, queries=100, min_queries=0)
    res = run_server(svc, s, clock)
    assert res["queries"] == 100 and res["verdict"] == "VALID"
    assert res["overlatency_queries"] == 1
    clock = VirtualClock()
    times = iter([30 * MS, 30 * MS] + [1 * MS] * 98)
    res = run_server(svc, s, clock)
    assert res["queries"] == 2 and res["verdict"] == "INVALID"
    assert "stopped early: 2 of 100" in " ".join(res["reasons"])


def test_offline_query_is_sized_again_when_the_calibration_was_slow():
    clock = VirtualClock()
    per = iter([10 * MS] * 20 + [1 * MS] * 100_000)  # slow while calibrating, then 10x faster

    def svc(n):
        clock.advance(next(per) * n)

    res = run_scenario(svc, ScenarioSettings("offline", duration_s=1.0, min_queries=10), clock)
    assert res["verdict"] == "VALID", res["reasons"]
    assert res["duration_s"] >= 1.0 and res["samples"] == res["samples_requested"]
    assert any("run again" in n for n in res["notes"])


def test_server_early_stop_keeps_waiting_queries_out_of_the_latency_distribution():
    """Issue 16, item 2: known service times on the virtual clock. Uniform arrivals every
    10 ms at 100 qps, a bound of 40 ms; the first 20 queries take 2 ms, then every query
    takes 15.4 ms, so the queue grows by 5.4 ms a query until the bound is certainly
    missed and the run stops with queries still waiting."""
    clock = VirtualClock()
    fast, slow = 2 * MS, int(15.4 * MS)
    times = iter([fast] * 20 + [slow] * 10_000)

    def svc(n):
        clock.advance(next(times))

    s = server_settings(target_qps=100.0, arrivals="uniform", latency_bound_ms=40.0, queries=200, min_queries=0)
    res = run_server(svc, s, clock)
    assert res["verdict"] == "INVALID"
    served = res["queries"]
    assert 20 < served < 200
    # no query finishes faster than its own service time: latency >= service, min 2 ms
    assert res["latency_ms"]["min"] >= res["service_ms"]["min"] == 2.0
    assert res["service_ms"]["max"] == pytest.approx(15.4)
    # latencies match the Lindley recursion over the served queries exactly
    arrivals = arrival_schedule(s)
    exact, _ = lindley_var(arrivals[:served], [fast] * 20 + [slow] * (served - 20))
    assert res["latency_ms"]["max"] == pytest.approx(exact.max() / MS, abs=1e-4)
    assert res["latency_ms"]["mean"] == pytest.approx(exact.mean() / MS, abs=1e-4)
    # the waiting queries are counted, with their waits apart; the early stop counted them too
    waiting = res["queries_waiting"]
    assert waiting > 0 and res["waiting_ms"]["max"] > 0
    assert res["queries"] + waiting + res["queries_not_due"] == 200
    stop = next(r for r in res["reasons"] if r.startswith("stopped early"))
    assert "still waiting" in stop
    # a rate failure counts only the queries that were due, never those not yet due
    rate = next(r for r in res["reasons"] if "could not hold" in r)
    assert f"{waiting} of the {served + waiting} queries due by the stop were still waiting" in rate
    assert "not yet due" not in rate and res["queries_not_due"] > 0
    assert any("not yet due" in n for n in res["notes"])


def lindley_var(arrivals_ns, service_ns):
    """lindley() with a service time per query."""
    finish, lat, wait = -1, [], []
    for a, sv in zip(arrivals_ns, service_ns):
        start = max(int(a), finish)
        finish = start + int(sv)
        lat.append(finish - a)
        wait.append(start - a)
    return np.array(lat), np.array(wait)
