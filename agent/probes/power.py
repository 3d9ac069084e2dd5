"""Power sources: where the watts come from on each board family.

Every source answers ``read() -> PowerReading`` (raising on a failed reading,
which the sampler records as a gap, never a zero) and says what it covers:

* ``jetson-ina3221``: the Jetson module's INA3221 monitors, in the JetPack 4
  ``ina3221x`` IIO layout (mW given) or the JetPack 5+ ``ina3221`` hwmon layout
  (mV x mA), found by label, never by hwmon number; ``NC`` and the "sum of
  shunt voltages" channel are skipped. The total is the input rail (``VDD_IN``,
  ``POM_5V_IN``) when the module has one, else the sum of the module rails,
  flagged ``module_rails_sum`` (AGX Xavier/Orin: excludes the carrier board).
* ``tegrastats`` (see tegrastats.py): the fallback on Jetson when the sysfs
  files cannot be read.
* ``rpi-pmic``: Raspberry Pi 5 ``vcgencmd pmic_read_adc``: sum of V x I over
  the PMIC rails, flagged ``pmic_output_side`` (excludes PMIC losses and USB
  peripherals, reads low against a meter at the supply). A Pi 4 has none.
* ``rapl``: Intel RAPL ``energy_uj`` counters (with wraparound through
  ``max_energy_range_uj``), CPU package only unless a ``psys`` zone exists.
* ``hwmon:<name>``: any hwmon power (uW) or energy (uJ) sensor (ina219, powerz ...).
* ``cmd:COMMAND`` / ``serial:DEVICE`` (see meters.py): an external meter.

``discover_power(spec)`` picks one; ``auto`` tries them in that order and, when
none works, says plainly why.
"""

from __future__ import annotations

import abc
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.probes._fs import ProbeError, Runner, SysFS, as_fs, default_runner, describe_oserror, run_text

#: Flags a power figure can carry (also listed in the result's ``power.flags``).
FLAG_MODULE_RAILS_SUM = "module_rails_sum"
FLAG_PMIC_OUTPUT_SIDE = "pmic_output_side"
FLAG_CHANNELS_SUM = "channels_sum"
FLAG_CPU_PACKAGE_ONLY = "cpu_package_only"

#: Rails that carry the whole module's input on Jetson.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")

#: hwmon drivers that measure one GPU, never the board: not picked by ``auto``.
GPU_HWMON = {"amdgpu", "radeon", "nouveau", "i915", "xe"}
#: hwmon devices handled by a dedicated probe.
OWN_HWMON = {"ina3221", "soctherm_oc"}

POWER_SPECS = "auto, none, jetson, tegrastats, rpi-pmic, rapl, hwmon[:NAME], cmd:COMMAND, serial:DEVICE[:MODEL]"

METHOD_TRAPEZOID = "trapezoid"
METHOD_COUNTER = "energy-counter"


class Unavailable(ProbeError):
    """This source cannot be used here. ``present`` is True when the hardware is
    there but unusable (permissions, firmware), which is worth telling the user."""

    def __init__(self, message: str, present: bool = False):
        super().__init__(message)
        self.present = present


@dataclass
class PowerReading:
    #: whole-source power now (W); for energy counters, None (power comes from the counter)
    total_w: float | None = None
    #: per rail (W); None for a rail whose reading failed
    rails_w: dict[str, float | None] = field(default_factory=dict)
    #: cumulative energy (J) for counter sources, unwrapped
    energy_j: float | None = None
    rails_j: dict[str, float | None] = field(default_factory=dict)
    #: when the reading was taken (perf_counter_ns) if not at the sampler's tick (tegrastats)
    t_ns: int | None = None


