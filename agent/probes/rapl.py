"""Intel RAPL: the ``energy_uj`` counters of the powercap zones (with wraparound through
``max_energy_range_uj``), CPU package only unless a ``psys`` zone exists.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from edgebench.agent.probes._fs import (
    ProbeError,
    SysFS,
    describe_oserror,
)
from edgebench.agent.probes.power import (
    FLAG_CPU_PACKAGE_ONLY,
    METHOD_COUNTER,
    CounterUnwrapper,
    PowerReading,
    PowerSource,
    Unavailable,
)


@dataclass
class RaplZone:
    zone: str  # intel-rapl:0 / intel-rapl:0:2
    name: str  # package-0 / dram / psys
    energy: str  # rel path of energy_uj
    unwrap: CounterUnwrapper


def find_rapl(fs: SysFS) -> list[RaplZone]:
    seen, zones = set(), []
    pats = (
        "sys/class/powercap/intel-rapl:*",
        "sys/class/powercap/intel-rapl/intel-rapl:*",
        "sys/class/powercap/intel-rapl/intel-rapl:*/intel-rapl:*",
        "sys/class/powercap/intel-rapl:*/intel-rapl:*",
    )
    for pat in pats:
        for d in fs.glob(pat):
            real = fs.realpath(d)
            if real in seen or not fs.exists(f"{d}/energy_uj"):
                continue
            seen.add(real)
            zone = os.path.basename(d)
            name = fs.try_read(f"{d}/name") or zone
            max_range = fs.try_int(f"{d}/max_energy_range_uj")
            zones.append(RaplZone(zone, name, f"{d}/energy_uj", CounterUnwrapper(max_range, f"{d}/energy_uj")))
    zones.sort(key=lambda z: [int(x) for x in z.zone.split(":")[1:]])
    return zones


class Rapl(PowerSource):
    name = "rapl"
    method = METHOD_COUNTER

    def __init__(self, fs: SysFS, zones: list[RaplZone]):
        self.fs = fs
        self.zones = zones
        top = [z for z in zones if z.zone.count(":") == 1]
        psys = [z for z in top if z.name == "psys"]
        if psys:
            self.total_zones = psys
            self.flags = ()
            self.scope = "whole platform via Intel RAPL psys energy counter"
        else:
            self.total_zones = [z for z in top if z.name.startswith("package")] or top
            self.flags = (FLAG_CPU_PACKAGE_ONLY,)
            self.scope = (
                f"CPU package(s) via Intel RAPL energy counters ({', '.join(z.name for z in self.total_zones)}); "
                "excludes DRAM and the rest of the board"
            )
        names: dict[str, str] = {}
        parents = {z.zone: z.name for z in top}
        for z in zones:
            label = z.name
            if z.zone.count(":") == 2 and len(top) > 1:
                label = f"{parents.get(z.zone.rsplit(':', 1)[0], '?')}/{z.name}"
            names[z.zone] = label
        self.labels = names
        self.rails = [names[z.zone] for z in zones]
        self.total_rail = self.total_zones[0].name if len(self.total_zones) == 1 else None

    def read(self) -> PowerReading:
        t = time.perf_counter_ns()
        rails_j: dict[str, float | None] = {}
        problems = []
        for z in self.zones:
            try:
                rails_j[self.labels[z.zone]] = z.unwrap.update(self.fs.read_int(z.energy), t) / 1e6
            except (OSError, ValueError, ProbeError) as e:
                rails_j[self.labels[z.zone]] = None
                problems.append(f"{z.energy}: {describe_oserror(e) if isinstance(e, OSError) else e}")
        totals = [rails_j[self.labels[z.zone]] for z in self.total_zones]
        if any(v is None for v in totals):
            raise ProbeError(f"RAPL reading failed ({'; '.join(problems)})")
        return PowerReading(energy_j=sum(totals), rails_j=rails_j)  # type: ignore[arg-type]


def rapl(fs: SysFS) -> Rapl:
    zones = find_rapl(fs)
    if not zones:
        raise Unavailable("no Intel RAPL energy counters")
    src = Rapl(fs, zones)
    try:
        for z in src.total_zones:
            fs.read_int(z.energy)
    except PermissionError:
        raise Unavailable(
            f"Intel RAPL energy counters (/{src.total_zones[0].energy}) are readable by root only (Linux >= 5.10): "
            "run as root or grant read access (udev rule or sysfs.conf mode 0444)",
            present=True,
        ) from None
    except (OSError, ValueError) as e:
        raise Unavailable(f"Intel RAPL energy counter unreadable: {e}", present=True) from None
    return src
