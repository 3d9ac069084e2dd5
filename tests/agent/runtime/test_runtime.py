"""Runtimes, delegates, XNNPACK, non-image models and model metadata, on real interpreters."""

import json

import pytest

from edgebench.agent.errors import ModelError, UserError
from edgebench.agent.runtime import interpreter as rtmod
from tests.support.paths import SHAPES_MODEL, SHAPES_TESTSET, run_cli
from tests.support.tflite_builder import add_model, with_metadata


def run_json(tmp_path, *args):
    out = tmp_path / "r.json"
    p = run_cli("run", "--json", str(out), *args)
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text()), p


def test_runtime_is_named_with_its_version(tmp_path):
    res, p = run_json(
        tmp_path, "--model", str(SHAPES_MODEL), "--runtime", "ai-edge-litert", "--threads", "2", "--frames", "5"
    )
    assert res["runtime"]["name"] == "ai-edge-litert" and res["runtime"]["num_threads"] == 2
    assert res["runtime"]["version"] and res["runtime"]["version"] != "unknown"
    assert res["runtime"]["xnnpack"] is True and res["runtime"]["delegated_partitions"] >= 1
    assert res["load_ms"] > 0 and res["allocate_ms"] > 0 and res["first_inference_ms"] > 0
    assert res["init_ms"] == pytest.approx(res["load_ms"] + res["allocate_ms"], abs=0.01)


def test_xnnpack_can_be_turned_off(tmp_path):
    res, _ = run_json(tmp_path, "--model", str(SHAPES_MODEL), "--no-xnnpack", "--frames", "5")
    assert res["runtime"]["xnnpack"] is False and res["runtime"]["delegated_partitions"] == 0


def test_missing_delegate_library_is_named(tmp_path):
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--delegate", "edgetpu", "--delegate-option", "device=usb:0")
    assert p.returncode == 3
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "libedgetpu.so.1" in lines[0] and "--cpu-fallback" in lines[0]
    assert "Traceback" not in p.stderr


def test_a_library_that_is_not_a_delegate(tmp_path):
    import ctypes.util

    libm = ctypes.util.find_library("m")
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--delegate", libm)
    assert p.returncode == 3 and "is not a TFLite external delegate" in p.stderr
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr


def test_cpu_fallback_is_recorded(tmp_path):
    res, _ = run_json(
        tmp_path,
        "--model",
        str(SHAPES_MODEL),
        "--delegate",
        "/nonexistent/libvx_delegate.so",
        "--cpu-fallback",
        "--frames",
        "5",
    )
    fb = res["runtime"]["delegate_fallback"]
    assert fb["requested"] == "/nonexistent/libvx_delegate.so" and "cannot load delegate library" in fb["reason"]
    assert res["runtime"]["delegate"] is None


def test_delegate_option_needs_key_value(tmp_path):
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--delegate", "edgetpu", "--delegate-option", "novalue")
    assert p.returncode == 2 and "must be KEY=VALUE" in p.stderr


def test_non_image_model_runs_on_synthetic_tensors(tmp_path):
    model = tmp_path / "add.tflite"
    model.write_bytes(add_model((1, 4, 4)))
    res, _ = run_json(tmp_path, "--model", str(model), "--frames", "30")
    assert res["source"]["kind"] == "synthetic-tensors"
    assert [i["shape"] for i in res["source"]["inputs"]] == [[1, 4, 4], [1, 4, 4]]
    assert res["model"]["task"] == "other" and res["outputs_summary"][0]["shape"] == [1, 4, 4]
    p = run_cli("run", "--model", str(model), "--source", str(SHAPES_TESTSET))
    assert p.returncode == 2 and "not an image model" in p.stderr


def test_metadata_normalization_and_labels_are_used(tmp_path):
    model = tmp_path / "shapes_meta.tflite"
    labels = ["circle", "square", "triangle", "cross", "hstripes", "vstripes"]
    model.write_bytes(with_metadata(SHAPES_MODEL.read_bytes(), [0.0], [255.0], labels=labels))
    res, _ = run_json(
        tmp_path, "--model", str(model), "--source", str(SHAPES_TESTSET / "square"), "--frames", "20", "--warmup", "0"
    )
    assert res["preprocess"]["normalization"] == {"mean": [0.0] * 3, "std": [255.0] * 3, "source": "metadata"}
    assert {p["top_k"][0]["label"] for p in res["predictions"]} == {"square"}


def test_wrong_metadata_normalization_is_overridden_by_config(tmp_path):
    model = tmp_path / "shapes_badmeta.tflite"
    model.write_bytes(with_metadata(SHAPES_MODEL.read_bytes(), [127.5], [1.0]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"run:\n  model: {model}\n  normalization: {{mean: 0, std: 255}}\n")
    res, _ = run_json(tmp_path, "--config", str(cfg), "--frames", "3")
    assert res["preprocess"]["normalization"]["source"] == "config"


def test_unknown_runtime_and_import_errors():
    with pytest.raises(UserError, match="unknown runtime"):
        rtmod.import_runtime("onnx")


def test_delegate_aliases_resolve():
    assert rtmod.DelegateSpec("edgetpu").resolved == "libedgetpu.so.1"
    assert rtmod.DelegateSpec("/opt/x/libfoo.so").resolved == "/opt/x/libfoo.so"


def test_load_rejects_a_directory(tmp_path):
    with pytest.raises(ModelError, match="is a directory"):
        rtmod.load(str(tmp_path))


def test_info_lists_runtime_and_sources():
    p = run_cli("info", "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert "ai-edge-litert" in info["runtimes"]["found"]
    assert info["sources"]["opencv"]["ffmpeg"] is True
    assert info["delegates"]["known"]["edgetpu"] == "libedgetpu.so.1"
