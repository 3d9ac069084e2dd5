"""Telemetry snapshots for the ``telemetry`` topic.

Utilisation comes from psutil (CPU %, memory, load, temperatures when psutil
sees sensors). The board probes (power, SoC temperatures, CPU frequency,
throttling: agent/probes) plug in at ONE place, ``probe_snapshot()`` below; their
fields are merged into the message and win over psutil's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from typing import Any

log = logging.getLogger("edgebench.telemetry")


def probe_snapshot(power: str = "auto") -> dict[str, Any] | None:
    """The plug-in point for agent/probes: ``edgebench.agent.probes.session.telemetry_snapshot()``
    when that module exists (power, temperatures, CPU frequency and utilisation,
    throttling; fields named with their unit: ``_w``, ``_c``, ``_pct``, ``_mhz``...)."""
    if (
        importlib.util.find_spec("edgebench.agent.probes") is None
        or importlib.util.find_spec("edgebench.agent.probes.session") is None
    ):
        return None
    from edgebench.agent.probes.session import telemetry_snapshot

    return telemetry_snapshot(power=power)


class Telemetry:
    """Snapshots of this machine; CPU % is measured between two snapshots."""

    def __init__(self, power: str = "auto") -> None:
        import psutil

        self.power = power

        self._psutil = psutil
        psutil.cpu_percent(interval=None)  # primes the CPU counter
        self.errors = 0

    def snapshot(self) -> dict[str, Any]:
        ps = self._psutil
        out: dict[str, Any] = {"cpu_pct": ps.cpu_percent(interval=None)}
        vm = ps.virtual_memory()
        out["mem_used_pct"] = vm.percent
        out["mem_available_mb"] = round(vm.available / (1024 * 1024), 1)
        try:
            out["load_1m"], out["load_5m"], out["load_15m"] = (round(x, 2) for x in os.getloadavg())
        except OSError:
            pass
        out["uptime_s"] = round(time.time() - ps.boot_time(), 1)
        temps = {}
        sensors = getattr(ps, "sensors_temperatures", None)
        if sensors is not None:
            try:
                for chip, entries in (sensors() or {}).items():
                    for i, e in enumerate(entries):
                        if e.current is not None:
                            temps[f"{chip}/{e.label or i}"] = round(float(e.current), 1)
            except (OSError, RuntimeError) as e:
                log.debug("no temperatures from psutil: %s", e)
        if temps:
            out["temps_c"] = temps
        try:
            probes = probe_snapshot(self.power)
        except Exception:  # a probe fault must not stop telemetry
            self.errors += 1
            log.exception("edgebench.agent.probes telemetry_snapshot() failed")
            probes = None
        if probes:  # the board probes know more (power, throttling, per-core CPU): theirs win
            out.update({k: v for k, v in probes.items() if k != "ts"})
        return out
