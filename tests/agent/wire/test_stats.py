import numpy as np
import pytest

from edgebench.agent.wire.protocol import STATS
from edgebench.agent.wire.stats import summarize_ms, summarize_ns


def test_percentiles_match_numpy_on_recorded_samples():
    rng = np.random.default_rng(7)
    samples = rng.lognormal(mean=1.0, sigma=0.6, size=1013)
    s = summarize_ms(samples)
    for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        assert s[name] == round(float(np.percentile(samples, q)), 4)
    assert s["mean"] == round(float(samples.mean()), 4)
    assert s["std"] == round(float(samples.std()), 4)
    assert s["min"] == round(float(samples.min()), 4) and s["max"] == round(float(samples.max()), 4)
    assert list(s) == list(STATS)


def test_nanoseconds_become_milliseconds():
    s = summarize_ns(np.array([1_000_000, 3_000_000], dtype=np.int64))
    assert s["min"] == 1.0 and s["max"] == 3.0 and s["p50"] == 2.0


def test_empty_sample_gives_none_not_zero():
    assert all(v is None for v in summarize_ms([]).values())


def test_streaming_stats_is_exact_below_the_cap():
    from edgebench.agent.wire.stats import StreamingStats

    rng = np.random.default_rng(3)
    data = (rng.lognormal(14, 0.4, 5000)).astype(np.int64)
    st = StreamingStats(exact_cap=10_000)
    for chunk in np.array_split(data, 7):
        st.add(chunk)
    assert st.exact and st.summary_ms() == summarize_ns(data)


def test_streaming_stats_is_bounded_and_within_its_error_above_the_cap():
    from edgebench.agent.wire.stats import StreamingStats

    rng = np.random.default_rng(4)
    data = (rng.lognormal(15, 0.5, 300_000) + 1000).astype(np.int64)
    st = StreamingStats(exact_cap=50_000, alpha=0.005)
    for chunk in np.array_split(data, 60):
        st.add(chunk)
    assert not st.exact and st.samples_ns().size == 0  # nothing kept per sample
    assert len(st._buckets) < 2000
    got, want = st.summary_ms(), summarize_ns(data)
    for k in ("p50", "p90", "p95", "p99", "p999"):
        assert abs(got[k] - want[k]) / want[k] <= 0.006, k
    for k in ("mean", "std"):  # running moments stay exact
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-4)
    assert got["min"] == want["min"] and got["max"] == want["max"]
    h = st.histogram_ms()
    assert sum(h["counts"]) == data.size and len(h["edges_ms"]) == len(h["counts"]) + 1
    assert "log-buckets" in st.method


def test_histogram_counts_every_sample():
    from edgebench.agent.wire.stats import histogram_ms

    h = histogram_ms(np.array([1.0, 1.0, 2.0, 5.0, 9.0]), bins=4)
    assert sum(h["counts"]) == 5 and h["edges_ms"][0] <= 1.0 and h["edges_ms"][-1] >= 9.0
