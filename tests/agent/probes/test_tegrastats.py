"""tegrastats lines of every JetPack format, and tegrastats as a running power source."""

from __future__ import annotations

import pytest

from edgebench.agent.probes._fs import ProbeError, SubprocessRunner, SysFS
from edgebench.agent.probes.discover import discover_power
from edgebench.agent.probes.power import FLAG_MODULE_RAILS_SUM, Unavailable
from edgebench.agent.probes.tegrastats import Tegrastats, parse_tegrastats, tegrastats_power
from tests.support.probes_fakes import TEGRASTATS, write_script


def rails(line: str) -> dict[str, float]:
    return {k: v["cur"] for k, v in parse_tegrastats(line)["rails_mw"].items()}


def test_nano_jetpack4():
    p = parse_tegrastats(TEGRASTATS["nano_jp4"])
    assert p["time"] is None
    assert p["ram_mb"] == {"used": 330, "total": 3964, "lfb_blocks": 758, "lfb_block_mb": 4}
    assert p["swap_mb"] == {"used": 0, "total": 1982, "cached": 0}
    assert p["cpu"] == [
        {"load_pct": 12, "freq_mhz": 102},
        {"load_pct": 7, "freq_mhz": 102},
        {"load_pct": 3, "freq_mhz": 102},
        {"load_pct": 5, "freq_mhz": 102},
    ]
    assert p["engines"] == {
        "EMC_FREQ": {"load_pct": 0, "freq_mhz": None},
        "GR3D_FREQ": {"load_pct": 0, "freq_mhz": None},
    }
    assert p["temps_c"] == {"PLL": 20.5, "CPU": 23.0, "PMIC": 100.0, "GPU": 22.5, "AO": 27.0, "thermal": 22.5}
    assert p["rails_mw"] == {
        "POM_5V_IN": {"cur": 933, "avg": 933, "values": [933, 933]},
        "POM_5V_GPU": {"cur": 0, "avg": 0, "values": [0, 0]},
        "POM_5V_CPU": {"cur": 84, "avg": 84, "values": [84, 84]},
    }
    total, r, rail = tegrastats_power(p)
    assert (total, rail) == (pytest.approx(0.933), "POM_5V_IN")
    assert r == pytest.approx({"POM_5V_IN": 0.933, "POM_5V_GPU": 0.0, "POM_5V_CPU": 0.084})


def test_nano_jetpack4_sudo_with_iram_and_clocks():
    p = parse_tegrastats(TEGRASTATS["nano_jp4_sudo"])
    assert p["engines"] == {
        "EMC_FREQ": {"load_pct": 3, "freq_mhz": [204]},
        "GR3D_FREQ": {"load_pct": 0, "freq_mhz": [76]},
        "APE": {"load_pct": None, "freq_mhz": [25]},
    }
    assert p["ram_mb"]["used"] == 331
    assert p["rails_mw"]["POM_5V_CPU"] == {"cur": 84, "avg": 105, "values": [84, 105]}
    assert "IRAM" not in p["rails_mw"] and "RAM" not in p["rails_mw"]


def test_nano_real_line_with_offline_core_and_swap_without_cache():
    p = parse_tegrastats(TEGRASTATS["nano_real"])
    assert p["cpu"] == [
        {"load_pct": 12, "freq_mhz": 1479},
        None,
        {"load_pct": 7, "freq_mhz": 1479},
        {"load_pct": 20, "freq_mhz": 1479},
    ]
    assert p["swap_mb"] == {"used": 0, "total": 1978}
    assert p["engines"]["GR3D_FREQ"] == {"load_pct": 45, "freq_mhz": [921]}
    assert p["engines"]["NVDEC"] == {"load_pct": None, "freq_mhz": [716]}
    assert p["temps_c"]["thermal"] == 35.25
    assert rails(TEGRASTATS["nano_real"]) == {"POM_5V_IN": 3187, "POM_5V_GPU": 450, "POM_5V_CPU": 612}
    assert tegrastats_power(p)[0] == pytest.approx(3.187)


