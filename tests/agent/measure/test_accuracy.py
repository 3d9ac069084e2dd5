"""Accuracy mode and registry-derived preprocessing, through the real agent and interpreter."""

from __future__ import annotations

import json
import shutil

import fastjsonschema
import pytest

from edgebench import models
from edgebench.agent.measure.run import RunOptions, run
from edgebench.agent.runtime import registry
from edgebench.agent.wire.protocol import RESULT_JSON_SCHEMA
from tests.support.paths import ROOT, SHAPES_TESTSET, run_cli

TRAINED = [e for e in models.load_registry() if "file" in e and e.get("trained") and e.get("testset")]


@pytest.mark.parametrize("e", TRAINED, ids=lambda e: e["name"])
def test_bundled_trained_model_reaches_its_recorded_accuracy_through_the_agent(e, tmp_path):
    out = tmp_path / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(models.MODELS_DIR / e["file"]),
        "--accuracy",
        str(models.MODELS_DIR / e["testset"]),
        "--accuracy-floor",
        str(e["accuracy_top1"]),
        "--json",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    acc = res["accuracy"]
    assert acc["images"] == 120 and acc["top1"] >= e["accuracy_top1"] and acc["top5"] >= acc["top1"]
    assert acc["below_floor"] is False and acc["floor"] == e["accuracy_top1"]
    assert res["frames"] >= 120 and res["latency_ms"]["inference"]["p50"] > 0
    assert res["model"]["registry"] == registry.describe(e)
    assert res["preprocess"]["normalization"]["source"] == "registry"
    assert "accuracy over 120 labelled images: top-1" in p.stdout
    fastjsonschema.compile(RESULT_JSON_SCHEMA)(res)  # what the collector accepts


def test_registry_normalization_is_what_makes_the_float_model_right(monkeypatch):
    """shapes-dynamic-int8 wants pixel/255; the default for float inputs is (p-127.5)/127.5."""
    model = str(models.path_of("shapes-dynamic-int8"))
    with_registry = run(RunOptions(model=model, accuracy=str(SHAPES_TESTSET), warmup=0)).result
    assert with_registry["accuracy"]["top1"] == 1.0

    monkeypatch.setattr(registry, "lookup", lambda sha: None)  # as if the model were unknown
    unknown = run(
        RunOptions(
            model=model, labels=str(ROOT / "models" / "shapes_labels.txt"), accuracy=str(SHAPES_TESTSET), warmup=0
        )
    ).result
    assert unknown["preprocess"]["normalization"]["source"] == "default"
    assert "registry" not in unknown["model"]
    assert unknown["accuracy"]["top1"] < with_registry["accuracy"]["top1"]


def test_a_run_below_the_floor_fails_in_one_line(tmp_path):
    """An untrained model cannot name the shapes: the floor catches it."""
    sets = tmp_path / "by-index"
    for idx, cls in ((0, "circle"), (1, "square")):
        (sets / str(idx)).mkdir(parents=True)
        for f in sorted((SHAPES_TESTSET / cls).iterdir())[:5]:
            shutil.copy(f, sets / str(idx) / f.name)
    out = tmp_path / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(models.path_of("mobilenet-v2-0.35-96-int8-untrained")),
        "--accuracy",
        str(sets),
        "--accuracy-floor",
        "0.9",
        "--json",
        str(out),
    )
    assert p.returncode == 6
    assert p.stderr.count("\n") == 1 and "below the floor 0.900" in p.stderr and "not published" in p.stderr
    res = json.loads(out.read_text())  # kept for inspection, flagged
    assert res["accuracy"]["below_floor"] is True and res["accuracy"]["images"] == 10
    assert res["model"]["registry"]["status"] == "latency only"
    assert any(n.startswith("latency only") for n in res["notes"])
    fastjsonschema.compile(RESULT_JSON_SCHEMA)(res)


def test_labels_csv_and_frames_raised_to_cover_the_set(tmp_path):
    rows = ["file,label"]
    for cls in ("triangle", "hstripes"):
        for f in sorted((SHAPES_TESTSET / cls).iterdir())[:4]:
            dst = tmp_path / "imgs" / f"{cls}-{f.name}"
            dst.parent.mkdir(exist_ok=True)
            shutil.copy(f, dst)
            rows.append(f"imgs/{dst.name},{cls.upper()}")  # labels compare without case
    csv = tmp_path / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(models.path_of("shapes-uint8")),
        "--accuracy",
        str(csv),
        "--frames",
        "3",
        "--warmup",
        "0",
        "--json",
        str(out),
        "-q",
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["accuracy"]["images"] == 8 and res["accuracy"]["top1"] == 1.0
    assert res["accuracy"]["labels_from"] == str(csv) and res["source"]["kind"] == "labelled"
    assert res["frames"] == 8 and any("frames raised from 3 to 8" in n for n in res["notes"])
    # the same CSV found inside the folder
    p2 = run_cli("run", "--model", str(models.path_of("shapes-uint8")), "--accuracy", str(tmp_path), "-q")
    assert p2.returncode == 0, p2.stderr


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("dog-folder", [], "class 'dog' of the accuracy set is not one of the model's 6 labels"),
        ("empty", [], "no labelled images in"),
        ("bad-csv", [], "expected `file,label`"),
        ("dog-folder", ["--source", "synthetic:64x64"], "is the source of the run; drop --source"),
    ],
)
def test_bad_accuracy_sets_are_one_line(tmp_path, setup, args, message):
    d = tmp_path / "set"
    d.mkdir()
    if setup == "dog-folder":
        (d / "dog").mkdir()
        shutil.copy(SHAPES_TESTSET / "circle" / "000.png", d / "dog" / "a.png")
    elif setup == "bad-csv":
        (d / "labels.csv").write_text("only-one-column\n")
    p = run_cli("run", "--model", str(models.path_of("shapes-int8")), "--accuracy", str(d), *args)
    assert p.returncode in (2, 4), p.stderr
    assert p.stderr.count("\n") == 1 and message in p.stderr and "Traceback" not in p.stderr


def test_accuracy_floor_from_the_config_file(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"run:\n  model: {models.path_of('shapes-int8')}\n  accuracy: {SHAPES_TESTSET}\n  accuracy_floor: 0.99\n"
    )
    out = tmp_path / "r.json"
    p = run_cli("run", "--config", str(cfg), "--json", str(out), "-q")
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["accuracy"]["floor"] == 0.99
    cfg.write_text("run:\n  accuracy_floor: 95\n")
    bad = run_cli("run", "--config", str(cfg))
    assert bad.returncode == 2 and "run.accuracy_floor: expected a fraction between 0 and 1" in bad.stderr


def test_refdata_model_is_known_by_its_bytes_and_its_own_metadata_wins(refdata, tmp_path):
    """The registry names the Coral model; its TFLite metadata (normalization, labels) comes first."""
    out = tmp_path / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(refdata / "mobilenet_v2_1.0_224_quant.tflite"),
        "--source",
        str(refdata / "cat.bmp"),
        "--frames",
        "2",
        "--json",
        str(out),
        "-q",
        env={"EDGEBENCH_CACHE_DIR": str(tmp_path / "empty-cache")},
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["model"]["registry"]["name"] == "coral-mobilenet-v2-1.0-224-quant"
    assert res["model"]["registry"]["status"] == "trained"
    assert res["preprocess"]["normalization"]["source"] == "metadata"
    assert res["predictions"][0]["top_k"][0]["label"] == "Egyptian cat"
