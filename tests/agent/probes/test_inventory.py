"""Board inventory from fake trees: Jetson, Raspberry Pi, x86, accelerators."""

from __future__ import annotations

import pytest

from edgebench.agent.probes._fs import ProbeError, SysFS
from edgebench.agent.probes.inventory import (
    board_inventory,
    parse_cpuinfo,
    parse_nv_tegra_release,
    parse_nvpmodel,
    parse_os_release,
    parse_range_list,
)
from tests.support.probes_fakes import JTOP_CPUS, NV_TEGRA_RELEASE, NVPMODEL_Q, FakeRunner, Link, write_tree

ARM_CPUINFO = "".join(
    f"processor\t: {n}\nBogoMIPS\t: 62.50\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\n"
    f"CPU part\t: {part}\nCPU revision\t: 1\n\n"
    for n, part in enumerate(["0xd42"] * 6)
)
PI5_CPUINFO = (
    "".join(f"processor\t: {n}\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n" for n in range(4))
    + "Revision\t: d04170\nSerial\t\t: 8a4f2c1d9e3b7a60\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"
)
MEMINFO = "MemTotal:        7620000 kB\nMemFree:         1000000 kB\nSwapTotal:       3901440 kB\n"
OS_RELEASE = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'
DPKG_STATUS = (
    "Package: nvidia-l4t-core\nStatus: install ok installed\nVersion: 35.4.1-20230801124926\n\n"
    "Package: nvidia-jetpack\nStatus: install ok installed\nVersion: 5.1.2-b104\nArchitecture: arm64\n\n"
)


def test_orin_nano_jetson_inventory(tmp_path):
    tree = {
        "proc/device-tree/model": b"NVIDIA Jetson Orin Nano Developer Kit\x00",
        "proc/device-tree/compatible": b"nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00",
        "etc/nv_tegra_release": NV_TEGRA_RELEASE,
        "var/lib/dpkg/status": DPKG_STATUS,
        "proc/cpuinfo": ARM_CPUINFO,
        "proc/meminfo": MEMINFO,
        "etc/os-release": OS_RELEASE,
        "etc/hostname": "orin-1",
        "proc/sys/kernel/osrelease": "5.10.120-tegra",
        "proc/sys/kernel/arch": "aarch64",
        "sys/devices/system/cpu/present": "0-5",
        "sys/devices/system/cpu/online": "0-3",
        **JTOP_CPUS,
        "sys/devices/platform/17000000.ga10b/devfreq/17000000.ga10b/device/of_node/name": "ga10b",
        "sys/devices/platform/17000000.ga10b/devfreq/17000000.ga10b/max_freq": "624750000",
        "sys/class/devfreq/17000000.ga10b": Link("../../devices/platform/17000000.ga10b/devfreq/17000000.ga10b"),
    }
    runner = FakeRunner({("nvpmodel", "-q"): NVPMODEL_Q})
    inv = board_inventory(
        SysFS(write_tree(tmp_path, tree)),
        runner,
        runtime={"name": "ai-edge-litert", "version": "2.3.0", "delegate": None, "num_threads": 4},
    )
    assert inv["model"] == "NVIDIA Jetson Orin Nano Developer Kit" and inv["model_source"] == "device-tree"
    assert inv["compatible"] == ["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"]
    assert inv["soc"] == "nvidia,tegra234"
    assert inv["jetson"] == {
        "l4t": "35.4.1",
        "l4t_release": NV_TEGRA_RELEASE.lstrip("# "),
        "board": "t186ref",
        "jetpack": "5.1.2",
        "power_mode": "15W",
        "power_mode_id": 0,
    }
    assert inv["cpu"] == {
        "model": "Cortex-A78AE",
        "arch": "aarch64",
        "cores": 6,
        "cores_online": 4,
        "governor": "test_cpu",
        "max_freq_mhz": 2035.2,
        "min_freq_mhz": 0.0,
    }
    assert inv["memory_total_mb"] == pytest.approx(7441.4) and inv["swap_total_mb"] == 3810.0
    assert inv["os"] == {"name": "Ubuntu 22.04.4 LTS", "id": "ubuntu", "version_id": "22.04"}
    assert inv["kernel"] == "5.10.120-tegra" and inv["hostname"] == "orin-1"
    assert inv["runtime"] == {"name": "ai-edge-litert", "version": "2.3.0", "delegate": None}
    assert inv["accelerators"] == [
        {"kind": "gpu", "name": "ga10b", "path": "/sys/class/devfreq/17000000.ga10b", "max_freq_mhz": 624.75}
    ]
    assert runner.calls == [("nvpmodel", "-q")]