class PowerSource(abc.ABC):
    name = "power"
    method = METHOD_TRAPEZOID
    scope = ""
    total_rail: str | None = None
    flags: tuple[str, ...] = ()
    rails: list[str] = []

    @abc.abstractmethod
    def read(self) -> PowerReading:
        """One reading; raise ProbeError/OSError/ValueError when it fails."""

    def close(self) -> None:
        """Release what the source holds (processes, ports)."""

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "method": self.method,
            "scope": self.scope,
            "total_rail": self.total_rail,
            "flags": list(self.flags),
            "rails": list(self.rails),
        }


# --------------------------------------------------------------------------- Jetson INA3221
@dataclass
class InaChannel:
    rail: str
    chip: str
    layout: str  # "hwmon" (JetPack 5+) or "iio" (JetPack 4)
    volt: str  # bus voltage file, mV
    curr: str  # current file, mA
    power: str | None = None  # power file, mW (iio only)
    warn_ma: int | None = None
    crit_ma: int | None = None

    def watts(self, fs: SysFS) -> float:
        if self.power is not None:
            return fs.read_int(self.power) / 1000.0
        return fs.read_int(self.volt) * fs.read_int(self.curr) / 1e6


def _ina_devices(fs: SysFS) -> list[str]:
    seen, out = set(), []
    pats = ("sys/bus/i2c/devices/*", "sys/bus/i2c/drivers/ina3221/*", "sys/bus/i2c/drivers/ina3221x/*")
    for pat in pats:
        for d in fs.glob(pat):
            name = fs.try_read(f"{d}/name")
            if not name or "ina3221" not in name or not fs.isdir(d):
                continue
            real = fs.realpath(d)
            if real not in seen:
                seen.add(real)
                out.append(d)
    return out


def _hwmon_channels(fs: SysFS, hw: str, chip: str) -> list[InaChannel]:
    out = []
    for lab in fs.glob(f"{hw}/in*_label"):
        m = re.fullmatch(r"in(\d+)_label", os.path.basename(lab))
        if not m or int(m.group(1)) not in (1, 2, 3):  # in7 is "sum of shunt voltages"
            continue
        n = int(m.group(1))
        label = fs.try_read(lab)
        if not label or label.strip().upper() == "NC" or label.startswith("sum of"):
            continue
        if fs.try_int(f"{hw}/in{n}_enable") == 0:
            continue
        out.append(
            InaChannel(
                rail=label.strip(), chip=chip, layout="hwmon",
                volt=f"{hw}/in{n}_input", curr=f"{hw}/curr{n}_input",
                warn_ma=fs.try_int(f"{hw}/curr{n}_max"), crit_ma=fs.try_int(f"{hw}/curr{n}_crit"),
            )
        )
    return out


def _iio_channels(fs: SysFS, iio: str, chip: str) -> list[InaChannel]:
    out = []
    for rn in fs.glob(f"{iio}/rail_name_*"):
        m = re.fullmatch(r"rail_name_(\d+)", os.path.basename(rn))
        label = fs.try_read(rn)
        if not m or not label or label.strip().upper() == "NC":
            continue
        c = int(m.group(1))
        power = f"{iio}/in_power{c}_input"
        out.append(
            InaChannel(
                rail=label.strip(), chip=chip, layout="iio",
                volt=f"{iio}/in_voltage{c}_input", curr=f"{iio}/in_current{c}_input",
                power=power if fs.exists(power) else None,
                warn_ma=fs.try_int(f"{iio}/warn_current_limit_{c}"),
                crit_ma=fs.try_int(f"{iio}/crit_current_limit_{c}"),
            )
        )
    return out


