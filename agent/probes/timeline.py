"""The board over time during one run: temperature per zone, CPU clock per core, power and
(on a Raspberry Pi) the firmware's throttling state, as series on the measured loop's clock.

This is what ``edgebench run --plot`` draws beside the latency over time: the result
document keeps only each probe's summary (start, end, min, max), and a local run has the
sampler's readings in memory anyway. Times are seconds from the measured window's start;
a reading that failed is None (a gap in the line, never a zero).
"""

from __future__ import annotations

from typing import Any, Sequence

from edgebench.agent.probes.power import METHOD_COUNTER
from edgebench.agent.probes.sampler import Sample

#: Raspberry Pi firmware throttle bits that mean "now" (under-voltage, frequency capped,
#: throttled, soft temperature limit): bits 0-3 of ``get_throttled``.
RPI_THROTTLED_NOW = 0xF


def _series(values: list[float | None]) -> list[float | None] | None:
    """The series, or None when it holds no reading at all."""
    return values if any(v is not None for v in values) else None


def _power_w(s: Sample, counter: bool) -> float | None:
    if s.power is None or counter:
        return None  # a counter source has no instantaneous power per reading
    return s.power.total_w


def timeline(samples: Sequence[Sample], t0_ns: int, t1_ns: int, power_method: str | None = None) -> dict[str, Any]:
    """Series of the readings taken within [t0_ns, t1_ns]: ``t_s`` (seconds from t0_ns),
    ``temps_c`` {zone: [...]}, ``cpu_mhz`` {"cpu0": [...]}, ``power_w`` [...] (None without an
    instantaneous power source), ``throttled`` [...] (1/0 where the firmware says, else None).
    Series without any reading are left out."""
    inside = [s for s in samples if t0_ns <= s.t_ns <= t1_ns]
    counter = power_method == METHOD_COUNTER
    zones = sorted({z for s in inside if s.thermal for z in s.thermal.temps_c})
    cpus = sorted({c for s in inside if s.thermal for c in s.thermal.cpu_khz})
    temps = {z: _series([s.thermal.temps_c.get(z) if s.thermal else None for s in inside]) for z in zones}
    clocks = {}
    for c in cpus:
        khz = [s.thermal.cpu_khz.get(c) if s.thermal else None for s in inside]
        clocks[f"cpu{c}"] = _series([None if v is None else round(v / 1000.0, 1) for v in khz])
    throttled = [
        None
        if not s.thermal or s.thermal.rpi_throttled is None
        else int(bool(s.thermal.rpi_throttled & RPI_THROTTLED_NOW))
        for s in inside
    ]
    return {
        "t_s": [round((s.t_ns - t0_ns) / 1e9, 4) for s in inside],
        "temps_c": {z: v for z, v in temps.items() if v is not None},
        "cpu_mhz": {c: v for c, v in clocks.items() if v is not None},
        "power_w": _series([_power_w(s, counter) for s in inside]),
        "throttled": _series(throttled),
    }
