"""Figures for people, exact in JSON, without float noise in Prometheus text; terminal
tables whose columns stay apart at 1,000 ms and more (issue 16, items 6 and 14)."""

from __future__ import annotations

import io

import pytest

from edgebench.agent.wire.figures import clean, people, text_table


@pytest.mark.parametrize(
    "value, text",
    [
        (796.551, "796.6"),
        (835.2557, "835.3"),
        (0.14412, "0.144"),
        (1234.567, "1235"),
        (12.3456, "12.35"),
        (0.0001234, "0.0001234"),
        (40, "40"),
        (None, "-"),
    ],
)
def test_people_round_to_four_significant_digits(value, text):
    assert people(value) == text


def test_clean_drops_float_noise_only():
    assert repr(0.0321 / 1000.0) == "3.2099999999999994e-05"
    assert repr(clean(0.0321 / 1000.0)) == "3.21e-05"
    assert clean(1 / 3) == pytest.approx(1 / 3, rel=1e-12)


def test_text_table_columns_stay_apart():
    lines = text_table(["stage", "mean", "max"], [["inference", "1235", "12346"], ["e2e", "0.144", "8.386"]])
    assert lines[0] == "stage       mean    max"
    assert lines[1] == "inference   1235  12346"


def _summary(latency: dict) -> str:
    from edgebench.agent.cli import print_summary

    res = {
        "model": {"name": "m.tflite"},
        "runtime": {"name": "ai-edge-litert", "version": "2.3.0", "num_threads": 4, "num_threads_from": "given"},
        "source": {"kind": "synthetic", "uri": "synthetic"},
        "fps": 0.8,
        "frames": 60,
        "warmup_frames": 5,
        "duration_s": 75.0,
        "init_ms": 30.0,
        "first_inference_ms": 1500.0,
        "latency_ms": latency,
    }
    buf = io.StringIO()
    print_summary(res, buf)
    return buf.getvalue()


def test_the_latency_table_stays_aligned_at_a_thousand_ms_and_more():
    st = {"mean": 1234.5678, "p50": 1200.1234, "p90": 1400.6, "p99": 10500.25, "max": 12345.678}
    small = {k: v / 10000 for k, v in st.items()}
    text = _summary({"capture": small, "inference": st, "e2e": st})
    lines = [ln for ln in text.splitlines() if ln.split()[0] in ("latency", "capture", "inference", "e2e")]
    # every figure is its own word, and the columns end at the same place on every line
    assert lines[2].split() == ["inference", "1235", "1200", "1401", "10500", "12346"]
    first = len("latency (ms)")  # the stage column, left-aligned
    ends = {
        tuple(i for i in range(first + 1, len(ln) + 1) if ln[i - 1] != " " and (i == len(ln) or ln[i] == " "))
        for ln in lines
    }
    assert len(ends) == 1, lines


def test_scenario_reports_round_for_people_and_the_json_stays_exact():
    from edgebench.agent.measure.scenario_run import print_scenario

    head = {
        "model": {"name": "m.tflite"},
        "runtime": {"name": "ai-edge-litert", "version": "2.3.0", "num_threads": 2},
        "batch": 1,
        "verdict": "VALID",
        "reasons": [],
    }
    lat = {"mean": 1.23456, "p50": 1.1111, "p90": 2.22222, "p99": 3.33333, "max": 4.44444}
    server = {
        **head,
        "scenario": "server",
        "queries": 400,
        "target_qps": 840.0,
        "completed_qps": 835.2557,
        "duration_s": 0.47891,
        "latency_bound_ms": 10.0,
        "headline": {"metric": "p99_within_bound", "value": True, "p99_latency_ms": 3.33333, "unit": "ms"},
        "latency_ms": lat,
    }
    buf = io.StringIO()
    print_scenario(server, buf)
    text = buf.getvalue()
    assert "(835.3 completed/s)" in text and "835.2557" not in text
    assert "p99 3.333 ms" in text and "mean 1.235" in text
    search = {
        **head,
        "scenario": "find-max-qps",
        "latency_bound_ms": 10.0,
        "max_qps": 796.551,
        "steps": [
            {
                "phase": "bracket",
                "target_qps": 796.551,
                "p99_latency_ms": 9.87654,
                "completed_qps": 790.12345,
                "passed": True,
            }
        ],
    }
    buf = io.StringIO()
    print_scenario(search, buf)
    text = buf.getvalue()
    assert "max QPS with p99 <= 10 ms: 796.6" in text and "796.551" not in text and "790.1" in text


def test_metrics_text_has_no_float_noise():
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from edgebench.collector.views.metrics import scenario_families

    row = {
        "device_id": "pi",
        "model": "m.tflite",
        "runtime": "litert",
        "delegate": None,
        "num_threads": 2,
        "scenario": "find-max-qps",
        "verdict": "VALID",
        "latency_ms": {"p99": 0.0321},  # 0.0321 / 1000 is 3.2099999999999994e-05 in binary floating point
        "latency_bound_ms": 0.1 + 0.2,
        "max_qps": 796.6,
    }

    class One:
        def collect(self):
            return scenario_families([row])

    reg = CollectorRegistry()
    reg.register(One())
    text = generate_latest(reg).decode()
    assert "3.21e-05" in text and "3.2099999999999994e-05" not in text
    assert "0.00030000000000000003" not in text and "edgebench_scenario_latency_bound_seconds" in text
