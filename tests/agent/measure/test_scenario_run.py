"""`edgebench run --scenario ...` on real models run by the real interpreter."""

import json

import fastjsonschema
import pytest

from edgebench.agent.measure.run import RunOptions
from edgebench.agent.measure.scenario_run import run_scenario_opts
from edgebench.agent.wire.protocol import SCENARIO_JSON_SCHEMA, SCENARIO_SCHEMA
from tests.support.paths import SHAPES_MODEL, SHAPES_TESTSET, run_cli
from tests.support.tflite_builder import fc_model

validate_scenario = fastjsonschema.compile(SCENARIO_JSON_SCHEMA)


@pytest.fixture(scope="module")
def fc_resizable(tmp_path_factory):
    p = tmp_path_factory.mktemp("models") / "fc512.tflite"
    p.write_bytes(fc_model(features=512, layers=2, batch_resizable=True))
    return p


@pytest.fixture(scope="module")
def fc_fixed(tmp_path_factory):
    p = tmp_path_factory.mktemp("models") / "fc256_fixed.tflite"
    p.write_bytes(fc_model(features=256, layers=2, batch_resizable=False, fixed_batch_reshape=True))
    return p


def scenario(model, **kw):
    kw.setdefault("duration_s", 0.5)
    kw.setdefault("min_duration_s", 0.5)
    kw.setdefault("min_queries", 20)
    kw.setdefault("threads", 1)
    return run_scenario_opts(RunOptions(model=str(model), **kw))


def test_single_stream_on_real_images():
    doc = scenario(SHAPES_MODEL, scenario="single-stream", source=str(SHAPES_TESTSET))
    validate_scenario(doc)
    assert doc["schema"] == SCENARIO_SCHEMA and doc["scenario"] == "single-stream"
    assert doc["verdict"] == "VALID", doc["reasons"]
    assert doc["queries"] >= 20 and doc["duration_s"] >= 0.5
    assert doc["headline"]["metric"] == "p90_latency_ms" and doc["headline"]["value"] == doc["latency_ms"]["p90"]
    assert doc["source"]["kind"] == "folder" and doc["source"]["samples"] == 8
    assert doc["qps"] == pytest.approx(doc["queries"] / doc["duration_s"], rel=1e-3)


def test_multi_stream_query_is_a_group_of_samples(fc_resizable):
    one = scenario(fc_resizable, scenario="multi-stream", samples_per_query=8, batch=8)
    assert one["verdict"] == "VALID" and one["samples"] == 8 * one["queries"]
    assert one["headline"]["metric"] == "p99_latency_ms"
    assert one["model"]["batch_signature"] == [-1] and one["batch"] == 8
    seq = scenario(fc_resizable, scenario="multi-stream", samples_per_query=8, batch=1)
    # 8 invokes per query take longer than one invoke of batch 8 (compared on medians)
    assert seq["latency_ms"]["p50"] > one["latency_ms"]["p50"]


def test_offline_throughput_with_batches(fc_resizable):
    doc = scenario(fc_resizable, scenario="offline", batch=4)
    assert doc["verdict"] == "VALID", doc["reasons"]
    assert doc["queries"] == 1 and doc["samples"] == doc["samples_requested"] >= 20
    assert doc["headline"] == {"metric": "samples_per_s", "value": doc["samples_per_s"], "unit": "samples/s"}
    assert doc["samples_per_s"] == pytest.approx(doc["samples"] / doc["duration_s"], rel=1e-3)


def test_server_at_a_low_rate_holds_a_generous_bound(fc_resizable):
    doc = scenario(fc_resizable, scenario="server", target_qps=40, latency_bound_ms=500, duration_s=1.0)
    validate_scenario(doc)
    assert doc["verdict"] == "VALID", doc["reasons"]
    assert doc["queries"] == doc["queries_scheduled"] == 40  # 40 qps for 1 s (and at least --min-queries, 20 here)
    assert doc["within_bound"] is True and doc["headline"]["value"] is True
    # latency from the scheduled arrival covers the wait and the service
    assert doc["latency_ms"]["max"] >= doc["service_ms"]["max"] - 1e-3


def test_server_rate_the_device_cannot_hold_is_invalid(fc_resizable):
    doc = scenario(fc_resizable, scenario="server", target_qps=1_000_000, latency_bound_ms=5, duration_s=0.5)
    assert doc["verdict"] == "INVALID"
    assert any("could not hold 1e+06 qps" in r for r in doc["reasons"]), doc["reasons"]
    assert doc["within_bound"] is False


def test_find_max_qps_on_the_real_interpreter(fc_resizable):
    doc = scenario(
        fc_resizable, find_max_qps=True, latency_bound_ms=200, duration_s=0.4, min_duration_s=0.2, max_qps_steps=6
    )
    validate_scenario(doc)
    assert doc["scenario"] == "find-max-qps" and 1 <= len(doc["steps"]) <= 6
    for st in doc["steps"]:
        assert st["passed"] == (st["verdict"] == "VALID")
    if doc["max_qps"] is not None:
        passing = [st["target_qps"] for st in doc["steps"] if st["passed"]]
        assert doc["max_qps"] == pytest.approx(max(passing), rel=1e-3)
        assert doc["verdict"] == "VALID"
    else:  # a machine so loaded that nothing held 200 ms still says so
        assert "no rate meets the bound" in doc["reasons"][0]
    print("max QPS (p99 <= 200 ms):", doc["max_qps"], [(s["target_qps"], s["passed"]) for s in doc["steps"]])


