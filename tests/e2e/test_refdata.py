"""Known answers from real third-party models and photos (../shared/refdata)."""

import json

import pytest

from tests.support.paths import run_cli


@pytest.mark.parametrize(
    "model, image, label",
    [
        ("mobilenet_v2_1.0_224_quant.tflite", "grace_hopper.bmp", "military uniform"),
        ("mobilenet_v2_1.0_224_quant.tflite", "cat.bmp", "Egyptian cat"),
        ("mobilenet_v1_0.25_128_quant.tflite", "cat.bmp", "tiger cat"),
    ],
)
def test_known_top1(refdata, tmp_path, model, image, label):
    out = tmp_path / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(refdata / model),
        "--source",
        str(refdata / image),
        "--labels",
        str(refdata / "imagenet_labels.txt"),
        "--frames",
        "3",
        "--warmup",
        "1",
        "--json",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["predictions"][0]["top_k"][0]["label"] == label
    inp = res["model"]["inputs"][0]
    assert inp["dtype"] == "uint8"


def test_model_whose_invoke_fails(refdata):
    p = run_cli("run", "--model", str(refdata / "model_invoking_error.tflite"), "--frames", "2")
    assert p.returncode == 3
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "fake-op-double" in p.stderr
