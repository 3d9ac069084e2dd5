"""/metrics behaves as Prometheus expects, parsed with prometheus_client's own parser: every
family has the type and name its values need (counters end in _total and only go up, the
latency histogram is cumulative and keeps counting across retention), no series uses the
reserved ``quantile`` label, every benchmark series says what it ran on (runtime,
accelerator, threads), devices' telemetry is there as gauges in base units, scenario and
sweep headlines are gauges, and the collector's outcome counters add up to what it received."""

from __future__ import annotations

import time

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgebench.collector.views.metrics import RESULT_LABELS, MetricsEndpoint
from tests.support.documents import meta_of, scenario_doc, summary_of, sweep_doc
from tests.support.fleet import as_message, columns, frames, info, meta, result_doc, status, summary
from tests.support.showcase import telemetry

#: every family /metrics serves and its type
EXPECTED = {
    "edgebench_device_up": "gauge",
    "edgebench_device_state": "gauge",
    "edgebench_device_last_seen_timestamp_seconds": "gauge",
    "edgebench_device_seq_gaps": "gauge",
    "edgebench_device_duplicate_messages": "counter",
    "edgebench_device_replayed_messages": "counter",
    "edgebench_device_info": "gauge",
    "edgebench_device_temperature_celsius": "gauge",
    "edgebench_device_power_watts": "gauge",
    "edgebench_device_cpu_frequency_hertz": "gauge",
    "edgebench_device_cpu_utilization_ratio": "gauge",
    "edgebench_device_memory_used_ratio": "gauge",
    "edgebench_device_throttled": "gauge",
    "edgebench_device_telemetry_timestamp_seconds": "gauge",
    "edgebench_frames": "counter",
    "edgebench_runs": "counter",
    "edgebench_throttled_runs": "counter",
    "edgebench_frame_latency_seconds": "histogram",
    "edgebench_last_run_fps": "gauge",
    "edgebench_last_run_latency_p50_seconds": "gauge",
    "edgebench_last_run_latency_p99_seconds": "gauge",
    "edgebench_last_run_energy_per_inference_joules": "gauge",
    "edgebench_scenario_valid": "gauge",
    "edgebench_scenario_latency_p99_seconds": "gauge",
    "edgebench_scenario_max_queries_per_second": "gauge",
    "edgebench_scenario_latency_bound_seconds": "gauge",
    "edgebench_sweep_best_throughput_items_per_second": "gauge",
    "edgebench_regression": "gauge",
    "edgebench_sweep_lowest_latency_p99_seconds": "gauge",
    "edgebench_collector_messages": "counter",
    "edgebench_collector_rejected_messages": "counter",
    "edgebench_quarantined_messages": "gauge",
}


class _Ingest:
    """The counters a running collector keeps (collector/ingest/collector.py)."""

    def __init__(self) -> None:
        self.counts = {"received": 17, "stored": 11, "duplicates": 2, "retained_again": 1, "rejected": 2}
        self.counts.update(ignored=1, store_errors=0)
        self.rejections = {"not_json": 1, "seq_reused": 1}


def _run(dev: str, run: str, seq: int, rng, *, threads: int, delegate=None, scale=1.0, n=300) -> list:
    cols = columns(n, rng, scale)
    doc = result_doc(dev, run, cols)
    doc["runtime"].update(num_threads=threads, delegate=delegate)
    doc["power"] = {"available": True, "energy_per_inference_mj": {"gross": 4.0, "net": 2.5}}
    return [
        as_message(meta(dev, 1, seq, run)),
        as_message(frames(dev, 1, seq + 1, run, 0, cols, ts=time.time() - 86400 * 30)),  # a month ago: still counted
        as_message(summary(dev, 1, seq + 2, doc)),
    ]


@pytest.fixture
def filled(store):
    rng = np.random.default_rng(5)
    msgs = [as_message(status("pi-1", 1, "online"), True), as_message(info("pi-1", 1, 1))]
    msgs += _run("pi-1", "r1", 2, rng, threads=4)
    msgs += _run("pi-1", "r2", 5, rng, threads=1, delegate={"library": "/usr/lib/libvx_delegate.so", "options": {}})
    msgs += [
        as_message(telemetry("pi-1", 8 + i, time.time() - 60 + i * 5, i * 5.0, throttled=i == 3)) for i in range(4)
    ]
    sc = scenario_doc("pi-1", "q1", "server")
    sw = sweep_doc("pi-1", "s1")
    msgs += [as_message(meta_of(sc, seq=20)), as_message(summary_of(sc, seq=21))]
    msgs += [as_message(meta_of(sw, seq=22)), as_message(summary_of(sw, seq=23))]
    store.apply(msgs)
    return store


def scrape(store, ingest=None) -> dict:
    body = MetricsEndpoint(store, ingest=ingest, cache_s=0).render().decode()
    return {f.name: f for f in text_string_to_metric_families(body)}


