"""Latency statistics.

Percentiles use linear interpolation between closest ranks (numpy's default,
and PostgreSQL's ``percentile_cont``), so the agent and the collector compute
the same number from the same samples. ``std`` is the population standard
deviation (ddof=0), as TFLite's benchmark_model reports it.

Runs of hours must not grow without bound: ``StreamingStats`` keeps every
sample exactly up to ``exact_cap`` samples, then folds them into logarithmic
buckets with a relative error of at most ``alpha`` (0.5 %) on every
percentile, while mean, std, min and max stay exact. The result says which.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgebench.agent.wire.protocol import REQUIRED_STATS, STATS

PERCENTILE_METHOD = "linear"
_PCTS = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def summarize_ms(samples_ms: np.ndarray | list[float]) -> dict[str, float | None]:
    """mean, std, min, p50, p90, p95, p99, p999, max of samples already in milliseconds.

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


def histogram_ms(samples_ms: np.ndarray, bins: int = 40) -> dict[str, list]:
    """Log-spaced histogram (latencies are skewed), edges in ms and counts."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        return {"edges_ms": [], "counts": []}
    lo, hi = max(a.min(), 1e-4), max(a.max(), 1e-4)
    if hi <= lo * 1.0001:
        edges = np.array([lo * 0.999, hi * 1.001])
    else:
        edges = np.geomspace(lo, hi * 1.0001, bins + 1)
    counts, edges = np.histogram(np.clip(a, edges[0], edges[-1]), bins=edges)
    return {"edges_ms": [round(float(e), 5) for e in edges], "counts": [int(c) for c in counts]}


def coefficient_of_variation(summary: dict[str, float | None]) -> float | None:
    m, s = summary.get("mean"), summary.get("std")
    return None if not m or s is None else s / m


class StreamingStats:
    """Bounded-memory statistics of one stage, fed in chunks of int64 nanoseconds."""

    def __init__(self, exact_cap: int = 200_000, alpha: float = 0.005):
        self.exact_cap = exact_cap
        self.alpha = alpha
        self._gamma = (1 + alpha) / (1 - alpha)
        self._lg = math.log(self._gamma)
        self._chunks: list[np.ndarray] = []
        self._buckets: dict[int, int] | None = None
        self.n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self.min: int | None = None
        self.max: int | None = None

    @property
    def exact(self) -> bool:
        return self._buckets is None

    @property
    def method(self) -> str:
        if self.exact:
            return PERCENTILE_METHOD
        return f"log-buckets (relative error <= {self.alpha:.1%})"

    def add(self, chunk_ns: np.ndarray) -> None:
        c = np.asarray(chunk_ns, dtype=np.int64)
        if c.size == 0:
            return
        # Chan et al. pairwise combination: exact and numerically stable
        n_b = c.size
        mean_b = float(c.mean())
        m2_b = float(((c - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self._mean
        self._mean += delta * n_b / n
        self._m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        cmin, cmax = int(c.min()), int(c.max())
        self.min = cmin if self.min is None else min(self.min, cmin)
        self.max = cmax if self.max is None else max(self.max, cmax)
        if self._buckets is None:
            self._chunks.append(c)
            if self.n > self.exact_cap:
                self._buckets = {}
                for ch in self._chunks:
                    self._bucketize(ch)
                self._chunks = []
        else:
            self._bucketize(c)

    def _bucketize(self, c: np.ndarray) -> None:
        keys = np.ceil(np.log(np.maximum(c, 1).astype(np.float64)) / self._lg).astype(np.int64)
        ks, counts = np.unique(keys, return_counts=True)
        b = self._buckets
        for k, n in zip(ks.tolist(), counts.tolist()):
            b[k] = b.get(k, 0) + n

    def samples_ns(self) -> np.ndarray:
        """All samples (exact mode only)."""
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int64)

    def _bucket_quantiles(self, qs: list[float]) -> list[float]:
        keys = sorted(self._buckets)
        counts = np.cumsum([self._buckets[k] for k in keys])
        out = []
        for q in qs:
            rank = q / 100 * (self.n - 1)
            i = int(np.searchsorted(counts, rank, side="right"))
            k = keys[min(i, len(keys) - 1)]
            v = 2 * self._gamma**k / (self._gamma + 1)
            out.append(min(max(v, self.min), self.max))
        return out

    def summary_ms(self) -> dict[str, float | None]:
        if self.n == 0:
            return {s: None for s in STATS}
        if self.exact:
            return summarize_ns(self.samples_ns())
        qs = self._bucket_quantiles(list(_PCTS.values()))
        out = {
            "mean": self._mean / 1e6,
            "std": math.sqrt(self._m2 / self.n) / 1e6,
            "min": self.min / 1e6,
            "max": self.max / 1e6,
            **{k: v / 1e6 for k, v in zip(_PCTS, qs)},
        }
        return {s: round(out[s], 4) for s in STATS}

    def histogram_ms(self, bins: int = 40) -> dict[str, list]:
        if self.exact:
            return histogram_ms(self.samples_ns() / 1e6, bins)
        keys = sorted(self._buckets)
        centers = np.array([2 * self._gamma**k / (self._gamma + 1) for k in keys]) / 1e6
        weights = np.array([self._buckets[k] for k in keys])
        lo, hi = max(self.min / 1e6, 1e-4), max(self.max / 1e6, 1e-4) * 1.0001
        edges = np.geomspace(lo, hi, bins + 1) if hi > lo * 1.0001 else np.array([lo * 0.999, hi * 1.001])
        counts, edges = np.histogram(np.clip(centers, edges[0], edges[-1]), bins=edges, weights=weights)
        return {"edges_ms": [round(float(e), 5) for e in edges], "counts": [int(c) for c in counts]}


__all__ = [
    "PERCENTILE_METHOD",
    "REQUIRED_STATS",
    "STATS",
    "StreamingStats",
    "coefficient_of_variation",
    "histogram_ms",
    "summarize_ms",
    "summarize_ns",
]


def pareto_frontier(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points no other point beats on both p99 latency (lower) and throughput (higher),
    by rising latency."""
    ps = [p for p in points if p["latency_ms"]["p99"] is not None and p["throughput_items_per_s"]]
    ps.sort(key=lambda p: (p["latency_ms"]["p99"], -p["throughput_items_per_s"]))
    out, best = [], -1.0
    for p in ps:
        if p["throughput_items_per_s"] > best:
            out.append(p)
            best = p["throughput_items_per_s"]
    return out
