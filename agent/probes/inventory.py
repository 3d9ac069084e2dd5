"""Which board is this: model, SoC, CPU, memory, OS, runtime, accelerators.

Read from the device tree (``/proc/device-tree/model``, ``compatible``) on Arm
boards, DMI (``/sys/class/dmi/id``) on x86, Jetson's ``/etc/nv_tegra_release``
(L4T), the ``nvidia-jetpack`` package version and ``nvpmodel -q``, the Pi's
``/proc/cpuinfo`` revision. Accelerators: the Coral Edge TPU by USB id
(``1a6e:089a`` before its firmware is loaded, ``18d1:9302`` after) or as a
PCIe ``apex`` device, NPU device nodes (VeriSilicon ``galcore``, Arm Ethos-U,
Rockchip RKNPU, Linux ``accel``, Hailo, Qualcomm fastrpc DSP) and devfreq GPUs.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import socket
from typing import Any

from edgebench.agent.probes._fs import (
    ProbeError,
    Runner,
    SysFS,
    as_fs,
    default_runner,
    run_text,
)

#: Arm CPU part numbers (MIDR, implementer 0x41), as lscpu names them.
ARM_PARTS = {
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD41: "Cortex-A78",
    0xD42: "Cortex-A78AE",
    0xD4B: "Cortex-A78C",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD48: "Cortex-X2",
    0xD4D: "Cortex-A715",
    0xD80: "Cortex-A520",
    0xD81: "Cortex-A720",
}
NVIDIA_PARTS = {0x003: "Denver 2", 0x004: "Carmel"}

EDGETPU_USB = {
    ("1a6e", "089a"): "Coral USB Accelerator (Edge TPU; firmware not loaded yet)",
    ("18d1", "9302"): "Coral USB Accelerator (Edge TPU)",
}
EDGETPU_PCI = ("0x1ac1", "0x089a")

#: (glob under the root, kind, description)
NPU_NODES = (
    ("dev/galcore", "npu", "VeriSilicon Vivante NPU/GPU (galcore; i.MX 8M Plus VX delegate)"),
    ("dev/ethosu*", "npu", "Arm Ethos-U NPU (ethos-u delegate)"),
    ("dev/rknpu*", "npu", "Rockchip NPU (RKNN runtime, not a TFLite delegate)"),
    ("sys/class/devfreq/*.npu", "npu", "NPU with devfreq clock control (Rockchip RKNPU)"),
    ("dev/accel/accel*", "npu", "Linux compute accelerator (accel subsystem)"),
    ("dev/hailo*", "npu", "Hailo accelerator (HailoRT, not a TFLite delegate)"),
    ("dev/fastrpc-cdsp*", "dsp", "Qualcomm Hexagon DSP/NPU via fastrpc (QNN delegate)"),
    ("sys/devices/platform/*nvdla*", "dla", "NVIDIA Deep Learning Accelerator (TensorRT, not TFLite)"),
    ("sys/devices/platform/bus@0/*nvdla*", "dla", "NVIDIA Deep Learning Accelerator (TensorRT, not TFLite)"),
)
GPU_OF_NAMES = {"gv11b", "gp10b", "ga10b", "gb10b", "gpu"}


def parse_range_list(text: str) -> list[int]:
    """``0-3,5`` -> [0, 1, 2, 3, 5] (the kernel's cpu list format)."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def parse_nv_tegra_release(text: str) -> dict[str, Any]:
    """``# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, ...`` -> L4T 35.4.1."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
    if not m:
        raise ProbeError(f"cannot read the L4T release from {first[:80]!r}")
    out: dict[str, Any] = {"l4t": f"{m.group(1)}.{m.group(2)}", "l4t_release": first.lstrip("# ")}
    b = re.search(r"BOARD:\s*([^,]+)", first)
    if b:
        out["board"] = b.group(1).strip()
    return out


def parse_nvpmodel(text: str) -> dict[str, Any]:
    """``NV Power Mode: 15W`` then the mode id on the next line."""
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    if not m:
        raise ProbeError(f"cannot read nvpmodel -q output {text.strip()[:80]!r}")
    out: dict[str, Any] = {"power_mode": m.group(1)}
    ids = re.findall(r"^\s*(\d+)\s*$", text, re.M)
    if ids:
        out["power_mode_id"] = int(ids[0])
    return out


def dpkg_version(fs: SysFS, package: str) -> str | None:
    """A package's version from dpkg's status file (no dpkg call needed)."""
    try:
        with open(fs.path("var/lib/dpkg/status"), encoding="utf-8", errors="replace") as f:
            hit = False
            for line in f:
                if line.startswith("Package: "):
                    hit = line[9:].strip() == package
                elif hit and line.startswith("Version: "):
                    return line[9:].strip()
    except OSError:
        return None
    return None


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip():
            try:
                parts = shlex.split(v)
            except ValueError:
                parts = [v.strip('"')]
            out[k.strip()] = parts[0] if parts else ""
    return out


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name (x86) or Arm core names with counts, plus Hardware/Revision/Model lines."""
    procs: list[dict[str, str]] = []
    top: dict[str, str] = {}
    cur: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if not sep:
            if cur:
                procs.append(cur)
                cur = {}
            continue
        k, v = k.strip(), v.strip()
        if k == "processor" and cur:
            procs.append(cur)
            cur = {}
        cur[k] = v
        if k in ("Hardware", "Revision", "Model", "Serial"):
            top[k] = v
    if cur:
        procs.append(cur)
    names: list[str] = []
    for p in procs:
        if "model name" in p:
            names.append(p["model name"])
        elif "CPU part" in p:
            try:
                part = int(p["CPU part"], 16)
                impl = int(p.get("CPU implementer", "0x41"), 16)
            except ValueError:
                continue
            table = NVIDIA_PARTS if impl == 0x4E else ARM_PARTS if impl == 0x41 else {}
            names.append(table.get(part, f"implementer 0x{impl:02x} part 0x{part:03x}"))
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    model = " + ".join(f"{c}x {n}" if len(counts) > 1 else n for n, c in counts.items()) or None
    out: dict[str, Any] = {"model": model}
    for key, name in (("Hardware", "hardware"), ("Revision", "revision"), ("Model", "board_model")):
        if key in top:
            out[name] = top[key]
    return out


def _cpu(fs: SysFS) -> dict[str, Any]:
    info = parse_cpuinfo(fs.try_read("proc/cpuinfo") or "")
    present = fs.try_read("sys/devices/system/cpu/present")
    online = fs.try_read("sys/devices/system/cpu/online")
    cores = len(parse_range_list(present)) if present else (os.cpu_count() if fs.is_real else None)
    govs: dict[str, list[int]] = {}
    maxf, minf = [], []
    for d in fs.glob("sys/devices/system/cpu/cpu[0-9]*"):
        m = re.fullmatch(r"cpu(\d+)", os.path.basename(d))
        if not m:
            continue
        g = fs.try_read(f"{d}/cpufreq/scaling_governor")
        if g:
            govs.setdefault(g, []).append(int(m.group(1)))
        mx, mn = fs.try_int(f"{d}/cpufreq/cpuinfo_max_freq"), fs.try_int(f"{d}/cpufreq/cpuinfo_min_freq")
        if mx:
            maxf.append(mx)
        if mn is not None:
            minf.append(mn)
    arch = fs.try_read("proc/sys/kernel/arch") or (platform.machine() if fs.is_real else None)
    return {
        "model": info.get("model"),
        "arch": arch,
        "cores": cores,
        "cores_online": len(parse_range_list(online)) if online else None,
        "governor": (next(iter(govs)) if len(govs) == 1 else govs) if govs else None,
        "max_freq_mhz": max(maxf) / 1000 if maxf else None,
        "min_freq_mhz": min(minf) / 1000 if minf else None,
        "_cpuinfo": info,
    }


def find_accelerators(fs: SysFS) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for d in fs.glob("sys/bus/usb/devices/*"):
        ids = (fs.try_read(f"{d}/idVendor"), fs.try_read(f"{d}/idProduct"))
        if ids in EDGETPU_USB:
            speed = fs.try_read(f"{d}/speed")
            found.append(
                {
                    "kind": "edgetpu-usb",
                    "name": EDGETPU_USB[ids],
                    "usb_id": ":".join(ids),  # type: ignore[arg-type]
                    "path": "/" + d,
                    "usb_speed_mbps": float(speed) if speed else None,
                }
            )
    apex = fs.glob("sys/class/apex/apex_*")
    for d in apex:
        n = os.path.basename(d)
        found.append(
            {
                "kind": "edgetpu-pcie",
                "name": f"Coral Edge TPU (PCIe/M.2) {n}",
                "path": "/" + d,
                "device_node": f"/dev/{n}" if fs.exists(f"dev/{n}") else None,
            }
        )
    if not apex:
        for d in fs.glob("sys/bus/pci/devices/*"):
            if (fs.try_read(f"{d}/vendor"), fs.try_read(f"{d}/device")) == EDGETPU_PCI:
                found.append(
                    {
                        "kind": "edgetpu-pcie",
                        "name": "Coral Edge TPU (PCIe/M.2), apex driver not loaded",
                        "path": "/" + d,
                        "device_node": None,
                    }
                )
    seen: set[str] = set()
    for pattern, kind, desc in NPU_NODES:
        for p in fs.glob(pattern):
            real = fs.realpath(p)
            if real in seen:
                continue
            seen.add(real)
            entry: dict[str, Any] = {"kind": kind, "name": desc, "path": "/" + p}
            if pattern.startswith("dev/accel"):
                drv = fs.path(f"sys/class/accel/{os.path.basename(p)}/device/driver")
                if os.path.islink(drv):
                    entry["driver"] = os.path.basename(os.readlink(drv))
            found.append(entry)
    for d in fs.glob("sys/class/devfreq/*"):
        of = fs.try_read(f"{d}/device/of_node/name")
        if of and (of in GPU_OF_NAMES or "gpu" in of):
            found.append(
                {
                    "kind": "gpu",
                    "name": of,
                    "path": "/" + d,
                    "max_freq_mhz": (fs.try_int(f"{d}/max_freq") or 0) / 1e6 or None,
                }
            )
    return found


def board_inventory(
    fs: "SysFS | str | None" = None,
    runner: Runner | None = None,
    runtime: dict[str, Any] | None = None,
    runtimes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What this board is. ``runtime`` (the interpreter used: name, version,
    delegate) and ``runtimes`` (every importable runtime -> version) are
    included when given."""
    fs = as_fs(fs)
    runner = runner or default_runner(fs)
    inv: dict[str, Any] = {}
    hostname = socket.gethostname() if fs.is_real else (fs.try_read("etc/hostname") or None)
    inv["hostname"] = hostname
    dt_model = fs.try_read("proc/device-tree/model") or fs.try_read("sys/firmware/devicetree/base/model")
    compat_raw = None
    for p in ("proc/device-tree/compatible", "sys/firmware/devicetree/base/compatible"):
        try:
            compat_raw = fs.read_bytes(p)
            break
        except OSError:
            continue
    compatible = [c for c in (compat_raw or b"").decode("utf-8", "replace").split("\x00") if c]
    if dt_model:
        inv.update(model=dt_model, model_source="device-tree")
    else:
        product = fs.try_read("sys/class/dmi/id/product_name")
        vendor = fs.try_read("sys/class/dmi/id/sys_vendor")
        board = fs.try_read("sys/class/dmi/id/board_name")
        if product or board:
            inv.update(model=product or board, model_source="dmi", vendor=vendor, board_name=board)
        else:
            inv.update(model=None, model_source=None)
    if compatible:
        inv["compatible"] = compatible
    cpu = _cpu(fs)
    cpuinfo = cpu.pop("_cpuinfo")
    inv["soc"] = compatible[-1] if compatible else cpuinfo.get("hardware") or cpu.get("model")
    if "revision" in cpuinfo and dt_model and "Raspberry Pi" in dt_model:
        inv["raspberry_pi"] = {"revision": cpuinfo["revision"]}
    rel = fs.try_read("etc/nv_tegra_release")
    if rel is not None:
        jetson: dict[str, Any] = {}
        try:
            jetson.update(parse_nv_tegra_release(rel))
        except ProbeError as e:
            jetson["problem"] = str(e)
        jp = dpkg_version(fs, "nvidia-jetpack")
        jetson["jetpack"] = jp.split("-")[0] if jp else None
        try:
            jetson.update(parse_nvpmodel(run_text(runner, ["nvpmodel", "-q"])))
        except ProbeError as e:
            jetson["power_mode"] = None
            jetson["power_mode_problem"] = str(e)
        inv["jetson"] = jetson
    inv["cpu"] = cpu
    meminfo = fs.try_read("proc/meminfo") or ""
    for key, field in (("MemTotal", "memory_total_mb"), ("SwapTotal", "swap_total_mb")):
        m = re.search(rf"^{key}:\s+(\d+) kB", meminfo, re.M)
        inv[field] = round(int(m.group(1)) / 1024, 1) if m else None
    osr = parse_os_release(fs.try_read("etc/os-release") or fs.try_read("usr/lib/os-release") or "")
    inv["os"] = {"name": osr.get("PRETTY_NAME"), "id": osr.get("ID"), "version_id": osr.get("VERSION_ID")}
    inv["kernel"] = fs.try_read("proc/sys/kernel/osrelease") or (platform.release() if fs.is_real else None)
    inv["python"] = platform.python_version()
    inv["accelerators"] = find_accelerators(fs)
    if runtime is not None:
        inv["runtime"] = {k: runtime.get(k) for k in ("name", "version", "delegate")}
    if runtimes is not None:
        inv["runtimes"] = runtimes
    return inv
