"""Probes around a run (cool, soak, idle baseline, sections) and telemetry snapshots."""

from __future__ import annotations

import time

import pytest

from edgebench.agent.errors import UserError
from edgebench.agent.options import config as cfgmod
from edgebench.agent.options.build import build_probe_options
from edgebench.agent.probes._fs import SysFS
from edgebench.agent.probes.session import (
    ProbeOptions,
    ProbeSession,
    Telemetry,
    soak_until_steady,
    telemetry_snapshot,
    wait_cool,
)
from tests.support.probes_fakes import (
    JETSON_OC,
    JETSON_THERMAL,
    JTOP_CPUS,
    ORIN_NX_INA,
    PI_TREE,
    PMIC_READ_ADC,
    FakeRunner,
    write_tree,
)


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def temps(values):
    it = iter(values)
    last = [None]

    def read():
        try:
            last[0] = next(it)
        except StopIteration:
            pass
        return "cpu-thermal", last[0]

    return read


def test_wait_cool_until_below():
    clock = FakeClock()
    out = wait_cool(temps([61.0, 55.0, 49.5]), 50.0, timeout_s=600, poll_s=2.0, clock=clock, sleep=clock.sleep)
    assert out == {
        "target_c": 50.0,
        "start_c": 61.0,
        "end_c": 49.5,
        "zone": "cpu-thermal",
        "waited_s": 4.0,
        "reached": True,
    }


def test_wait_cool_gives_up_at_the_timeout():
    clock = FakeClock()
    out = wait_cool(temps([70.0]), 50.0, timeout_s=10, poll_s=1.0, clock=clock, sleep=clock.sleep)
    assert out["reached"] is False and out["waited_s"] == 10.0 and out["end_c"] == 70.0


def test_wait_cool_already_cool():
    clock = FakeClock()
    out = wait_cool(temps([40.0]), 50.0, timeout_s=10, clock=clock, sleep=clock.sleep)
    assert out["reached"] and out["waited_s"] == 0.0


def test_soak_runs_the_workload_until_steady():
    clock = FakeClock()
    runs = []

    def workload():
        runs.append(1)
        clock.t += 0.5

    # rises 2 °C per second for 10 s, then flat at 70 °C
    def read():
        return "soc", min(50.0 + 2.0 * clock.t, 70.0)

    out = soak_until_steady(workload, read, window_s=5.0, steady_c=0.5, max_s=600, poll_s=1.0, clock=clock)
    assert out["steady"] is True
    assert out["end_c"] == 70.0 and out["start_c"] == 50.0
    assert out["soak_s"] == pytest.approx(15.0)  # flat from 10 s, steady once 5 s of flat history
    assert out["workload_runs"] == len(runs) == 30


def test_soak_stops_at_max_when_never_steady():
    clock = FakeClock()

    def workload():
        clock.t += 0.25

    out = soak_until_steady(
        workload, lambda: ("soc", 40.0 + clock.t), window_s=5.0, steady_c=0.5, max_s=20, poll_s=1.0, clock=clock
    )
    assert out["steady"] is False and out["soak_s"] == pytest.approx(20.0)


def orin_tree(tmp_path):
    return write_tree(
        tmp_path,
        {
            **ORIN_NX_INA,
            **JETSON_THERMAL,
            **JETSON_OC,
            **JTOP_CPUS,
            "proc/device-tree/model": b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00",
        },
    )


def sampled_since(ps, t0_ns):
    time.sleep(0.005)  # leaves the sampler thread the interpreter lock
    return any(s.t_ns > t0_ns for s in ps.sampler.snapshot())