def test_tx2_lines_total_is_vdd_in():
    p = parse_tegrastats(TEGRASTATS["tx2_jp4"])
    assert "MTS" not in p["engines"] and "fg" not in p["engines"]
    assert p["temps_c"] == {
        "BCPU": 30,
        "MCPU": 30,
        "GPU": 28,
        "PLL": 30,
        "Tboard": 26,
        "Tdiode": 27,
        "PMIC": 100,
        "thermal": 29.2,
    }
    assert rails(TEGRASTATS["tx2_jp4"]) == {
        "VDD_IN": 1383,
        "VDD_CPU": 153,
        "VDD_GPU": 76,
        "VDD_SOC": 384,
        "VDD_WIFI": 364,
        "VDD_DDR": 192,
    }
    assert tegrastats_power(p)[0] == pytest.approx(1.383)
    real = parse_tegrastats(TEGRASTATS["tx2_real"])
    assert real["swap_mb"] == {"used": 1626, "total": 12122, "cached": 181}
    assert tegrastats_power(real)[0] == pytest.approx(5.297) and tegrastats_power(real)[2] == "VDD_IN"
    assert len(real["rails_mw"]) == 6


def test_agx_xavier_has_no_input_rail():
    p = parse_tegrastats(TEGRASTATS["agx_xavier_jp4"])
    assert rails(TEGRASTATS["agx_xavier_jp4"]) == {
        "GPU": 1155,
        "CPU": 385,
        "SOC": 2502,
        "CV": 0,
        "VDDRQ": 192,
        "SYS5V": 2692,
    }
    assert p["temps_c"]["iwlwifi"] == 30 and p["temps_c"]["thermal"] == 27.45
    assert len(p["cpu"]) == 8
    total, _, rail = tegrastats_power(p)
    assert rail is None and total == pytest.approx(6.926)


def test_agx_orin_jetpack5_offline_zones_and_nc_rails():
    p = parse_tegrastats(TEGRASTATS["agx_orin_jp5"])
    assert p["time"] == "01-03-2023 16:07:54"
    assert p["temps_c"] == {
        "CV0": None,
        "CPU": 41.437,
        "Tboard": 29,
        "SOC2": 39.062,
        "Tdiode": 30.75,
        "SOC0": 39.031,
        "CV1": None,
        "GPU": None,
        "tj": 41.656,
        "SOC1": 38.937,
        "CV2": None,
    }
    assert rails(TEGRASTATS["agx_orin_jp5"]) == {
        "VDD_GPU_SOC": 2390,
        "VDD_CPU_CV": 796,
        "VIN_SYS_5V0": 3522,
        "VDDQ_VDD2_1V8AO": 301,
    }
    assert p["nc_rails_mw"] == [[0, 0], [0, 0]]
    assert p["engines"]["GR3D2_FREQ"] == {"load_pct": 0, "freq_mhz": [0]}
    assert p["engines"]["NVJPG1"] == {"load_pct": None, "freq_mhz": [729]}
    assert p["engines"]["VIC_FREQ"] == {"load_pct": None, "freq_mhz": [115]}
    assert len(p["cpu"]) == 12 and p["cpu"][11] == {"load_pct": 12, "freq_mhz": 729}
    total, _, rail = tegrastats_power(p)
    assert rail is None and total == pytest.approx(7.009)


def test_agx_orin_jetpack5_without_sudo_has_no_rails():
    p = parse_tegrastats(TEGRASTATS["agx_orin_jp5_nosudo"])
    assert p["rails_mw"] == {}
    assert p["temps_c"]["CPU"] == 41.375
    with pytest.raises(ProbeError, match="no power rails"):
        tegrastats_power(p)


def test_agx_orin_64gb_dla_and_gpc_array():
    p = parse_tegrastats(TEGRASTATS["agx_orin_64gb"])
    assert p["engines"]["GR3D_FREQ"] == {"load_pct": 14, "freq_mhz": [407, 407]}
    assert p["engines"]["NVDLA0_FREQ"] == {"load_pct": None, "freq_mhz": [1600]}
    assert p["rails_mw"]["VDD_CPU_CV"] == {"cur": 14312, "avg": 12415, "values": [14312, 12415]}
    assert p["temps_c"]["CPU"] == 77.281
    assert tegrastats_power(p)[0] == pytest.approx((3150 + 14312 + 4968 + 1091) / 1000)


def test_orin_nano_jetpack5_and_6():
    p5 = parse_tegrastats(TEGRASTATS["orin_nano_jp5"])
    assert p5["cpu"][4:] == [None, None]
    assert p5["ram_mb"]["lfb_block_mb"] == 1
    assert tegrastats_power(p5)[:1] == (pytest.approx(4.915),)
    p6 = parse_tegrastats(TEGRASTATS["orin_nano_jp6"])
    assert p6["engines"]["GR3D_FREQ"] == {"load_pct": 0, "freq_mhz": [305]}
    assert p6["engines"]["NVDEC"] == "off" and p6["engines"]["OFA"] == "off"
    assert p6["temps_c"] == {"cpu": 44.125, "soc2": 43.375, "soc0": 42.125, "gpu": 44.531, "tj": 44.531, "soc1": 43.156}
    assert rails(TEGRASTATS["orin_nano_jp6"]) == {"VDD_IN": 2957, "VDD_CPU_GPU_CV": 486, "VDD_SOC": 1012}
    p6b = parse_tegrastats(TEGRASTATS["orin_nano_jp6b"])
    assert p6b["engines"]["GR3D_FREQ"] == {"load_pct": 0, "freq_mhz": None}
    assert p6b["swap_mb"]["cached"] == 20
    assert tegrastats_power(p6b)[0] == pytest.approx(4.742)


