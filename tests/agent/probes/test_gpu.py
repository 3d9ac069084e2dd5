"""The GPU's load and clock (sysfs, as jtop reads it) and a Jetson's EMC load (tegrastats),
in a run's ``system`` and in telemetry, against fake trees and verbatim tegrastats lines."""

from __future__ import annotations

import time

import pytest

from edgebench.agent.probes._fs import SubprocessRunner, SysFS
from edgebench.agent.probes.gpu import GpuProbe, discover_gpus, from_tegrastats, gpu_probe, summarize_gpu
from edgebench.agent.probes.session import ProbeOptions, ProbeSession, Telemetry
from edgebench.agent.probes.tegrastats import Tegrastats, parse_tegrastats
from tests.support.probes_fakes import (
    JETSON_THERMAL,
    ORIN_GPU,
    ORIN_GPU_DEV,
    ORIN_NX_INA,
    TEGRASTATS,
    FakeRunner,
    write_script,
    write_tree,
)


def test_the_gpu_is_found_among_devfreq_devices_and_read_in_pct_and_mhz(tmp_path):
    fs = SysFS(write_tree(tmp_path, ORIN_GPU))
    gpus = discover_gpus(fs)
    assert [g.name for g in gpus] == ["ga10b"]  # the VIC is not a GPU
    assert gpus[0].load == f"{ORIN_GPU_DEV}/load"
    probe = GpuProbe(fs)
    assert probe.read() == {"gpu_load_pct": 37.0, "gpu_freq_mhz": 305.0, "gpu_source": "sysfs (ga10b)"}
    (tmp_path / ORIN_GPU_DEV / "load").write_text("1000\n")
    assert probe.read()["gpu_load_pct"] == 100.0


def test_no_gpu_no_probe(tmp_path):
    assert gpu_probe(SysFS(write_tree(tmp_path, JETSON_THERMAL))) is None


@pytest.mark.parametrize(
    "line, expect",
    [
        ("agx_orin_64gb", {"gpu_load_pct": 14.0, "gpu_freq_mhz": 407.0, "emc_load_pct": 1.0, "emc_freq_mhz": 2133.0}),
        ("agx_orin_jp7", {"gpu_load_pct": 12.0, "gpu_freq_mhz": 1300.0, "emc_load_pct": 3.0, "emc_freq_mhz": 3199.0}),
        ("nano_real", {"gpu_load_pct": 45.0, "gpu_freq_mhz": 921.0, "emc_load_pct": 9.0, "emc_freq_mhz": 1600.0}),
        ("nano_jp4", {"gpu_load_pct": 0.0, "emc_load_pct": 0.0}),  # without sudo: no clocks
        ("orin_nano_jp6", {"gpu_load_pct": 0.0, "gpu_freq_mhz": 305.0, "emc_load_pct": 0.0, "emc_freq_mhz": 204.0}),
        ("orin_nano_jp7", {"gpu_load_pct": 33.0}),  # JetPack 7 on Orin Nano prints no EMC_FREQ
    ],
)
def test_gr3d_and_emc_from_every_tegrastats_format(line, expect):
    assert from_tegrastats(parse_tegrastats(TEGRASTATS[line])) == expect


def test_the_window_summary():
    rs = [
        {"gpu_load_pct": 10.0, "gpu_freq_mhz": 305.0, "emc_load_pct": 2.0, "gpu_source": "tegrastats"},
        None,
        {"gpu_load_pct": 50.0, "gpu_freq_mhz": 918.0, "emc_load_pct": 4.0, "gpu_source": "tegrastats"},
    ]
    assert summarize_gpu(rs) == {
        "gpu_load_pct_mean": 30.0,
        "gpu_load_pct_max": 50.0,
        "gpu_freq_mhz_min": 305.0,
        "gpu_freq_mhz_max": 918.0,
        "emc_load_pct_mean": 3.0,
        "emc_load_pct_max": 4.0,
        "gpu_source": "tegrastats",
    }
    assert summarize_gpu([None, {}]) == {}


def test_a_run_on_a_jetson_reports_the_gpu_in_system(tmp_path):
    fs = SysFS(write_tree(tmp_path, {**ORIN_NX_INA, **JETSON_THERMAL, **ORIN_GPU}))
    with ProbeSession(ProbeOptions(sample_hz=50.0), fs=fs, runner=FakeRunner({})) as ps:
        t0 = time.perf_counter_ns()
        time.sleep(0.2)
        t1 = time.perf_counter_ns()
    s = ps.sections(t0, t1, 10)["system"]
    assert s["gpu_load_pct_mean"] == 37.0 and s["gpu_load_pct_max"] == 37.0
    assert s["gpu_freq_mhz_min"] == s["gpu_freq_mhz_max"] == 305.0
    assert s["gpu_source"] == "sysfs (ga10b)" and "emc_load_pct_mean" not in s


def test_telemetry_with_tegrastats_has_gpu_and_emc_load(tmp_path):
    # a Jetson whose INA3221 files cannot be read: tegrastats is the power source, and its
    # GR3D_FREQ and EMC_FREQ win over sysfs
    root = write_tree(tmp_path, {**JETSON_THERMAL, **ORIN_GPU})
    write_script(root, "tegrastats", f'while true; do echo "{TEGRASTATS["agx_orin_64gb"]}"; sleep 0.05; done\n')
    tel = Telemetry(SysFS(root), power="tegrastats", runner=SubprocessRunner(SysFS(root)), interval_s=0.05)
    try:
        assert isinstance(tel.power, Tegrastats)
        snap = tel.snapshot()
    finally:
        tel.close()
    assert snap["power_source"] == "tegrastats"
    assert (snap["gpu_load_pct"], snap["gpu_freq_mhz"]) == (14.0, 407.0)
    assert (snap["emc_load_pct"], snap["emc_freq_mhz"]) == (1.0, 2133.0)
    assert snap["gpu_source"] == "tegrastats"


def test_telemetry_without_tegrastats_reads_the_gpu_from_sysfs(tmp_path):
    root = write_tree(tmp_path, {**ORIN_NX_INA, **JETSON_THERMAL, **ORIN_GPU})
    tel = Telemetry(SysFS(root), runner=FakeRunner({}))
    snap = tel.snapshot()
    assert snap["power_source"] == "jetson-ina3221"
    assert (snap["gpu_load_pct"], snap["gpu_freq_mhz"], snap["gpu_source"]) == (37.0, 305.0, "sysfs (ga10b)")
    assert "emc_load_pct" not in snap
