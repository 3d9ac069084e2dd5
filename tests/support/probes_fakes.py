"""Fake sysfs trees and command outputs for the probe tests, in the exact formats of
shared/reference/power_thermal.md (section numbers below refer to it)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Sequence

from edgebench.agent.probes._fs import CmdResult, SysFS


class Dir:
    """A directory where a file is expected: reading it raises OSError (EISDIR), even as root."""


class Link:
    def __init__(self, target: str):
        self.target = target


def write_tree(root: Path, files: dict) -> Path:
    """``{relative path: text | bytes | Dir() | Link(target)}``; text gets the sysfs newline."""
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Dir):
            p.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, Link):
            if p.is_symlink() or p.exists():
                p.unlink()
            os.symlink(content.target, p)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(f"{content}\n")
    return root


def write_script(root: Path, name: str, body: str) -> Path:
    """An executable shell script at <root>/usr/bin/<name> (a fake board command)."""
    p = root / "usr" / "bin" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


class DenyFS(SysFS):
    """A SysFS whose reads of some files raise PermissionError (root ignores chmod 000)."""

    def __init__(self, root, deny: Sequence[str]):
        super().__init__(root)
        self.deny = tuple(deny)

    def read_bytes(self, rel: str, limit: int = 1 << 16) -> bytes:
        if any(rel.endswith(d) for d in self.deny):
            raise PermissionError(13, "Permission denied", self.path(rel))
        return super().read_bytes(rel, limit)


class FakeRunner:
    """Feeds verbatim command outputs: ``{("vcgencmd", "get_throttled"): "throttled=0x0\\n"}``.
    A value may be a list, consumed one per call (the last one repeats)."""

    def __init__(self, outputs: dict, returncode: int = 0):
        self.outputs = {tuple(k): v for k, v in outputs.items()}
        self.calls: list[tuple[str, ...]] = []
        self.returncode = returncode

    def __call__(self, argv, timeout=5.0) -> CmdResult:
        key = tuple(argv)
        self.calls.append(key)
        if key not in self.outputs:
            raise FileNotFoundError(argv[0])
        out = self.outputs[key]
        if isinstance(out, list):
            out = out.pop(0) if len(out) > 1 else out[0]
        return CmdResult(self.returncode, out, "")


# --------------------------------------------------------------------------- 6.1 Orin NX / Orin Nano (JP5/JP6)
ORIN_HW = "sys/bus/i2c/devices/1-0040/hwmon/hwmon3"
ORIN_NX_INA = {
    "sys/bus/i2c/devices/1-0040/name": "ina3221",
    f"{ORIN_HW}/name": "ina3221",
    f"{ORIN_HW}/in1_label": "VDD_IN",
    f"{ORIN_HW}/in1_input": "5072",
    f"{ORIN_HW}/curr1_input": "1312",
    f"{ORIN_HW}/curr1_crit": "5920",
    f"{ORIN_HW}/curr1_max": "4936",
    f"{ORIN_HW}/curr1_crit_alarm": "0",
    f"{ORIN_HW}/curr1_max_alarm": "0",
    f"{ORIN_HW}/in2_label": "VDD_CPU_GPU_CV",
    f"{ORIN_HW}/in2_input": "5072",
    f"{ORIN_HW}/curr2_input": "95",
    f"{ORIN_HW}/in3_label": "VDD_SOC",
    f"{ORIN_HW}/in3_input": "5072",
    f"{ORIN_HW}/curr3_input": "285",
    f"{ORIN_HW}/in7_label": "sum of shunt voltages",
    f"{ORIN_HW}/in7_input": "760",
    # the same device reached through the driver and the hwmon class (must not double count)
    "sys/bus/i2c/drivers/ina3221/1-0040": Link("../../devices/1-0040"),
    "sys/class/hwmon/hwmon3": Link("../../bus/i2c/devices/1-0040/hwmon/hwmon3"),
}
ORIN_NX_W = {"VDD_IN": 5072 * 1312 / 1e6, "VDD_CPU_GPU_CV": 5072 * 95 / 1e6, "VDD_SOC": 5072 * 285 / 1e6}

# --------------------------------------------------------------------------- 6.2 AGX Orin, two chips, NC channels
AGX_A = "sys/bus/i2c/devices/1-0040/hwmon/hwmon3"
AGX_B = "sys/bus/i2c/devices/1-0041/hwmon/hwmon2"
AGX_ORIN_INA = {
    "sys/bus/i2c/devices/1-0040/name": "ina3221",
    f"{AGX_A}/in1_label": "VDD_GPU_SOC",
    f"{AGX_A}/in1_input": "843",
    f"{AGX_A}/curr1_input": "6170",
    f"{AGX_A}/in2_label": "VDD_CPU_CV",
    f"{AGX_A}/in2_input": "780",
    f"{AGX_A}/curr2_input": "3437",
    f"{AGX_A}/in3_label": "VIN_SYS_5V0",
    f"{AGX_A}/in3_input": "4968",
    f"{AGX_A}/curr3_input": "953",
    f"{AGX_A}/in7_label": "sum of shunt voltages",
    "sys/bus/i2c/devices/1-0041/name": "ina3221",
    f"{AGX_B}/in1_label": "NC",
    f"{AGX_B}/in1_input": Dir(),  # disabled channel: reading fails
    f"{AGX_B}/in2_label": "VDDQ_VDD2_1V8AO",
    f"{AGX_B}/in2_input": "1800",
    f"{AGX_B}/curr2_input": "341",
    f"{AGX_B}/in3_label": "NC",
    f"{AGX_B}/in3_input": Dir(),
}
AGX_ORIN_W = {
    "VDD_GPU_SOC": 843 * 6170 / 1e6,
    "VDD_CPU_CV": 780 * 3437 / 1e6,
    "VIN_SYS_5V0": 4968 * 953 / 1e6,
    "VDDQ_VDD2_1V8AO": 1800 * 341 / 1e6,
}

# --------------------------------------------------------------------------- 6.3 Jetson Nano JetPack 4 (ina3221x IIO)
NANO_IIO = "sys/bus/i2c/devices/6-0040/iio:device0"
NANO_JP4_INA = {
    "sys/bus/i2c/devices/6-0040/name": "ina3221x",
    f"{NANO_IIO}/rail_name_0": "POM_5V_IN",
    f"{NANO_IIO}/in_voltage0_input": "5040",
    f"{NANO_IIO}/in_current0_input": "184",
    f"{NANO_IIO}/in_power0_input": "933",
    f"{NANO_IIO}/warn_current_limit_0": "32760 ma",
    f"{NANO_IIO}/rail_name_1": "POM_5V_GPU",
    f"{NANO_IIO}/in_power1_input": "0",
    f"{NANO_IIO}/rail_name_2": "POM_5V_CPU",
    f"{NANO_IIO}/in_power2_input": "84",
    "sys/bus/i2c/drivers/ina3221x/6-0040": Link("../../devices/6-0040"),
}

# --------------------------------------------------------------------------- 6.4 Jetson thermal zones, OC counters
JETSON_THERMAL = {
    "sys/devices/virtual/thermal/thermal_zone0/type": "cpu-thermal",
    "sys/devices/virtual/thermal/thermal_zone0/temp": "44125",
    "sys/devices/virtual/thermal/thermal_zone1/type": "gpu-thermal",
    "sys/devices/virtual/thermal/thermal_zone1/temp": "44531",
    "sys/devices/virtual/thermal/thermal_zone2/type": "cv0-thermal",
    "sys/devices/virtual/thermal/thermal_zone2/temp": Dir(),  # read raises -> offline
    "sys/devices/virtual/thermal/thermal_zone8/type": "tj-thermal",
    "sys/devices/virtual/thermal/thermal_zone8/temp": "44531",
    "sys/devices/virtual/thermal/thermal_zone4/type": "PMIC-Die",
    "sys/devices/virtual/thermal/thermal_zone4/temp": "100000",
}
JETSON_OC = {
    "sys/class/hwmon/hwmon5/name": "soctherm_oc",
    "sys/class/hwmon/hwmon5/oc1_event_cnt": "0",
    "sys/class/hwmon/hwmon5/oc2_event_cnt": "15",
    "sys/class/hwmon/hwmon5/oc3_event_cnt": "37",
    "sys/class/hwmon/hwmon5/oc1_throt_en": "1",
}
# jtop's own CPU fixture (6.5), for cpu0..cpu5
JTOP_CPUS = {
    f"sys/devices/system/cpu/cpu{n}/cpufreq/{k}": v
    for n in range(6)
    for k, v in (
        ("scaling_governor", "test_cpu"),
        ("scaling_min_freq", "0"),
        ("scaling_max_freq", "2035200"),
        ("scaling_cur_freq", "200000"),
        ("cpuinfo_min_freq", "0"),
        ("cpuinfo_max_freq", "2035200"),
        ("cpuinfo_cur_freq", "200000"),
    )
}
NV_TEGRA_RELEASE = (
    "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023"
)
NVPMODEL_Q = "NV Power Mode: 15W\n0\n"

# --------------------------------------------------------------------------- 2.5 / 6.7 Raspberry Pi
PMIC_READ_ADC = """\
 3V7_WL_SW_A current(0)=0.00195186A
   3V3_SYS_A current(1)=0.12687090A
   1V8_SYS_A current(2)=0.18835450A
  DDR_VDD2_A current(3)=0.02147046A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.17957110A
    0V8_SW_A current(6)=0.25959740A
  VDD_CORE_A current(7)=0.56259000A
   3V3_DAC_A current(17)=0.00000000A
   3V3_ADC_A current(18)=0.00000000A
   0V8_AON_A current(16)=0.00293040A
      HDMI_A current(22)=0.02551890A
 3V7_WL_SW_V volt(8)=3.70720000V
   3V3_SYS_V volt(9)=3.32580900V
   1V8_SYS_V volt(10)=1.80415000V
  DDR_VDD2_V volt(11)=1.11135400V
  DDR_VDDQ_V volt(12)=0.60329610V
   1V1_SYS_V volt(13)=1.11282000V
    0V8_SW_V volt(14)=0.80512740V
  VDD_CORE_V volt(15)=0.76798460V
   3V3_DAC_V volt(20)=3.32142500V
   3V3_ADC_V volt(21)=3.32966700V
   0V8_AON_V volt(19)=0.80175740V
      HDMI_V volt(23)=5.11746000V
     EXT5V_V volt(24)=5.14158000V
      BATT_V volt(25)=3.28033900V
