"""End to end: `edgebench run` and `edgebench info` on the bundled model with fake board roots
(EDGEBENCH_SYSFS_ROOT), as a user runs them."""

from __future__ import annotations

import json
import threading

import pytest

from tests.support.paths import SHAPES_MODEL, run_cli
from tests.support.probes_fakes import (
    JETSON_OC,
    JETSON_THERMAL,
    JTOP_CPUS,
    ORIN_NX_INA,
    PI4_PMIC,
    PI_TREE,
    PMIC_READ_ADC,
    write_script,
    write_tree,
)

ORIN_MODEL = b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00"


def orin_root(tmp_path):
    return write_tree(
        tmp_path / "orin",
        {**ORIN_NX_INA, **JETSON_THERMAL, **JETSON_OC, **JTOP_CPUS, "proc/device-tree/model": ORIN_MODEL},
    )


def pi_root(tmp_path, pmic_output: str, throttled: str):
    tree = {k: v for k, v in PI_TREE.items() if "get_throttled" not in k}  # only vcgencmd knows
    tree["proc/device-tree/model"] = b"Raspberry Pi 5 Model B Rev 1.0\x00"
    root = write_tree(tmp_path / "pi", tree)
    (root / "pmic.txt").write_text(pmic_output)
    write_script(
        root,
        "vcgencmd",
        f"""case "$1" in
  pmic_read_adc) cat "{root}/pmic.txt" ;;
  get_throttled) echo "throttled={throttled}" ;;
  *) echo "error=2 error_msg=\\"Invalid command\\""; exit 255 ;;
esac
""",
    )
    return root


def run_json(tmp_path, root, *flags: str, frames: int = 200):
    out = tmp_path / "result.json"
    p = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--frames",
        str(frames),
        "--idle-baseline-s",
        "0.3",
        "--json",
        str(out),
        *flags,
        env={"EDGEBENCH_SYSFS_ROOT": str(root)},
    )
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text()), p


def test_run_on_a_fake_orin_nx(tmp_path):
    res, p = run_json(tmp_path, orin_root(tmp_path), "--sample-hz", "20")
    pw = res["power"]
    assert pw["available"] is True
    assert pw["source"] == "jetson-ina3221" and pw["total_rail"] == "VDD_IN" and pw["flags"] == []
    assert pw["method"] == "trapezoid" and pw["sampling_rate_target_hz"] == 20.0
    assert pw["mean_w"] == pytest.approx(6.654464)
    assert pw["window_s"] == pytest.approx(res["duration_s"])
    assert pw["energy_j"] == pytest.approx(6.654464 * res["duration_s"], rel=1e-4)
    assert pw["energy_per_inference_mj"]["gross"] == pytest.approx(pw["energy_j"] / res["frames"] * 1000, rel=1e-4)
    assert pw["idle_w"] == pytest.approx(6.654464) and pw["idle_s"] >= 0.3
    assert pw["energy_per_inference_mj"]["net"] == pytest.approx(0.0, abs=1e-6)
    assert pw["rails_mean_w"]["VDD_SOC"] == pytest.approx(1.44552)
    assert pw["gaps"] == 0
    th = res["thermal"]
    assert th["max_c"] == 44.531 and th["zones"]["tj-thermal"]["max_c"] == 44.531
    assert th["zones"]["cv0-thermal"]["max_c"] is None
    assert th["skipped"] == ["PMIC-Die (fixed placeholder temperature)"]
    assert th["governor"] == "test_cpu" and th["cpu_freq_mhz"]["cpu5"]["max"] == 200.0
    assert res["throttling"]["throttled"] is False and res["throttling"]["flags"] == []
    assert res["throttling"]["oc_event_delta"] == {"oc1": 0, "oc2": 0, "oc3": 0}
    assert res["board"]["model"] == ORIN_MODEL.decode().rstrip("\x00")
    assert res["board"]["sensors"]["power"] == "jetson-ina3221"
    assert res["system"]["sampler_cpu_pct"] is not None and res["system"]["agent_cpu_pct"] > 0
    assert res["config"]["probes"]["sample_hz"] == 20.0
    assert "power 6.654 W mean (jetson-ina3221 VDD_IN)" in p.stdout
    assert "max 44.531 °C (gpu-thermal); no throttling seen" in p.stdout


