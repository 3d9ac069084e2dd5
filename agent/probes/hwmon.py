"""Any hwmon power (uW) or energy (uJ) sensor (ina219, powerz ...), named or found;
GPU-only drivers are never picked by ``auto``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from edgebench.agent.probes._fs import (
    ProbeError,
    SysFS,
    describe_oserror,
)
from edgebench.agent.probes.power import (
    FLAG_CHANNELS_SUM,
    METHOD_COUNTER,
    METHOD_TRAPEZOID,
    CounterUnwrapper,
    PowerReading,
    PowerSource,
    Unavailable,
)

#: hwmon drivers that measure one GPU, never the board: not picked by ``auto``.
GPU_HWMON = {"amdgpu", "radeon", "nouveau", "i915", "xe"}


#: hwmon devices handled by a dedicated probe.
OWN_HWMON = {"ina3221", "soctherm_oc"}


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
