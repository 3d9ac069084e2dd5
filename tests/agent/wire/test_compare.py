"""The one comparison method: the one-pass bootstrap draws the same resamples as one
bootstrap per statistic, and a baseline's replicates are reused, not redrawn."""

import numpy as np

from edgebench.agent.wire import compare
from edgebench.agent.wire.compare import block_bootstrap, block_bootstrap_many, compare_samples


def test_one_pass_gives_each_statistic_the_replicates_of_its_own_bootstrap():
    x = np.random.default_rng(3).gamma(3.0, 2.0, 1234)
    stats = {"mean": np.mean, "p90": lambda a, axis: np.percentile(a, 90, axis=axis)}
    many = block_bootstrap_many(x, stats, B=300, seed=5)
    for k, stat in stats.items():
        assert np.array_equal(many[k], block_bootstrap(x, stat, B=300, seed=5)), k
    # a circular block resample keeps only values of x, and its mean moves around x's
    assert many["mean"].shape == (300,) and many["mean"].std() > 0
    assert abs(many["mean"].mean() - x.mean()) < 0.1


def test_a_resample_is_made_of_circular_blocks_of_the_samples():
    x = np.arange(10.0)  # blocks of 3 (round(sqrt(10))); the last wraps to the start
    firsts = block_bootstrap_many(x, {"rows": lambda a, axis: a.T}, B=50, seed=1)["rows"]
    for row in firsts.T:  # each replicate: 4 blocks cut to 10 values
        for start in range(0, 9, 3):
            a, b, c = row[start : start + 3]
            assert (b - a) % 10 == 1 and (c - b) % 10 == 1, row


def test_a_baseline_judged_against_many_runs_is_resampled_once():
    rng = np.random.default_rng(9)
    base = {"e2e": rng.gamma(3, 2, 2500), "inference": rng.gamma(2, 2, 2500)}
    compare._CACHE.clear()
    slower = compare_samples({"e2e": base["e2e"] * 1.2, "inference": base["inference"] * 1.2}, base)
    assert len(compare._CACHE) == 4  # e2e and inference, of the run and of the baseline
    same = compare_samples({"e2e": rng.gamma(3, 2, 2500), "inference": rng.gamma(2, 2, 2500)}, base)
    assert len(compare._CACHE) == 6  # the new run's two arrays; the baseline's were reused
    verdict = {m["metric"]: m["beyond_noise"] for m in slower["metrics"]}
    assert verdict["e2e p50"] is True and verdict["fps"] is True
    assert {m["metric"]: m["beyond_noise"] for m in same["metrics"]}["e2e p50"] is False
    # the cache returns what a fresh draw gives
    compare._CACHE.clear()
    again = compare_samples({"e2e": base["e2e"] * 1.2, "inference": base["inference"] * 1.2}, base)
    assert again == slower