def find_ina3221(fs: SysFS) -> list[InaChannel]:
    """Every labelled, enabled INA3221 channel, both layouts, without duplicates."""
    channels: list[InaChannel] = []
    seen_dirs: set[str] = set()

    def add(chs: list[InaChannel], d: str) -> None:
        real = fs.realpath(d)
        if real in seen_dirs:
            return
        seen_dirs.add(real)
        channels.extend(chs)

    for dev in _ina_devices(fs):
        chip = os.path.basename(dev)
        for hw in fs.glob(f"{dev}/hwmon/hwmon*"):
            add(_hwmon_channels(fs, hw, chip), hw)
        for iio in fs.glob(f"{dev}/iio:device*") + fs.glob(f"{dev}/iio_device*"):
            add(_iio_channels(fs, iio, chip), iio)
    for hw in fs.glob("sys/class/hwmon/hwmon*"):
        if fs.try_read(f"{hw}/name") == "ina3221":
            add(_hwmon_channels(fs, hw, os.path.basename(hw)), hw)
    names: dict[str, int] = {}
    for ch in channels:
        names[ch.rail] = names.get(ch.rail, 0) + 1
    for ch in channels:
        if names[ch.rail] > 1:
            ch.rail = f"{ch.rail}@{ch.chip}"
    return channels


class JetsonIna3221(PowerSource):
    name = "jetson-ina3221"

    def __init__(self, fs: SysFS, channels: list[InaChannel]):
        self.fs = fs
        self.channels = channels
        self.rails = [c.rail for c in channels]
        self.layout = channels[0].layout
        total = next((r for r in INPUT_RAILS if r in self.rails), None)
        self.total_rail = total
        kind = "JetPack 4 ina3221x IIO" if self.layout == "iio" else "ina3221 hwmon"
        if total:
            self.flags = ()
            self.scope = f"Jetson module input rail {total} ({kind})"
        else:
            self.flags = (FLAG_MODULE_RAILS_SUM,)
            self.scope = (
                f"sum of the Jetson module rails {', '.join(self.rails)} ({kind}); this module has no input "
                "rail, so the carrier board and conversion losses are not included"
            )

    def read(self) -> PowerReading:
        rails: dict[str, float | None] = {}
        errors = []
        for ch in self.channels:
            try:
                rails[ch.rail] = ch.watts(self.fs)
            except (OSError, ValueError) as e:
                rails[ch.rail] = None
                errors.append(f"{ch.rail}: {describe_oserror(e) if isinstance(e, OSError) else e}")
        if self.total_rail is not None:
            total = rails[self.total_rail]
        else:
            total = None if any(v is None for v in rails.values()) else sum(rails.values())  # type: ignore[arg-type]
        if total is None:
            raise ProbeError(f"INA3221 reading failed ({'; '.join(errors)})")
        return PowerReading(total_w=total, rails_w=rails)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["layout"] = self.layout
        d["limits_ma"] = {
            c.rail: {"warn": c.warn_ma, "crit": c.crit_ma} for c in self.channels if c.warn_ma or c.crit_ma
        }
        return d


def jetson_ina3221(fs: SysFS) -> JetsonIna3221:
    channels = find_ina3221(fs)
    if not channels:
        raise Unavailable("no Jetson INA3221 power monitor found")
    src = JetsonIna3221(fs, channels)
    try:
        src.read()
    except ProbeError as e:
        where = os.path.dirname(channels[0].volt)
        raise Unavailable(
            f"Jetson INA3221 rails in /{where} cannot be read ({e}): run as root or make them readable; "
            "--power tegrastats is the fallback",
            present=True,
        ) from None
    return src


# --------------------------------------------------------------------------- Raspberry Pi 5 PMIC
PMIC_RE = re.compile(r"^\s*(?P<rail>\S+?)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-\d.]+)[AV]\s*$")


def vcgencmd_problem(text: str, command: str) -> str | None:
    """A one-line reason when vcgencmd answered with one of its in-band errors."""
    t = text.strip()
    if "VCHI initialization failed" in t:
        return (
            "vcgencmd cannot reach the firmware (VCHI initialization failed): add this user to the "
            "video group (sudo usermod -aG video $USER) and log in again"
        )
    if "ioctl_set_msg failed" in t:
        return f"vcgencmd {command} failed ({t.splitlines()[0]}): the firmware mailbox refused the call"
    m = re.search(r'error=\d+\s+error_msg="([^"]*)"', t)
    if m:
        return f"vcgencmd {command}: {m.group(1)}"
    return None


