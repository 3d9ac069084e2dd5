"""A Jetson's GPU load and clock, and its memory controller (EMC) load, as jtop reports them.

Two sources, read the way jtop (jetson-stats) reads them:

* sysfs, readable without root and always there on a Jetson: every devfreq device
  (``/sys/class/devfreq/*``) whose device-tree node is a Jetson GPU (``gv11b``,
  ``gp10b``, ``ga10b``, ``gb10b``, or a name holding ``gpu``): its device's ``load``
  in per mille (``/10`` -> %) and its ``cur_freq`` in Hz. Other boards' GPUs that
  register with devfreq (a Mali's node is ``gpu``) give their clock the same way.
* tegrastats, when it runs as the power source: ``GR3D_FREQ 14%@[407,407]`` (GPU
  load %, clock MHz per GPC) and ``EMC_FREQ 1%@2133`` (memory controller load % and
  clock MHz). What tegrastats prints wins over sysfs: it is NVIDIA's own figure.

The EMC load has no file a non-root process can read (jtop reads debugfs as root),
so it is reported only where tegrastats runs. Keys carry their unit:
``gpu_load_pct``, ``gpu_freq_mhz``, ``emc_load_pct``, ``emc_freq_mhz``; ``gpu_source``
says where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from edgebench.agent.probes._fs import SysFS

#: device-tree node names of Jetson GPUs (jtop/core/gpu.py)
GPU_NODES = frozenset({"gv11b", "gp10b", "ga10b", "gb10b", "gpu"})


class _HasLatest(Protocol):
    def latest(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class GpuDevice:
    name: str
    load: str  # per mille, relative to the SysFS root
    freq: str  # Hz


def discover_gpus(fs: SysFS) -> list[GpuDevice]:
    """The devfreq GPUs of this board, as jtop finds them."""
    found = []
    for entry in fs.glob("sys/class/devfreq/*"):
        base = entry.rsplit("/", 1)[-1]
        node = fs.try_read(f"{entry}/device/of_node/name") or ""
        if node not in GPU_NODES and "gpu" not in node and "gpu" not in base:
            continue
        device = fs.rel(fs.realpath(f"{entry}/device"))
        found.append(GpuDevice(name=node or base, load=f"{device}/load", freq=f"{fs.rel(fs.realpath(entry))}/cur_freq"))
    return found


def from_tegrastats(parsed: dict[str, Any] | None) -> dict[str, Any]:
    """``gpu_load_pct``, ``gpu_freq_mhz`` (the highest GPC clock), ``emc_load_pct``,
    ``emc_freq_mhz`` from a parsed tegrastats line: only what the line says."""
    out: dict[str, Any] = {}
    engines = (parsed or {}).get("engines") or {}
    for engine, prefix in (("GR3D_FREQ", "gpu"), ("EMC_FREQ", "emc")):
        e = engines.get(engine)
        if not isinstance(e, dict):
            continue
        if e.get("load_pct") is not None:
            out[f"{prefix}_load_pct"] = float(e["load_pct"])
        freqs = e.get("freq_mhz") or []
        if freqs:
            out[f"{prefix}_freq_mhz"] = float(max(freqs))
    return out


class GpuProbe:
    """Reads the GPU (and, with tegrastats, the EMC) at each sampler tick or snapshot."""

    def __init__(self, fs: SysFS, tegrastats: _HasLatest | None = None):
        self.fs = fs
        self.tegrastats = tegrastats
        self.devices = discover_gpus(fs)

    @property
    def present(self) -> bool:
        return bool(self.devices) or self.tegrastats is not None

    def read(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.devices:  # a Jetson has one GPU; the first one found is it
            d = self.devices[0]
            load, hz = self.fs.try_int(d.load), self.fs.try_int(d.freq)
            if load is not None:
                out["gpu_load_pct"] = load / 10.0
            if hz is not None:
                out["gpu_freq_mhz"] = round(hz / 1e6, 3)
            if out:
                out["gpu_source"] = f"sysfs ({d.name})"
        if self.tegrastats is not None:
            t = from_tegrastats(self.tegrastats.latest())
            if t:
                out.update(t)
                out["gpu_source"] = "tegrastats"
        return out


def gpu_probe(fs: SysFS, power: Any = None) -> GpuProbe | None:
    """A GpuProbe when this board has a GPU to read; tegrastats joins in when it is
    the power source (it is then already running)."""
    tegra = power if getattr(power, "name", None) == "tegrastats" and hasattr(power, "latest") else None
    probe = GpuProbe(fs, tegra)
    return probe if probe.present else None


def summarize_gpu(readings: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Over a run's window: ``gpu_load_pct_mean``/``_max``, ``gpu_freq_mhz_min``/``_max``,
    ``emc_load_pct_mean``/``_max``, ``emc_freq_mhz_min``/``_max`` and ``gpu_source``,
    for what was read at least once; empty without a GPU."""
    rs = [r for r in readings if r]
    out: dict[str, Any] = {}
    for prefix in ("gpu", "emc"):
        loads = [r[f"{prefix}_load_pct"] for r in rs if r.get(f"{prefix}_load_pct") is not None]
        if loads:
            out[f"{prefix}_load_pct_mean"] = round(sum(loads) / len(loads), 2)
            out[f"{prefix}_load_pct_max"] = max(loads)
        freqs = [r[f"{prefix}_freq_mhz"] for r in rs if r.get(f"{prefix}_freq_mhz") is not None]
        if freqs:
            out[f"{prefix}_freq_mhz_min"], out[f"{prefix}_freq_mhz_max"] = min(freqs), max(freqs)
    if out:
        out["gpu_source"] = rs[-1].get("gpu_source")
    return out
