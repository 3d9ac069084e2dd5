"""What a power source is: the contract every board's source fulfils, and the flags
and methods a power figure can carry.

Every source answers ``read() -> PowerReading`` (raising on a failed reading,
which the sampler records as a gap, never a zero) and says what it covers
(``scope``, ``flags``). The sources, one module per board family:

* ``jetson.py``: the Jetson module's INA3221 monitors; ``tegrastats.py`` the
  fallback when the sysfs files cannot be read;
* ``rpi.py``: Raspberry Pi 5 PMIC (``vcgencmd pmic_read_adc``);
* ``rapl.py``: Intel RAPL energy counters;
* ``hwmon.py``: any hwmon power or energy sensor;
* ``meters.py``: external meters (``cmd:COMMAND``, ``serial:DEVICE``).

``discover.py`` picks one (``discover_power(spec)``). To add a source: a module
with a ``PowerSource`` subclass and a builder that raises ``Unavailable`` (with
``present=True`` when the hardware is there but unusable), then one entry in
``discover.py``'s builders and, if ``auto`` should try it, its order.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any

from edgebench.agent.probes._fs import (
    ProbeError,
)

#: Flags a power figure can carry (also listed in the result's ``power.flags``).
FLAG_MODULE_RAILS_SUM = "module_rails_sum"


FLAG_PMIC_OUTPUT_SIDE = "pmic_output_side"


FLAG_CHANNELS_SUM = "channels_sum"


FLAG_CPU_PACKAGE_ONLY = "cpu_package_only"


#: Rails that carry the whole module's input on Jetson.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")


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

    def close(self) -> None:  # noqa: B027 - optional hook: most sources hold nothing
        """Release what the source holds (processes, ports); most hold nothing."""

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "method": self.method,
            "scope": self.scope,
            "total_rail": self.total_rail,
            "flags": list(self.flags),
            "rails": list(self.rails),
        }


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
