"""External power meters: a user command that prints watts, or a USB serial meter.

``cmd:COMMAND`` runs COMMAND through the shell once per sample; it must print
the power now as a number of watts (``3.2``, ``3.2 W`` or ``3200 mW``). Each
run costs a fork, which the sampler counts in its own CPU cost; a slow command
lowers the achieved sampling rate, which the result reports.

``serial:DEVICE[:MODEL]`` polls an RDTech UM24C/UM25C/UM34C meter (USB or
Bluetooth SPP bound to ``/dev/rfcomm0``) at 9600 baud: one ``0xF0`` byte asks
for a 130-byte big-endian record (layout from rdserialtool): volts at bytes
2-3 (/100, UM25C /1000), amps at 4-5 (/1000, UM25C /10000), watts at 6-9
(/1000). Needs pyserial (``pip install pyserial``), imported only here.
The meter refreshes about twice a second: coarse for per-frame energy.
"""

from __future__ import annotations

import re
import shlex
import struct
import subprocess
from dataclasses import dataclass
from typing import Any, Callable

from edgebench.agent.probes._fs import ProbeError
from edgebench.agent.probes.power import PowerReading, PowerSource, Unavailable

WATTS_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(mW|W|w)?\s*$")


def parse_watts(text: str) -> float:
    """The first line of a meter command's output, in watts."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise ProbeError("the power command printed nothing")
    m = WATTS_RE.match(lines[0])
    if not m:
        raise ProbeError(f"the power command printed {lines[0][:60]!r}, not a number of watts (e.g. 3.2 or 3200 mW)")
    w = float(m.group(1)) / (1000.0 if m.group(2) == "mW" else 1.0)
    if w < 0:
        raise ProbeError(f"the power command printed a negative power ({lines[0][:60]!r})")
    return w


class CommandMeter(PowerSource):
    name = "cmd"
    total_rail = None
    flags = ()

    def __init__(self, command: str, timeout_s: float = 5.0):
        self.command = command
        self.timeout_s = timeout_s
        self.rails = []
        self.scope = f"external meter: the command {command!r} (covers whatever that meter measures)"

    def read(self) -> PowerReading:
        try:
            p = subprocess.run(
                self.command,
                shell=True,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ProbeError(f"the power command did not finish within {self.timeout_s:g} s") from None
        if p.returncode != 0:
            err = (p.stderr or p.stdout).strip().splitlines()
            raise ProbeError(f"the power command exited {p.returncode}" + (f": {err[-1][:100]}" if err else ""))
        return PowerReading(total_w=parse_watts(p.stdout))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "command": self.command}


def command_meter(command: str) -> CommandMeter:
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise Unavailable(f"cannot parse the command: {e}") from None
    if not argv:
        raise Unavailable("the command is empty")
    src = CommandMeter(command)
    try:
        src.read()
    except ProbeError as e:
        raise Unavailable(f"the meter command failed on a first try: {e}") from None
    return src


# --------------------------------------------------------------------------- RDTech UM meters
UM_RECORD_BYTES = 130
UM_REQUEST = b"\xf0"
UM_MODELS = {"um24c": (100, 1000), "um25c": (1000, 10000), "um34c": (100, 1000)}  # volts, amps divisors


@dataclass
class UmRecord:
    volts: float
    amps: float
    watts: float
    temp_c: int


def parse_um_record(data: bytes, model: str = "um25c") -> UmRecord:
    """Decode one 130-byte UM record; a record whose watts disagree with V x I is refused."""
    if len(data) != UM_RECORD_BYTES:
        raise ProbeError(f"the meter sent {len(data)} bytes, expected {UM_RECORD_BYTES}")
    vdiv, adiv = UM_MODELS[model]
    volts = struct.unpack(">H", data[2:4])[0] / vdiv
    amps = struct.unpack(">H", data[4:6])[0] / adiv
    watts = struct.unpack(">L", data[6:10])[0] / 1000
    temp_c = struct.unpack(">H", data[10:12])[0]
    if abs(watts - volts * amps) > 0.02 + 0.05 * watts:
        raise ProbeError(
            f"meter record is inconsistent ({volts} V x {amps} A != {watts} W): wrong model or out of step"
        )
    return UmRecord(volts, amps, watts, temp_c)


def _open_serial(device: str, baud: int, timeout_s: float):
    try:
        import serial  # pyserial, optional
    except ImportError:
        raise Unavailable("a serial meter needs pyserial: pip install pyserial") from None
    try:
        return serial.Serial(device, baudrate=baud, timeout=timeout_s)
    except (serial.SerialException, OSError) as e:
        raise Unavailable(f"cannot open {device}: {e}") from None


class SerialMeter(PowerSource):
    name = "serial"
    total_rail = None
    flags = ()

    def __init__(
        self,
        device: str,
        model: str = "um25c",
        opener: Callable[..., Any] | None = None,
        baud: int = 9600,
        timeout_s: float = 2.0,
    ):
        self.device = device
        self.model = model
        self.name = f"serial:{model}"
        self.rails = []
        self.scope = f"external {model.upper()} USB meter on {device} (covers what is plugged through it)"
        self.port = (opener or _open_serial)(device, baud, timeout_s)
        self.last: UmRecord | None = None

    def read(self) -> PowerReading:
        try:
            self.port.reset_input_buffer()
            self.port.write(UM_REQUEST)
            data = self.port.read(UM_RECORD_BYTES)
        except (OSError, ValueError) as e:
            raise ProbeError(f"serial meter {self.device}: {e}") from None
        except Exception as e:  # serial.SerialException without importing serial here
            raise ProbeError(f"serial meter {self.device}: {e}") from None
        rec = parse_um_record(bytes(data), self.model)
        self.last = rec
        return PowerReading(total_w=rec.watts)

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "device": self.device, "model": self.model}


def parse_serial_spec(spec: str) -> tuple[str, str]:
    device, model = spec, "um25c"
    head, sep, tail = spec.rpartition(":")
    if sep and tail.lower() in UM_MODELS:
        device, model = head, tail.lower()
    return device, model


def serial_meter(spec: str, opener: Callable[..., Any] | None = None) -> SerialMeter:
    device, model = parse_serial_spec(spec)
    src = SerialMeter(device, model, opener=opener)
    try:
        src.read()
    except ProbeError as e:
        src.close()
        raise Unavailable(f"no answer from the meter: {e}") from None
    return src
