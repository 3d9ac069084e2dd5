"""Prometheus exposition of the fleet (``/metrics``), computed from the store at scrape time.

The rules it keeps (Prometheus' own conventions, so a user's queries give right numbers):

* counters and histograms only go up: ``edgebench_frames_total``, ``edgebench_runs_total``,
  the latency histogram ``edgebench_frame_latency_seconds`` (cumulative over every frame
  stored, kept per run and stage as frames arrive; retention deletes frames, not these
  counts; values computed here, ms to s and mJ to J, lose their float noise through
  agent/wire/figures.py ``clean``). FPS over time is ``rate(edgebench_frames_total[5m])``; a percentile over time is
  ``histogram_quantile(0.99, sum by (le) (rate(edgebench_frame_latency_seconds_bucket[5m])))``.
  No figure is computed over a sliding window of the store;
* what a single result says (the newest run's FPS and percentiles, a scenario's headline, a
  sweep's best point) is a gauge named for what it is (``edgebench_last_run_*``,
  ``edgebench_scenario_*``, ``edgebench_sweep_*``), with the percentile in the name, never
  in the ``quantile`` label (reserved for summaries);
* every series of a benchmark result carries what it ran on: ``device_id``, ``model``,
  ``runtime``, ``accelerator`` (the delegate, or ``CPU``) and ``threads`` (``default`` when
  the runtime chose);
* each device's newest telemetry as gauges in base units, as Frigate's and jtop's
  exporters do: temperature (°C), power (W), CPU clock (Hz), CPU utilisation and memory
  (ratios), throttled (0/1), and when it was read;
* the collector's message counters partition what it received (``outcome``: stored,
  duplicate, retained_again, rejected, ignored, store_error), so ``sum()`` over them is the
  messages received; rejections by reason are a metric of their own.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from edgebench.agent.wire.figures import clean
from edgebench.collector.aggregate import device_rows, latest_telemetry, quarantine_counts, scenario_rows, sweep_rows
from edgebench.collector.store.schema import BUCKET_COLUMNS, LATENCY_BUCKETS_S

#: Histogram bucket upper bounds, seconds (the store counts frames into them as they arrive).
BUCKETS_S = LATENCY_BUCKETS_S
#: the labels of every benchmark series
RESULT_LABELS = ["device_id", "model", "runtime", "accelerator", "threads"]
_RESULT_KEY = "r.device_id, r.model_name, r.runtime, r.delegate, r.num_threads"
_PER_FRAME = "COALESCE(r.kind, 'run') = 'run'"
#: the collector's outcome counters and the label each is exposed under
OUTCOMES = {
    "stored": "stored",
    "duplicates": "duplicate",
    "retained_again": "retained_again",
    "rejected": "rejected",
    "ignored": "ignored",
    "store_errors": "store_error",
}


def result_labels(device_id: Any, model: Any, runtime: Any, delegate: Any, threads: Any) -> list[str]:
    return [
        str(device_id),
        model or "",
        runtime or "",
        delegate or "CPU",
        "default" if threads is None else str(threads),
    ]


class FleetCollector:
    """A prometheus_client custom collector reading the store."""

    def __init__(self, store, ingest=None):
        self.store = store
        self.ingest = ingest

    def collect(self):
        store = self.store
        yield from device_families(device_rows(store))
        yield from telemetry_families(latest_telemetry(store))
        yield from run_counter_families(store)
        yield latency_histogram(store)
        yield from last_run_families(store)
        yield from scenario_families(scenario_rows(store))
        yield from sweep_families(sweep_rows(store))
        yield regression_family(store)
        if self.ingest is not None:
            yield from collector_families(self.ingest)
        yield quarantine_family(quarantine_counts(store))


def _gauge(name: str, doc: str, labels: list[str]):
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]):
    from prometheus_client.core import CounterMetricFamily

    return CounterMetricFamily(name, doc, labels=labels)


def device_families(devs: list[dict[str, Any]]) -> list:
    """Per device: up, state, last seen, agent and board, seq gaps (a gauge: a late message
    can fill a gap), duplicate and replayed messages (counters)."""
    dev = ["device_id"]
    up = _gauge("edgebench_device_up", "1 if the device's retained status is online", dev)
    state = _gauge("edgebench_device_state", "1 for the device's current state", [*dev, "state"])
    seen = _gauge("edgebench_device_last_seen_timestamp_seconds", "when the collector last heard from the device", dev)
    gaps = _gauge("edgebench_device_seq_gaps", "sequence numbers missing over the device's sessions", dev)
    dups = _counter("edgebench_device_duplicate_messages", "duplicate messages dropped", dev)
    repl = _counter("edgebench_device_replayed_messages", "messages replayed from the device's outbox", dev)
    info = _gauge(
        "edgebench_device_info", "the device's agent version and board (value 1)", [*dev, "agent_version", "board"]
    )
    for d in devs:
        key = [d["device_id"]]
        up.add_metric(key, 1.0 if d["state"] == "online" else 0.0)
        state.add_metric([*key, d["state"]], 1.0)
        if d["last_seen"]:
            seen.add_metric(key, float(d["last_seen"]))
        gaps.add_metric(key, d["seq_gaps"])
        dups.add_metric(key, d["duplicates"])
        repl.add_metric(key, d["replayed"])
        info.add_metric([*key, d["agent_version"] or "", d["board"] or ""], 1.0)
    return [up, state, seen, gaps, dups, repl, info]


#: telemetry reading -> (metric, help, scale to the base unit)
_TELEMETRY = {
    "max_temp_c": ("edgebench_device_temperature_celsius", "hottest temperature sensor of the device", 1.0),
    "power_w": ("edgebench_device_power_watts", "the device's power, where it can measure it", 1.0),
    "cpu_mhz": ("edgebench_device_cpu_frequency_hertz", "mean clock of the device's CPU cores", 1e6),
    "cpu_pct": ("edgebench_device_cpu_utilization_ratio", "the device's CPU utilisation (1 = every core busy)", 0.01),
    "mem_used_pct": ("edgebench_device_memory_used_ratio", "the device's memory in use", 0.01),
    "throttled": ("edgebench_device_throttled", "1 while the device says it is throttling, else 0", 1.0),
}


def telemetry_families(rows: list[dict[str, Any]]) -> list:
    """Each device's newest telemetry, in base units; a reading the device lacks is absent."""
    fams = {k: _gauge(name, doc, ["device_id"]) for k, (name, doc, _s) in _TELEMETRY.items()}
    at = _gauge(
        "edgebench_device_telemetry_timestamp_seconds",
        "when the newest telemetry was read (device clock)",
        ["device_id"],
    )
    for r in rows:
        at.add_metric([r["device_id"]], float(r["ts"]))
        for k, (_n, _d, scale) in _TELEMETRY.items():
            if r[k] is not None:
                fams[k].add_metric([r["device_id"]], clean(float(r[k]) * scale))
    return [*fams.values(), at]


