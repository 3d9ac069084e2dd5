"""Which power source measures this board: ``discover_power(spec)`` builds the one a
``--power`` spec names, or for ``auto`` the first that works in the order Jetson INA3221,
tegrastats (on a Jetson), Raspberry Pi 5 PMIC, RAPL, hwmon, and says plainly why none did.
External meters (``cmd:``, ``serial:``) come from meters.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgebench.agent.errors import UserError
from edgebench.agent.probes._fs import (
    Runner,
    SysFS,
    as_fs,
    default_runner,
)
from edgebench.agent.probes.hwmon import hwmon_power
from edgebench.agent.probes.jetson import is_jetson, jetson_ina3221
from edgebench.agent.probes.power import POWER_SPECS, PowerSource, Unavailable
from edgebench.agent.probes.rapl import rapl
from edgebench.agent.probes.rpi import rpi_pmic


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
