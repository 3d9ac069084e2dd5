"""Energy integration against synthetic power traces with known integrals, and the sampler thread."""

from __future__ import annotations

import math
import threading

import pytest

from edgebench.agent.probes._fs import ProbeError, SysFS
from edgebench.agent.probes.power import METHOD_COUNTER, PowerReading, PowerSource
from edgebench.agent.probes.rapl import Rapl, find_rapl
from edgebench.agent.probes.sampler import (
    Sample,
    Sampler,
    integrate_counter,
    integrate_power,
    power_points,
    summarize_power,
    window_slice,
)
from tests.support.probes_fakes import RAPL, RAPL_PKG, write_tree

S = 1_000_000_000


def trace(f, t_start: float, t_end: float, hz: float = 10.0):
    n = int(round((t_end - t_start) * hz))
    return [(int(round((t_start + i / hz) * S)), f(t_start + i / hz)) for i in range(n + 1)]


def test_constant_power():
    it = integrate_power(trace(lambda t: 4.0, 0, 3), 0, 3 * S)
    assert it.energy_j == pytest.approx(12.0)
    assert it.mean_w == pytest.approx(4.0) and it.min_w == 4.0 and it.max_w == 4.0
    assert it.window_s == 3.0 and it.samples == 31 and it.gaps == 0 and it.gap_s == 0


def test_linear_ramp_is_exact_and_clipped_to_the_window():
    pts = trace(lambda t: 2 + 3 * t, 0, 2)
    assert integrate_power(pts, 0, 2 * S).energy_j == pytest.approx(10.0)  # 2*2 + 1.5*2^2
    # a window between samples: power interpolated at the edges; 2*1.5 + 1.5*(1.75^2 - 0.25^2)
    it = integrate_power(pts, int(0.25 * S), int(1.75 * S))
    assert it.energy_j == pytest.approx(7.5)
    assert it.mean_w == pytest.approx(5.0)
    assert it.min_w == pytest.approx(2.75) and it.max_w == pytest.approx(7.25)


def test_sine_trace_close_to_analytic():
    f = lambda t: 5 + 2 * math.sin(2 * math.pi * t / 4)  # noqa: E731
    exact = 5 + 4 / math.pi  # integral over [0, 1] s
    it = integrate_power(trace(f, 0, 2, hz=10), 0, S)
    assert it.energy_j == pytest.approx(exact, rel=1e-3)
    # a full period integrates to its mean exactly, whatever the rate
    assert integrate_power(trace(f, 0, 4, hz=3), 0, 4 * S).energy_j == pytest.approx(20.0, rel=1e-9)


def test_step_trace_trapezoid_error_is_bounded_by_one_interval():
    pts = trace(lambda t: 1.0 if t < 1.0 - 1e-9 else 3.0, 0, 2)
    # exact: 1 W x 1 s + 3 W x 1 s; the step falls between the 0.9 s and 1.0 s samples, so the
    # trapezoid ramps over that interval: + (3 - 1) W x 0.1 s / 2
    assert integrate_power(pts, 0, 2 * S).energy_j == pytest.approx(4.0 + 0.1)


