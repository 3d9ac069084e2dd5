"""LiteRT's CompiledModel as a second runtime API (issue 13, item 1), on real models."""

import json

import pytest

from edgebench.agent.runtime import interpreter as rtmod
from tests.support.paths import REFDATA, ROOT, run_cli

MOBILENET_INT8 = ROOT / "models" / "mobilenet_v2_0.35_96_int8_untrained.tflite"
needs_refdata = pytest.mark.skipif(not REFDATA.is_dir(), reason=f"refdata not at {REFDATA}")


def run_json(tmp_path, *args, name="r.json"):
    out = tmp_path / name
    p = run_cli("run", "--json", str(out), "--warmup", "1", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text()), p


@needs_refdata
@pytest.mark.parametrize(
    "model,image",
    [
        ("mobilenet_v2_1.0_224_quant", "cat.bmp"),
        ("mobilenet_v2_1.0_224_quant", "grace_hopper.bmp"),
        ("mobilenet_v1_0.25_128_quant", "cat.bmp"),
    ],
)
def test_compiled_model_cpu_gives_the_interpreters_predictions(tmp_path, model, image):
    common = ("--model", str(REFDATA / f"{model}.tflite"), "--source", str(REFDATA / image), "--frames", "3")
    common += ("--labels", str(REFDATA / "imagenet_labels.txt"), "--threads", "1")
    interp, _ = run_json(tmp_path, *common, name="i.json")
    comp, p = run_json(tmp_path, *common, "--accelerator", "cpu", name="c.json")
    assert interp["runtime"]["api"] == "interpreter" and comp["runtime"]["api"] == "compiled_model"
    top = [[t["index"] for t in pr["top_k"]] for pr in (interp["predictions"][0], comp["predictions"][0])]
    assert top[0][0] == top[1][0] and top[0][:3] == top[1][:3]
    assert comp["runtime"]["accelerators_asked"] == comp["runtime"]["accelerators_used"] == ["cpu"]
    assert comp["latency_ms"]["inference"]["p50"] > 0 and comp["preprocess"] == interp["preprocess"]
    assert "run_by_index" in comp["latency_scope"]["inference"] and "invoke" in interp["latency_scope"]["inference"]
    assert "INFO:" not in p.stderr and "Traceback" not in p.stderr


def test_fully_accelerated_agrees_with_the_interpreters_graph(tmp_path):
    """The int8 MobileNet's SOFTMAX is not XNNPACK's: the CPU CompiledModel is not fully accelerated
    exactly when the Interpreter's graph leaves an operator to the built-in kernels."""
    graph = rtmod.load(str(MOBILENET_INT8), num_threads=1).ops
    res, _ = run_json(tmp_path, "--model", str(MOBILENET_INT8), "--frames", "5", "--accelerator", "cpu")
    assert res["runtime"]["fully_accelerated"] is (graph["delegated"] == graph["total"])
    assert res["config"]["accelerator"] == "cpu"


def test_require_full_delegation_refuses_a_partial_model_with_exit_3(tmp_path):
    p = run_cli("run", "--model", str(MOBILENET_INT8), "--accelerator", "cpu", "--require-full-delegation")
    assert p.returncode == 3
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--require-full-delegation" in lines[0] and "not fully accelerated" in lines[0]


@pytest.mark.parametrize("accel,what", [("gpu", "no GPU"), ("npu,cpu", "NPU")])
def test_a_missing_accelerator_is_one_line_and_exit_3(accel, what):
    p = run_cli("run", "--model", str(MOBILENET_INT8), "--accelerator", accel, "--frames", "3")
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"edgebench: error: --accelerator {accel}:") and what in lines[0]
    assert "--cpu-fallback" in lines[0]


def test_cpu_fallback_runs_on_the_cpu_and_says_so(tmp_path):
    res, p = run_json(
        tmp_path, "--model", str(MOBILENET_INT8), "--frames", "3", "--accelerator", "gpu", "--cpu-fallback"
    )
    assert "ON THE CPU (--cpu-fallback: LiteRT found no GPU here" in p.stdout.splitlines()[0]
    rt = res["runtime"]
    assert rt["accelerators_asked"] == ["gpu"] and rt["accelerators_used"] == ["cpu"]
    assert rt["accelerator_fallback"]["requested"] == "gpu" and "GPU" in rt["accelerator_fallback"]["reason"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (("--accelerator", "tpu"), "expected some of cpu, gpu, npu"),
        (("--accelerator", "cpu", "--delegate", "edgetpu"), "drop --delegate"),
        (("--accelerator", "cpu", "--accelerator-option", "cpu_kernel_mode=fast"), "expected one of"),
        (("--accelerator", "cpu", "--accelerator-option", "speed=max"), "unknown"),
    ],
)
def test_wrong_accelerator_settings_are_user_errors(args, needle):
    p = run_cli("run", "--model", str(MOBILENET_INT8), "--frames", "3", *args)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_sweep_and_config_file_take_the_accelerator(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sweep:\n  accelerator: [cpu]\n  accelerator_options: {cpu_kernel_mode: xnnpack}\n")
    out = tmp_path / "s.json"
    p = run_cli(
        "sweep",
        "--config",
        str(cfg),
        "--model",
        str(MOBILENET_INT8),
        "--batch",
        "1,2",
        "--threads",
        "1",
        "--duration",
        "0.2",
        "--json",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["runtime"]["api"] == "compiled_model" and doc["runtime"]["accelerators_used"] == ["cpu"]
    assert [pt["status"] for pt in doc["points"]] == ["ok", "ok"]
    assert "run_by_index" in doc["latency_scope"]


def test_a_scenario_runs_on_the_compiled_model(tmp_path):
    out = tmp_path / "sc.json"
    p = run_cli(
        "run", "--model", str(MOBILENET_INT8), "--scenario", "single-stream", "--accelerator", "cpu",
        "--threads", "1", "--min-queries", "20", "--duration", "0.5", "--max-duration", "1", "--json", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["runtime"]["api"] == "compiled_model" and "run_by_index" in doc["service_scope"]


def test_the_libraries_litert_tried_are_named_with_why_they_failed(tmp_path):
    """The wheel's OpenVINO compiler plugin needs libopenvino, absent here: the result says which
    plugin failed and why, and that the NPU was not used (read from LiteRT's own log)."""
    res, _ = run_json(
        tmp_path, "--model", str(MOBILENET_INT8), "--frames", "3", "--accelerator", "npu,cpu", "--cpu-fallback"
    )
    rt = res["runtime"]
    failed = rt["libraries"]["compiler_plugins_failed"]
    assert failed and all(r.startswith("needs ") and r.endswith(", not found") for r in failed.values())
    assert rt["libraries"]["compiler_plugins_loaded"] == [] and rt["accelerators_used"] == ["cpu"]
    assert rt["accelerator_fallback"]["requested"] == "npu,cpu"
