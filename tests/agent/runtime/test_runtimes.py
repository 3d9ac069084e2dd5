"""Each runtime edgebench supports, run for real: ai-edge-litert (the default),
tflite-runtime (in its own virtual environment, since it needs numpy<2) and
tensorflow.lite (when TensorFlow is installed)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT, SHAPES_LABELS, SHAPES_MODEL, SHAPES_TESTSET

VENV = ROOT / ".venv-tflite"


@pytest.fixture(scope="session")
def tflite_python() -> Path:
    """A virtual environment with `edgebench[tflite]` (tflite-runtime 2.14, numpy<2),
    built once and reused; it installs this checkout in editable mode."""
    if sys.version_info >= (3, 12):
        pytest.skip("tflite-runtime 2.14 (its last release) has wheels for Python 3.9 to 3.11 only")
    py = VENV / "bin" / "python"
    ok = (
        py.exists()
        and subprocess.run(
            [str(py), "-c", "import tflite_runtime.interpreter, edgebench.agent"], capture_output=True, cwd="/"
        ).returncode
        == 0
    )
    if not ok:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        p = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "-e", f"{ROOT}[tflite]"], capture_output=True, text=True
        )
        if p.returncode != 0:
            pytest.fail(f"could not install edgebench[tflite]: {p.stderr.strip().splitlines()[-1:]}")
    return py


def run_with(py: Path, *args, env=None):
    return subprocess.run(
        [str(py), "-m", "edgebench.agent.cli", "run", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def top1_accuracy(res):
    preds = res["predictions"]
    return sum(p["top_k"][0]["label"] == p["source_name"].split("/")[0] for p in preds) / len(preds)


@pytest.mark.slow
def test_tflite_runtime_gives_the_same_answers(tflite_python, tmp_path):
    out = tmp_path / "r.json"
    p = run_with(
        tflite_python,
        "--runtime",
        "tflite-runtime",
        "--model",
        str(SHAPES_MODEL),
        "--source",
        str(SHAPES_TESTSET),
        "--labels",
        str(SHAPES_LABELS),
        "--frames",
        "120",
        "--warmup",
        "0",
        "--json",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["runtime"]["name"] == "tflite-runtime" and res["runtime"]["version"] == "2.14.0"
    assert top1_accuracy(res) >= 0.95


@pytest.mark.slow
def test_auto_falls_back_to_tflite_runtime_and_says_so(tflite_python, tmp_path):
    # a board where ai-edge-litert has no wheel: its import fails
    shadow = tmp_path / "shadow" / "ai_edge_litert"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no ai-edge-litert wheel for this board')\n")
    out = tmp_path / "r.json"
    p = run_with(
        tflite_python,
        "--model",
        str(SHAPES_MODEL),
        "--frames",
        "10",
        "--json",
        str(out),
        env={"PYTHONPATH": str(shadow.parent)},
    )
    assert p.returncode == 0, p.stderr
    assert "tflite-runtime 2.14.0" in p.stdout
    assert json.loads(out.read_text())["runtime"]["name"] == "tflite-runtime"


@pytest.mark.slow
def test_tflite_runtime_on_the_uint8_reference_model(tflite_python, refdata, tmp_path):
    out = tmp_path / "r.json"
    p = run_with(
        tflite_python,
        "--runtime",
        "tflite-runtime",
        "--model",
        str(refdata / "mobilenet_v2_1.0_224_quant.tflite"),
        "--source",
        str(refdata / "grace_hopper.bmp"),
        "--labels",
        str(refdata / "imagenet_labels.txt"),
        "--frames",
        "2",
        "--warmup",
        "1",
        "--json",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["predictions"][0]["top_k"][0]["label"] == "military uniform"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed here")
def test_tensorflow_lite_runtime(tmp_path):
    out = tmp_path / "r.json"
    p = run_with(
        Path(sys.executable),
        "--runtime",
        "tensorflow",
        "--model",
        str(SHAPES_MODEL),
        "--frames",
        "5",
        "--json",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["runtime"]["name"] == "tensorflow"


def test_a_runtime_that_is_not_installed_is_one_clear_line():
    if importlib.util.find_spec("tflite_runtime") is not None:
        pytest.skip("tflite-runtime is installed in this environment")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgebench.agent.cli",
            "run",
            "--runtime",
            "tflite-runtime",
            "--model",
            str(SHAPES_MODEL),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 3
    assert len(p.stderr.strip().splitlines()) == 1 and "pip install 'tflite-runtime==2.14.0'" in p.stderr


def test_no_runtime_at_all_is_one_line_with_exit_3(tmp_path):
    # a board where pip installed the agent without any runtime: every import fails
    shadow = tmp_path / "shadow"
    for mod in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        (shadow / mod).mkdir(parents=True)
        (shadow / mod / "__init__.py").write_text(f"raise ImportError('no {mod} here')\n")
    p = subprocess.run(
        [sys.executable, "-m", "edgebench.agent.cli", "run", "--model", str(SHAPES_MODEL), "--frames", "5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(shadow)},
        timeout=120,
    )
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgebench: error: no TFLite runtime could be imported"), p.stderr
    assert "no ai_edge_litert here" in lines[0] and "pip install ai-edge-litert" in lines[0]


@pytest.mark.parametrize(
    "machine, bits, expect",
    [
        ("x86_64", 64, "pip install ai-edge-litert"),
        ("aarch64", 64, "pip install ai-edge-litert"),
        # 32-bit Raspberry Pi OS: under a 32-bit kernel, and under a Pi 4/5's 64-bit kernel
        ("armv7l", 32, "pip install 'tflite-runtime==2.14.0' 'numpy<2' (the only TFLite runtime with 32-bit ARM"),
        ("aarch64", 32, "pip install 'tflite-runtime==2.14.0' 'numpy<2' (the only TFLite runtime with 32-bit ARM"),
    ],
)
def test_the_install_hint_follows_the_userland_not_the_kernel(machine, bits, expect):
    from edgebench.agent.runtime.interpreter import install_hint

    assert install_hint("auto", machine, bits).startswith(expect)
    if bits == 32:
        assert "no wheel for a 32-bit ARM userland" in install_hint("ai-edge-litert", machine, bits)