def test_session_sections_on_a_fake_orin(tmp_path):
    fs = SysFS(orin_tree(tmp_path))
    opts = ProbeOptions(sample_hz=50.0, idle_baseline_s=0.2, cool_below_c=60.0)
    with ProbeSession(opts, fs=fs, runner=FakeRunner({})) as ps:
        t0 = time.perf_counter_ns()
        busy = time.perf_counter() + 0.2
        # the "measured frames": at least 0.2 s, and on a loaded box until the sampler thread
        # has taken a sample inside the window (capped at 20 s)
        while time.perf_counter() < busy or not sampled_since(ps, t0):
            if time.perf_counter() > busy + 20:
                break
        t1 = time.perf_counter_ns()
    sec = ps.sections(t0, t1, 20, runtime={"name": "ai-edge-litert", "version": "2.3.0", "delegate": None})
    assert set(sec) == {"board", "power", "thermal", "throttling", "system"}
    p = sec["power"]
    assert p["source"] == "jetson-ina3221" and p["total_rail"] == "VDD_IN" and p["flags"] == []
    assert p["method"] == "trapezoid" and p["layout"] == "hwmon"
    assert p["mean_w"] == pytest.approx(6.654464)
    assert p["energy_j"] == pytest.approx(6.654464 * (t1 - t0) / 1e9, rel=1e-5)
    assert p["energy_per_inference_mj"]["gross"] == pytest.approx(p["energy_j"] / 20 * 1000, rel=1e-5)
    assert p["idle_w"] == pytest.approx(6.654464) and p["idle_s"] >= 0.2
    assert p["energy_per_inference_mj"]["net"] == pytest.approx(0.0, abs=1e-6)
    assert p["rails_mean_w"] == {
        "VDD_IN": pytest.approx(6.654464),
        "VDD_CPU_GPU_CV": pytest.approx(0.48184),
        "VDD_SOC": pytest.approx(1.44552),
    }
    assert p["gaps"] == 0 and p["samples"] >= 1
    t = sec["thermal"]
    assert t["max_c"] == 44.531 and t["max_zone"] == "gpu-thermal"
    assert t["zones"]["cv0-thermal"]["max_c"] is None and t["zones"]["cv0-thermal"]["gaps"] >= 2
    assert t["zones"]["cpu-thermal"] == {
        "start_c": 44.125,
        "end_c": 44.125,
        "min_c": 44.125,
        "max_c": 44.125,
        "gaps": 0,
    }
    assert t["cpu_freq_mhz"]["cpu0"] == {"start": 200.0, "end": 200.0, "min": 200.0, "max": 200.0}
    assert t["cool"]["reached"] is True and t["cool"]["target_c"] == 60.0
    assert sec["throttling"]["throttled"] is False
    assert sec["throttling"]["oc_event_delta"] == {"oc1": 0, "oc2": 0, "oc3": 0}
    s = sec["system"]
    assert len(s["cpu_pct_per_core"]) >= 1 and s["sampler_hz_target"] == 50.0
    assert s["sampler_cpu_s"] > 0 and s["sampler_cpu_pct"] > 0
    b = sec["board"]
    assert b["model"] == "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
    assert b["sensors"]["power"] == "jetson-ina3221"
    assert b["runtime"]["name"] == "ai-edge-litert"


def test_session_gaps_when_the_sensor_disappears(tmp_path):
    root = orin_tree(tmp_path)
    opts = ProbeOptions(sample_hz=100.0, idle_baseline_s=0)
    with ProbeSession(opts, fs=SysFS(root), runner=FakeRunner({})) as ps:
        t0 = time.perf_counter_ns()
        (root / "sys/bus/i2c/devices/1-0040/hwmon/hwmon3/curr1_input").unlink()
        ps.sampler.sample()  # at least one failed reading inside the window
        t1 = time.perf_counter_ns()
    sec = ps.sections(t0, t1, 5)
    assert sec["power"]["gaps"] >= 1  # the one above (the stop sample is after the window)
    assert sec["power"]["gap_s"] > 0
    assert sec["power"]["mean_w"] == pytest.approx(6.654464)  # never pulled towards zero
    assert sec["power"]["idle_w"] is None and sec["power"]["energy_per_inference_mj"]["net"] is None
    assert any("power reading(s) failed" in n for n in ps.notes)


def test_session_without_sources_says_why(tmp_path):
    root = write_tree(tmp_path, {"etc/hostname": "nothing"})
    with ProbeSession(ProbeOptions(), fs=SysFS(root), runner=FakeRunner({})) as ps:
        t0 = time.perf_counter_ns()
        t1 = t0 + 1000
    assert ps.idle is None  # no power source: no idle wait
    sec = ps.sections(t0, t1, 1)
    assert sec["power"]["available"] is False and sec["power"]["source"] is None
    assert "no power source on this board" in sec["power"]["reason"]
    assert ps.notes and ps.notes[0].startswith("power not measured")