def parse_pmic_read_adc(text: str) -> dict[str, dict[str, float]]:
    """``vcgencmd pmic_read_adc`` -> ``{rail: {"a": amps, "v": volts}}`` (one or both)."""
    problem = vcgencmd_problem(text, "pmic_read_adc")
    if problem:
        raise ProbeError(problem)
    rails: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = PMIC_RE.match(line)
        if m:
            rails.setdefault(m.group("rail"), {})[m.group("kind").lower()] = float(m.group("value"))
    if not rails:
        first = text.strip().splitlines()[0] if text.strip() else "nothing"
        raise ProbeError(f"vcgencmd pmic_read_adc printed no rail readings ({first[:80]!r})")
    return rails


def pmic_rails_w(parsed: dict[str, dict[str, float]]) -> dict[str, float]:
    """Power per rail (V x I) for every rail with both a current and a voltage."""
    return {r: d["v"] * d["a"] for r, d in parsed.items() if "a" in d and "v" in d}


class RpiPmic(PowerSource):
    name = "rpi-pmic"
    flags = (FLAG_PMIC_OUTPUT_SIDE,)

    def __init__(self, runner: Runner, parsed: dict[str, dict[str, float]]):
        self.runner = runner
        self.rails = sorted(pmic_rails_w(parsed))
        self.scope = (
            f"Raspberry Pi 5 PMIC output side: sum of V x I over its {len(self.rails)} rails; excludes PMIC "
            "conversion losses and 5 V USB/peripheral current, so it reads low against a meter at the supply"
        )
        self.total_rail = None
        self.ext5v_v = parsed.get("EXT5V", {}).get("v")

    def read(self) -> PowerReading:
        parsed = parse_pmic_read_adc(run_text(self.runner, ["vcgencmd", "pmic_read_adc"]))
        rails = pmic_rails_w(parsed)
        self.ext5v_v = parsed.get("EXT5V", {}).get("v")
        return PowerReading(total_w=sum(rails.values()), rails_w=rails)


def rpi_pmic(fs: SysFS, runner: Runner) -> RpiPmic:
    try:
        text = run_text(runner, ["vcgencmd", "pmic_read_adc"])
    except ProbeError as e:
        raise Unavailable(f"no Raspberry Pi PMIC reading: {e}") from None
    problem = vcgencmd_problem(text, "pmic_read_adc")
    if problem and "Command not registered" in problem:
        raise Unavailable(
            "this Raspberry Pi has no PMIC power reading (vcgencmd pmic_read_adc: Command not registered; "
            "only the Pi 5 has one): measure with an external meter (--power cmd:COMMAND or serial:DEVICE)",
            present=True,
        )
    try:
        parsed = parse_pmic_read_adc(text)
    except ProbeError as e:
        raise Unavailable(str(e), present=True) from None
    if not pmic_rails_w(parsed):
        raise Unavailable("vcgencmd pmic_read_adc printed no rail with both current and voltage", present=True)
    return RpiPmic(runner, parsed)


# --------------------------------------------------------------------------- energy counters
class CounterUnwrapper:
    """Turns a wrapping cumulative counter into a monotonic one.

    With a known range (RAPL ``max_energy_range_uj``) a decrease is one wrap:
    ``delta = new + max_range - old``. With an unknown range a decrease cannot be
    sized: that reading is refused (a gap) and the counter continues from its
    last value plus the last known rate times the elapsed time, so the gap is
    bridged like any other gap in the trace.
    """

    def __init__(self, max_range: int | None, what: str):
        self.max_range = max_range
        self.what = what
        self.prev_raw: int | None = None
        self.prev_t: int | None = None
        self.offset = 0
        self.rate: float | None = None  # units per ns over the last good interval

    def update(self, raw: int, t_ns: int | None = None) -> int:
        t_ns = time.perf_counter_ns() if t_ns is None else t_ns
        prev, prev_t = self.prev_raw, self.prev_t
        self.prev_raw, self.prev_t = raw, t_ns
        if prev is not None and raw < prev:
            if self.max_range:
                self.offset += self.max_range
            else:
                bridge = self.rate * (t_ns - prev_t) if self.rate is not None and prev_t is not None else 0.0
                self.offset += prev - raw + int(bridge)
                raise ProbeError(f"{self.what} went backwards ({prev} -> {raw}) and its range is unknown")
        if prev is not None and prev_t is not None and t_ns > prev_t:
            delta = raw - prev if raw >= prev else raw + (self.max_range or 0) - prev
            self.rate = delta / (t_ns - prev_t)
        return raw + self.offset


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