def test_gaps_are_bridged_and_counted_never_zeros():
    pts = trace(lambda t: 2 + 3 * t, 0, 2)
    pts[10] = (pts[10][0], None)  # the 1.0 s reading failed
    it = integrate_power(pts, 0, 2 * S)
    assert it.energy_j == pytest.approx(10.0)  # linear power: bridging is exact
    assert it.gaps == 1
    assert it.gap_s == pytest.approx(0.2)  # the two intervals next to the failed reading
    # constant 5 W with failed readings: never pulled towards 0
    flat = [(0, 5.0), (S // 10, None), (2 * S // 10, None), (3 * S // 10, 5.0)]
    it = integrate_power(flat, 0, 3 * S // 10)
    assert it.mean_w == pytest.approx(5.0) and it.gaps == 2 and it.gap_s == pytest.approx(0.3)


def test_edges_without_readings_hold_the_nearest_and_count_as_gap():
    pts = [(S, 3.0), (2 * S, 3.0)]
    it = integrate_power(pts, 0, 3 * S)
    assert it.energy_j == pytest.approx(9.0)
    assert it.gap_s == pytest.approx(2.0)


def test_nothing_to_integrate():
    assert integrate_power([(0, None), (S, None)], 0, S) is None
    assert integrate_power([(0, 1.0)], S, S) is None


def test_counter_difference_interpolated_at_the_edges():
    # 3 W: cumulative energy 100 J + 3 J/s
    pts = trace(lambda t: 100 + 3 * t, 0, 2)
    it = integrate_counter(pts, int(0.25 * S), int(1.75 * S))
    assert it.energy_j == pytest.approx(4.5)
    assert it.mean_w == pytest.approx(3.0) and it.min_w == pytest.approx(3.0) and it.max_w == pytest.approx(3.0)
    # beyond the last reading: extrapolated at the last rate
    assert integrate_counter(pts, S, 3 * S).energy_j == pytest.approx(6.0)
    # a failed read inside does not lose energy: the counter kept counting
    pts[5] = (pts[5][0], None)
    it = integrate_counter(pts, 0, 2 * S)
    assert it.energy_j == pytest.approx(6.0) and it.gaps == 1
    assert integrate_counter([(0, 1.0)], 0, S) is None


def test_rapl_trace_across_a_wraparound(tmp_path):
    """Counter readings through the real RAPL reader, wrapping mid-trace."""
    fs = SysFS(write_tree(tmp_path, RAPL))
    src = Rapl(fs, find_rapl(fs))
    max_range = 262143999938
    raw = 262142000000
    pts = []
    for i in range(6):  # 0.5 J per 0.1 s = 5 W, wraps after the 2nd step
        (tmp_path / RAPL_PKG / "energy_uj").write_text(f"{raw}\n")
        pts.append((i * S // 10, src.read().energy_j))
        raw = (raw + 500_000) % max_range
    it = integrate_counter(pts, 0, S // 2)
    assert it.energy_j == pytest.approx(2.5)
    assert it.mean_w == pytest.approx(5.0)


class FakeSource(PowerSource):
    name = "fake"
    scope = "a fake test source"

    def __init__(self, values, method="trapezoid", rails=()):
        self.values = list(values)
        self.method = method
        self.rails = list(rails)
        self.calls = 0
        self.enough = threading.Event()

    def read(self) -> PowerReading:
        self.calls += 1
        if self.calls >= 8:
            self.enough.set()
        v = self.values[(self.calls - 1) % len(self.values)]
        if v is None:
            raise ProbeError("sensor hiccup")
        return PowerReading(total_w=v, rails_w={r: v / len(self.rails) for r in self.rails})


def samples_from(points, rails=()):
    out = []
    for t, w in points:
        if w is None:
            out.append(Sample(t_ns=t, power_error="sensor hiccup"))
        else:
            out.append(Sample(t_ns=t, power=PowerReading(total_w=w, rails_w={r: w / 2 for r in rails})))
    return out


def test_power_section_gross_and_net_per_inference():
    # idle 2 W for 1 s, then the run at 5 W for 2 s with 100 frames
    pts = trace(lambda t: 2.0 if t <= 1.0 else 5.0, 0, 3.0)
    pts = [(t, 2.0) if t <= S else (t, 5.0) for t, _ in pts]
    samples = samples_from(pts, rails=("A", "B"))
    src = FakeSource([1.0], rails=("A", "B"))
    out = summarize_power(samples, src, (S + S // 10, 3 * S), 100, (0, S), hz=10.0, span_s=3.0)
    window = 1.9
    assert out["source"] == "fake" and out["method"] == "trapezoid" and out["available"] is True
    assert out["window_s"] == pytest.approx(window)
    assert out["mean_w"] == pytest.approx(5.0)
    assert out["energy_j"] == pytest.approx(5.0 * window)
    assert out["idle_w"] == pytest.approx(2.0) and out["idle_s"] == pytest.approx(1.0)
    assert out["net_energy_j"] == pytest.approx(3.0 * window)
    assert out["energy_per_inference_mj"]["gross"] == pytest.approx(5.0 * window / 100 * 1000)
    assert out["energy_per_inference_mj"]["net"] == pytest.approx(3.0 * window / 100 * 1000)
    assert out["rails_mean_w"] == {"A": pytest.approx(2.5), "B": pytest.approx(2.5)}
    assert out["samples"] == 20 and out["gaps"] == 0
    assert out["sampling_rate_hz"] == pytest.approx(10.0)
    assert "warmup excluded" in out["energy_scope"]


def test_power_section_without_idle_baseline_has_no_net():
    samples = samples_from(trace(lambda t: 5.0, 0, 1))
    out = summarize_power(samples, FakeSource([1.0]), (0, S), 10, None, hz=10.0, span_s=1.0)
    assert out["energy_per_inference_mj"] == {"gross": pytest.approx(500.0), "net": None}
    assert out["idle_w"] is None and "idle_note" in out


def test_counter_source_section():
    samples = [Sample(t_ns=t, power=PowerReading(energy_j=e)) for t, e in trace(lambda t: 50 + 4 * t, 0, 2)]
    src = FakeSource([1.0], method=METHOD_COUNTER)
    out = summarize_power(samples, src, (S // 2, 2 * S), 30, (0, S // 2), hz=10.0, span_s=2.0)
    assert out["method"] == "energy-counter"
    assert out["energy_j"] == pytest.approx(6.0) and out["mean_w"] == pytest.approx(4.0)
    assert out["energy_per_inference_mj"]["gross"] == pytest.approx(200.0)
    assert out["net_energy_j"] == pytest.approx(0.0, abs=1e-9)


def test_window_slice_brackets_the_window():
    pts = [(i * S, i) for i in range(10)]
    assert [v for _, v in window_slice(pts, int(2.5 * S), int(5.5 * S))] == [2, 3, 4, 5, 6]
    assert [v for _, v in window_slice(pts, 3 * S, 5 * S)] == [3, 4, 5]
    assert [v for _, v in window_slice(pts, -S, S // 2)] == [0, 1]


def test_sampler_thread_records_gaps_not_zeros():
    src = FakeSource([3.0, None, 3.0])
    sampler = Sampler(power=src, hz=100.0).start()
    try:
        assert src.enough.wait(60), "the sampler never took 8 readings"
    finally:
        sampler.stop()
    samples = sampler.snapshot()
    assert len(samples) >= 9  # start sample, thread ticks, stop sample
    ts = [s.t_ns for s in samples]
    assert ts == sorted(ts)
    values = [s.power.total_w for s in samples if s.power is not None]
    assert values and set(values) == {3.0}
    failed = [s for s in samples if s.power_error is not None]
    assert failed and all(s.power is None and s.power_error == "sensor hiccup" for s in failed)
    assert sampler.errors == {"sensor hiccup": len(failed)}
    assert [v for _, v in power_points(samples, counter=False)].count(None) == len(failed)
    st = sampler.stats()
    assert st["sampler_samples"] == len(samples) and st["sampler_hz_target"] == 100.0
    assert st["sampler_read_ms_mean"] >= 0
    assert sampler.cpu_s > 0


def test_a_source_with_its_own_timestamps_is_not_counted_twice():
    class Stale(PowerSource):
        name = "stale"

        def read(self):
            return PowerReading(total_w=1.0, t_ns=12345)

    sampler = Sampler(power=Stale(), hz=10.0)
    a, b = sampler.sample(), sampler.sample()
    assert a.power is not None and a.power.t_ns == 12345
    assert b.power is None and b.power_error is None  # no new reading: neither a value nor a gap


def test_long_runs_are_decimated_not_unbounded():
    src = FakeSource([2.0, 2.0, None])
    clock = iter(range(0, 10**12, S // 10))
    sampler = Sampler(power=src, hz=10.0, clock=lambda: next(clock), max_samples=100)
    for _ in range(450):
        sampler.sample()
    samples = sampler.snapshot()
    assert len([s for s in samples if s.power is not None]) <= 100
    assert sampler.decimations >= 2 and sampler.period_ns == (S // 10) * 2**sampler.decimations
    failed = [s for s in samples if s.power_error]
    assert len(failed) == 150  # failed readings are never dropped: gaps stay counted
    ts = [s.t_ns for s in samples]
    assert ts == sorted(ts) and ts[-1] == max(ts)
    assert sampler.stats()["sampler_decimations"] == sampler.decimations


def test_bad_rate():
    with pytest.raises(ValueError):
        Sampler(hz=0)
