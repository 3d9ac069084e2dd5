"""Power sources against fake sysfs trees and verbatim command outputs."""

from __future__ import annotations

import pytest

from edgebench.agent.errors import UserError
from edgebench.agent.probes._fs import ProbeError, SysFS
from edgebench.agent.probes.discover import discover_power, parse_power_spec
from edgebench.agent.probes.hwmon import HwmonPower, hwmon_power
from edgebench.agent.probes.jetson import JetsonIna3221, find_ina3221, jetson_ina3221
from edgebench.agent.probes.power import (
    FLAG_CHANNELS_SUM,
    FLAG_CPU_PACKAGE_ONLY,
    FLAG_MODULE_RAILS_SUM,
    FLAG_PMIC_OUTPUT_SIDE,
    METHOD_COUNTER,
    METHOD_TRAPEZOID,
    CounterUnwrapper,
    Unavailable,
)
from edgebench.agent.probes.rapl import Rapl, rapl
from edgebench.agent.probes.rpi import RpiPmic, parse_pmic_read_adc, pmic_rails_w, rpi_pmic
from tests.support.probes_fakes import (
    AGX_ORIN_INA,
    AGX_ORIN_W,
    INA219,
    NANO_JP4_INA,
    NV_TEGRA_RELEASE,
    ORIN_NX_INA,
    ORIN_NX_W,
    PI4_PMIC,
    PMIC_CURRENTS,
    PMIC_HIGH_LOAD,
    PMIC_READ_ADC,
    PMIC_VOLTS,
    RAPL,
    RAPL_PKG,
    VCHI_FAILED,
    DenyFS,
    Dir,
    FakeRunner,
    write_tree,
)

NO_COMMANDS = FakeRunner({})


# --------------------------------------------------------------------------- Jetson INA3221
def test_orin_nx_hwmon_layout_by_label(tmp_path):
    fs = SysFS(write_tree(tmp_path, ORIN_NX_INA))
    channels = find_ina3221(fs)
    # reached three ways (devices, drivers/ina3221, class/hwmon), listed once; in7 (sum) skipped
    assert [c.rail for c in channels] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert {c.layout for c in channels} == {"hwmon"}
    assert channels[0].warn_ma == 4936 and channels[0].crit_ma == 5920
    src = jetson_ina3221(fs)
    assert src.total_rail == "VDD_IN"
    assert src.flags == ()
    assert "VDD_IN" in src.scope
    r = src.read()
    assert r.total_w == pytest.approx(6.654464)  # 5072 mV x 1312 mA (jtop truncates to 6654 mW)
    assert r.rails_w == pytest.approx(ORIN_NX_W)
    assert r.rails_w["VDD_CPU_GPU_CV"] == pytest.approx(0.48184)
    assert r.rails_w["VDD_SOC"] == pytest.approx(1.44552)
    assert src.describe()["limits_ma"] == {"VDD_IN": {"warn": 4936, "crit": 5920}}


def test_orin_hwmon_number_does_not_matter(tmp_path):
    moved = {k.replace("hwmon/hwmon3", "hwmon/hwmon1"): v for k, v in ORIN_NX_INA.items() if "class/hwmon" not in k}
    src = jetson_ina3221(SysFS(write_tree(tmp_path, moved)))
    assert src.read().total_w == pytest.approx(6.654464)


def test_disabled_channel_is_skipped(tmp_path):
    tree = dict(ORIN_NX_INA)
    tree["sys/bus/i2c/devices/1-0040/hwmon/hwmon3/in3_enable"] = "0"
    src = jetson_ina3221(SysFS(write_tree(tmp_path, tree)))
    assert src.rails == ["VDD_IN", "VDD_CPU_GPU_CV"]


def test_agx_orin_nc_channels_and_sum_of_rails(tmp_path):
    fs = SysFS(write_tree(tmp_path, AGX_ORIN_INA))
    src = jetson_ina3221(fs)
    assert isinstance(src, JetsonIna3221)
    assert src.rails == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]  # no NC, no in7
    assert src.total_rail is None
    assert src.flags == (FLAG_MODULE_RAILS_SUM,)
    assert "no input rail" in src.scope and "carrier board" in src.scope
    r = src.read()
    assert r.rails_w == pytest.approx(AGX_ORIN_W)
    assert r.total_w == pytest.approx(13.230474)  # jtop's truncated mW: 5201 + 2680 + 4734 + 613 = 13228