def test_raspberry_pi_5_inventory(tmp_path):
    tree = {
        "proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\x00",
        "proc/device-tree/compatible": b"raspberrypi,5-model-b\x00brcm,bcm2712\x00",
        "proc/cpuinfo": PI5_CPUINFO,
        "sys/devices/system/cpu/present": "0-3",
        "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "ondemand",
        "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "2400000",
        "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_min_freq": "1500000",
    }
    runner = FakeRunner({})
    inv = board_inventory(SysFS(write_tree(tmp_path, tree)), runner)
    assert inv["model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert inv["soc"] == "brcm,bcm2712"
    assert inv["raspberry_pi"] == {"revision": "d04170"}
    assert "jetson" not in inv
    assert inv["cpu"]["model"] == "Cortex-A76" and inv["cpu"]["cores"] == 4
    assert inv["cpu"]["governor"] == "ondemand"
    assert (inv["cpu"]["min_freq_mhz"], inv["cpu"]["max_freq_mhz"]) == (1500.0, 2400.0)
    assert inv["accelerators"] == []
    assert "runtime" not in inv
    assert runner.calls == []  # nothing to ask nvpmodel on a Pi


def test_x86_dmi_inventory(tmp_path):
    tree = {
        "sys/class/dmi/id/sys_vendor": "Intel(R) Client Systems",
        "sys/class/dmi/id/product_name": "NUC11TNHi5",
        "sys/class/dmi/id/board_name": "NUC11TNBi5",
        "proc/cpuinfo": "processor\t: 0\nmodel name\t: 11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz\n\n"
        "processor\t: 1\nmodel name\t: 11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz\n",
    }
    inv = board_inventory(SysFS(write_tree(tmp_path, tree)), FakeRunner({}))
    assert inv["model"] == "NUC11TNHi5" and inv["model_source"] == "dmi"
    assert inv["vendor"] == "Intel(R) Client Systems" and inv["board_name"] == "NUC11TNBi5"
    assert inv["cpu"]["model"] == "11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz"
    assert inv["soc"] == inv["cpu"]["model"]
    assert inv["kernel"] is None and inv["cpu"]["arch"] is None  # a fake root says nothing about those


def test_accelerators(tmp_path):
    tree = {
        "sys/bus/usb/devices/2-1/idVendor": "18d1",
        "sys/bus/usb/devices/2-1/idProduct": "9302",
        "sys/bus/usb/devices/2-1/speed": "5000",
        "sys/bus/usb/devices/1-1/idVendor": "1a6e",
        "sys/bus/usb/devices/1-1/idProduct": "089a",
        "sys/bus/usb/devices/1-1/speed": "480",
        "sys/bus/usb/devices/1-2/idVendor": "046d",
        "sys/bus/usb/devices/1-2/idProduct": "0825",
        "sys/class/apex/apex_0/temp": "48250",
        "dev/apex_0": "",
        "dev/galcore": "",
        "sys/class/devfreq/fdab0000.npu/cur_freq": "1000000000",
        "dev/accel/accel0": "",
        "sys/devices/pci0000:00/accel/accel0/device/driver": "",
        "sys/class/accel/accel0/device/driver": Link("/drivers/intel_vpu"),
    }
    acc = board_inventory(SysFS(write_tree(tmp_path, tree)), FakeRunner({}))["accelerators"]
    assert acc == [
        {
            "kind": "edgetpu-usb",
            "name": "Coral USB Accelerator (Edge TPU; firmware not loaded yet)",
            "usb_id": "1a6e:089a",
            "path": "/sys/bus/usb/devices/1-1",
            "usb_speed_mbps": 480.0,
        },
        {
            "kind": "edgetpu-usb",
            "name": "Coral USB Accelerator (Edge TPU)",
            "usb_id": "18d1:9302",
            "path": "/sys/bus/usb/devices/2-1",
            "usb_speed_mbps": 5000.0,
        },
        {
            "kind": "edgetpu-pcie",
            "name": "Coral Edge TPU (PCIe/M.2) apex_0",
            "path": "/sys/class/apex/apex_0",
            "device_node": "/dev/apex_0",
        },
        {
            "kind": "npu",
            "name": "VeriSilicon Vivante NPU/GPU (galcore; i.MX 8M Plus VX delegate)",
            "path": "/dev/galcore",
        },
        {
            "kind": "npu",
            "name": "NPU with devfreq clock control (Rockchip RKNPU)",
            "path": "/sys/class/devfreq/fdab0000.npu",
        },
        {
            "kind": "npu",
            "name": "Linux compute accelerator (accel subsystem)",
            "path": "/dev/accel/accel0",
            "driver": "intel_vpu",
        },
    ]


def test_edge_tpu_pcie_without_driver(tmp_path):
    tree = {"sys/bus/pci/devices/0000:01:00.0/vendor": "0x1ac1", "sys/bus/pci/devices/0000:01:00.0/device": "0x089a"}
    acc = board_inventory(SysFS(write_tree(tmp_path, tree)), FakeRunner({}))["accelerators"]
    assert acc == [
        {
            "kind": "edgetpu-pcie",
            "name": "Coral Edge TPU (PCIe/M.2), apex driver not loaded",
            "path": "/sys/bus/pci/devices/0000:01:00.0",
            "device_node": None,
        }
    ]


def test_jetson_without_nvpmodel_says_so(tmp_path):
    tree = {"etc/nv_tegra_release": "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64"}
    inv = board_inventory(SysFS(write_tree(tmp_path, tree)), FakeRunner({}))
    assert inv["jetson"]["l4t"] == "32.7.1" and inv["jetson"]["board"] == "t210ref"
    assert inv["jetson"]["jetpack"] is None
    assert inv["jetson"]["power_mode"] is None and "not installed" in inv["jetson"]["power_mode_problem"]


def test_parsers():
    assert parse_range_list("0-3,5\n") == [0, 1, 2, 3, 5]
    assert parse_range_list("0") == [0]
    assert parse_nvpmodel(NVPMODEL_Q) == {"power_mode": "15W", "power_mode_id": 0}
    assert parse_nvpmodel("NV Power Mode: MAXN\n0\n")["power_mode"] == "MAXN"
    with pytest.raises(ProbeError):
        parse_nvpmodel("nvpmodel: command failed")
    with pytest.raises(ProbeError):
        parse_nv_tegra_release("garbage")
    assert parse_os_release(OS_RELEASE)["PRETTY_NAME"] == "Ubuntu 22.04.4 LTS"
    big_little = "".join(
        f"processor : {i}\nCPU implementer : 0x41\nCPU part : {p}\n\n"
        for i, p in enumerate(["0xd05"] * 4 + ["0xd0b"] * 4)
    )
    assert parse_cpuinfo(big_little)["model"] == "4x Cortex-A55 + 4x Cortex-A76"
    assert parse_cpuinfo("processor : 0\nCPU implementer : 0x4e\nCPU part : 0x004\n")["model"] == "Carmel"