def run_counter_families(store) -> list:
    """Per device, model, runtime, accelerator and threads: frames stored, runs completed,
    runs that throttled (counters over every stored per-frame run)."""
    frames = _counter("edgebench_frames", "per-frame latencies stored (FPS over time: rate())", RESULT_LABELS)
    runs = _counter("edgebench_runs", "per-frame runs whose summary arrived", RESULT_LABELS)
    thr = _counter("edgebench_throttled_runs", "per-frame runs during which the board throttled", RESULT_LABELS)
    rows = store.query(
        f"SELECT {_RESULT_KEY}, SUM(r.frames_stored), COUNT(r.summary_at),"
        f" SUM(CASE WHEN r.throttled = 1 THEN 1 ELSE 0 END) FROM runs r WHERE {_PER_FRAME} GROUP BY {_RESULT_KEY}"
    )
    for *key, nframes, nruns, nthr in sorted(rows, key=lambda r: tuple(str(x) for x in r[:5])):
        lab = result_labels(*key)
        frames.add_metric(lab, float(nframes or 0))
        runs.add_metric(lab, float(nruns or 0))
        thr.add_metric(lab, float(nthr or 0))
    return [frames, runs, thr]


def latency_histogram(store):
    """The per-frame latency (seconds) of every stored frame, per result labels and stage,
    from the counts the store keeps as frames arrive (``latency_buckets``)."""
    from prometheus_client.core import HistogramMetricFamily

    hist = HistogramMetricFamily(
        "edgebench_frame_latency_seconds",
        "per-frame latency of every stored frame (inference: invoke() alone; e2e: the whole frame)",
        labels=[*RESULT_LABELS, "stage"],
    )
    sums = ", ".join(f"SUM(h.{c})" for c in BUCKET_COLUMNS)
    rows = store.query(
        f"SELECT {_RESULT_KEY}, h.stage, {sums}, SUM(h.sum_ms), SUM(h.n) FROM latency_buckets h"
        " JOIN runs r ON r.device_id = h.device_id AND r.run_id = h.run_id"
        f" GROUP BY {_RESULT_KEY}, h.stage"
    )
    nb = len(BUCKET_COLUMNS)
    for row in sorted(rows, key=lambda r: tuple(str(x) for x in r[:6])):
        key, stage, counts, total_ms = row[:5], row[5], [int(c or 0) for c in row[6 : 6 + nb]], row[6 + nb]
        acc, buckets = 0, []
        for bound, c in zip([*map(repr, map(float, BUCKETS_S)), "+Inf"], counts):
            acc += c
            buckets.append((bound, float(acc)))
        hist.add_metric([*result_labels(*key), stage], buckets, clean(float(total_ms or 0) / 1000.0))
    return hist