def test_run_cools_and_soaks_first(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("probes:\n  soak: true\n  soak_window_s: 1\n  soak_max_s: 20\n  sample_hz: 5\n")
    res, p = run_json(tmp_path, orin_root(tmp_path), "--config", str(cfg), "--cool-below", "50", frames=20)
    cool, soak = res["thermal"]["cool"], res["thermal"]["soak"]
    assert cool["reached"] is True and cool["start_c"] == 44.531 and cool["target_c"] == 50.0
    assert soak["steady"] is True and soak["end_c"] == 44.531 and soak["workload_runs"] > 0
    assert 1.0 <= soak["soak_s"] < 20
    assert res["power"]["sampling_rate_target_hz"] == 5.0


def test_run_on_a_fake_pi5_throttling(tmp_path):
    res, p = run_json(tmp_path, pi_root(tmp_path, PMIC_READ_ADC, "0x50005"), "--sample-hz", "10")
    pw = res["power"]
    assert pw["source"] == "rpi-pmic" and pw["flags"] == ["pmic_output_side"] and pw["total_rail"] is None
    assert "output side" in pw["scope"]
    assert pw["mean_w"] == pytest.approx(1.7667, abs=5e-5)
    assert pw["rails_mean_w"]["VDD_CORE"] == pytest.approx(0.4321, abs=5e-5)
    thr = res["throttling"]
    assert thr["throttled"] is True and thr["flags"] == ["under_voltage", "throttled"]
    assert [e["at_s"] for e in thr["events"]] == [0.0, 0.0]
    assert thr["rpi_get_throttled"]["start_hex"] == "0x50005"
    assert thr["rpi_get_throttled"]["since_boot_at_start"] == ["under_voltage", "throttled"]
    assert res["thermal"]["zones"]["cpu-thermal"]["max_c"] == 47.2
    assert "[pmic_output_side]" in p.stdout and "THROTTLED: under_voltage at 0 s, throttled at 0 s" in p.stdout


def test_run_on_a_fake_pi4_says_there_is_no_power_reading(tmp_path):
    res, p = run_json(tmp_path, pi_root(tmp_path, PI4_PMIC, "0x0"), frames=20)
    assert res["power"]["available"] is False and res["power"]["source"] is None
    assert "no PMIC power reading" in res["power"]["reason"]
    assert any("no PMIC power reading" in n for n in res["notes"])
    assert res["throttling"]["throttled"] is False
    assert "power n/a" in p.stdout


def test_run_with_a_meter_command_and_without_probes(tmp_path):
    root = write_tree(tmp_path / "empty", {"etc/hostname": "x"})
    res, _ = run_json(tmp_path, root, "--power", "cmd:echo 2500 mW", frames=50)
    assert res["power"]["source"] == "cmd" and res["power"]["mean_w"] == pytest.approx(2.5)
    res, p = run_json(tmp_path, root, "--no-probes", frames=20)
    assert "power" not in res and res["probes"] == {"enabled": False}
    assert "power n/a" not in p.stdout and "W mean" not in p.stdout


def test_idle_baseline_comes_before_a_live_source_opens(tmp_path):
    """A paced (live) source opened before the idle baseline would drop ~30 frames at 30 fps."""
    root = write_tree(tmp_path / "empty", {"etc/hostname": "x"})
    out = tmp_path / "live.json"
    p = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--source",
        "synthetic",
        "--fps",
        "30",
        "--frames",
        "20",
        "--warmup",
        "0",
        "--power",
        "cmd:echo 1",
        "--idle-baseline-s",
        "1",
        "--json",
        str(out),
        "-q",
        env={"EDGEBENCH_SYSFS_ROOT": str(root)},
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["power"]["idle_s"] >= 1.0
    assert res["source"]["live"] is True
    # 20 measured frames take ~0.7 s at 30 fps; a source open during the idle second would add ~30 more
    assert res["source"]["frames_captured"] < 40


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--sample-hz", "0"], "must be more than 0"),
        (["--sample-hz", "5000"], "--sample-hz must be above 0 and at most 1000"),
        (["--power", "mains"], "unknown power source 'mains'"),
        (["--power", "rapl"], "--power rapl: no Intel RAPL energy counters"),
        (["--power", "cmd:exit 1"], "the meter command failed"),
        (["--idle-baseline-s", "-1"], "must not be negative"),
    ],
)
def test_bad_probe_flags_are_one_line(tmp_path, flags, message):
    root = write_tree(tmp_path / "empty", {"etc/hostname": "x"})
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "5", *flags, env={"EDGEBENCH_SYSFS_ROOT": str(root)})
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    # one error line (argparse prints its usage above its own errors)
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1 and message in errors[0] and lines[-1] == errors[0], p.stderr
    assert "Traceback" not in p.stderr