def test_every_family_has_its_name_and_type(filled):
    fams = scrape(filled, _Ingest())
    assert {n: f.type for n, f in fams.items()} == EXPECTED
    for name, f in fams.items():
        for s in f.samples:
            if f.type == "counter":
                assert s.name in (f"{name}_total", f"{name}_created"), s.name
            assert "quantile" not in s.labels, f"{s.name} uses the reserved quantile label"


def test_benchmark_series_say_what_they_ran_on(filled):
    fams = scrape(filled)
    for name in ("edgebench_frames", "edgebench_runs", "edgebench_frame_latency_seconds", "edgebench_last_run_fps"):
        for s in fams[name].samples:
            assert set(RESULT_LABELS) <= set(s.labels), (name, s.labels)
    frames_total = {(s.labels["accelerator"], s.labels["threads"]): s.value for s in fams["edgebench_frames"].samples}
    assert frames_total == {("CPU", "4"): 300.0, ("libvx_delegate.so", "1"): 300.0}


def test_the_histogram_is_cumulative_and_outlives_retention(filled):
    fams = scrape(filled)
    e2e = [s for s in fams["edgebench_frame_latency_seconds"].samples if s.labels["stage"] == "e2e"]
    buckets = [s for s in e2e if s.name.endswith("_bucket") and s.labels["threads"] == "4"]
    values = [s.value for s in buckets]
    assert values == sorted(values) and values[-1] == 300.0 and buckets[-1].labels["le"] == "+Inf"
    # frames from a month ago count (no sliding window); a retention purge deletes frames, not counts
    filled.purge(time.time() - 86400)
    assert filled.query("SELECT COUNT(*) FROM frame_batches")[0][0] == 0
    again = scrape(filled)
    assert [s.value for s in again["edgebench_frame_latency_seconds"].samples if s.labels["stage"] == "e2e"] == [
        s.value for s in e2e
    ]
    assert again["edgebench_frames"].samples == fams["edgebench_frames"].samples
    # more frames of the same run add to the counts
    rng = np.random.default_rng(9)
    filled.apply([as_message(frames("pi-1", 1, 30, "r1", 300, columns(50, rng)))])
    later = scrape(filled)
    inf = [
        s.value
        for s in later["edgebench_frame_latency_seconds"].samples
        if s.name.endswith("_count") and s.labels["stage"] == "e2e" and s.labels["threads"] == "4"
    ]
    assert inf == [350.0]


def test_the_histogram_counts_each_frame_in_its_bucket(store):
    """The buckets against numpy on the same samples (le: at or under the bound)."""
    from edgebench.collector.views.metrics import BUCKETS_S

    rng = np.random.default_rng(2)
    cols = columns(500, rng, 2.0)
    store.apply([as_message(meta("d", 1, 1, "r")), as_message(frames("d", 1, 2, "r", 0, cols))])
    fams = scrape(store)
    inf = {
        s.labels["le"]: s.value
        for s in fams["edgebench_frame_latency_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["stage"] == "inference"
    }
    a = np.asarray(cols["inference"]) / 1000.0
    for b in BUCKETS_S:
        assert inf[repr(float(b))] == float((a <= b).sum())
    (total,) = [
        s.value
        for s in fams["edgebench_frame_latency_seconds"].samples
        if s.name.endswith("_sum") and s.labels["stage"] == "inference"
    ]
    assert total == pytest.approx(a.sum(), rel=1e-9)


def test_telemetry_scenario_and_sweep_gauges(filled):
    fams = scrape(filled)

    def one(name):
        (s,) = fams[name].samples
        return s

    assert 40 < one("edgebench_device_temperature_celsius").value < 90
    assert one("edgebench_device_cpu_frequency_hertz").value == 1.5e9  # the newest reading: throttled
    assert one("edgebench_device_throttled").value == 1.0
    assert 0 < one("edgebench_device_cpu_utilization_ratio").value <= 1
    valid = one("edgebench_scenario_valid")
    assert valid.value == 1.0 and valid.labels["scenario"] == "server"
    assert one("edgebench_scenario_latency_p99_seconds").value == pytest.approx(0.009)
    best = one("edgebench_sweep_best_throughput_items_per_second")
    assert best.value > 0 and best.labels["device_id"] == "pi-1"


def test_collector_outcomes_add_up_to_what_it_received(filled):
    ing = _Ingest()
    fams = scrape(filled, ing)
    outcomes = {
        s.labels["outcome"]: s.value for s in fams["edgebench_collector_messages"].samples if s.name.endswith("_total")
    }
    assert "received" not in outcomes
    assert sum(outcomes.values()) == ing.counts["received"]
    rejected = sum(s.value for s in fams["edgebench_collector_rejected_messages"].samples if s.name.endswith("_total"))
    assert rejected == outcomes["rejected"]
