"""Temperatures, clocks and throttling.

* Thermal zones by ``type`` (never by zone number), with their passive/hot/critical
  trip points; the Jetson/Nano ``PMIC-Die`` zone is skipped (a fixed 100 °C placeholder).
* hwmon temperatures (``temp*_input``), named ``<hwmon name>`` or ``<name>/<label>``,
  except hwmon twins of a thermal zone (the Pi's ``cpu_thermal`` = zone ``cpu-thermal``).
* Edge TPU (PCIe/M.2) ``/sys/class/apex/apex_N/temp``.
* Per-core cpufreq: ``scaling_cur_freq`` and the ``scaling_max_freq`` cap (kHz).
* Raspberry Pi ``get_throttled`` (sysfs: hex without ``0x``; vcgencmd: ``throttled=0x50005``),
  decoded with the official bit table; the ``rpi_volt`` under-voltage alarm.
* Jetson ``soctherm_oc`` over-current/under-voltage event counters (cumulative since boot).
* cpufreq/devfreq cooling devices (``cur_state`` > 0 means the thermal framework caps a clock).

A zone that cannot be read is None for that sample (a gap), never a number.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from edgebench.agent.probes._fs import ProbeError, Runner, SysFS, run_text

#: get_throttled bits, official table: bit n is "now", bit n+16 "has occurred since boot".
THROTTLED_BITS = {0: "under_voltage", 1: "arm_freq_capped", 2: "throttled", 3: "soft_temp_limit"}
SINCE_BOOT_SHIFT = 16

OC_NAMES = {1: "oc1_under_voltage", 2: "oc2_average_over_current", 3: "oc3_instantaneous_over_current"}

#: Every throttling flag a result can carry.
THROTTLE_FLAGS = (
    "under_voltage",
    "arm_freq_capped",
    "throttled",
    "soft_temp_limit",
    *OC_NAMES.values(),
    "cpu_freq_capped",
    "cpu_freq_drop",
    "cooling_device_active",
    "thermal_trip",
)

#: A core on the performance governor whose clock falls below this share of its start clock has dropped.
CLOCK_DROP_RATIO = 0.9


def decode_throttled(value: int) -> dict[str, Any]:
    """``0x50005`` -> now: under_voltage, throttled; since boot: under_voltage, throttled."""
    known = 0
    now, since = [], []
    for bit, name in THROTTLED_BITS.items():
        known |= (1 << bit) | (1 << (bit + SINCE_BOOT_SHIFT))
        if value & (1 << bit):
            now.append(name)
        if value & (1 << (bit + SINCE_BOOT_SHIFT)):
            since.append(name)
    out: dict[str, Any] = {"raw_hex": f"0x{value:x}", "now": now, "since_boot": since}
    if value & ~known:
        out["unknown_bits_hex"] = f"0x{value & ~known:x}"
    return out


def parse_get_throttled(text: str) -> int:
    """Both forms: vcgencmd ``throttled=0x50005`` and sysfs ``50005`` (hex, no ``0x``)."""
    t = text.strip()
    from edgebench.agent.probes.rpi import vcgencmd_problem

    problem = vcgencmd_problem(t, "get_throttled")
    if problem:
        raise ProbeError(problem)
    m = re.fullmatch(r"(?:throttled=)?(?:0x)?([0-9a-fA-F]+)", t)
    if not m:
        raise ProbeError(f"cannot read get_throttled output {t[:60]!r}")
    return int(m.group(1), 16)


@dataclass
class Zone:
    name: str
    temp: str  # file, millidegrees C
    kind: str  # thermal_zone, hwmon, apex
    trips_c: dict[str, float] = field(default_factory=dict)


@dataclass
class CpuClock:
    cpu: int
    cur: str
    max: str
    governor: str | None
    hw_max_khz: int | None


@dataclass
class ThermalReading:
    temps_c: dict[str, float | None] = field(default_factory=dict)
    cpu_khz: dict[int, int | None] = field(default_factory=dict)
    cpu_max_khz: dict[int, int | None] = field(default_factory=dict)
    rpi_throttled: int | None = None
    rpi_uv_alarm: int | None = None
    oc_counts: dict[int, int | None] = field(default_factory=dict)
    cooling: dict[str, int | None] = field(default_factory=dict)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def _millic(fs: SysFS, path: str) -> float | None:
    v = fs.try_int(path)
    if v is None or v <= -200_000:  # -256 °C is the "offline" sentinel
        return None
    return v / 1000.0


def _thermal_zone_dirs(fs: SysFS) -> list[tuple[str, str, str]]:
    """(folder, type, index) of every thermal zone, each real zone once."""
    seen: set[str] = set()
    raw: list[tuple[str, str, str]] = []
    for pat in ("sys/class/thermal/thermal_zone*", "sys/devices/virtual/thermal/thermal_zone*"):
        for d in fs.glob(pat):
            real = fs.realpath(d)
            if real not in seen:
                seen.add(real)
                typ = fs.try_read(f"{d}/type") or os.path.basename(d)
                raw.append((d, typ, os.path.basename(d).replace("thermal_zone", "")))
    return raw


def _zone_trips(fs: SysFS, d: str) -> dict[str, float]:
    trips: dict[str, float] = {}
    for tt in fs.glob(f"{d}/trip_point_*_type"):
        kind = fs.try_read(tt)
        temp = _millic(fs, tt[: -len("_type")] + "_temp")
        if kind in ("passive", "hot", "critical") and temp is not None and temp > 0:
            trips[kind] = min(trips.get(kind, temp), temp)
    return trips


def _thermal_zones(fs: SysFS, raw: list[tuple[str, str, str]], skipped: list[str]) -> list[Zone]:
    counts: dict[str, int] = {}
    for _, typ, _ in raw:
        counts[typ] = counts.get(typ, 0) + 1
    zones = []
    for d, typ, idx in raw:
        if "PMIC" in typ:
            skipped.append(f"{typ} (fixed placeholder temperature)")
            continue
        name = typ if counts[typ] == 1 else f"{typ}#{idx}"
        zones.append(Zone(name, f"{d}/temp", "thermal_zone", _zone_trips(fs, d)))
    return zones


def _hwmon_zones(fs: SysFS, zone_types: set[str], skipped: list[str]) -> list[Zone]:
    """hwmon temperature inputs, except sensors a thermal zone already reports."""
    zones = []
    for hw in fs.glob("sys/class/hwmon/hwmon*"):
        hname = fs.try_read(f"{hw}/name") or os.path.basename(hw)
        inputs = fs.glob(f"{hw}/temp*_input")
        if not inputs:
            continue
        if _norm(hname) in zone_types:
            skipped.append(f"hwmon {hname} (same sensor as thermal zone)")
            continue
        for p in inputs:
            n = re.fullmatch(r"temp(\d+)_input", os.path.basename(p))
            if not n:
                continue
            label = fs.try_read(f"{hw}/temp{n.group(1)}_label")
            name = hname if len(inputs) == 1 and not label else f"{hname}/{label or 'temp' + n.group(1)}"
            trips = {}
            for suffix, kind in (("max", "hot"), ("crit", "critical")):
                t = _millic(fs, f"{hw}/temp{n.group(1)}_{suffix}")
                if t is not None and t > 0:
                    trips[kind] = t
            zones.append(Zone(name, p, "hwmon", trips))
    return zones


def _apex_zones(fs: SysFS) -> list[Zone]:
    """Coral PCIe/M.2 Edge TPUs (the apex driver)."""
    zones = []
    for d in fs.glob("sys/class/apex/apex_*"):
        if fs.exists(f"{d}/temp"):
            trips = {}
            t0 = _millic(fs, f"{d}/trip_point0_temp")
            if t0 is not None:
                trips["passive"] = t0  # first dynamic frequency scaling step
            zones.append(Zone(os.path.basename(d), f"{d}/temp", "apex", trips))
    return zones


def find_zones(fs: SysFS) -> tuple[list[Zone], list[str]]:
    """Every temperature sensor worth watching (thermal zones, hwmon, Edge TPU), and what
    was skipped and why."""
    skipped: list[str] = []
    raw = _thermal_zone_dirs(fs)
    zones = _thermal_zones(fs, raw, skipped)
    zones += _hwmon_zones(fs, {_norm(t) for _, t, _ in raw}, skipped)
    zones += _apex_zones(fs)
    return zones, skipped


def find_cpus(fs: SysFS) -> list[CpuClock]:
    out = []
    for d in fs.glob("sys/devices/system/cpu/cpu[0-9]*"):
        m = re.fullmatch(r"cpu(\d+)", os.path.basename(d))
        if not m or not fs.exists(f"{d}/cpufreq/scaling_cur_freq"):
            continue
        out.append(
            CpuClock(
                int(m.group(1)),
                f"{d}/cpufreq/scaling_cur_freq",
                f"{d}/cpufreq/scaling_max_freq",
                fs.try_read(f"{d}/cpufreq/scaling_governor"),
                fs.try_int(f"{d}/cpufreq/cpuinfo_max_freq"),
            )
        )
    return out


def _hwmon_by_name(fs: SysFS, name: str) -> str | None:
    for hw in fs.glob("sys/class/hwmon/hwmon*"):
        if fs.try_read(f"{hw}/name") == name:
            return hw
    return None


class ThermalProbe:
    def __init__(self, fs: SysFS, runner: Runner | None = None):
        self.fs = fs
        self.runner = runner
        self.zones, self.skipped = find_zones(fs)
        self.cpus = find_cpus(fs)
        self.throttled_path: str | None = None
        self.throttled_cmd = False
        for pat in (
            "sys/devices/platform/soc/soc:firmware/get_throttled",
            "sys/devices/platform/*/get_throttled",
            "sys/devices/platform/*/*/get_throttled",
            "sys/devices/platform/*/*/*/get_throttled",
        ):
            hits = [p for p in fs.glob(pat) if fs.try_read(p) is not None]
            if hits:
                self.throttled_path = hits[0]
                break
        if self.throttled_path is None and runner is not None:
            try:
                parse_get_throttled(run_text(runner, ["vcgencmd", "get_throttled"]))
                self.throttled_cmd = True
            except ProbeError:
                pass
        hw = _hwmon_by_name(fs, "rpi_volt")
        self.uv_alarm = f"{hw}/in0_lcrit_alarm" if hw and fs.exists(f"{hw}/in0_lcrit_alarm") else None
        hw = _hwmon_by_name(fs, "soctherm_oc")
        self.oc_files: dict[int, str] = {}
        if hw:
            for p in fs.glob(f"{hw}/oc*_event_cnt"):
                m = re.fullmatch(r"oc(\d+)_event_cnt", os.path.basename(p))
                if m:
                    self.oc_files[int(m.group(1))] = p
        self.cooling: dict[str, tuple[str, int | None]] = {}
        for d in fs.glob("sys/class/thermal/cooling_device*"):
            typ = fs.try_read(f"{d}/type") or ""
            if "freq" in typ.lower() and fs.exists(f"{d}/cur_state"):
                self.cooling[f"{typ}#{os.path.basename(d).replace('cooling_device', '')}"] = (
                    f"{d}/cur_state",
                    fs.try_int(f"{d}/max_state"),
                )

    @property
    def has_throttle_source(self) -> bool:
        return bool(
            self.throttled_path or self.throttled_cmd or self.uv_alarm or self.oc_files or self.cooling or self.cpus
        )

    def watched(self) -> list[str]:
        out = []
        if self.throttled_path:
            out.append(f"rpi get_throttled (/{self.throttled_path})")
        elif self.throttled_cmd:
            out.append("rpi vcgencmd get_throttled")
        if self.uv_alarm:
            out.append("rpi_volt under-voltage alarm")
        if self.oc_files:
            out.append("jetson soctherm_oc event counters")
        if self.cpus:
            out.append(f"cpufreq on {len(self.cpus)} cores")
        if self.cooling:
            out.append(f"{len(self.cooling)} clock cooling device(s)")
        if any(z.trips_c for z in self.zones):
            out.append("thermal trip points")
        return out

    def read_throttled(self) -> int | None:
        try:
            if self.throttled_path:
                return parse_get_throttled(self.fs.read(self.throttled_path))
            if self.throttled_cmd and self.runner is not None:
                return parse_get_throttled(run_text(self.runner, ["vcgencmd", "get_throttled"]))
        except (OSError, ProbeError):
            return None
        return None

    def read(self) -> ThermalReading:
        fs = self.fs
        r = ThermalReading()
        for z in self.zones:
            r.temps_c[z.name] = _millic(fs, z.temp)
        for c in self.cpus:
            r.cpu_khz[c.cpu] = fs.try_int(c.cur)
            r.cpu_max_khz[c.cpu] = fs.try_int(c.max)
        r.rpi_throttled = self.read_throttled()
        if self.uv_alarm:
            r.rpi_uv_alarm = fs.try_int(self.uv_alarm)
        for n, p in self.oc_files.items():
            r.oc_counts[n] = fs.try_int(p)
        for name, (p, _) in self.cooling.items():
            r.cooling[name] = fs.try_int(p)
        return r

    def max_temp_c(self, reading: ThermalReading | None = None) -> tuple[str | None, float | None]:
        r = reading or self.read()
        vals = [(v, k) for k, v in r.temps_c.items() if v is not None]
        if not vals:
            return None, None
        v, k = max(vals)
        return k, v

    def governors(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for c in self.cpus:
            out.setdefault(c.governor or "unknown", []).append(c.cpu)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "zones": {z.name: {"kind": z.kind, "path": "/" + z.temp, "trips_c": z.trips_c} for z in self.zones},
            "skipped": self.skipped,
            "cpufreq_cores": [c.cpu for c in self.cpus],
            "throttling": self.watched(),
        }


# --------------------------------------------------------------------------- summaries
Series = Sequence[tuple[int, ThermalReading | None]]


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def summarize_thermal(series: Series, probe: ThermalProbe, t0: int) -> dict[str, Any]:
    """``series``: the thermal readings from the last one at/before the window start
    to the first one at/after its end (see sampler.window_slice)."""
    zones: dict[str, Any] = {}
    hottest: tuple[float, str] | None = None
    for z in probe.zones:
        vals = [(t, r.temps_c.get(z.name) if r else None) for t, r in series]
        ok = [v for _, v in vals if v is not None]
        zones[z.name] = {
            "start_c": vals[0][1] if vals else None,
            "end_c": vals[-1][1] if vals else None,
            "min_c": min(ok) if ok else None,
            "max_c": max(ok) if ok else None,
            "gaps": sum(1 for _, v in vals if v is None),
        }
        if z.trips_c:
            zones[z.name]["trips_c"] = z.trips_c
        if ok and (hottest is None or max(ok) > hottest[0]):
            hottest = (max(ok), z.name)
    clocks: dict[str, Any] = {}
    for c in probe.cpus:
        vals = [r.cpu_khz.get(c.cpu) if r else None for _, r in series]
        ok = [v for v in vals if v is not None]
        clocks[f"cpu{c.cpu}"] = {
            "start": _r(vals[0] / 1000) if vals and vals[0] is not None else None,
            "end": _r(vals[-1] / 1000) if vals and vals[-1] is not None else None,
            "min": _r(min(ok) / 1000) if ok else None,
            "max": _r(max(ok) / 1000) if ok else None,
        }
    govs = probe.governors()
    out: dict[str, Any] = {
        "max_c": hottest[0] if hottest else None,
        "max_zone": hottest[1] if hottest else None,
        "zones": zones,
        "cpu_freq_mhz": clocks,
        "governor": (next(iter(govs)) if len(govs) == 1 else govs) if govs else None,
        "samples": len(series),
    }
    if probe.skipped:
        out["skipped"] = probe.skipped
    return out


class _ThrottleEvents:
    """The first time each throttle flag shows in a window of readings, against the
    window's first reading (counters, clock caps and clocks are compared to it)."""

    def __init__(self, probe: ThermalProbe, t0: int, readings: list[tuple[int, ThermalReading]]):
        self.probe, self.t0 = probe, t0
        self.events: dict[str, dict[str, Any]] = {}
        start = readings[0][1]
        self.base_thr = next((r.rpi_throttled for _, r in readings if r.rpi_throttled is not None), None)
        self.perf = {c.cpu for c in probe.cpus if c.governor == "performance"}
        self.start_cur, self.start_max, self.start_oc = (
            dict(start.cpu_khz),
            dict(start.cpu_max_khz),
            dict(start.oc_counts),
        )

    def flag(self, name: str, t: int, detail: str) -> None:
        if name not in self.events:
            self.events[name] = {"flag": name, "at_s": round(max(0, t - self.t0) / 1e9, 3), "detail": detail}

    def see(self, t: int, r: ThermalReading) -> None:
        self._rpi(t, r)
        self._counters_and_clocks(t, r)
        for name, state in r.cooling.items():
            if state:
                mx = self.probe.cooling.get(name, (None, None))[1]
                self.flag("cooling_device_active", t, f"{name} cur_state {state}" + (f"/{mx}" if mx else ""))
        for z in self.probe.zones:
            v = r.temps_c.get(z.name)
            trip = z.trips_c.get("passive") or z.trips_c.get("hot")
            if v is not None and trip is not None and v >= trip:
                self.flag("thermal_trip", t, f"{z.name} {v:g} °C reached its trip point {trip:g} °C")

    def _rpi(self, t: int, r: ThermalReading) -> None:
        if r.rpi_throttled is not None:
            d = decode_throttled(r.rpi_throttled)
            for name in d["now"]:
                self.flag(name, t, f"get_throttled {d['raw_hex']}: {name.replace('_', ' ')} now")
            if self.base_thr is not None:
                new = r.rpi_throttled & ~self.base_thr
                for bit, name in THROTTLED_BITS.items():
                    if new & (1 << (bit + SINCE_BOOT_SHIFT)):
                        self.flag(name, t, f"get_throttled {d['raw_hex']}: {name.replace('_', ' ')} occurred")
        if r.rpi_uv_alarm:
            self.flag("under_voltage", t, "rpi_volt in0_lcrit_alarm = 1")

    def _counters_and_clocks(self, t: int, r: ThermalReading) -> None:
        for n, cnt in r.oc_counts.items():
            s = self.start_oc.get(n)
            if cnt is not None and s is not None and cnt > s:
                self.flag(OC_NAMES.get(n, f"oc{n}_event"), t, f"soctherm oc{n}_event_cnt {s} -> {cnt}")
        for cpu, mx in r.cpu_max_khz.items():
            s = self.start_max.get(cpu)
            if mx is not None and s is not None and mx < s:
                self.flag("cpu_freq_capped", t, f"cpu{cpu} scaling_max_freq {s / 1000:g} -> {mx / 1000:g} MHz")
        for cpu, cur in r.cpu_khz.items():
            s = self.start_cur.get(cpu)
            if cpu in self.perf and cur is not None and s and cur < CLOCK_DROP_RATIO * s:
                self.flag("cpu_freq_drop", t, f"cpu{cpu} (performance governor) {s / 1000:g} -> {cur / 1000:g} MHz")

    def ordered(self) -> list[dict[str, Any]]:
        rank = lambda e: THROTTLE_FLAGS.index(e["flag"]) if e["flag"] in THROTTLE_FLAGS else 99
        return sorted(self.events.values(), key=lambda e: (e["at_s"], rank(e)))


