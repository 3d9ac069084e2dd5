"""The regression watch's verdicts on stored runs of known per-frame samples: the same
distribution is within noise, 1.6x slower is slower, 0.6x is faster, a 4 % shift that the
bootstrap sees is still within noise (below MIN_CHANGE_PCT), another thread count shares
the key, another model is its own key; set, list and clear baselines."""

import numpy as np
import pytest

from edgebench.agent.errors import UserError
from edgebench.collector.aggregate import regressions as rg
from tests.support.fleet import as_message, columns, frames, meta, result_doc, summary

SHA2 = "cd" * 32


def _store_run(store, run, scale, seq, rng, *, threads=2, sha=None):
    cols = columns(2000, rng, scale)
    res = result_doc("dev", run, cols)
    m = meta("dev", 1, seq, run)
    res["runtime"]["num_threads"] = m["runtime"]["num_threads"] = threads
    if sha:
        res["model"]["sha256"] = m["model"]["sha256"] = sha
    store.apply(
        [
            as_message(m),
            as_message(frames("dev", 1, seq + 1, run, 0, cols)),
            as_message(summary("dev", 1, seq + 2, res)),
        ]
    )
    return rg.watch(store, "dev", run)


def test_verdicts_by_the_bootstrap_and_the_floor(store):
    rng = np.random.default_rng(5)
    assert _store_run(store, "base", 1.0, 1, rng) is None  # the first run of a key becomes its baseline
    assert rg.list_baselines(store)[0]["how"] == "first"
    assert _store_run(store, "same", 1.0, 4, rng)["verdict"] == "within noise"
    slow = _store_run(store, "slow", 1.6, 7, rng, threads=1)  # another thread count: the same key
    assert slow["verdict"] == "slower" and slow["baseline"] == "dev/base"
    assert any(m["beyond_noise"] and m["metric"] == "e2e p50" and m["ci95"][0] > 0 for m in slow["metrics"])
    assert _store_run(store, "fast", 0.6, 10, rng)["verdict"] == "faster"
    small = _store_run(store, "small", 1.04, 13, rng)
    assert any(m["beyond_noise"] for m in small["metrics"]), "the bootstrap should see a 4 % shift in 2000 frames"
    assert small["verdict"] == "within noise"
    # another model is another key: its first run is its baseline, nothing judged
    assert _store_run(store, "other", 1.6, 16, rng, sha=SHA2) is None
    assert len(rg.list_baselines(store)) == 2
    rows = rg.regression_rows(store)
    assert [r["verdict"] for r in rows] == ["within noise"]  # the key's newest verdict only
    assert len(rg.regression_rows(store, latest_only=False)) == 4


def test_baseline_set_and_clear(store):
    rng = np.random.default_rng(6)
    _store_run(store, "a", 1.0, 1, rng)
    _store_run(store, "b", 1.6, 4, rng)
    key = rg.set_baseline(store, "dev", "b")
    assert rg.baseline_of(store, key)[:2] == ("dev", "b")
    assert _store_run(store, "c", 1.0, 7, rng)["verdict"] == "faster"  # judged against b now
    with pytest.raises(UserError):
        rg.clear_baselines(store, "nope")
    assert rg.clear_baselines(store, rg.key_id(key)) == 1
    assert rg.list_baselines(store) == []