def test_jetpack7_three_rail_values_two_temperatures():
    p = parse_tegrastats(TEGRASTATS["agx_orin_jp7"])
    # jtop's asserted values for this line
    assert p["engines"]["GR3D_FREQ"] == {"load_pct": 12, "freq_mhz": [1300, 1300]}
    assert p["engines"]["EMC_FREQ"] == {"load_pct": 3, "freq_mhz": [3199]}
    assert p["engines"]["APE"] == {"load_pct": None, "freq_mhz": [174]}
    assert p["engines"]["PVA0_FREQ"] == "off"
    assert "swap_mb" not in p
    assert p["temps_c"] == {"cpu": 52.968, "soc2": 48.406, "soc0": 49.531, "gpu": 47.625}
    assert p["temps_second_c"] == p["temps_c"]
    assert p["rails_mw"]["VDD_GPU_SOC"] == {"cur": 5139, "avg": 5139, "values": [5139, 5139, 5139]}
    total, _, rail = tegrastats_power(p)
    assert rail is None and total == pytest.approx(13.907)
    n = parse_tegrastats(TEGRASTATS["orin_nano_jp7"])
    assert n["cpu"][2] == {"load_pct": 88, "freq_mhz": 1728}
    assert n["temps_c"]["tj"] == 50 and n["temps_c"]["soc1"] == 48.5
    assert tegrastats_power(n)[:1] == (pytest.approx(9.761),)


def test_temperatures_need_the_trailing_c():
    p = parse_tegrastats("CPU [35%@729,40%@729] GR3D_FREQ 35%@729 cpu@44C VDD_IN 1000mW/1000mW")
    assert p["temps_c"] == {"cpu": 44}
    assert p["cpu"] == [{"load_pct": 35, "freq_mhz": 729}, {"load_pct": 40, "freq_mhz": 729}]


def test_a_running_tegrastats(tmp_path):
    """A fake tegrastats in a fake root prints a JetPack 6 line on its interval."""
    line = TEGRASTATS["orin_nano_jp6b"]
    write_script(
        tmp_path, "tegrastats", f'echo "$@" > "{tmp_path}/args"\nwhile true; do echo "{line}"; sleep 0.05; done\n'
    )
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text("# R36 (release), REVISION: 4.3\n")
    fs = SysFS(tmp_path)
    disc = discover_power("auto", fs, SubprocessRunner(fs), interval_s=0.05)
    src = disc.source
    try:
        assert isinstance(src, Tegrastats)
        assert disc.tried == ["jetson: no Jetson INA3221 power monitor found"]
        assert (tmp_path / "args").read_text().split() == ["--interval", "50"]
        assert src.total_rail == "VDD_IN" and src.flags == ()
        r = src.read()
        assert r.total_w == pytest.approx(4.742)
        assert r.rails_w == pytest.approx({"VDD_IN": 4.742, "VDD_CPU_GPU_CV": 0.482, "VDD_SOC": 1.446})
        assert r.t_ns is not None
    finally:
        src.close()
    assert src.proc.poll() is not None


def test_tegrastats_without_rails_is_unavailable(tmp_path):
    line = TEGRASTATS["agx_orin_jp5_nosudo"]
    write_script(tmp_path, "tegrastats", f'while true; do echo "{line}"; sleep 0.05; done\n')
    with pytest.raises(Unavailable, match="no power rails") as e:
        Tegrastats(SubprocessRunner(SysFS(tmp_path)), 0.05)
    assert e.value.present


def test_tegrastats_sum_of_rails_is_flagged(tmp_path):
    line = TEGRASTATS["agx_orin_jp5"]
    write_script(tmp_path, "tegrastats", f'while true; do echo "{line}"; sleep 0.05; done\n')
    src = Tegrastats(SubprocessRunner(SysFS(tmp_path)), 0.05)
    try:
        assert src.flags == (FLAG_MODULE_RAILS_SUM,) and src.total_rail is None
        assert src.read().total_w == pytest.approx(7.009)
    finally:
        src.close()
