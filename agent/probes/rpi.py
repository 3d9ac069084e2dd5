"""Raspberry Pi 5 power: ``vcgencmd pmic_read_adc``, the sum of V x I over the PMIC rails,
flagged ``pmic_output_side`` (excludes PMIC losses and USB peripherals, reads low against
a meter at the supply). A Pi 4 has none. Also what vcgencmd's failures mean.
"""

from __future__ import annotations

import re

from edgebench.agent.probes._fs import (
    ProbeError,
    Runner,
    SysFS,
    run_text,
)
from edgebench.agent.probes.power import (
    FLAG_PMIC_OUTPUT_SIDE,
    PowerReading,
    PowerSource,
    Unavailable,
)

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