"""
PMIC_CURRENTS = {
    "3V7_WL_SW": 0.00195186,
    "3V3_SYS": 0.12687090,
    "1V8_SYS": 0.18835450,
    "DDR_VDD2": 0.02147046,
    "DDR_VDDQ": 0.0,
    "1V1_SYS": 0.17957110,
    "0V8_SW": 0.25959740,
    "VDD_CORE": 0.56259000,
    "3V3_DAC": 0.0,
    "3V3_ADC": 0.0,
    "0V8_AON": 0.00293040,
    "HDMI": 0.02551890,
}
PMIC_VOLTS = {
    "3V7_WL_SW": 3.70720000,
    "3V3_SYS": 3.32580900,
    "1V8_SYS": 1.80415000,
    "DDR_VDD2": 1.11135400,
    "DDR_VDDQ": 0.60329610,
    "1V1_SYS": 1.11282000,
    "0V8_SW": 0.80512740,
    "VDD_CORE": 0.76798460,
    "3V3_DAC": 3.32142500,
    "3V3_ADC": 3.32966700,
    "0V8_AON": 0.80175740,
    "HDMI": 5.11746000,
}
PMIC_HIGH_LOAD = """\
              VDD_CORE_A current(7)=5.03652000A
              VDD_CORE_V volt(15)=0.89369880V
                 EXT5V_V volt(24)=4.92450000V
