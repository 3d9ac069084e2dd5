"""Prometheus exposition of the fleet (``/metrics``), computed from the store at scrape time.

Per device: state, last seen, seq gaps, duplicates, replayed. Per device and model, over
the frames measured in the last ``window_s`` seconds (device clock): frames, FPS, latency quantiles
(gauges) and a latency histogram per stage (seconds, Prometheus' base unit), energy per
inference (joules), throttled runs; values computed here (ms to s, mJ to J) lose their float
noise (agent/wire/figures.py ``clean``). Collector counters when the collector runs in the same
process, else the quarantine counts from the database.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from edgebench.agent.wire.figures import clean
from edgebench.collector.aggregate import device_rows, group_rows, quarantine_counts

#: Histogram bucket upper bounds, seconds (0.1 ms .. 5 s).
BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HIST_STAGES = ("inference", "e2e")


class FleetCollector:
    """A prometheus_client custom collector reading the store."""

    def __init__(self, store, window_s: float = 3600.0, ingest=None):
        self.store = store
        self.window_s = window_s
        self.ingest = ingest

    def collect(self):
        now = time.time()
        since = now - self.window_s
        yield from device_families(device_rows(self.store, now))
        yield from group_families(group_rows(self.store, ("device_id", "model"), since=since), self.window_s)
        yield latency_histogram(self.store, since, self.window_s)
        if self.ingest is not None:
            yield from collector_families(self.ingest)
        yield quarantine_family(quarantine_counts(self.store))


def device_families(devs: list[dict[str, Any]]) -> list:
    """Per device: up, state, last seen, seq gaps, duplicates, replayed, agent version."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, labels=("device_id",)):
        return GaugeMetricFamily(name, doc, labels=list(labels))

    up = gauge("edgebench_device_up", "1 if the device's retained status is online")
    state = gauge("edgebench_device_state", "1 for the device's current state", ("device_id", "state"))
    seen = gauge("edgebench_device_last_seen_timestamp_seconds", "when the collector last heard from the device")
    gaps = gauge("edgebench_device_seq_gaps", "missing sequence numbers over the device's sessions")
    dups = gauge("edgebench_device_duplicates", "duplicate messages dropped")
    repl = gauge("edgebench_device_replayed", "messages replayed from the device's spool")
    info = gauge("edgebench_device_info", "agent version of the device", ("device_id", "agent_version"))
    for d in devs:
        dev = d["device_id"]
        up.add_metric([dev], 1.0 if d["state"] == "online" else 0.0)
        state.add_metric([dev, d["state"]], 1.0)
        if d["last_seen"]:
            seen.add_metric([dev], float(d["last_seen"]))
        gaps.add_metric([dev], d["seq_gaps"])
        dups.add_metric([dev], d["duplicates"])
        repl.add_metric([dev], d["replayed"])
        info.add_metric([dev, d["agent_version"] or ""], 1.0)
    return [up, state, seen, gaps, dups, repl, info]


def group_families(rows: list[dict[str, Any]], window_s: float) -> list:
    """Per device and model over the window: frames, FPS, latency quantiles (seconds),
    energy per inference (joules), throttled runs."""
    from prometheus_client.core import GaugeMetricFamily

    lab = ["device_id", "model"]
    frames = GaugeMetricFamily("edgebench_frames", f"frames measured in the last {window_s:g} s", labels=lab)
    fps = GaugeMetricFamily("edgebench_fps", "frames / measured time of runs completed in the window", labels=lab)
    q = GaugeMetricFamily(
        "edgebench_latency_quantile_seconds",
        "exact latency quantile over the window's frames",
        labels=[*lab, "stage", "quantile"],
    )
    energy = GaugeMetricFamily(
        "edgebench_energy_per_inference_joules", "energy per inference (frame-weighted)", labels=[*lab, "kind"]
    )
    thr = GaugeMetricFamily(
        "edgebench_throttled_runs", "runs in the window during which the board throttled", labels=lab
    )
    for r in rows:
        key = [r["device_id"], r["model"] or ""]
        frames.add_metric(key, r["frames"])
        if r["fps"] is not None:
            fps.add_metric(key, clean(r["fps"]))
        for st, stats in r["latency_ms"].items():
            for k in ("p50", "p90", "p99"):
                if stats[k] is not None:
                    q.add_metric([*key, st, f"0.{k[1:]}"], clean(stats[k] / 1000.0))
        e = r.get("energy_per_inference_mj") or {}
        for kind in ("gross", "net"):
            if e.get(kind) is not None:
                energy.add_metric([*key, kind], clean(e[kind] / 1000.0))
        if r["throttled_runs"] is not None:
            thr.add_metric(key, r["throttled_runs"])
    return [frames, fps, q, energy, thr]


def latency_histogram(store, since: float, window_s: float):
    """The per-frame latency (seconds) of HIST_STAGES over the frames measured since ``since``,
    per device and model, in BUCKETS_S."""
    from prometheus_client.core import HistogramMetricFamily

    hist = HistogramMetricFamily(
        "edgebench_frame_latency_seconds",
        f"per-frame latency of the frames measured in the last {window_s:g} s",
        labels=["device_id", "model", "stage"],
    )
    samples = store.frame_samples("b.ts >= ?", (since,), HIST_STAGES, keys=["r.device_id", "r.model_name"])
    groups: dict[tuple, list] = {}
    for row in samples:
        groups.setdefault((row[0], row[1] or ""), []).append(row[3:])
    edges = np.asarray(BUCKETS_S)
    for (dev, model), parts in sorted(groups.items()):
        for i, st in enumerate(HIST_STAGES):
            a = np.concatenate([p[i] for p in parts]) / 1000.0
            cum = np.searchsorted(np.sort(a), edges, side="right")
            buckets = [(repr(float(b)), float(c)) for b, c in zip(BUCKETS_S, cum)] + [("+Inf", float(a.size))]
            hist.add_metric([dev, model, st], buckets, clean(float(a.sum())))
    return hist


def collector_families(ingest) -> list:
    """This collector's counters: messages by outcome, rejections by reason."""
    from prometheus_client.core import CounterMetricFamily

    c = CounterMetricFamily("edgebench_collector_messages", "messages handled by this collector", labels=["outcome"])
    for k, v in ingest.counts.items():
        c.add_metric([k], v)
    rej = CounterMetricFamily("edgebench_collector_rejected", "messages rejected, by reason", labels=["reason"])
    for k, v in ingest.rejections.items():
        rej.add_metric([k], v)
    return [c, rej]


def quarantine_family(counts: dict[str, int]):
    from prometheus_client.core import GaugeMetricFamily

    qc = GaugeMetricFamily(
        "edgebench_quarantined_messages", "rejected messages kept in quarantine, by reason", labels=["reason"]
    )
    for k, v in counts.items():
        qc.add_metric([k], v)
    return qc


class MetricsEndpoint:
    """Renders the exposition text, cached for ``cache_s`` so scrapes stay cheap."""

    def __init__(self, store, window_s: float = 3600.0, ingest=None, cache_s: float = 5.0):
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FleetCollector(store, window_s, ingest))
        self.cache_s = cache_s
        self._cached: tuple[float, bytes] | None = None
        self._lock = threading.Lock()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.cache_s:
                return self._cached[1]
            body = generate_latest(self.registry)
            self._cached = (time.monotonic(), body)
            return body
