"""`edgebench run` end to end on real models, every basic source kind, and the result contract."""

import json

import cv2
import fastjsonschema
import numpy as np
import pytest

from edgebench.agent.wire.protocol import RESULT_JSON_SCHEMA, RESULT_SCHEMA, STAGES, STATS
from tests.support.paths import SHAPES_LABELS, SHAPES_MODEL, SHAPES_TESTSET, run_cli

validate_result = fastjsonschema.compile(RESULT_JSON_SCHEMA)


def run_json(tmp_path, *args):
    out = tmp_path / "result.json"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--json", str(out), *args)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(out.read_text()), p


def test_synthetic_run_writes_the_full_result_contract(tmp_path):
    res, p = run_json(tmp_path, "--source", "synthetic", "--frames", "40", "--warmup", "3", "--device-id", "bench-1")
    validate_result(res)
    assert res["schema"] == RESULT_SCHEMA
    assert res["device_id"] == "bench-1"
    assert res["frames"] == 40 and res["warmup_frames"] == 3
    assert res["runtime"]["name"] == "ai-edge-litert" and res["runtime"]["version"]
    assert "ai-edge-litert" in p.stdout  # says which runtime ran
    inp = res["model"]["inputs"][0]
    assert inp["shape"] == [1, 64, 64, 3] and inp["dtype"] == "int8"
    assert {"scale", "zero_point"} <= set(inp)
    assert len(res["model"]["sha256"]) == 64
    for stage in STAGES:
        stats = res["latency_ms"][stage]
        assert list(stats) == list(STATS)
        assert 0 <= stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    # e2e covers the four stages of the same frame
    lat = res["latency_ms"]
    assert lat["e2e"]["mean"] >= lat["inference"]["mean"]
    assert res["fps"] == pytest.approx(res["frames"] / res["duration_s"], rel=1e-3)
    assert res["init_ms"] > 0 and res["first_inference_ms"] > 0


def test_folder_of_labelled_images_gives_right_top1(tmp_path):
    res, _ = run_json(
        tmp_path, "--source", str(SHAPES_TESTSET), "--labels", str(SHAPES_LABELS), "--frames", "120", "--warmup", "0"
    )
    preds = res["predictions"]
    assert len(preds) == 120  # one per image
    right = sum(p["top_k"][0]["label"] == p["source_name"].split("/")[0] for p in preds)
    assert right / len(preds) >= 0.95
    top = preds[0]["top_k"]
    assert len(top) == 5 and top[0]["score"] >= top[1]["score"]
    assert set(top[0]) == {"index", "label", "score"}


def test_image_file_source(tmp_path):
    img = next(SHAPES_TESTSET.glob("circle/*.png"))
    res, _ = run_json(tmp_path, "--source", str(img), "--labels", str(SHAPES_LABELS), "--frames", "10")
    assert res["source"]["kind"] == "image"
    assert res["predictions"][0]["top_k"][0]["label"] == "circle"


def test_video_file_source_made_by_opencv(tmp_path):
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    rng = np.random.default_rng(1)
    for _ in range(30):
        w.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    w.release()
    res, _ = run_json(tmp_path, "--source", str(video), "--frames", "20", "--warmup", "2")
    assert res["source"]["kind"] == "video" and res["source"]["width"] == 160
    assert res["frames"] == 20
    # asking for more frames than the file holds stops cleanly at its end
    res, _ = run_json(tmp_path, "--source", str(video), "--frames", "100", "--warmup", "2")
    assert res["frames"] == 28 and res["source_ended_early"] is True
    assert any("source ended" in n for n in res["notes"])


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--model", "/nonexistent/model.tflite"], 3, "model file not found"),
        (["--model", str(SHAPES_LABELS)], 3, "not a TFLite flatbuffer"),
        (["--model", str(SHAPES_MODEL), "--source", "/nonexistent/video.mp4"], 4, "source not found"),
        (["--model", str(SHAPES_MODEL), "--source", "synthetic:0x10"], 4, "bad synthetic source"),
        (["--model", str(SHAPES_MODEL), "--labels", "/nonexistent/labels.txt"], 2, "labels file not found"),
        (["--model", str(SHAPES_MODEL), "--device-id", "Bad/Id"], 2, "invalid device id"),
        (["--model", str(SHAPES_MODEL), "--frames", "0"], 2, "--frames must be at least 1"),
        (["--model", str(SHAPES_MODEL), "--mqtt", "http://x"], 2, "bad broker URL"),
    ],
)
def test_bad_input_is_one_clear_line(args, code, words):
    p = run_cli("run", *args)
    assert p.returncode == code, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "corrupt.tflite"
    data = bytearray(SHAPES_MODEL.read_bytes())
    bad.write_bytes(bytes(data[:200]))  # truncated, TFL3 identifier intact
    p = run_cli("run", "--model", str(bad))
    assert p.returncode == 3 and "cannot load" in p.stderr and "Traceback" not in p.stderr


def test_unreachable_broker_keeps_the_local_result(tmp_path):
    from edgebench.collector.broker.embedded import free_port

    out = tmp_path / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--frames",
        "10",
        "--json",
        str(out),
        "--mqtt",
        f"mqtt://127.0.0.1:{free_port()}",
        "--device-id",
        "lonely",
        "--mqtt-wait",
        "2",  # the default waits 15 s for the broker to come back
    )
    assert p.returncode == 5
    assert "cannot reach MQTT broker" in p.stderr and str(out) in p.stderr
    assert json.loads(out.read_text())["frames"] == 10
