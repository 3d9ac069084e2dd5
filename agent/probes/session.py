"""Probes around one benchmark run, and live telemetry between runs.

``ProbeSession`` is what the runner wraps around ``measure()``::

    with ProbeSession(opts, workload=rt.invoke) as probes:   # discover, sample,
        m = measure(...)                                     # cool, soak, idle baseline
    result.update(probes.sections(m.start_ns, m.end_ns, m.frames))

On entry it finds the power source and sensors, starts the sampler, optionally
waits for the board to cool below a temperature, optionally soaks it (runs the
workload) until its temperature is steady, then measures the idle baseline
power. ``sections()`` turns the samples of the measured window into the
result's ``board``, ``power``, ``thermal``, ``throttling`` and ``system``.

``telemetry_snapshot()`` is the current power, temperatures, utilisation and
throttling state, for the agent service's telemetry topic.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from edgebench.agent.options.classes import ProbeOptions
from edgebench.agent.probes._fs import ProbeError, Runner, SysFS, as_fs, default_runner
from edgebench.agent.probes.discover import discover_power, parse_power_spec
from edgebench.agent.probes.gpu import gpu_probe
from edgebench.agent.probes.inventory import board_inventory
from edgebench.agent.probes.power import METHOD_COUNTER, PowerSource
from edgebench.agent.probes.sampler import Sampler, summarize_power, window_slice
from edgebench.agent.probes.system import SystemProbe, cpu_pct_between, summarize_system
from edgebench.agent.probes.thermal import (
    ThermalProbe,
    decode_throttled,
    summarize_thermal,
    summarize_throttling,
)

log = logging.getLogger("edgebench.probes")


def wait_cool(
    read_c: Callable[[], tuple[str | None, float | None]],
    below_c: float,
    timeout_s: float,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Wait until the hottest sensor reads below ``below_c`` (or ``timeout_s`` passes)."""
    t0 = clock()
    zone, start = read_c()
    cur = start
    while cur is not None and cur >= below_c and clock() - t0 < timeout_s:
        sleep(poll_s)
        zone, cur = read_c()
    return {
        "target_c": below_c,
        "start_c": start,
        "end_c": cur,
        "zone": zone,
        "waited_s": round(clock() - t0, 3),
        "reached": cur is not None and cur < below_c,
    }