# --------------------------------------------------------------------------- generic hwmon
@dataclass
class HwmonChannel:
    label: str
    path: str
    kind: str  # "power" (uW) or "energy" (uJ)
    unwrap: CounterUnwrapper | None = None


class HwmonPower(PowerSource):
    def __init__(self, fs: SysFS, device: str, hwmon: str, channels: list[HwmonChannel]):
        self.fs = fs
        self.device = device
        self.channels = channels
        self.name = f"hwmon:{device}"
        self.method = METHOD_COUNTER if channels[0].kind == "energy" else METHOD_TRAPEZOID
        self.rails = [c.label for c in channels]
        unit = "energy counter (uJ)" if self.method == METHOD_COUNTER else "power sensor (uW)"
        if len(channels) > 1:
            self.flags = (FLAG_CHANNELS_SUM,)
            self.scope = f"sum of hwmon {device} {unit} channels {', '.join(self.rails)} (/{hwmon})"
            self.total_rail = None
        else:
            self.flags = ()
            self.scope = f"hwmon {device} {unit} {self.rails[0]} (/{hwmon}); covers what that sensor is wired to"
            self.total_rail = self.rails[0]

    def read(self) -> PowerReading:
        t = time.perf_counter_ns()
        vals: dict[str, float | None] = {}
        problems = []
        for c in self.channels:
            try:
                raw = self.fs.read_int(c.path)
                vals[c.label] = raw / 1e6 if c.unwrap is None else c.unwrap.update(raw, t) / 1e6
            except (OSError, ValueError, ProbeError) as e:
                vals[c.label] = None
                problems.append(f"{c.label}: {describe_oserror(e) if isinstance(e, OSError) else e}")
        if any(v is None for v in vals.values()):
            raise ProbeError(f"hwmon {self.device} reading failed ({'; '.join(problems)})")
        total = sum(vals.values())  # type: ignore[arg-type]
        if self.method == METHOD_COUNTER:
            return PowerReading(energy_j=total, rails_j=vals)
        return PowerReading(total_w=total, rails_w=vals)


def _hwmon_power_channels(fs: SysFS, hw: str) -> list[HwmonChannel]:
    def label(kind: str, n: str) -> str:
        return fs.try_read(f"{hw}/{kind}{n}_label") or f"{kind}{n}"

    power = []
    for suffix in ("input", "average"):
        for p in fs.glob(f"{hw}/power*_{suffix}"):
            m = re.fullmatch(rf"power(\d+)_{suffix}", os.path.basename(p))
            if m and not any(c.label == label("power", m.group(1)) for c in power):
                power.append(HwmonChannel(label("power", m.group(1)), p, "power"))
    if power:
        return power
    energy = []
    for p in fs.glob(f"{hw}/energy*_input"):
        m = re.fullmatch(r"energy(\d+)_input", os.path.basename(p))
        if m:
            energy.append(HwmonChannel(label("energy", m.group(1)), p, "energy", CounterUnwrapper(None, p)))
    return energy