def test_agx_orin_one_rail_failing_is_a_gap_not_a_smaller_sum(tmp_path):
    tree = dict(AGX_ORIN_INA)
    tree["sys/bus/i2c/devices/1-0040/hwmon/hwmon3/curr2_input"] = Dir()
    src = JetsonIna3221(SysFS(write_tree(tmp_path, tree)), find_ina3221(SysFS(tmp_path)))
    with pytest.raises(ProbeError, match="VDD_CPU_CV"):
        src.read()


def test_input_rail_failing_is_a_gap_even_if_others_read(tmp_path):
    fs = SysFS(write_tree(tmp_path, ORIN_NX_INA))
    src = jetson_ina3221(fs)
    (tmp_path / "sys/bus/i2c/devices/1-0040/hwmon/hwmon3/curr1_input").unlink()
    with pytest.raises(ProbeError, match="VDD_IN: missing"):
        src.read()


def test_nano_jetpack4_iio_layout(tmp_path):
    fs = SysFS(write_tree(tmp_path, NANO_JP4_INA))
    src = jetson_ina3221(fs)
    assert src.layout == "iio"
    assert src.rails == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert src.total_rail == "POM_5V_IN"
    assert src.flags == ()
    assert src.channels[0].warn_ma == 32760  # "32760 ma": first token
    r = src.read()
    assert r.total_w == pytest.approx(0.933)  # in_power0_input (mW), not V x I
    assert r.rails_w == pytest.approx({"POM_5V_IN": 0.933, "POM_5V_GPU": 0.0, "POM_5V_CPU": 0.084})


def test_iio_without_power_file_uses_volts_times_amps(tmp_path):
    tree = {k: v for k, v in NANO_JP4_INA.items() if "in_power0" not in k}
    src = jetson_ina3221(SysFS(write_tree(tmp_path, tree)))
    assert src.read().total_w == pytest.approx(5040 * 184 / 1e6)


def test_ina_permission_denied_is_said_and_falls_back(tmp_path):
    write_tree(tmp_path, {**NANO_JP4_INA, "etc/nv_tegra_release": NV_TEGRA_RELEASE})
    fs = DenyFS(tmp_path, deny=("in_power0_input",))
    with pytest.raises(Unavailable, match="permission denied") as e:
        jetson_ina3221(fs)
    assert e.value.present
    disc = discover_power("auto", fs, NO_COMMANDS)
    assert disc.source is None
    assert "permission denied" in disc.reason and "tegrastats" in disc.reason
    assert [t.split(":")[0] for t in disc.tried] == ["jetson", "tegrastats", "rpi-pmic", "rapl", "hwmon"]
    with pytest.raises(UserError, match="--power jetson: .*permission denied"):
        discover_power("jetson", fs, NO_COMMANDS)


# --------------------------------------------------------------------------- Raspberry Pi 5 PMIC
def test_pmic_read_adc_parse_every_rail():
    parsed = parse_pmic_read_adc(PMIC_READ_ADC)
    assert len(parsed) == 14
    for rail, a in PMIC_CURRENTS.items():
        assert parsed[rail]["a"] == a
    for rail, v in PMIC_VOLTS.items():
        assert parsed[rail]["v"] == v
    assert parsed["EXT5V"] == {"v": 5.14158} and parsed["BATT"] == {"v": 3.280339}
    rails = pmic_rails_w(parsed)
    assert sorted(rails) == sorted(PMIC_CURRENTS)  # EXT5V and BATT have no current partner
    for rail in rails:
        assert rails[rail] == pytest.approx(PMIC_CURRENTS[rail] * PMIC_VOLTS[rail])
    assert rails["VDD_CORE"] == pytest.approx(0.4321, abs=5e-5)
    assert rails["3V3_SYS"] == pytest.approx(0.4219, abs=5e-5)
    assert rails["1V8_SYS"] == pytest.approx(0.3398, abs=5e-5)
    assert rails["0V8_SW"] == pytest.approx(0.2090, abs=5e-5)
    assert rails["1V1_SYS"] == pytest.approx(0.1998, abs=5e-5)
    assert rails["HDMI"] == pytest.approx(0.1306, abs=5e-5)
    assert sum(rails.values()) == pytest.approx(1.7667, abs=5e-5)