def test_info_on_a_fake_orin(tmp_path):
    root = orin_root(tmp_path)
    p = run_cli("info", env={"EDGEBENCH_SYSFS_ROOT": str(root)})
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for text in (
        "[board]\n  model: NVIDIA Jetson Orin NX",
        "[power]\n  source: jetson-ina3221",
        "covers: Jetson module input rail VDD_IN",
        "now_w: 6.6545",
        "VDD_SOC: 1.4455",
        "[thermal]",
        "tj-thermal:\n      now_c: 44.531\n      kind: thermal_zone",
        "now_c: offline",
        "PMIC-Die (fixed placeholder temperature)",
        "cpu5: 200 (cap 2035.2, test_cpu)",
        "[throttling]",
        "jetson soctherm_oc event counters",
        "oc_event_counts:\n    oc1: 0\n    oc2: 15\n    oc3: 37",
    ):
        assert text in out, f"{text!r} not in:\n{out}"
    j = run_cli("info", "--json", env={"EDGEBENCH_SYSFS_ROOT": str(root)})
    data = json.loads(j.stdout)
    assert [k for k in data if k in ("board", "accelerators", "power", "thermal", "throttling")] == [
        "board",
        "accelerators",
        "power",
        "thermal",
        "throttling",
    ]
    assert data["power"]["source"] == "jetson-ina3221" and data["power"]["rails_w"]["VDD_IN"] == 6.6545
    assert data["board"]["model"] == ORIN_MODEL.decode().rstrip("\x00")
    assert data["thermal"]["zones"]["cv0-thermal"]["now_c"] == "offline"


def test_info_with_nothing_found(tmp_path):
    root = write_tree(tmp_path / "empty", {"etc/hostname": "x"})
    p = run_cli("info", env={"EDGEBENCH_SYSFS_ROOT": str(root)})
    assert p.returncode == 0, p.stderr
    assert "[power]\n  source: none\n  why: no power source on this board" in p.stdout
    assert "[thermal]\n  zones: none found" in p.stdout


def test_info_message_carries_the_board_inventory(tmp_path, mosquitto):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    root = orin_root(tmp_path)
    p = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--frames",
        "20",
        "--idle-baseline-s",
        "0",
        "--mqtt",
        mosquitto.url,
        "--device-id",
        "probe-orin",
        "-q",
        env={"EDGEBENCH_SYSFS_ROOT": str(root)},
    )
    assert p.returncode == 0, p.stderr
    got: dict = {}
    done = threading.Event()

    def on_message(client, userdata, msg):
        got["info"] = json.loads(msg.payload)
        done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe-test-reader")
    c.on_message = on_message
    c.on_connect = lambda client, *a: client.subscribe("edgebench/v1/probe-orin/info", qos=1)
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    try:
        assert done.wait(30), "no retained info message"
    finally:
        c.loop_stop()
        c.disconnect()
    inv = got["info"]["inventory"]
    assert inv["model"] == ORIN_MODEL.decode().rstrip("\x00")
    assert inv["sensors"]["power"] == "jetson-ina3221"
    assert inv["runtime"]["name"] == "ai-edge-litert"


def test_info_shows_only_the_sections_named(tmp_path):
    p = run_cli("info", "--json", "board", "agent", env={"EDGEBENCH_SYSFS_ROOT": str(orin_root(tmp_path))})
    assert p.returncode == 0, p.stderr
    assert list(json.loads(p.stdout)) == ["agent", "board"]  # in print order
    p = run_cli("info", "agent", "gpu")
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert p.stderr.startswith("edgebench: error: no info section 'gpu': choose from agent, runtimes,")