def _newest_by_group(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> dict[tuple, dict[str, Any]]:
    """The newest row (by when its result arrived) per result labels (and ``extra`` keys)."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (*result_labels(r["device_id"], r["model"], r["runtime"], r["delegate"], r.get("num_threads")),)
        key += tuple(str(r.get(k) or "") for k in extra)
        if key not in out or (r.get("received_at") or 0) > (out[key].get("received_at") or 0):
            out[key] = r
    return out


def last_run_families(store) -> list:
    """The newest completed per-frame run of each group: its FPS, and its p50 and p99 per
    stage (the agent's exact figures over that run's frames)."""
    fps = _gauge("edgebench_last_run_fps", "frames per second of the newest completed run", RESULT_LABELS)
    p50 = _gauge(
        "edgebench_last_run_latency_p50_seconds", "median latency of the newest run", [*RESULT_LABELS, "stage"]
    )
    p99 = _gauge(
        "edgebench_last_run_latency_p99_seconds", "99th percentile latency of the newest run", [*RESULT_LABELS, "stage"]
    )
    energy = _gauge(
        "edgebench_last_run_energy_per_inference_joules",
        "energy per inference of the newest run",
        [*RESULT_LABELS, "kind"],
    )
    rows = store.query(
        "SELECT r.device_id, r.model_name, r.runtime, r.delegate, r.num_threads, r.fps, r.energy_mj_gross,"
        f" r.energy_mj_net, r.summary, r.summary_at FROM runs r WHERE {_PER_FRAME} AND r.summary IS NOT NULL"
    )
    newest = _newest_by_group(
        [
            dict(
                zip(
                    (
                        "device_id",
                        "model",
                        "runtime",
                        "delegate",
                        "num_threads",
                        "fps",
                        "gross",
                        "net",
                        "summary",
                        "received_at",
                    ),
                    r,
                )
            )
            for r in rows
        ]
    )
    for key, r in sorted(newest.items()):
        lab = list(key)
        if r["fps"] is not None:
            fps.add_metric(lab, float(r["fps"]))
        for kind in ("gross", "net"):
            if r[kind] is not None:
                energy.add_metric([*lab, kind], clean(float(r[kind]) / 1000.0))
        lat = (json.loads(r["summary"]).get("latency_ms") or {}) if r["summary"] else {}
        for stage, stats in sorted(lat.items()):
            for fam, k in ((p50, "p50"), (p99, "p99")):
                if isinstance(stats, dict) and isinstance(stats.get(k), (int, float)):
                    fam.add_metric([*lab, stage], clean(float(stats[k]) / 1000.0))
    return [fps, p50, p99, energy]


def scenario_families(rows: list[dict[str, Any]]) -> list:
    """Each group's newest result of each scenario: valid or not, its p99 latency, and for a
    max-QPS search the highest rate within the bound and the bound."""
    lab = [*RESULT_LABELS, "scenario"]
    valid = _gauge("edgebench_scenario_valid", "1 if the newest result of the scenario is VALID", lab)
    p99 = _gauge("edgebench_scenario_latency_p99_seconds", "99th percentile query latency of the newest result", lab)
    max_qps = _gauge(
        "edgebench_scenario_max_queries_per_second",
        "highest server rate whose p99 met the bound (newest search)",
        RESULT_LABELS,
    )
    bound = _gauge(
        "edgebench_scenario_latency_bound_seconds", "the p99 bound of the newest max-QPS search", RESULT_LABELS
    )
    for key, r in sorted(_newest_by_group(rows, ("scenario",)).items()):
        labels = list(key)
        valid.add_metric(labels, 1.0 if r["verdict"] == "VALID" else 0.0)
        v = (r.get("latency_ms") or {}).get("p99")
        if isinstance(v, (int, float)):
            p99.add_metric(labels, clean(float(v) / 1000.0))
        if r["scenario"] == "find-max-qps":
            if r.get("max_qps") is not None:
                max_qps.add_metric(labels[:-1], float(r["max_qps"]))
            if r.get("latency_bound_ms") is not None:
                bound.add_metric(labels[:-1], clean(float(r["latency_bound_ms"]) / 1000.0))
    return [valid, p99, max_qps, bound]


def sweep_families(rows: list[dict[str, Any]]) -> list:
    """Each group's newest sweep: its best throughput and its lowest p99 latency per batch."""
    labels = RESULT_LABELS[:4]  # a sweep's threads vary by point
    best = _gauge("edgebench_sweep_best_throughput_items_per_second", "best throughput of the newest sweep", labels)
    low = _gauge(
        "edgebench_sweep_lowest_latency_p99_seconds", "lowest p99 latency per batch of the newest sweep", labels
    )
    for key, r in sorted(_newest_by_group([{**r, "num_threads": None} for r in rows]).items()):
        lab = list(key[:4])
        if r.get("best_throughput_items_per_s") is not None:
            best.add_metric(lab, float(r["best_throughput_items_per_s"]))
        if r.get("lowest_p99_ms") is not None:
            low.add_metric(lab, clean(float(r["lowest_p99_ms"]) / 1000.0))
    return [best, low]


def regression_family(store):
    """Each baseline key's newest verdict (collector/aggregate/regressions.py): 1 slower,
    0 within noise, -1 faster than the key's baseline."""
    from edgebench.collector.aggregate.regressions import GAUGE, regression_rows

    g = _gauge(
        "edgebench_regression",
        "newest run of a baseline key against its baseline: 1 slower, 0 within noise, -1 faster (beyond noise)",
        ["key_id", "board", "model_sha256", "device_id", "run_id"],
    )
    for r in regression_rows(store):
        dev, run = r["run"].split("/", 1)
        sha = (r["key"].get("model_sha256") or "")[:12]
        g.add_metric([r["key_id"], str(r["key"].get("board")), sha, dev, run], float(GAUGE[r["verdict"]]))
    return g


def collector_families(ingest) -> list:
    """This collector's messages by outcome (the outcomes partition what it received) and
    its rejections by reason."""
    c = _counter(
        "edgebench_collector_messages", "messages this collector received, by what became of each", ["outcome"]
    )
    for k, label in OUTCOMES.items():
        c.add_metric([label], float(ingest.counts.get(k, 0)))
    rej = _counter("edgebench_collector_rejected_messages", "messages rejected, by reason", ["reason"])
    for k, v in sorted(ingest.rejections.items()):
        rej.add_metric([k], float(v))
    return [c, rej]


def quarantine_family(counts: dict[str, int]):
    qc = _gauge("edgebench_quarantined_messages", "rejected messages kept in quarantine, by reason", ["reason"])
    for k, v in counts.items():
        qc.add_metric([k], v)
    return qc


class MetricsEndpoint:
    """Renders the exposition text, cached for ``cache_s`` so scrapes stay cheap."""

    def __init__(self, store, ingest=None, cache_s: float = 5.0):
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FleetCollector(store, ingest))
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