def test_pmic_source_total_is_flagged_output_side():
    runner = FakeRunner({("vcgencmd", "pmic_read_adc"): PMIC_READ_ADC})
    src = rpi_pmic(SysFS("/nonexistent-root"), runner)
    assert isinstance(src, RpiPmic)
    assert src.flags == (FLAG_PMIC_OUTPUT_SIDE,)
    assert src.total_rail is None
    assert "output side" in src.scope and "reads low" in src.scope
    assert src.ext5v_v == 5.14158
    r = src.read()
    assert r.total_w == pytest.approx(1.7667, abs=5e-5)
    assert len(r.rails_w) == 12


def test_pmic_high_load_capture():
    rails = pmic_rails_w(parse_pmic_read_adc(PMIC_HIGH_LOAD))
    assert rails == {"VDD_CORE": pytest.approx(5.03652 * 0.8936988)}


def test_pi4_has_no_pmic_reading():
    runner = FakeRunner({("vcgencmd", "pmic_read_adc"): PI4_PMIC})
    with pytest.raises(Unavailable, match="no PMIC power reading .*Command not registered.*external meter") as e:
        rpi_pmic(SysFS("/nonexistent-root"), runner)
    assert e.value.present
    disc = discover_power("auto", SysFS("/nonexistent-root"), runner)
    assert disc.source is None
    assert "only the Pi 5 has one" in disc.reason


def test_vcgencmd_without_video_group():
    with pytest.raises(ProbeError, match="video group"):
        parse_pmic_read_adc(VCHI_FAILED)
    runner = FakeRunner({("vcgencmd", "pmic_read_adc"): VCHI_FAILED})
    with pytest.raises(UserError, match="--power rpi-pmic: .*video group"):
        discover_power("rpi-pmic", SysFS("/nonexistent-root"), runner)


def test_pmic_read_failing_mid_run_raises():
    runner = FakeRunner({("vcgencmd", "pmic_read_adc"): [PMIC_READ_ADC, "ioctl_set_msg failed:-1\n"]})
    src = rpi_pmic(SysFS("/nonexistent-root"), runner)
    with pytest.raises(ProbeError, match="ioctl_set_msg failed"):
        src.read()


# --------------------------------------------------------------------------- RAPL
def test_rapl_wraparound_through_max_energy_range(tmp_path):
    fs = SysFS(write_tree(tmp_path, RAPL))
    src = rapl(fs)
    assert isinstance(src, Rapl)
    assert src.method == METHOD_COUNTER
    assert src.flags == (FLAG_CPU_PACKAGE_ONLY,)
    assert src.total_rail == "package-0"
    assert src.rails == ["package-0", "dram"]
    r0 = src.read()
    assert r0.energy_j == pytest.approx(262143.0)
    assert r0.rails_j["dram"] == pytest.approx(2469.474853)
    (tmp_path / RAPL_PKG / "energy_uj").write_text("1000000\n")
    r1 = src.read()
    # 1000000 + 262143999938 - 262143000000 = 1999938 uJ
    assert r1.energy_j - r0.energy_j == pytest.approx(1.999938)
    assert r1.total_w is None


def test_rapl_psys_is_the_total_when_present(tmp_path):
    tree = {
        **RAPL,
        "sys/class/powercap/intel-rapl/intel-rapl:1/name": "psys",
        "sys/class/powercap/intel-rapl/intel-rapl:1/energy_uj": "5000000",
        "sys/class/powercap/intel-rapl/intel-rapl:1/max_energy_range_uj": "262143999938",
    }
    src = rapl(SysFS(write_tree(tmp_path, tree)))
    assert src.total_rail == "psys" and src.flags == ()
    assert src.read().energy_j == pytest.approx(5.0)


