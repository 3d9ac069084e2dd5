"""``tegrastats`` lines, every JetPack format, and tegrastats as a power source.

Formats (see the reference notes): JetPack 4 prints rails as ``VDD_IN 1038/1134``
(mW, no unit) and temperatures as ``CPU@25C``; JetPack 5 adds a leading date and
``VDD_GPU_SOC 2390mW/2390mW``; JetPack 6 lowercase zones (``cpu@44.125C``) and
``GR3D_FREQ 0%@[305]``; JetPack 7 three rail values ``9761mW/9761mW/9761mW`` and
two temperature values ``cpu@50C/50C``. Powered-off zones print ``-256C``
(parsed as None, not as a temperature). Offline cores print ``off``.

Only the first rail value (the current one) is used for power; the other values
are kept as printed, without guessing what they mean.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from edgebench.agent.probes._fs import ProbeError, Runner, SubprocessRunner
from edgebench.agent.probes.power import (
    FLAG_MODULE_RAILS_SUM,
    INPUT_RAILS,
    PowerReading,
    PowerSource,
    Unavailable,
)

OFFLINE_C = -256.0

DATE_RE = re.compile(r"^(\d+-\d+-\d+ \d+:\d+:\d+) ")
RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)([kMG])B(?: ?\(lfb (\d+)x(\d+)([kMG])B\))?")
SWAP_RE = re.compile(r"\bSWAP (\d+)/(\d+)([kMG])B(?: ?\(cached (\d+)([kMG])B\))?")
CPU_RE = re.compile(r"\bCPU \[([^\]]*)\]")
_NUM = r"-?\d+(?:\.\d+)?"
TEMP_RE = re.compile(rf"\b([A-Za-z][A-Za-z0-9_]*)@({_NUM})C(?:/({_NUM})C)?(?=\s|$)")
RAIL_RE = re.compile(
    r"\b([A-Za-z][A-Za-z0-9_]*) (\d+(?:\.\d+)?)(mW|W)?/(\d+(?:\.\d+)?)(mW|W)?(?:/(\d+(?:\.\d+)?)(mW|W)?)?(?=\s|$)"
)
ENGINE_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (off|(\d+)%(?:@(\d+|\[[\d,]+\]))?|@(\d+|\[[\d,]+\])|\d+)(?=\s|$)")
NOT_RAILS = {"RAM", "SWAP", "IRAM"}
NOT_ENGINES = {"RAM", "SWAP", "IRAM", "CPU", "MTS"}

_MB = {"k": 1 / 1024, "M": 1.0, "G": 1024.0}


def _mw(value: str, unit: str | None) -> float:
    return float(value) * (1000.0 if unit == "W" else 1.0)


def _freqs(text: str | None) -> list[int] | None:
    if text is None:
        return None
    return [int(x) for x in text.strip("[]").split(",") if x]


def _memory(line: str, out: dict[str, Any]) -> None:
    m = RAM_RE.search(line)
    if m:
        f = _MB[m.group(3)]
        out["ram_mb"] = {"used": int(m.group(1)) * f, "total": int(m.group(2)) * f}
        if m.group(4):
            out["ram_mb"]["lfb_blocks"] = int(m.group(4))
            out["ram_mb"]["lfb_block_mb"] = int(m.group(5)) * _MB[m.group(6)]
    m = SWAP_RE.search(line)
    if m:
        f = _MB[m.group(3)]
        out["swap_mb"] = {"used": int(m.group(1)) * f, "total": int(m.group(2)) * f}
        if m.group(4):
            out["swap_mb"]["cached"] = int(m.group(4)) * _MB[m.group(5)]


def _cpus(line: str, out: dict[str, Any]) -> str:
    """``CPU [12%@1190,off,...]``: one entry per core; returns the line without it."""
    m = CPU_RE.search(line)
    if not m:
        return line
    for item in m.group(1).split(","):
        item = item.strip()
        if item == "off" or not item:
            out["cpu"].append(None)
            continue
        load, _, freq = item.partition("@")
        out["cpu"].append(
            {"load_pct": int(load.rstrip("%")) if load else None, "freq_mhz": int(freq) if freq else None}
        )
    return line[: m.start()] + line[m.end() :]


def _temps(rest: str, out: dict[str, Any]) -> str:
    for tm in TEMP_RE.finditer(rest):
        v = float(tm.group(2))
        out["temps_c"][tm.group(1)] = None if v == OFFLINE_C else v
        if tm.group(3) is not None:
            v2 = float(tm.group(3))
            out.setdefault("temps_second_c", {})[tm.group(1)] = None if v2 == OFFLINE_C else v2
    return TEMP_RE.sub(" ", rest)


def _rails(rest: str, out: dict[str, Any]) -> str:
    for rm in RAIL_RE.finditer(rest):
        name = rm.group(1)
        if name in NOT_RAILS:
            continue
        values = [_mw(rm.group(2), rm.group(3)), _mw(rm.group(4), rm.group(5))]
        if rm.group(6) is not None:
            values.append(_mw(rm.group(6), rm.group(7)))
        if name == "NC":  # unconnected channels (AGX Orin); kept apart, never summed
            out.setdefault("nc_rails_mw", []).append(values)
            continue
        out["rails_mw"][name] = {"cur": values[0], "avg": values[1], "values": values}
    return RAIL_RE.sub(" ", rest)


def _engines(rest: str, out: dict[str, Any]) -> None:
    for em in ENGINE_RE.finditer(rest):
        name = em.group(1)
        if name in NOT_ENGINES:
            continue
        if em.group(2) == "off":
            out["engines"][name] = "off"
        elif em.group(3) is not None:
            out["engines"][name] = {"load_pct": int(em.group(3)), "freq_mhz": _freqs(em.group(4))}
        elif em.group(5) is not None:
            out["engines"][name] = {"load_pct": None, "freq_mhz": _freqs(em.group(5))}
        else:
            out["engines"][name] = {"load_pct": None, "freq_mhz": [int(em.group(2))]}


def parse_tegrastats(line: str) -> dict[str, Any]:
    """One tegrastats line -> a dict of what it says (units in the key names).

    ``rails_mw``: ``{rail: {"cur": mW, "avg": mW, "values": [every value printed]}}``;
    ``temps_c``: ``{zone: °C or None when offline}``; ``cpu``: one entry per core,
    ``{"load_pct", "freq_mhz"}`` or None for an offline core; ``engines``:
    ``{name: {"load_pct", "freq_mhz": [..]} or "off"}``. Fields are taken out of the
    line in turn (CPU, temperatures, rails), so what is left holds only engines.
    """
    line = line.strip()
    out: dict[str, Any] = {"time": None, "rails_mw": {}, "temps_c": {}, "cpu": [], "engines": {}}
    m = DATE_RE.match(line)
    if m:
        out["time"] = m.group(1)
    _memory(line, out)
    rest = _rails(_temps(_cpus(line, out), out), out)
    _engines(rest, out)
    return out


def tegrastats_power(parsed: dict[str, Any]) -> tuple[float, dict[str, float], str | None]:
    """``(total W, rails W, total rail or None when summed)`` from a parsed line."""
    rails = {k: v["cur"] / 1000.0 for k, v in parsed["rails_mw"].items()}
    if not rails:
        raise ProbeError("this tegrastats line has no power rails (they need sudo on some JetPack releases)")
    total_rail = next((r for r in INPUT_RAILS if r in rails), None)
    total = rails[total_rail] if total_rail else sum(rails.values())
    return total, rails, total_rail


class Tegrastats(PowerSource):
    """Runs ``tegrastats --interval MS`` and hands the sampler its latest line.

    Each reading carries the time its line arrived, so a line is integrated
    once, at its own timestamp, however often the sampler looks.
    """

    name = "tegrastats"

    def __init__(self, runner: Runner, interval_s: float = 0.1, first_line_timeout_s: float = 5.0):
        if not hasattr(runner, "popen"):
            raise Unavailable("this command runner cannot start tegrastats")
        self.interval_ms = max(10, int(round(interval_s * 1000)))
        try:
            self.proc = runner.popen(["tegrastats", "--interval", str(self.interval_ms)])  # type: ignore[attr-defined]
        except FileNotFoundError:
            raise Unavailable("tegrastats is not installed") from None
        except OSError as e:
            raise Unavailable(f"tegrastats cannot run: {e}", present=True) from None
        self._latest: tuple[int, dict[str, Any]] | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name="edgebench-tegrastats", daemon=True)
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self.proc.poll() is not None, first_line_timeout_s)
            first = self._latest
        if first is None:
            self.close()
            raise Unavailable(f"tegrastats printed nothing within {first_line_timeout_s:g} s", present=True)
        try:
            _, rails, total_rail = tegrastats_power(first[1])
        except ProbeError as e:
            self.close()
            raise Unavailable(str(e), present=True) from None
        self.rails = sorted(rails)
        self.total_rail = total_rail
        if total_rail:
            self.flags = ()
            self.scope = f"Jetson module input rail {total_rail}, as printed by tegrastats every {self.interval_ms} ms"
        else:
            self.flags = (FLAG_MODULE_RAILS_SUM,)
            self.scope = (
                f"sum of the Jetson module rails {', '.join(self.rails)} printed by tegrastats; no input rail, "
                "so the carrier board and conversion losses are not included"
            )

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t = time.perf_counter_ns()
            try:
                parsed = parse_tegrastats(line)
            except (ValueError, IndexError):
                continue
            with self._cond:
                self._latest = (t, parsed)
                self._cond.notify_all()

    def read(self) -> PowerReading:
        with self._cond:
            latest = self._latest
        if self.proc.poll() is not None:
            raise ProbeError(f"tegrastats exited (status {self.proc.returncode})")
        if latest is None:
            raise ProbeError("no tegrastats line yet")
        t, parsed = latest
        if time.perf_counter_ns() - t > 3 * self.interval_ms * 1_000_000 + 1_000_000_000:
            raise ProbeError("tegrastats stopped printing")
        total, rails, _ = tegrastats_power(parsed)
        return PowerReading(total_w=total, rails_w=dict(rails), t_ns=t)

    def latest(self) -> dict[str, Any] | None:
        with self._cond:
            return None if self._latest is None else self._latest[1]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(timeout=5)  # stdout reached EOF when the process ended
        if self.proc.stdout is not None and not self._thread.is_alive():
            self.proc.stdout.close()


def tegrastats_source(runner: Runner, interval_s: float = 0.1) -> Tegrastats:
    if isinstance(runner, SubprocessRunner) and runner.which("tegrastats") is None:
        raise Unavailable("tegrastats is not installed")
    return Tegrastats(runner, interval_s)