def test_session_disabled(tmp_path):
    with ProbeSession(ProbeOptions(enabled=False), fs=SysFS(orin_tree(tmp_path)), runner=FakeRunner({})) as ps:
        pass
    sec = ps.sections(0, 1, 1)
    assert sec["probes"] == {"enabled": False} and "power" not in sec


def test_cool_and_soak_without_sensors_are_notes(tmp_path):
    root = write_tree(tmp_path, {"etc/hostname": "x"})
    opts = ProbeOptions(cool_below_c=40, soak=True, power="none")
    with ProbeSession(opts, fs=SysFS(root), runner=FakeRunner({})) as ps:
        pass
    assert ps.cool == {"target_c": 40, "reached": False, "reason": "no temperature sensor"}
    assert ps.soak["steady"] is False
    assert len(ps.notes) == 2


def test_telemetry_on_a_fake_pi5(tmp_path):
    root = write_tree(tmp_path, PI_TREE)
    runner = FakeRunner({("vcgencmd", "pmic_read_adc"): PMIC_READ_ADC})
    tel = Telemetry(SysFS(root), runner=runner)
    snap = tel.snapshot()
    assert snap["power_source"] == "rpi-pmic" and snap["power_flags"] == ["pmic_output_side"]
    assert snap["power_w"] == pytest.approx(1.7667, abs=1e-4)
    assert snap["power_rails_w"]["VDD_CORE"] == pytest.approx(0.4321, abs=1e-4)
    assert snap["temps_c"] == {"cpu-thermal": 47.2} and snap["max_temp_c"] == 47.2
    assert snap["cpu_freq_mhz"] == {"cpu0": 2400.0}
    assert snap["throttling"]["now"] == [] and snap["throttling"]["since_boot"] == ["under_voltage", "throttled"]
    assert snap["throttling"]["rpi_get_throttled_hex"] == "0x50000"
    assert snap["cpu_pct_per_core"] and snap["mem_total_mb"] > 0
    (root / "sys/devices/platform/soc/soc:firmware/get_throttled").write_text("50005\n")
    assert tel.snapshot()["throttling"]["now"] == ["under_voltage", "throttled"]


def test_telemetry_snapshot_default_instance(tmp_path, monkeypatch):
    root = orin_tree(tmp_path)
    monkeypatch.setenv("EDGEBENCH_SYSFS_ROOT", str(root))
    a = telemetry_snapshot()
    b = telemetry_snapshot()
    assert a["power_source"] == "jetson-ina3221" and a["power_w"] == pytest.approx(6.6545)  # rounded to 0.1 mW
    assert b["throttling"]["oc_event_cnt"] == {"oc1": 0, "oc2": 15, "oc3": 37}
    assert b["ts"] >= a["ts"]


def test_probe_options_from_config_and_flags():
    cfg = {"probes": {"sample_hz": 5.0, "power": "none", "soak": True}}
    o = build_probe_options(cfg, {"probes": {"sample_hz": 20.0}})
    assert (o.sample_hz, o.power, o.soak) == (20.0, "none", True)
    with pytest.raises(UserError, match="--sample-hz"):
        build_probe_options({}, {"probes": {"sample_hz": 5000.0}})
    with pytest.raises(UserError, match="unknown power source"):
        build_probe_options({"probes": {"power": "mains"}})


def test_config_probes_section(tmp_path):
    p = tmp_path / "agent.yaml"
    p.write_text(
        "probes:\n  sample_hz: 20\n  power: cmd:cat /run/watts\n  idle_baseline_s: 1\n"
        "  cool_below_c: 45\n  soak: true\n  soak_max_s: 120\n"
    )
    cfg = cfgmod.load(str(p))
    assert cfg["probes"] == {
        "sample_hz": 20.0,
        "power": "cmd:cat /run/watts",
        "idle_baseline_s": 1.0,
        "cool_below_c": 45.0,
        "soak": True,
        "soak_max_s": 120.0,
    }
    p.write_text("probes:\n  sampel_hz: 20\n")
    with pytest.raises(UserError, match="did you mean probes.sample_hz"):
        cfgmod.load(str(p))