def test_find_max_qps_with_a_bound_no_rate_meets(fc_resizable):
    doc = scenario(fc_resizable, find_max_qps=True, latency_bound_ms=0.0001, duration_s=0.3, min_duration_s=0.1)
    assert doc["verdict"] == "INVALID" and doc["max_qps"] is None
    assert "no rate meets the bound" in doc["reasons"][0]
    assert len(doc["steps"]) == 1  # one query alone is slower than the bound: no point halving


def test_refdata_mobilenet_single_stream(refdata):
    doc = scenario(
        refdata / "mobilenet_v2_1.0_224_quant.tflite",
        scenario="single-stream",
        source=str(refdata / "cat.bmp"),
        duration_s=1.0,
        min_queries=10,
    )
    assert doc["verdict"] == "VALID", doc["reasons"]
    print("mobilenet_v2 single-stream p90 ms:", doc["headline"]["value"])


def test_scenario_cli_json_and_plot(tmp_path, fc_resizable):
    out, plots = tmp_path / "r.json", tmp_path / "plots"
    p = run_cli(
        "run",
        "--model",
        str(fc_resizable),
        "--scenario",
        "server",
        "--target-qps",
        "30",
        "--latency-bound-ms",
        "500",
        "--duration",
        "0.5",
        "--min-queries",
        "10",
        "--min-duration",
        "0.2",
        "--json",
        str(out),
        "--plot",
        str(plots),
        "--device-id",
        "bench-3",
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    validate_scenario(doc)
    assert doc["device_id"] == "bench-3" and doc["verdict"] in ("VALID", "INVALID")
    assert f"result: {doc['verdict']}" in p.stdout
    from PIL import Image

    with Image.open(plots / "server_latency_cdf.png") as im:
        assert im.format == "PNG"
        assert im.text["x_label"] == "latency per query (ms)"
        assert im.text["y_label"] == "fraction of queries (cumulative)"
    p = run_cli(
        "run",
        "--model",
        str(fc_resizable),
        "--find-max-qps",
        "--latency-bound-ms",
        "0.0001",
        "--duration",
        "0.3",
        "--json",
        str(out),
        "--plot",
        str(plots),
    )
    assert p.returncode == 0, p.stderr
    assert "no rate meets the bound" in p.stdout and "result: INVALID" in p.stdout
    with Image.open(plots / "max_qps_search.png") as im:
        assert im.text["x_label"] == "offered load (queries/s, Poisson)"
        assert im.text["y_label"] == "p99 latency from scheduled arrival (ms)"


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--scenario", "server", "--latency-bound-ms", "10"], 2, "needs --target-qps"),
        (["--scenario", "server", "--target-qps", "10"], 2, "needs --latency-bound-ms"),
        (["--find-max-qps"], 2, "--find-max-qps needs --latency-bound-ms"),
        (["--find-max-qps", "--scenario", "offline", "--latency-bound-ms", "5"], 2, "use it with --scenario server"),
        (["--scenario", "offline", "--mqtt", "bogus://x"], 2, "bad broker URL 'bogus://x'"),
        (["--scenario", "offline", "--pipelined"], 2, "--pipelined does not apply"),
        (["--scenario", "single-stream", "--batch", "2", "--model", "FIXED"], 3, "cannot take it"),
        (["--batch", "2"], 2, "--batch applies to --scenario"),
        (["--scenario", "bogus"], 2, "invalid choice"),
    ],
)
def test_scenario_bad_input_is_one_clear_line(args, code, words, fc_fixed):
    if "FIXED" in args:
        args = [str(fc_fixed) if a == "FIXED" else a for a in args]
    else:
        args = ["--model", str(SHAPES_MODEL), *args]
    p = run_cli("run", *args)
    assert p.returncode == code, p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.strip().splitlines() if not ln.startswith(("usage:", "  ", "edgebench: running"))]
    assert len(lines) == 1 and words in lines[0], p.stderr


def test_config_file_carries_scenario_keys(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"run:\n  model: {SHAPES_MODEL}\n  scenario: server\n  target_qps: 50\n  latency_bound_ms: 500\n"
        "  duration_s: 0.3\n  min_queries: 10\n  min_duration_s: 0.1\n"
    )
    out = tmp_path / "r.json"
    p = run_cli("run", "--config", str(cfg), "--json", str(out), "-q")
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["scenario"] == "server" and doc["target_qps"] == 50
    cfg.write_text(f"run:\n  model: {SHAPES_MODEL}\n  scenario: batchy\n")
    p = run_cli("run", "--config", str(cfg))
    assert p.returncode == 2 and "run.scenario: expected one of" in p.stderr


def test_scenario_energy_per_query_from_a_power_meter_command(tmp_path, fc_resizable):
    out = tmp_path / "e.json"
    p = run_cli(
        "run",
        "--model",
        str(fc_resizable),
        "--scenario",
        "single-stream",
        "--duration",
        "0.5",
        "--json",
        str(out),
        "-q",
        "--power",
        "cmd:echo 3000 mW",
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    pw = doc["power"]
    assert pw["available"] is True and pw["mean_w"] == pytest.approx(3.0)
    assert pw["energy_j"] == pytest.approx(3.0 * doc["duration_s"], rel=0.01)
    assert pw["energy_per_query_mj"] == pytest.approx(pw["energy_j"] / doc["queries"] * 1000, rel=1e-3)
    p = run_cli(
        "run",
        "--model",
        str(fc_resizable),
        "--scenario",
        "offline",
        "--duration",
        "0.3",
        "--json",
        str(out),
        "-q",
        "--no-probes",
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["power"] == {"available": False, "reason": "probes turned off (--no-probes)"}