def hwmon_power(fs: SysFS, device: str | None = None) -> HwmonPower:
    """The first hwmon device with power (else energy) channels; with ``device``
    that one by name. GPU drivers are skipped unless asked for by name."""
    found = []
    for hw in fs.glob("sys/class/hwmon/hwmon*"):
        name = fs.try_read(f"{hw}/name") or os.path.basename(hw)
        if device is not None and name != device:
            continue
        if device is None and (name in OWN_HWMON or name in GPU_HWMON):
            continue
        chs = _hwmon_power_channels(fs, hw)
        if chs:
            found.append(name)
            src = HwmonPower(fs, name, hw, chs)
            try:
                src.read()
            except ProbeError as e:
                raise Unavailable(str(e), present=True) from None
            return src
    what = f"hwmon device {device!r} with power or energy channels" if device else "hwmon power or energy sensor"
    raise Unavailable(f"no {what}")


# --------------------------------------------------------------------------- discovery
def is_jetson(fs: SysFS) -> bool:
    if fs.exists("etc/nv_tegra_release"):
        return True
    model = (fs.try_read("proc/device-tree/model") or "").lower()
    return "jetson" in model or "nvidia" in model


@dataclass
class PowerDiscovery:
    source: PowerSource | None
    #: one line per source tried and not used
    tried: list[str] = field(default_factory=list)
    reason: str | None = None


def parse_power_spec(spec: str) -> tuple[str, str]:
    spec = (spec or "auto").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("auto", "none", "jetson", "tegrastats", "rpi-pmic", "rapl") and not arg:
        return kind, ""
    if kind == "hwmon":
        return kind, arg.strip()
    if kind in ("cmd", "serial"):
        if not arg.strip():
            raise UserError(f"--power {spec}: give the {'command' if kind == 'cmd' else 'device'} after '{kind}:'")
        return kind, arg.strip()
    raise UserError(f"unknown power source {spec!r}: choose one of {POWER_SPECS}")


def discover_power(
    spec: str = "auto", fs: "SysFS | str | None" = None, runner: Runner | None = None, interval_s: float = 0.1
) -> PowerDiscovery:
    """Pick the power source ``spec`` names (or the first that works, for ``auto``).

    An explicitly named source that cannot be used is a UserError; ``auto``
    without any source returns ``source=None`` and the reason.
    """
    fs = as_fs(fs)
    runner = runner or default_runner(fs)
    kind, arg = parse_power_spec(spec)
    if kind == "none":
        return PowerDiscovery(None, [], "power measurement turned off (--power none)")

    def tegrastats_source():
        from edgebench.agent.probes.tegrastats import tegrastats_source

        return tegrastats_source(runner, interval_s)

    builders = {
        "jetson": lambda: jetson_ina3221(fs),
        "tegrastats": tegrastats_source,
        "rpi-pmic": lambda: rpi_pmic(fs, runner),
        "rapl": lambda: rapl(fs),
        "hwmon": lambda: hwmon_power(fs, arg or None),
    }
    if kind in ("cmd", "serial"):
        from edgebench.agent.probes import meters

        try:
            src = meters.command_meter(arg) if kind == "cmd" else meters.serial_meter(arg)
        except Unavailable as e:
            raise UserError(f"--power {spec}: {e}") from None
        return PowerDiscovery(src)
    if kind != "auto":
        try:
            return PowerDiscovery(builders[kind]())
        except Unavailable as e:
            raise UserError(f"--power {spec}: {e}") from None

    order = ["jetson"]
    if is_jetson(fs):
        order.append("tegrastats")
    order += ["rpi-pmic", "rapl", "hwmon"]
    tried, present = [], []
    for k in order:
        try:
            return PowerDiscovery(builders[k](), tried)
        except Unavailable as e:
            tried.append(f"{k}: {e}")
            if e.present:
                present.append(str(e))
    if present:
        reason = "no usable power source: " + "; ".join(present)
    else:
        reason = (
            "no power source on this board (no Jetson INA3221, Raspberry Pi 5 PMIC, Intel RAPL or hwmon power "
            "sensor): measure with an external meter (--power cmd:COMMAND or serial:DEVICE)"
        )
    return PowerDiscovery(None, tried, reason)