"""
PI4_PMIC = 'error=1 error_msg="Command not registered"\n'
VCHI_FAILED = "VCHI initialization failed\n"

PI_TREE = {
    "sys/class/thermal/thermal_zone0/type": "cpu-thermal",
    "sys/class/thermal/thermal_zone0/temp": "47200",
    "sys/class/hwmon/hwmon0/name": "cpu_thermal",
    "sys/class/hwmon/hwmon0/temp1_input": "48312",
    "sys/class/hwmon/hwmon1/name": "rpi_volt",
    "sys/class/hwmon/hwmon1/in0_lcrit_alarm": "0",
    "sys/class/hwmon/hwmon2/name": "pwmfan",
    "sys/class/hwmon/hwmon2/fan1_input": "3054",
    "sys/class/hwmon/hwmon2/pwm1": "115",
    "sys/devices/platform/soc/soc:firmware/get_throttled": "50000",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "2400000",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq": "2400000",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "ondemand",
}

# --------------------------------------------------------------------------- 6.8 generic hwmon, RAPL
INA219 = {
    "sys/class/hwmon/hwmon4/name": "ina219",
    "sys/class/hwmon/hwmon4/in1_input": "5104",
    "sys/class/hwmon/hwmon4/curr1_input": "640",
    "sys/class/hwmon/hwmon4/power1_input": "3200000",
    "sys/class/hwmon/hwmon4/power1_label": "board",
}
RAPL_PKG = "sys/class/powercap/intel-rapl/intel-rapl:0"
RAPL = {
    f"{RAPL_PKG}/name": "package-0",
    f"{RAPL_PKG}/energy_uj": "262143000000",
    f"{RAPL_PKG}/max_energy_range_uj": "262143999938",
    f"{RAPL_PKG}/intel-rapl:0:2/name": "dram",
    f"{RAPL_PKG}/intel-rapl:0:2/energy_uj": "2469474853",
    f"{RAPL_PKG}/intel-rapl:0:2/max_energy_range_uj": "262143999938",
}

# --------------------------------------------------------------------------- 6.9 Edge TPU
APEX = {
    "sys/class/apex/apex_0/temp": "48250",
    "sys/class/apex/apex_0/trip_point0_temp": "85000",
    "sys/class/apex/apex_0/trip_point1_temp": "90000",
    "sys/class/apex/apex_0/trip_point2_temp": "95000",
}

# --------------------------------------------------------------------------- 1.6 GPU load and clock (Orin, JP6)
ORIN_GPU_DEV = "sys/devices/platform/bus@0/17000000.gpu"
ORIN_GPU = {
    f"{ORIN_GPU_DEV}/load": "370",  # per mille
    f"{ORIN_GPU_DEV}/of_node/name": b"ga10b\x00",
    f"{ORIN_GPU_DEV}/devfreq/17000000.gpu/cur_freq": "305000000",  # Hz
    f"{ORIN_GPU_DEV}/devfreq/17000000.gpu/max_freq": "918000000",
    f"{ORIN_GPU_DEV}/devfreq/17000000.gpu/device": Link("../../../17000000.gpu"),
    "sys/class/devfreq/17000000.gpu": Link("../../devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"),
    # another devfreq device (the video image compositor): not a GPU
    "sys/devices/platform/15340000.vic/of_node/name": b"vic\x00",
    "sys/devices/platform/15340000.vic/load": "999",
    "sys/devices/platform/15340000.vic/devfreq/15340000.vic/cur_freq": "115200000",
    "sys/devices/platform/15340000.vic/devfreq/15340000.vic/device": Link("../../../15340000.vic"),
    "sys/class/devfreq/15340000.vic": Link("../../devices/platform/15340000.vic/devfreq/15340000.vic"),
}

# --------------------------------------------------------------------------- 6.6 tegrastats lines
TEGRASTATS = {
    "nano_jp4": "RAM 330/3964MB (lfb 758x4MB) SWAP 0/1982MB (cached 0MB) CPU [12%@102,7%@102,3%@102,5%@102] EMC_FREQ 0% GR3D_FREQ 0% PLL@20.5C CPU@23C PMIC@100C GPU@22.5C AO@27C thermal@22.5C POM_5V_IN 933/933 POM_5V_GPU 0/0 POM_5V_CPU 84/84",
    "nano_jp4_sudo": "RAM 331/3964MB (lfb 758x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [12%@102,7%@102,3%@102,5%@102] EMC_FREQ 3%@204 GR3D_FREQ 0%@76 APE 25 PLL@20.5C CPU@23.5C PMIC@100C GPU@22.5C AO@27.5C thermal@23C POM_5V_IN 933/933 POM_5V_GPU 0/0 POM_5V_CPU 84/105",
    "nano_real": "RAM 2519/3956MB (lfb 3x4MB) SWAP 0/1978MB CPU [12%@1479,off,7%@1479,20%@1479] EMC_FREQ 9%@1600 GR3D_FREQ 45%@921 NVDEC 716 APE 25 PLL@33C CPU@36.5C PMIC@100C GPU@34C AO@41C thermal@35.25C POM_5V_IN 3187/3187 POM_5V_GPU 450/450 POM_5V_CPU 612/612",
    "tx2_jp4": "RAM 696/7854MB (lfb 1675x4MB) CPU [10%@345,0%@345,0%@345,5%@345,3%@345,1%@345] EMC_FREQ 1%@665 GR3D_FREQ 20%@140 APE 150 MTS fg 0% bg 0% BCPU@30C MCPU@30C GPU@28C PLL@30C Tboard@26C Tdiode@27C PMIC@100C thermal@29.2C VDD_IN 1383/1383 VDD_CPU 153/191 VDD_GPU 76/76 VDD_SOC 384/384 VDD_WIFI 364/335 VDD_DDR 192/201",
    "tx2_real": "RAM 3276/7859MB (lfb 5x4MB) SWAP 1626/12122MB (cached 181MB) CPU [44%@1421,49%@2031,67%@2034,17%@1420,25%@1419,8%@1420] EMC_FREQ 1%@1866 GR3D_FREQ 0%@114 APE 150 MTS fg 1% bg 1% PLL@42.5C MCPU@42.5C PMIC@50C Tboard@38C GPU@39.5C BCPU@42.5C thermal@41.3C Tdiode@39.25C VDD_SYS_GPU 182/182 VDD_SYS_SOC 730/730 VDD_4V0_WIFI 0/0 VDD_IN 5297/5297 VDD_SYS_CPU 1917/1917 VDD_SYS_DDR 1241/1241",
    "agx_xavier_jp4": "RAM 408/15823MB (lfb 3702x4MB) SWAP 0/7911MB (cached 0MB) CPU [1%@2265,2%@2265,3%@2265,4%@2265,5%@2265,6%@2265,7%@2265,8%@2265] EMC_FREQ 0%@2133 GR3D_FREQ 9%@1377 APE 150 MTS fg 0% bg 0% AO@26.5C GPU@28C iwlwifi@30C Tdiode@31.25C PMIC@100C AUX@27C CPU@28C thermal@27.45C Tboard@27C GPU 1155/1155 CPU 385/385 SOC 2502/2502 CV 0/0 VDDRQ 192/192 SYS5V 2692/2692",
    "agx_orin_jp5": "01-03-2023 16:07:54 RAM 2257/30536MB (lfb 5392x4MB) SWAP 0/15268MB (cached 0MB) CPU [1%@729,2%@729,3%@729,4%@729,5%@729,6%@729,7%@729,8%@729,9%@729,10%@729,11%@729,12%@729] EMC_FREQ 0%@204 GR3D_FREQ 0%@0 GR3D2_FREQ 0%@0 NVJPG1 729 VIC_FREQ 115 APE 233 CV0@-256C CPU@41.437C Tboard@29C SOC2@39.062C Tdiode@30.75C SOC0@39.031C CV1@-256C GPU@-256C tj@41.656C SOC1@38.937C CV2@-256C VDD_GPU_SOC 2390mW/2390mW VDD_CPU_CV 796mW/796mW VIN_SYS_5V0 3522mW/3522mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW",
    "agx_orin_jp5_nosudo": "01-03-2023 16:10:22 RAM 2257/30536MB (lfb 5392x4MB) SWAP 0/15268MB (cached 0MB) CPU [1%@729,2%@729,3%@729,4%@729,5%@729,0%@729,7%@729,8%@729,9%@729,10%@729,11%@729,12%@729] EMC_FREQ 0% GR3D_FREQ 0% CV0@-256C CPU@41.375C Tboard@29C SOC2@39C Tdiode@30.75C SOC0@38.906C CV1@-256C GPU@-256C tj@41.468C SOC1@38.843C CV2@-256C",
    "agx_orin_64gb": "11-21-2025 08:49:48 RAM 13983/62780MB (lfb 424x4MB) SWAP 126/31390MB (cached 0MB) CPU [90%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201] EMC_FREQ 1%@2133 GR3D_FREQ 14%@[407,407] VIC_FREQ 115 NVDLA0_FREQ @1600 APE 174 CV0@73.625C CPU@77.281C Tboard@62C SOC2@70C Tdiode@62.25C SOC0@69.531C CV1@72.5C GPU@69.125C tj@77.281C SOC1@68.968C CV2@67.25C VDD_GPU_SOC 3150mW/2971mW VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW VDDQ_VDD2_1V8AO 1091mW/1091mW",
    "orin_nano_jp5": "01-24-2024 09:17:09 RAM 3503/7337MB (lfb 7x1MB) SWAP 430/3668MB (cached 1MB) CPU [11%@729,13%@729,9%@729,18%@729,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@305 GR3D2_FREQ 0%@0 VIC_FREQ 115 APE 174 CV0@42.718C CPU@44.093C SOC2@42.625C SOC0@43.281C CV1@42.25C GPU@41.343C tj@46.968C SOC1@46.968C CV2@42.875C VDD_IN 4915mW/4915mW VDD_CPU_GPU_CV 449mW/449mW VDD_SOC 1431mW/1431mW",
    "orin_nano_jp6": "09-21-2025 15:38:17 RAM 3645/7620MB (lfb 63x4MB) SWAP 236/3810MB (cached 0MB) CPU [1%@729,1%@729,4%@729,1%@729,0%@729,0%@729] EMC_FREQ 0%@204 GR3D_FREQ 0%@[305] NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@44.125C soc2@43.375C soc0@42.125C gpu@44.531C tj@44.531C soc1@43.156C VDD_IN 2957mW/2957mW VDD_CPU_GPU_CV 486mW/486mW VDD_SOC 1012mW/1012mW",
    "orin_nano_jp6b": "03-09-2026 14:12:52 RAM 1905/7620MB (lfb 36x4MB) SWAP 320/12002MB (cached 20MB) CPU [0%@729,0%@729,1%@729,0%@729,0%@729,0%@729] GR3D_FREQ 0% cpu@46.125C soc2@45.843C soc0@44.156C gpu@45.062C tj@46.125C soc1@46C VDD_IN 4742mW/4742mW VDD_CPU_GPU_CV 482mW/482mW VDD_SOC 1446mW/1446mW",
    "agx_orin_jp7": "07-25-2026 09:08:28 RAM 20642/62817MB (lfb 1x2MB) CPU [23%@2201,10%@2201,4%@2201,14%@2201,30%@2201,18%@2201,10%@2201,10%@2201,33%@2201,7%@2201,5%@2201,27%@2201] EMC_FREQ 3%@3199 GR3D_FREQ 12%@[1300,1300] NVENC0 off NVDEC0 off NVJPG0 off NVJPG1 off VIC off OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off APE 174 cpu@52.968C/52.968C soc2@48.406C/48.406C soc0@49.531C/49.531C gpu@47.625C/47.625C VDD_GPU_SOC 5139mW/5139mW/5139mW VDD_CPU_CV 3268mW/3268mW/3268mW VIN_SYS_5V0 5500mW/5500mW/5500mW",
    "orin_nano_jp7": "09-01-2026 09:25:18 RAM 5739/7546MB (lfb 1x2MB) SWAP 2047/2048MB (cached 209MB) CPU [72%@1728,75%@1728,88%@1728,79%@1728,87%@1728,78%@1728] GR3D_FREQ 33% cpu@50C/50C soc2@47.937C/47.937C soc0@48.437C/48.437C gpu@48.75C/48.75C tj@50C/50C soc1@48.5C/48.5C VDD_IN 9761mW/9761mW/9761mW VDD_CPU_GPU_CV 4238mW/4238mW/4238mW VDD_SOC 1825mW/1825mW/1825mW",
}


def um_record(volts_raw: int, amps_raw: int, watts_raw: int, temp_c: int = 25) -> bytes:
    """A 130-byte RDTech UM record (rdserialtool layout, big-endian)."""
    import struct

    data = bytearray(130)
    data[0:2] = b"\x09\xc9"
    data[2:4] = struct.pack(">H", volts_raw)
    data[4:6] = struct.pack(">H", amps_raw)
    data[6:10] = struct.pack(">L", watts_raw)
    data[10:12] = struct.pack(">H", temp_c)
    data[128:130] = b"\xff\xf1"
    return bytes(data)
