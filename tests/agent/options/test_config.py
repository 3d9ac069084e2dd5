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


def test_every_bad_key_and_value_is_reported_at_once(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "run:\n  framez: 3\n  threads: 0\n  frames: ten\nmqtt:\n  protocol: '4'\n"
        "jobs:\n  - model: m.tflite\n    top_k: 0\n    every: 5\nbogus: 1\n"
    )
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--config", str(cfg))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines == [
        f"edgebench: error: config {cfg}: unknown key run.framez (did you mean run.frames?)",
        f"edgebench: error: config {cfg}: run.threads: expected a whole number >= 1, got 0",
        f"edgebench: error: config {cfg}: run.frames: expected a whole number >= 1, got 'ten'",
        f"edgebench: error: config {cfg}: mqtt.protocol: expected one of auto, 5, 3.1.1, got '4'",
        f"edgebench: error: config {cfg}: jobs[0].top_k: expected a whole number between 1 and 100, got 0",
        f"edgebench: error: config {cfg}: unknown key jobs[0].every (did you mean jobs[0].every_s?)",
        f"edgebench: error: config {cfg}: unknown key bogus (known: commands, device_id, jobs, mqtt, outbox, "
        "probes, run, sweep, telemetry, tune)",
    ]
    # the service reads the same file the same way
    p = run_cli("agent", "--config", str(cfg))
    assert p.returncode == 2 and p.stderr.strip().splitlines() == lines


def test_three_bad_sweep_keys_in_one_run(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("sweep:\n  batch: 1,,2\n  warmup: -1\n  instancez: 2\n")
    p = run_cli("sweep", "--model", str(SHAPES_MODEL), "--config", str(cfg))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 3 and all(ln.startswith(f"edgebench: error: config {cfg}: ") for ln in lines)
    assert "sweep.batch: expected whole numbers from 1 to 65536" in lines[0]
    assert "sweep.warmup: expected a whole number >= 0, got -1" in lines[1]
    assert "unknown key sweep.instancez (did you mean sweep.instances?)" in lines[2]


def test_every_bad_flag_value_is_reported_at_once():
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "0", "--top-k", "101", "--sample-hz", "0")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "edgebench: error: --frames must be at least 1, got 0",
        "edgebench: error: --top-k must be between 1 and 100, got 101",
        "edgebench: error: --sample-hz must be more than 0, got 0",
    ]


def test_the_sweep_section_is_the_sweeps_config(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"device_id: from-config\nsweep:\n  model: {SHAPES_MODEL}\n  batch: [1, 2]\n  frames: 3\n  warmup: 0\n"
        "  min_frames: 1\n  min_duration_s: 0\n"
    )
    out = tmp_path / "s.json"
    p = run_cli("sweep", "--config", str(cfg), "--batch", "1", "--json", str(out), "-q", "--power", "none")
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["grid"]["batch"] == [1]  # the flag wins
    assert doc["settings"]["frames"] == 3 and doc["settings"]["warmup"] == 0  # the file fills the rest
    assert doc["device_id"] == "from-config"


def test_a_job_with_several_bad_keys_names_each():
    from edgebench.agent.errors import UserError
    from edgebench.agent.options.config import validate_job

    with pytest.raises(UserError) as e:
        validate_job({"model": "m.tflite", "frames": "ten", "resize": "squash", "evry_s": 5})
    assert str(e.value).splitlines() == [
        "job.frames: expected a whole number >= 1, got 'ten'",
        "job.resize: expected one of stretch, crop, letterbox, got 'squash'",
        "unknown key job.evry_s (did you mean job.every_s?)",
    ]


def test_config_and_flag_problems_and_every_combination_are_reported_together(tmp_path):
    """Issue 16, item 10: the config check already reported every bad key at once (the test
    above); a bad flag beside a bad config, and a scenario's bad combinations, stopped at the
    first one."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("run:\n  framez: 3\n")
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--config", str(cfg), "--frames", "0")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"edgebench: error: config {cfg}: unknown key run.framez (did you mean run.frames?)",
        "edgebench: error: --frames must be at least 1, got 0",
    ]
    cfg.write_text("run:\n  scenario: server\n  pipelined: true\n  fps: 10\n")
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--config", str(cfg))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "edgebench: error: --pipelined does not apply to --scenario (its samples are prepared before timing)",
        "edgebench: error: --fps does not apply to --scenario (its samples are prepared before timing)",
        "edgebench: error: the server scenario needs --target-qps N (queries per second, more than 0)",
        "edgebench: error: the server scenario needs --latency-bound-ms N (the p99 latency the rate must hold)",
    ]