def summarize_throttling(series: Series, probe: ThermalProbe, t0: int) -> dict[str, Any]:
    """What throttled during the window, and when (seconds from the window start)."""
    readings = [(t, r) for t, r in series if r is not None]
    out: dict[str, Any] = {"watched": probe.watched()}
    if not readings:
        out.update(throttled=False, flags=[], events=[], note="no throttling readings in the window")
        return out
    ev = _ThrottleEvents(probe, t0, readings)
    for t, r in readings:
        ev.see(t, r)
    ordered = ev.ordered()
    out.update(throttled=bool(ordered), flags=[e["flag"] for e in ordered], events=ordered)
    thr = [(t, r.rpi_throttled) for t, r in readings if r.rpi_throttled is not None]
    if thr:
        first, last = decode_throttled(thr[0][1]), decode_throttled(thr[-1][1])
        out["rpi_get_throttled"] = {
            "start_hex": first["raw_hex"],
            "end_hex": last["raw_hex"],
            "since_boot_at_start": first["since_boot"],
            "since_boot_at_end": last["since_boot"],
        }
    if probe.oc_files:
        end, start_oc = readings[-1][1], ev.start_oc
        out["oc_event_delta"] = {
            f"oc{n}": (end.oc_counts.get(n) - start_oc[n])  # type: ignore[operator]
            if end.oc_counts.get(n) is not None and start_oc.get(n) is not None
            else None
            for n in sorted(probe.oc_files)
        }
    return out
