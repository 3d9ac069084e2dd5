import numpy as np

from agent.protocol import STATS
from agent.stats import summarize_ms, summarize_ns


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
