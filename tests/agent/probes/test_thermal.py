"""Thermal zones, clocks and throttling flags against fake trees and verbatim outputs."""

from __future__ import annotations

import pytest

from edgebench.agent.probes._fs import ProbeError, SysFS
from edgebench.agent.probes.thermal import (
    ThermalProbe,
    ThermalReading,
    decode_throttled,
    parse_get_throttled,
    summarize_thermal,
    summarize_throttling,
)
from tests.support.probes_fakes import (
    APEX,
    JETSON_OC,
    JETSON_THERMAL,
    JTOP_CPUS,
    PI_TREE,
    VCHI_FAILED,
    FakeRunner,
    write_tree,
)

S = 1_000_000_000  # ns per second


@pytest.mark.parametrize(
    "value,now,since",
    [
        (0x0, [], []),
        (0x50005, ["under_voltage", "throttled"], ["under_voltage", "throttled"]),
        (0x50000, [], ["under_voltage", "throttled"]),
        (0x80000, [], ["soft_temp_limit"]),
        (0xA0002, ["arm_freq_capped"], ["arm_freq_capped", "soft_temp_limit"]),
        (0x60002, ["arm_freq_capped"], ["arm_freq_capped", "throttled"]),
        (0x8, ["soft_temp_limit"], []),
    ],
)
def test_get_throttled_bits_by_name(value, now, since):
    d = decode_throttled(value)
    assert d["now"] == now and d["since_boot"] == since
    assert d["raw_hex"] == f"0x{value:x}"
    assert "unknown_bits_hex" not in d


def test_get_throttled_unknown_bits_are_kept():
    assert decode_throttled(0x100000)["unknown_bits_hex"] == "0x100000"


def test_get_throttled_both_forms():
    assert parse_get_throttled("throttled=0x50005\n") == 0x50005  # vcgencmd
    assert parse_get_throttled("50005\n") == 0x50005  # sysfs: hex without 0x
    assert parse_get_throttled("throttled=0x0") == 0
    with pytest.raises(ProbeError, match="video group"):
        parse_get_throttled(VCHI_FAILED)
    with pytest.raises(ProbeError, match="cannot read"):
        parse_get_throttled("throttled=banana")


def test_jetson_zones_by_type_offline_and_pmic_skipped(tmp_path):
    fs = SysFS(write_tree(tmp_path, {**JETSON_THERMAL, **JETSON_OC, **JTOP_CPUS}))
    probe = ThermalProbe(fs)
    assert [z.name for z in probe.zones] == ["cpu-thermal", "gpu-thermal", "cv0-thermal", "tj-thermal"]
    assert probe.skipped == ["PMIC-Die (fixed placeholder temperature)"]
    r = probe.read()
    assert r.temps_c == {"cpu-thermal": 44.125, "gpu-thermal": 44.531, "cv0-thermal": None, "tj-thermal": 44.531}
    assert r.oc_counts == {1: 0, 2: 15, 3: 37}
    assert r.cpu_khz == {n: 200000 for n in range(6)}
    assert r.cpu_max_khz == {n: 2035200 for n in range(6)}
    assert probe.governors() == {"test_cpu": list(range(6))}
    assert probe.max_temp_c(r) == ("tj-thermal", 44.531)
    assert r.rpi_throttled is None
    assert "jetson soctherm_oc event counters" in probe.watched()


def test_pi_tree_zone_hwmon_twin_and_throttled_sysfs(tmp_path):
    fs = SysFS(write_tree(tmp_path, PI_TREE))
    runner = FakeRunner({})
    probe = ThermalProbe(fs, runner)
    assert [z.name for z in probe.zones] == ["cpu-thermal"]  # hwmon cpu_thermal is the same sensor
    assert probe.skipped == ["hwmon cpu_thermal (same sensor as thermal zone)"]
    r = probe.read()
    assert r.temps_c == {"cpu-thermal": 47.2}
    assert r.rpi_throttled == 0x50000
    assert r.rpi_uv_alarm == 0
    assert r.cpu_khz == {0: 2400000} and r.cpu_max_khz == {0: 2400000}
    assert probe.governors() == {"ondemand": [0]}
    assert runner.calls == []  # sysfs get_throttled: no vcgencmd fork


def test_pi_throttled_through_vcgencmd_when_sysfs_is_absent(tmp_path):
    tree = {k: v for k, v in PI_TREE.items() if "get_throttled" not in k}
    runner = FakeRunner({("vcgencmd", "get_throttled"): ["throttled=0x0\n", "throttled=0x0\n", "throttled=0x50005\n"]})
    probe = ThermalProbe(SysFS(write_tree(tmp_path, tree)), runner)
    assert probe.throttled_cmd
    assert probe.read().rpi_throttled == 0
    assert probe.read().rpi_throttled == 0x50005


