"""Every bad key or value in the config file is one line naming the key; flags override the file."""

import json

import pytest

from tests.support.paths import SHAPES_MODEL, run_cli


@pytest.mark.parametrize(
    "text, words",
    [
        ("run:\n  framez: 3\n", "unknown key run.framez (did you mean run.frames?)"),
        ("run:\n  frames: ten\n", "run.frames: expected a whole number >= 1, got 'ten'"),
        ("run:\n  threads: 0\n", "run.threads: expected a whole number >= 1"),
        ("run:\n  resize: squash\n", "run.resize: expected one of stretch, crop, letterbox"),
        ("run:\n  pipelined: yes please\n", "run.pipelined: expected true or false"),
        ("run:\n  normalization: {mean: 1}\n", "run.normalization: expected a mapping with mean and std"),
        ("run:\n  normalization: {mean: 0, std: 0}\n", "run.normalization: std must not be zero"),
        ("run:\n  delegate_options: [a, b]\n", "run.delegate_options: expected a mapping"),
        ("mqtt:\n  url: 5\n", "mqtt.url: expected a non-empty string"),
        ("mqtt:\n  protocol: '4'\n", "mqtt.protocol: expected one of auto, 5, 3.1.1"),
        ("jobs:\n  - model: m.tflite\n    every: 10\n", "unknown key jobs[0].every"),
        ("device_id: Not/Valid\n", "device_id: invalid device id"),
        ("bogus: 1\n", "unknown key bogus"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("run: [\n", "not valid YAML at line 2"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, text, words):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(text)
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--config", str(cfg))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], p.stderr
    assert str(cfg) in lines[0]


def test_flags_override_the_config(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"device_id: from-config\nrun:\n  model: {SHAPES_MODEL}\n  frames: 7\n  warmup: 1\n  resize: crop\n")
    out = tmp_path / "r.json"
    p = run_cli("run", "--config", str(cfg), "--frames", "4", "--json", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["frames"] == 4 and res["warmup_frames"] == 1  # flag wins, file fills the rest
    assert res["device_id"] == "from-config" and res["preprocess"]["resize"] == "crop"


def test_missing_config_file(tmp_path):
    p = run_cli("run", "--config", str(tmp_path / "nope.yaml"))
    assert p.returncode == 2 and "config file not found" in p.stderr
