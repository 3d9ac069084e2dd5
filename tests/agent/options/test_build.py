"""One way to RunOptions and SweepOptions: the table's defaults, the config file, the flags;
`edgebench run` and the agent service's jobs build the same options for the same values."""

import pytest
import yaml

from edgebench.agent.cli import build_parser, resolve_run
from edgebench.agent.cli.common import publish_settings, read_settings
from edgebench.agent.errors import UserError
from edgebench.agent.options import config as cfgmod
from edgebench.agent.options.build import build_run_options, build_sweep_options, merge
from edgebench.agent.options.classes import ProbeOptions
from edgebench.agent.options.table import get
from edgebench.agent.service.agent import job_options


def argv_of(values: dict) -> list[str]:
    """The `edgebench run` flags that say ``values`` (the run section's keys)."""
    argv = []
    for key, v in values.items():
        o = get("run", key)
        if o.action in ("true", "false"):
            assert v == (o.action == "true"), key
            argv.append(o.flag)
        elif isinstance(v, dict):
            for k, val in v.items():
                argv += [o.flag, f"{k}={val}"]
        else:
            argv += [o.flag, str(v)]
    return argv


def cli_options(tmp_path, argv: list[str], config: dict | None = None):
    args = ["run", *argv]
    if config is not None:
        path = tmp_path / "agent.yaml"
        path.write_text(yaml.safe_dump(config))
        args += ["--config", str(path)]
    return resolve_run(build_parser().parse_args(args))


JOBS = [
    {"model": "m.tflite"},
    {
        "model": "m.tflite",
        "source": "synthetic:64x48",
        "frames": 7,
        "warmup": 0,
        "threads": 2,
        "resize": "crop",
        "color": "BGR",
        "delegate": "edgetpu",
        "delegate_options": {"device": "usb:0"},
        "cpu_fallback": True,
        "xnnpack": False,
        "min_frames": 3,
        "min_duration_s": 0.0,
        "top_k": 3,
    },
    {"model": "m.tflite", "duration_s": 2.5, "pipelined": True, "pacing": "realtime", "fps": 15.0},
    {"model": "m.tflite", "scenario": "server", "target_qps": 50.0, "latency_bound_ms": 20.0, "batch": 2, "seed": 3},
    {"model": "m.tflite", "find_max_qps": True, "latency_bound_ms": 10.0, "max_qps_steps": 4},
    {"model": "m.tflite", "accuracy": "testset", "accuracy_floor": 0.5},
]


@pytest.mark.parametrize("values", JOBS, ids=range(len(JOBS)))
def test_a_job_and_the_command_line_build_the_same_run_options(tmp_path, values):
    probes = {"power": "none", "sample_hz": 20.0}
    from_cli, _ = cli_options(tmp_path, [*argv_of(values), "--device-id", "pi-a"], {"probes": probes})
    job = cfgmod.validate_job(values)
    from_job = job_options(job, "pi-a", None, {"probes": probes})
    assert from_cli == from_job
    assert from_cli.probes == ProbeOptions(power="none", sample_hz=20.0)
    # and a job in the config file's `run` section, the same again
    from_run_section, _ = cli_options(tmp_path, ["--device-id", "pi-a"], {"run": values, "probes": probes})
    assert from_run_section == from_job


def test_flags_override_the_config_in_every_section(tmp_path):
    config = {
        "device_id": "from-config",
        "run": {"model": "m.tflite", "frames": 7, "warmup": 1, "resize": "crop", "xnnpack": True},
        "probes": {"power": "auto", "sample_hz": 5.0, "soak": True},
        "mqtt": {"url": "mqtt://from-config:1883", "protocol": "5", "keepalive_s": 60},
        "outbox": {"drain_wait_s": 3.0, "max_mb": 8.0},
    }
    argv = ["--frames", "4", "--no-xnnpack", "--power", "none", "--device-id", "from-flag"]
    argv += ["--mqtt", "mqtt://from-flag:1883", "--mqtt-protocol", "3.1.1", "--mqtt-wait", "1"]
    opts, merged = cli_options(tmp_path, argv, config)
    assert (opts.frames, opts.warmup, opts.resize, opts.xnnpack) == (4, 1, "crop", False)
    assert (opts.probes.power, opts.probes.sample_hz, opts.probes.soak) == ("none", 5.0, True)
    assert opts.device_id == "from-flag"
    args = build_parser().parse_args(["run", *argv, "--json", "out.json"])
    publish = publish_settings(merged, args, "run")
    assert publish.mqtt == {"url": "mqtt://from-flag:1883", "protocol": "3.1.1", "keepalive_s": 60}
    assert publish.outbox == {"drain_wait_s": 1.0, "max_mb": 8.0}
    assert (publish.wait_s, publish.keep, publish.quiet) == (1.0, "out.json", False)


def test_without_a_broker_there_is_nothing_to_publish_and_the_wait_has_its_default(tmp_path):
    args = build_parser().parse_args(["run", "--model", "m.tflite"])
    cfg, flags = read_settings(args, "run")
    assert publish_settings(merge(cfg, flags), args, "run") is None
    args = build_parser().parse_args(["sweep", "--model", "m.tflite", "--mqtt", "mqtt://b"])
    cfg, flags = read_settings(args, "sweep")
    assert publish_settings(merge(cfg, flags), args, "sweep").wait_s == 15.0
    with pytest.raises(UserError, match="bad broker URL"):
        args = build_parser().parse_args(["sweep", "--model", "m.tflite", "--mqtt", "http://b"])
        publish_settings(merge(*read_settings(args, "sweep")), args, "sweep")


def test_no_model_says_where_to_give_one():
    with pytest.raises(UserError, match=r"^no model: give --model PATH \(or run.model in a --config file\)$"):
        build_run_options({})
    with pytest.raises(UserError, match="^the job has no model$"):
        build_run_options({}, job={"name": "hourly", "every_s": 60.0})
    with pytest.raises(UserError, match=r"^no model: give --model PATH \(or sweep.model in a --config file\)$"):
        build_sweep_options({})


def test_a_job_keeps_its_schedule_out_of_the_run_options():
    opts = build_run_options({"run": {"frames": 3}}, job={"model": "m.tflite", "name": "hourly", "every_s": 60.0})
    assert opts.frames == 100  # the job's own values only, not the config's `run` section
    assert not hasattr(opts, "every_s") and not hasattr(opts, "name")


def test_sweep_options_from_config_and_flags(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("sweep:\n  model: m.tflite\n  batch: 1..8\n  threads: [1, 2]\n  warmup: 1\n  seed: 4\n")
    args = build_parser().parse_args(["sweep", "--config", str(path), "--threads", "4", "--frames", "5"])
    opts = build_sweep_options(*read_settings(args, "sweep"))
    assert (opts.batch, opts.threads, opts.instances) == ([1, 2, 4, 8], [4], [1])
    assert (opts.frames, opts.duration_s, opts.warmup, opts.seed) == (5, None, 1, 4)
    opts = build_sweep_options({"sweep": {"model": "m.tflite"}})
    assert opts.duration_s == 2.0 and opts.batch == [1]
    with pytest.raises(UserError, match="not both"):
        build_sweep_options({"sweep": {"model": "m.tflite", "frames": 3, "duration_s": 1.0}})