def test_edge_tpu_and_hwmon_labels(tmp_path):
    tree = {
        **APEX,
        "sys/class/hwmon/hwmon0/name": "nvme",
        "sys/class/hwmon/hwmon0/temp1_input": "38850",
        "sys/class/hwmon/hwmon0/temp1_label": "Composite",
        "sys/class/hwmon/hwmon0/temp1_crit": "84850",
        "sys/class/hwmon/hwmon1/name": "acpitz",
        "sys/class/hwmon/hwmon1/temp1_input": "47000",
    }
    probe = ThermalProbe(SysFS(write_tree(tmp_path, tree)))
    by_name = {z.name: z for z in probe.zones}
    assert set(by_name) == {"nvme/Composite", "acpitz", "apex_0"}
    assert by_name["apex_0"].trips_c == {"passive": 85.0}
    assert by_name["nvme/Composite"].trips_c == {"critical": 84.85}
    assert probe.read().temps_c == {"nvme/Composite": 38.85, "acpitz": 47.0, "apex_0": 48.25}


def test_trip_points_read_per_zone(tmp_path):
    tree = {
        "sys/class/thermal/thermal_zone0/type": "cpu-thermal",
        "sys/class/thermal/thermal_zone0/temp": "50000",
        "sys/class/thermal/thermal_zone0/trip_point_0_type": "passive",
        "sys/class/thermal/thermal_zone0/trip_point_0_temp": "85000",
        "sys/class/thermal/thermal_zone0/trip_point_1_type": "critical",
        "sys/class/thermal/thermal_zone0/trip_point_1_temp": "110000",
        "sys/class/thermal/thermal_zone0/trip_point_2_type": "active",
        "sys/class/thermal/thermal_zone0/trip_point_2_temp": "60000",
    }
    probe = ThermalProbe(SysFS(write_tree(tmp_path, tree)))
    assert probe.zones[0].trips_c == {"passive": 85.0, "critical": 110.0}


def reading(**kw) -> ThermalReading:
    return ThermalReading(**kw)


