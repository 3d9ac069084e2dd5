"""Latency statistics.

Percentiles use linear interpolation between closest ranks (numpy's default,
and PostgreSQL's ``percentile_cont``), so the agent and the collector compute
the same number from the same samples. ``std`` is the population standard
deviation (ddof=0), as TFLite's benchmark_model reports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .protocol import STATS

PERCENTILE_METHOD = "linear"
_PCTS = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def summarize_ms(samples_ms: np.ndarray | list[float]) -> dict[str, float | None]:
    """mean, std, min, p50, p90, p95, p99, max of samples already in milliseconds.

    An empty sample gives None for every statistic (never a made-up zero).
    """
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        return {s: None for s in STATS}
    pct = np.percentile(a, list(_PCTS.values()), method=PERCENTILE_METHOD)
    out: dict[str, Any] = {
        "mean": float(a.mean()),
        "std": float(a.std()),
        "min": float(a.min()),
        "max": float(a.max()),
    }
    out.update({k: float(v) for k, v in zip(_PCTS, pct)})
    return {s: round(out[s], 4) for s in STATS}


def summarize_ns(samples_ns: np.ndarray) -> dict[str, float | None]:
    return summarize_ms(np.asarray(samples_ns, dtype=np.float64) / 1e6)