def test_rapl_root_only_is_said(tmp_path):
    fs = DenyFS(write_tree(tmp_path, RAPL), deny=("energy_uj",))
    with pytest.raises(Unavailable, match="readable by root only") as e:
        rapl(fs)
    assert e.value.present
    disc = discover_power("auto", fs, NO_COMMANDS)
    assert disc.source is None and "readable by root only" in disc.reason
    with pytest.raises(UserError, match="--power rapl: .*root only"):
        discover_power("rapl", fs, NO_COMMANDS)


def test_counter_unwrapper_unknown_range_is_a_gap_then_bridged():
    u = CounterUnwrapper(None, "energy1_input")
    assert u.update(1_000, t_ns=0) == 1_000
    assert u.update(3_000, t_ns=1_000) == 3_000  # 2 units per ns
    with pytest.raises(ProbeError, match="went backwards"):
        u.update(500, t_ns=2_000)
    # continues from 3000 + 2 x 1000 (bridged at the last rate), then counts on
    assert u.update(1_500, t_ns=3_000) == 3_000 + 2_000 + 1_000


# --------------------------------------------------------------------------- generic hwmon
def test_hwmon_ina219_power_in_microwatts(tmp_path):
    fs = SysFS(write_tree(tmp_path, INA219))
    src = hwmon_power(fs)
    assert isinstance(src, HwmonPower)
    assert src.name == "hwmon:ina219" and src.method == METHOD_TRAPEZOID
    assert src.rails == ["board"] and src.total_rail == "board" and src.flags == ()
    r = src.read()
    assert r.total_w == pytest.approx(3.2) and r.rails_w == {"board": pytest.approx(3.2)}
    assert discover_power("auto", fs, NO_COMMANDS).source.name == "hwmon:ina219"


def test_hwmon_energy_channels_and_gpu_skipped_in_auto(tmp_path):
    tree = {
        "sys/class/hwmon/hwmon0/name": "amdgpu",
        "sys/class/hwmon/hwmon0/power1_average": "15000000",
        "sys/class/hwmon/hwmon1/name": "powerz",
        "sys/class/hwmon/hwmon1/energy1_input": "7000000",
        "sys/class/hwmon/hwmon1/energy2_input": "1000000",
    }
    fs = SysFS(write_tree(tmp_path, tree))
    src = discover_power("auto", fs, NO_COMMANDS).source
    assert src.name == "hwmon:powerz"
    assert src.method == METHOD_COUNTER and src.flags == (FLAG_CHANNELS_SUM,)
    assert src.read().energy_j == pytest.approx(8.0)
    gpu = discover_power("hwmon:amdgpu", fs, NO_COMMANDS).source
    assert gpu.read().total_w == pytest.approx(15.0)
    with pytest.raises(UserError, match="no hwmon device 'nope'"):
        discover_power("hwmon:nope", fs, NO_COMMANDS)


# --------------------------------------------------------------------------- discovery
def test_auto_prefers_jetson_and_says_when_nothing(tmp_path):
    fs = SysFS(write_tree(tmp_path / "jetson", {**ORIN_NX_INA, **INA219}))
    assert discover_power("auto", fs, NO_COMMANDS).source.name == "jetson-ina3221"
    empty = SysFS(write_tree(tmp_path / "empty", {"etc/hostname": "x"}))
    disc = discover_power("auto", empty, NO_COMMANDS)
    assert disc.source is None
    assert "no power source on this board" in disc.reason and "--power cmd:COMMAND" in disc.reason
    assert discover_power("none", empty, NO_COMMANDS).reason == "power measurement turned off (--power none)"


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("auto", ("auto", "")),
        ("RAPL", ("rapl", "")),
        ("hwmon", ("hwmon", "")),
        ("hwmon:ina219", ("hwmon", "ina219")),
        ("cmd:echo 3 W", ("cmd", "echo 3 W")),
        ("serial:/dev/rfcomm0:um24c", ("serial", "/dev/rfcomm0:um24c")),
    ],
)
def test_power_spec(spec, expected):
    assert parse_power_spec(spec) == expected


@pytest.mark.parametrize("spec", ["bogus", "cmd:", "serial:", "rapl:x"])
def test_bad_power_spec(spec):
    with pytest.raises(UserError):
        parse_power_spec(spec)