def soak_until_steady(
    workload: Callable[[], None] | None,
    read_c: Callable[[], tuple[str | None, float | None]],
    window_s: float,
    steady_c: float,
    max_s: float,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Run ``workload`` over and over until the hottest temperature has varied by at
    most ``steady_c`` over the last ``window_s`` seconds, or ``max_s`` passed."""
    t0 = clock()
    zone, start = read_c()
    history: list[tuple[float, float]] = [] if start is None else [(t0, start)]
    runs = 0
    steady = False
    last_poll = t0
    while clock() - t0 < max_s:
        if workload is not None:
            workload()
            runs += 1
        else:
            sleep(poll_s)
        now = clock()
        if now - last_poll < poll_s:
            continue
        last_poll = now
        zone, c = read_c()
        if c is None:
            continue
        history.append((now, c))
        recent = [v for t, v in history if t >= now - window_s]
        if now - t0 >= window_s and history[0][0] <= now - window_s and max(recent) - min(recent) <= steady_c:
            steady = True
            break
    return {
        "soak_s": round(clock() - t0, 3),
        "steady": steady,
        "start_c": start,
        "end_c": history[-1][1] if history else None,
        "zone": zone,
        "workload_runs": runs,
        "steady_rule_c": steady_c,
        "steady_window_s": window_s,
    }


class ProbeSession:
    def __init__(
        self,
        opts: ProbeOptions | None = None,
        workload: Callable[[], None] | None = None,
        fs: "SysFS | str | None" = None,
        runner: Runner | None = None,
    ):
        self.opts = opts or ProbeOptions()
        self.opts.validate()
        self.fs = as_fs(fs if fs is not None else self.opts.root)
        self.runner = runner or default_runner(self.fs)
        self.workload = workload
        self.notes: list[str] = []
        self.power: PowerSource | None = None
        self.power_reason: str | None = None
        self.power_tried: list[str] = []
        self.thermal: ThermalProbe | None = None
        self.system: SystemProbe | None = None
        self.sampler: Sampler | None = None
        self.idle: tuple[int, int] | None = None
        self.cool: dict[str, Any] | None = None
        self.soak: dict[str, Any] | None = None
        self._children0 = 0.0
        self._children_cpu_s = 0.0

    def __enter__(self) -> "ProbeSession":
        if not self.opts.enabled:
            return self
        o = self.opts
        disc = discover_power(o.power, self.fs, self.runner, interval_s=1.0 / o.sample_hz)
        self.power, self.power_reason, self.power_tried = disc.source, disc.reason, disc.tried
        if self.power is None and parse_power_spec(o.power)[0] == "auto":
            self.notes.append(f"power not measured: {disc.reason}")
        try:
            self.thermal = ThermalProbe(self.fs, self.runner)
            self.system = SystemProbe(gpu=gpu_probe(self.fs, self.power))
            self._children0 = self.system.children_cpu_s()
            self.sampler = Sampler(self.power, self.thermal, self.system, hz=o.sample_hz).start()
            if o.cool_below_c is not None:
                self._cool()
            if o.soak:
                self._soak()
            if self.power is not None and o.idle_baseline_s > 0:
                t_a = time.perf_counter_ns()
                threading.Event().wait(o.idle_baseline_s)
                self.idle = (t_a, time.perf_counter_ns())
        except BaseException:
            self._close()
            raise
        return self

    def _cool(self) -> None:
        assert self.thermal is not None
        o = self.opts
        if not self.thermal.zones:
            self.notes.append(f"cannot wait to cool below {o.cool_below_c:g} °C: no temperature sensor found")
            self.cool = {"target_c": o.cool_below_c, "reached": False, "reason": "no temperature sensor"}
            return
        self.cool = wait_cool(self.thermal.max_temp_c, o.cool_below_c, o.cool_timeout_s)  # type: ignore[arg-type]
        if not self.cool["reached"]:
            self.notes.append(
                f"the board did not cool below {o.cool_below_c:g} °C within {o.cool_timeout_s:g} s "
                f"({self.cool['zone']} at {self.cool['end_c']} °C); the run went ahead"
            )

    def _soak(self) -> None:
        assert self.thermal is not None
        o = self.opts
        if not self.thermal.zones:
            self.notes.append("cannot soak until the temperature is steady: no temperature sensor found")
            self.soak = {"steady": False, "reason": "no temperature sensor"}
            return
        self.soak = soak_until_steady(
            self.workload, self.thermal.max_temp_c, o.soak_window_s, o.soak_steady_c, o.soak_max_s
        )
        if not self.soak["steady"]:
            self.notes.append(
                f"the temperature was not steady within {o.soak_max_s:g} s of soaking "
                f"(rule: within {o.soak_steady_c:g} °C over {o.soak_window_s:g} s); the run went ahead"
            )

    def _close(self) -> None:
        if self.sampler is not None and self.sampler.running:
            self.sampler.stop()
        if self.power is not None:
            self.power.close()
        if self.system is not None:
            self._children_cpu_s = self.system.children_cpu_s() - self._children0

    def __exit__(self, *exc: Any) -> None:
        self._close()

    # ------------------------------------------------------------------ result sections
    def sections(
        self, start_ns: int, end_ns: int, frames: int, runtime: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``board``, ``power``, ``thermal``, ``throttling`` and ``system`` for the window
        [start_ns, end_ns] (perf_counter_ns) holding ``frames`` measured frames."""
        board = board_inventory(self.fs, self.runner, runtime=runtime)
        if not self.opts.enabled or self.sampler is None:
            return {"board": board, "probes": {"enabled": False}}
        assert self.thermal is not None
        samples = self.sampler.snapshot()
        stats = self.sampler.stats()
        board["sensors"] = self.sensors()
        out: dict[str, Any] = {"board": board}
        if self.power is not None:
            out["power"] = summarize_power(
                samples,
                self.power,
                (start_ns, end_ns),
                frames,
                self.idle,
                self.opts.sample_hz,
                span_s=stats["sampler_span_s"],
            )
            if out["power"].get("gaps"):
                errs = "; ".join(f"{k} (x{v})" for k, v in self.sampler.errors.items())
                self.notes.append(f"{out['power']['gaps']} power reading(s) failed during the run: {errs}")
        else:
            out["power"] = {
                "available": False,
                "source": None,
                "reason": self.power_reason,
                "tried": self.power_tried,
                "sampling_rate_target_hz": self.opts.sample_hz,
            }
        th = window_slice([(s.t_ns, s.thermal) for s in samples], start_ns, end_ns)
        out["thermal"] = summarize_thermal(th, self.thermal, start_ns)
        if self.cool is not None:
            out["thermal"]["cool"] = self.cool
        if self.soak is not None:
            out["thermal"]["soak"] = self.soak
        out["throttling"] = summarize_throttling(th, self.thermal, start_ns)
        sy = window_slice([(s.t_ns, s.system) for s in samples], start_ns, end_ns)
        system = summarize_system(sy, start_ns, end_ns)
        span = stats["sampler_span_s"]
        cpu = self.sampler.cpu_s + self._children_cpu_s
        if self.sampler.decimations:
            self.notes.append(
                f"long run: the sampler kept at most {self.sampler.max_samples} samples, so it halved its rate "
                f"{self.sampler.decimations} time(s) (to {self.opts.sample_hz / 2**self.sampler.decimations:g} Hz)"
            )
        system.update(stats)
        system.update(
            sampler_cpu_s=round(cpu, 6),
            sampler_commands_cpu_s=round(self._children_cpu_s, 6),
            sampler_cpu_pct=round(100.0 * cpu / span, 3) if span else None,
        )
        out["system"] = system
        return out

    def timeline(self, start_ns: int, end_ns: int) -> dict[str, Any] | None:
        """The board over the window [start_ns, end_ns] (edgebench.agent.probes.timeline);
        None when the probes did not run."""
        if self.sampler is None:
            return None
        from edgebench.agent.probes.timeline import timeline

        return timeline(self.sampler.snapshot(), start_ns, end_ns, self.power.method if self.power else None)

    def sensors(self) -> dict[str, Any]:
        return {
            "power": self.power.name if self.power else None,
            "thermal_zones": [z.name for z in self.thermal.zones] if self.thermal else [],
            "throttling": self.thermal.watched() if self.thermal else [],
        }


# --------------------------------------------------------------------------- telemetry
class Telemetry:
    """Live readings between runs. Keeps its sources open; ``close()`` when done."""

    def __init__(
        self,
        fs: "SysFS | str | None" = None,
        power: str = "auto",
        runner: Runner | None = None,
        interval_s: float = 1.0,
    ):
        self.fs = as_fs(fs)
        self.runner = runner or default_runner(self.fs)
        disc = discover_power(power, self.fs, self.runner, interval_s=interval_s)
        self.power, self.power_reason = disc.source, disc.reason
        self.thermal = ThermalProbe(self.fs, self.runner)
        self.system = SystemProbe(gpu=gpu_probe(self.fs, self.power))
        self._lock = threading.Lock()
        self._last_sys = self.system.read()
        self._last_sys_t = time.perf_counter_ns()
        self._last_energy: tuple[int, float] | None = None
        if self.power is not None and self.power.method == METHOD_COUNTER:
            try:
                self._last_energy = (time.perf_counter_ns(), self.power.read().energy_j)  # type: ignore[assignment]
            except (ProbeError, OSError, ValueError):
                self._last_energy = None

    def _power(self, out: dict[str, Any]) -> None:
        assert self.power is not None
        try:
            r = self.power.read()
        except (ProbeError, OSError, ValueError) as e:
            out["power_w"] = None
            out["power_error"] = str(e)
            return
        if self.power.method == METHOD_COUNTER:
            now = time.perf_counter_ns()
            prev, self._last_energy = self._last_energy, (now, r.energy_j)  # type: ignore[assignment]
            if prev is None or now <= prev[0]:
                out["power_w"] = None
                out["power_error"] = "first energy counter reading; power is known from the next snapshot on"
            else:
                out["power_w"] = round((r.energy_j - prev[1]) / ((now - prev[0]) / 1e9), 4)  # type: ignore[operator]
                out["power_window_s"] = round((now - prev[0]) / 1e9, 3)
        else:
            out["power_w"] = round(r.total_w, 4)  # type: ignore[arg-type]
            out["power_rails_w"] = {k: None if v is None else round(v, 4) for k, v in r.rails_w.items()}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {"ts": time.time()}
            if self.power is not None:
                out.update(
                    power_source=self.power.name, power_scope=self.power.scope, power_flags=list(self.power.flags)
                )
                self._power(out)
            else:
                out.update(power_w=None, power_source=None, power_reason=self.power_reason)
            th = self.thermal.read()
            out["temps_c"] = th.temps_c
            zone, hottest = self.thermal.max_temp_c(th)
            out["max_temp_c"], out["max_temp_zone"] = hottest, zone
            out["cpu_freq_mhz"] = {f"cpu{c}": (None if v is None else v / 1000) for c, v in th.cpu_khz.items()}
            sy = self.system.read()
            now = time.perf_counter_ns()
            per, total = cpu_pct_between(self._last_sys, sy)
            wall = (now - self._last_sys_t) / 1e9
            out.update(
                cpu_pct=total,
                cpu_pct_per_core=per,
                cpu_pct_span_s=round(wall, 3),
                agent_cpu_pct=round(100 * (sy.proc_cpu_s - self._last_sys.proc_cpu_s) / wall, 2) if wall > 0 else None,
                mem_used_mb=round(sy.mem_used_b / 2**20, 1),
                mem_available_mb=round(sy.mem_available_b / 2**20, 1),
                mem_total_mb=round(sy.mem_total_b / 2**20, 1),
                swap_used_mb=round(sy.swap_used_b / 2**20, 1),
                load_1m=sy.load_1m,
            )
            out.update(sy.gpu or {})
            self._last_sys, self._last_sys_t = sy, now
            thr: dict[str, Any] = {"now": [], "since_boot": []}
            if th.rpi_throttled is not None:
                d = decode_throttled(th.rpi_throttled)
                thr.update(now=d["now"], since_boot=d["since_boot"], rpi_get_throttled_hex=d["raw_hex"])
            if th.rpi_uv_alarm and "under_voltage" not in thr["now"]:
                thr["now"].append("under_voltage")
            if th.oc_counts:
                thr["oc_event_cnt"] = {f"oc{n}": v for n, v in th.oc_counts.items()}
            active = [k for k, v in th.cooling.items() if v]
            if active:
                thr["cooling_devices_active"] = active
            out["throttling"] = thr
            return out

    def close(self) -> None:
        if self.power is not None:
            self.power.close()


_default: dict[str, Telemetry] = {}
_default_lock = threading.Lock()


def telemetry_snapshot(root: "str | None" = None, power: str = "auto") -> dict[str, Any]:
    """Current power, temperatures, utilisation and throttling (units in the key names).

    The first call discovers the sources (root: ``$EDGEBENCH_SYSFS_ROOT`` or ``/``)
    and keeps them for later calls; CPU % and counter-based power cover the time
    since the previous call.
    """
    fs = as_fs(root)
    key = f"{fs.root}|{power}"
    with _default_lock:
        tel = _default.get(key)
        if tel is None:
            tel = _default[key] = Telemetry(fs, power)
    return tel.snapshot()