def test_throttling_pi_now_and_since_boot_with_when(tmp_path):
    probe = ThermalProbe(SysFS(write_tree(tmp_path, PI_TREE)))
    t0 = 10 * S
    series = [
        (t0 - S // 10, reading(rpi_throttled=0x0, temps_c={"cpu-thermal": 60.0})),
        (t0 + 1 * S, reading(rpi_throttled=0x0, temps_c={"cpu-thermal": 70.0})),
        (t0 + 1 * S + 500_000_000, reading(rpi_throttled=0x50005, temps_c={"cpu-thermal": 81.0})),
        (t0 + 2 * S, reading(rpi_throttled=0x50000, temps_c={"cpu-thermal": 79.0})),
        (t0 + 3 * S, reading(rpi_throttled=0xD0008, temps_c={"cpu-thermal": None})),
    ]
    out = summarize_throttling(series, probe, t0)
    assert out["throttled"] is True
    assert out["flags"] == ["under_voltage", "throttled", "soft_temp_limit"]
    assert out["events"][0] == {
        "flag": "under_voltage",
        "at_s": 1.5,
        "detail": "get_throttled 0x50005: under voltage now",
    }
    assert out["events"][1]["at_s"] == 1.5
    assert out["events"][2] == {
        "flag": "soft_temp_limit",
        "at_s": 3.0,
        "detail": "get_throttled 0xd0008: soft temp limit now",
    }
    assert out["rpi_get_throttled"] == {
        "start_hex": "0x0",
        "end_hex": "0xd0008",
        "since_boot_at_start": [],
        "since_boot_at_end": ["under_voltage", "throttled", "soft_temp_limit"],
    }
    th = summarize_thermal(series, probe, t0)
    assert th["zones"]["cpu-thermal"] == {"start_c": 60.0, "end_c": None, "min_c": 60.0, "max_c": 81.0, "gaps": 1}
    assert th["max_c"] == 81.0 and th["max_zone"] == "cpu-thermal"


def test_throttling_sticky_bits_from_before_the_run_are_not_flags(tmp_path):
    probe = ThermalProbe(SysFS(write_tree(tmp_path, PI_TREE)))
    series = [(0, reading(rpi_throttled=0x50000)), (S, reading(rpi_throttled=0x50000))]
    out = summarize_throttling(series, probe, 0)
    assert out["throttled"] is False and out["flags"] == [] and out["events"] == []
    assert out["rpi_get_throttled"]["since_boot_at_start"] == ["under_voltage", "throttled"]


def test_throttling_sticky_bit_set_between_samples_is_caught(tmp_path):
    probe = ThermalProbe(SysFS(write_tree(tmp_path, PI_TREE)))
    series = [(0, reading(rpi_throttled=0x0)), (2 * S, reading(rpi_throttled=0x20000))]
    out = summarize_throttling(series, probe, 0)
    assert out["flags"] == ["arm_freq_capped"]
    assert out["events"][0]["detail"] == "get_throttled 0x20000: arm freq capped occurred"
    assert out["events"][0]["at_s"] == 2.0


def test_throttling_jetson_oc_counters_and_clock_cap(tmp_path):
    probe = ThermalProbe(SysFS(write_tree(tmp_path, {**JETSON_THERMAL, **JETSON_OC, **JTOP_CPUS})))
    full = {n: 2035200 for n in range(6)}
    capped = {**full, 2: 1420800}
    series = [
        (0, reading(oc_counts={1: 0, 2: 15, 3: 37}, cpu_max_khz=full, cpu_khz=dict(full))),
        (S, reading(oc_counts={1: 0, 2: 15, 3: 37}, cpu_max_khz=full, cpu_khz=dict(full))),
        (2 * S, reading(oc_counts={1: 0, 2: 16, 3: 37}, cpu_max_khz=capped, cpu_khz=dict(capped))),
        (3 * S, reading(oc_counts={1: 0, 2: 17, 3: 39}, cpu_max_khz=capped, cpu_khz=dict(capped))),
    ]
    out = summarize_throttling(series, probe, 0)
    assert out["flags"] == ["oc2_average_over_current", "cpu_freq_capped", "oc3_instantaneous_over_current"]
    assert out["events"][0] == {
        "flag": "oc2_average_over_current",
        "at_s": 2.0,
        "detail": "soctherm oc2_event_cnt 15 -> 16",
    }
    assert out["events"][1]["detail"] == "cpu2 scaling_max_freq 2035.2 -> 1420.8 MHz"
    assert out["events"][2]["at_s"] == 3.0
    assert out["oc_event_delta"] == {"oc1": 0, "oc2": 2, "oc3": 2}
    # test_cpu governor: a lower clock alone is not a "drop"
    assert "cpu_freq_drop" not in out["flags"]


def test_throttling_performance_clock_drop_cooling_device_and_trip(tmp_path):
    tree = {
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "1800000",
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq": "1800000",
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance",
        "sys/class/thermal/thermal_zone0/type": "soc-thermal",
        "sys/class/thermal/thermal_zone0/temp": "50000",
        "sys/class/thermal/thermal_zone0/trip_point_0_type": "passive",
        "sys/class/thermal/thermal_zone0/trip_point_0_temp": "85000",
        "sys/class/thermal/cooling_device0/type": "thermal-cpufreq-0",
        "sys/class/thermal/cooling_device0/cur_state": "0",
        "sys/class/thermal/cooling_device0/max_state": "7",
        "sys/class/thermal/cooling_device1/type": "pwm-fan",
        "sys/class/thermal/cooling_device1/cur_state": "3",
    }
    probe = ThermalProbe(SysFS(write_tree(tmp_path, tree)))
    assert list(probe.cooling) == ["thermal-cpufreq-0#0"]  # the fan is not a clock limit
    series = [
        (
            0,
            reading(
                cpu_khz={0: 1800000},
                cpu_max_khz={0: 1800000},
                temps_c={"soc-thermal": 50.0},
                cooling={"thermal-cpufreq-0#0": 0},
            ),
        ),
        (
            S,
            reading(
                cpu_khz={0: 1800000},
                cpu_max_khz={0: 1800000},
                temps_c={"soc-thermal": 85.5},
                cooling={"thermal-cpufreq-0#0": 0},
            ),
        ),
        (
            2 * S,
            reading(
                cpu_khz={0: 1200000},
                cpu_max_khz={0: 1800000},
                temps_c={"soc-thermal": 86.0},
                cooling={"thermal-cpufreq-0#0": 2},
            ),
        ),
    ]
    out = summarize_throttling(series, probe, 0)
    assert out["flags"] == ["thermal_trip", "cpu_freq_drop", "cooling_device_active"]
    assert out["events"][0]["detail"] == "soc-thermal 85.5 °C reached its trip point 85 °C"
    assert out["events"][1]["detail"] == "cpu0 (performance governor) 1800 -> 1200 MHz"
    assert out["events"][2]["detail"] == "thermal-cpufreq-0#0 cur_state 2/7"
    th = summarize_thermal(series, probe, 0)
    assert th["cpu_freq_mhz"] == {"cpu0": {"start": 1800.0, "end": 1200.0, "min": 1200.0, "max": 1800.0}}
    assert th["governor"] == "performance"
    assert th["zones"]["soc-thermal"]["trips_c"] == {"passive": 85.0}


def test_no_readings_no_claims(tmp_path):
    probe = ThermalProbe(SysFS(write_tree(tmp_path, PI_TREE)))
    out = summarize_throttling([(0, None), (S, None)], probe, 0)
    assert out["throttled"] is False and "no throttling readings" in out["note"]
