"""External meters: a command printing watts, and an RDTech UM meter on a serial port."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from edgebench.agent.errors import UserError
from edgebench.agent.probes._fs import ProbeError, SysFS
from edgebench.agent.probes.discover import discover_power
from edgebench.agent.probes.meters import (
    UM_RECORD_BYTES,
    CommandMeter,
    SerialMeter,
    command_meter,
    parse_serial_spec,
    parse_um_record,
    parse_watts,
    serial_meter,
)
from tests.support.probes_fakes import FakeRunner, um_record


@pytest.mark.parametrize(
    "text,watts",
    [("3.2\n", 3.2), ("3.2 W\n", 3.2), ("3200 mW\n", 3.2), (" 4w", 4.0), ("1e1\n", 10.0), ("5\nextra line\n", 5.0)],
)
def test_parse_watts(text, watts):
    assert parse_watts(text) == pytest.approx(watts)


@pytest.mark.parametrize("text,why", [("", "nothing"), ("volts=5\n", "not a number"), ("-1\n", "negative")])
def test_parse_watts_refuses(text, why):
    with pytest.raises(ProbeError, match=why):
        parse_watts(text)


def test_command_meter_runs_the_command_each_time(tmp_path):
    counter = tmp_path / "n"
    counter.write_text("0")
    script = tmp_path / "meter.py"
    script.write_text(
        "import sys, pathlib\n"
        f"p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) + 1; p.write_text(str(n))\n"
        "print(f'{1000 * n} mW')\n"
    )
    src = command_meter(f"{sys.executable} {script}")
    assert isinstance(src, CommandMeter)
    assert src.read().total_w == pytest.approx(2.0)  # the first try was reading 1
    assert src.read().total_w == pytest.approx(3.0)
    assert src.describe()["command"].endswith("meter.py")
    assert src.flags == () and "external meter" in src.scope


def test_command_meter_failures(tmp_path):
    src = CommandMeter("echo boom >&2; exit 3")
    with pytest.raises(ProbeError, match="exited 3: boom"):
        src.read()
    with pytest.raises(UserError, match="--power cmd:exit 3: the meter command failed"):
        discover_power("cmd:exit 3", SysFS(tmp_path), FakeRunner({}))
    with pytest.raises(ProbeError, match="did not finish"):
        CommandMeter("sleep 5", timeout_s=0.2).read()


def test_um25c_record_from_the_reference():
    rec = parse_um_record(um_record(0x13EC, 0x1A0A, 0x00000D47, temp_c=31))
    assert rec.volts == pytest.approx(5.100)
    assert rec.amps == pytest.approx(0.6666)
    assert rec.watts == pytest.approx(3.399)
    assert rec.temp_c == 31


def test_um24c_scaling():
    rec = parse_um_record(um_record(510, 667, 3402), "um24c")
    assert (rec.volts, rec.amps, rec.watts) == (pytest.approx(5.10), pytest.approx(0.667), pytest.approx(3.402))


def test_um_record_refused_when_short_or_inconsistent():
    with pytest.raises(ProbeError, match="129 bytes"):
        parse_um_record(um_record(0x13EC, 0x1A0A, 0x0D47)[:129])
    with pytest.raises(ProbeError, match="inconsistent"):
        parse_um_record(um_record(0x13EC, 0x1A0A, 0x0D47), "um24c")  # a UM25C record read as UM24C


def test_serial_spec():
    assert parse_serial_spec("/dev/rfcomm0") == ("/dev/rfcomm0", "um25c")
    assert parse_serial_spec("/dev/ttyUSB0:UM34C") == ("/dev/ttyUSB0", "um34c")


def test_serial_meter_through_a_pty():
    """pyserial on a real pseudo-terminal; a thread plays the meter."""
    pytest.importorskip("serial", reason="pyserial is in the dev extra (pip install -e '.[dev]')")
    master, slave = os.openpty()
    import tty

    tty.setraw(master)
    tty.setraw(slave)
    name = os.ttyname(slave)
    frame = um_record(0x13EC, 0x1A0A, 0x0D47)
    stop = threading.Event()

    def meter():
        while not stop.is_set():
            try:
                b = os.read(master, 1)
            except OSError:
                return
            if b == b"\xf0":
                os.write(master, frame)

    t = threading.Thread(target=meter, daemon=True)
    t.start()
    src = None
    try:
        src = serial_meter(name)
        assert isinstance(src, SerialMeter) and src.name == "serial:um25c"
        assert src.read().total_w == pytest.approx(3.399)
        assert src.last.volts == pytest.approx(5.1)
    finally:
        stop.set()
        if src is not None:
            src.close()
        os.close(slave)
        os.close(master)
        t.join(timeout=10)


def test_serial_meter_with_an_injected_port():
    class Port:
        def __init__(self, replies):
            self.replies = list(replies)
            self.written = b""

        def reset_input_buffer(self):
            pass

        def write(self, b):
            self.written += b

        def read(self, n):
            return self.replies.pop(0)

        def close(self):
            pass

    port = Port([um_record(0x13EC, 0x1A0A, 0x0D47), b"\x00" * 40])
    src = SerialMeter("/dev/fake", "um25c", opener=lambda dev, baud, timeout: port)
    assert src.read().total_w == pytest.approx(3.399)
    assert port.written == b"\xf0"
    with pytest.raises(ProbeError, match=f"40 bytes, expected {UM_RECORD_BYTES}"):
        src.read()


def test_serial_meter_missing_device(tmp_path):
    pytest.importorskip("serial", reason="pyserial is in the dev extra (pip install -e '.[dev]')")
    with pytest.raises(UserError, match="cannot open"):
        discover_power(f"serial:{tmp_path}/no-such-tty", SysFS(tmp_path), FakeRunner({}))
