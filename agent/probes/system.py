"""CPU, memory and load, through psutil, for the board and for the agent's process;
the GPU's load and clock (and a Jetson's EMC load) through ``gpu.py`` when there is one.

Per-core CPU % over a window is computed from the cumulative ``/proc/stat``
times at its two ends (exact, not an average of instantaneous readings); the
agent's CPU % likewise from its process CPU time (all threads, the sampler's
included; the sampler's own share is reported separately).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Any, Sequence

import psutil

from edgebench.agent.probes.gpu import GpuProbe, summarize_gpu

MB = 1024 * 1024


@dataclass
class SystemReading:
    #: per core: (busy seconds, total seconds), cumulative since boot
    cores: list[tuple[float, float]]
    #: the agent's process CPU time (user + system, all threads), seconds
    proc_cpu_s: float
    proc_rss_b: int
    mem_used_b: int
    mem_available_b: int
    mem_total_b: int
    swap_used_b: int
    load_1m: float | None
    #: gpu_load_pct, gpu_freq_mhz, emc_load_pct, emc_freq_mhz, gpu_source (what was read)
    gpu: dict[str, Any] | None = None


class SystemProbe:
    def __init__(self, gpu: GpuProbe | None = None) -> None:
        self.gpu = gpu
        self.proc = psutil.Process()
        self._meminfo: str | None = "/proc/meminfo" if os.path.exists("/proc/meminfo") else None

    def read(self) -> SystemReading:
        cores = []
        for ct in psutil.cpu_times(percpu=True):
            # as psutil does: guest time is already counted in user/nice on Linux
            total = sum(ct) - getattr(ct, "guest", 0.0) - getattr(ct, "guest_nice", 0.0)
            idle = ct.idle + getattr(ct, "iowait", 0.0)
            cores.append((total - idle, total))
        with self.proc.oneshot():
            pct = self.proc.cpu_times()
            rss = self.proc.memory_info().rss
        total, available, swap_used = self._memory()
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = None
        return SystemReading(
            cores=cores,
            proc_cpu_s=pct.user + pct.system,
            proc_rss_b=rss,
            mem_used_b=total - available,
            mem_available_b=available,
            mem_total_b=total,
            swap_used_b=swap_used,
            load_1m=load,
            gpu=self.gpu.read() if self.gpu is not None else None,
        )

    def _memory(self) -> tuple[int, int, int]:
        """(total, available, swap used) bytes. /proc/meminfo read once (psutil's
        virtual_memory + swap_memory read it twice plus /proc/vmstat: 3x the cost)."""
        if self._meminfo is not None:
            try:
                with open(self._meminfo, "rb") as f:
                    fields = {}
                    for line in f:
                        k, _, v = line.partition(b":")
                        if k in (b"MemTotal", b"MemAvailable", b"SwapTotal", b"SwapFree"):
                            fields[k] = int(v.split()[0]) * 1024
                return (fields[b"MemTotal"], fields[b"MemAvailable"], fields[b"SwapTotal"] - fields[b"SwapFree"])
            except (OSError, KeyError, ValueError, IndexError):
                self._meminfo = None
        vm = psutil.virtual_memory()
        return vm.total, vm.available, psutil.swap_memory().used

    def children_cpu_s(self) -> float:
        """CPU time of finished child processes (the sampler's commands)."""
        t = self.proc.cpu_times()
        return t.children_user + t.children_system


def cpu_pct_between(a: SystemReading, b: SystemReading) -> tuple[list[float | None], float | None]:
    """Per-core and whole-machine CPU busy % from two readings."""
    per = []
    busy_sum = total_sum = 0.0
    for (b0, t0), (b1, t1) in zip(a.cores, b.cores):
        dt = t1 - t0
        per.append(round(100.0 * (b1 - b0) / dt, 2) if dt > 0 else None)
        busy_sum += b1 - b0
        total_sum += dt
    return per, (round(100.0 * busy_sum / total_sum, 2) if total_sum > 0 else None)


def peak_rss_mb() -> float:
    """The process's lifetime peak resident memory (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 2)


def summarize_system(series: Sequence[tuple[int, SystemReading | None]], t0: int, t1: int) -> dict[str, Any]:
    readings = [(t, r) for t, r in series if r is not None]
    if len(readings) < 2:
        return {"note": "fewer than two system readings in the window"}
    (ta, a), (tb, b) = readings[0], readings[-1]
    wall = (tb - ta) / 1e9
    per, total = cpu_pct_between(a, b)
    rs = [r for _, r in readings]
    loads = [r.load_1m for r in rs if r.load_1m is not None]
    return {
        "cpu_pct": total,
        "cpu_pct_per_core": per,
        "agent_cpu_pct": round(100.0 * (b.proc_cpu_s - a.proc_cpu_s) / wall, 2) if wall > 0 else None,
        "agent_rss_max_mb": round(max(r.proc_rss_b for r in rs) / MB, 2),
        "agent_rss_peak_mb": peak_rss_mb(),
        "mem_total_mb": round(a.mem_total_b / MB, 1),
        "mem_used_max_mb": round(max(r.mem_used_b for r in rs) / MB, 1),
        "mem_available_min_mb": round(min(r.mem_available_b for r in rs) / MB, 1),
        "swap_used_max_mb": round(max(r.swap_used_b for r in rs) / MB, 1),
        "load_1m_start": loads[0] if loads else None,
        "load_1m_end": loads[-1] if loads else None,
        **summarize_gpu([r.gpu for r in rs]),
        "span_s": round(wall, 6),
        "samples": len(readings),
    }
