"""Jetson module power: the INA3221 monitors, in the JetPack 4 ``ina3221x`` IIO layout
(mW given) or the JetPack 5+ ``ina3221`` hwmon layout (mV x mA), found by label, never by
hwmon number; ``NC`` and the "sum of shunt voltages" channel are skipped. The total is the
input rail (``VDD_IN``, ``POM_5V_IN``) when the module has one, else the sum of the module
rails, flagged ``module_rails_sum`` (AGX Xavier/Orin: excludes the carrier board).
``tegrastats.py`` is the fallback when these files cannot be read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from edgebench.agent.probes._fs import (
    ProbeError,
    SysFS,
    describe_oserror,
)
from edgebench.agent.probes.power import (
    FLAG_MODULE_RAILS_SUM,
    INPUT_RAILS,
    PowerReading,
    PowerSource,
    Unavailable,
)


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
                rail=label.strip(),
                chip=chip,
                layout="hwmon",
                volt=f"{hw}/in{n}_input",
                curr=f"{hw}/curr{n}_input",
                warn_ma=fs.try_int(f"{hw}/curr{n}_max"),
                crit_ma=fs.try_int(f"{hw}/curr{n}_crit"),
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
                rail=label.strip(),
                chip=chip,
                layout="iio",
                volt=f"{iio}/in_voltage{c}_input",
                curr=f"{iio}/in_current{c}_input",
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


# --------------------------------------------------------------------------- discovery
def is_jetson(fs: SysFS) -> bool:
    if fs.exists("etc/nv_tegra_release"):
        return True
    model = (fs.try_read("proc/device-tree/model") or "").lower()
    return "jetson" in model or "nvidia" in model
