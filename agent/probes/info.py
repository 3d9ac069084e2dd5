"""The probe sections of ``edgebench info``: board, accelerators, power, thermal, throttling."""

from __future__ import annotations

from typing import Any, Callable

from edgebench.agent.probes._fs import ProbeError, Runner, SysFS, as_fs, default_runner
from edgebench.agent.probes.discover import discover_power
from edgebench.agent.probes.inventory import board_inventory
from edgebench.agent.probes.thermal import ThermalProbe, decode_throttled


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _mhz(khz: int | None) -> float | None:
    return None if khz is None else khz / 1000


def section_board(inv: dict[str, Any] | None = None) -> dict[str, Any]:
    inv = inv if inv is not None else board_inventory()
    out: dict[str, Any] = {"model": inv.get("model"), "model_from": inv.get("model_source")}
    if inv.get("vendor"):
        out["vendor"] = inv["vendor"]
    out["soc"] = inv.get("soc")
    if "jetson" in inv:
        j = inv["jetson"]
        out.update(l4t=j.get("l4t"), jetpack=j.get("jetpack"), nvpmodel=j.get("power_mode"))
    if "raspberry_pi" in inv:
        out["pi_revision"] = inv["raspberry_pi"].get("revision")
    out["cpu"] = {k: v for k, v in (inv.get("cpu") or {}).items() if v is not None}
    out.update(
        memory_total_mb=inv.get("memory_total_mb"),
        swap_total_mb=inv.get("swap_total_mb"),
        os=(inv.get("os") or {}).get("name"),
        kernel=inv.get("kernel"),
        hostname=inv.get("hostname"),
    )
    return out


def section_accelerators(inv: dict[str, Any] | None = None) -> dict[str, Any]:
    inv = inv if inv is not None else board_inventory()
    acc = inv.get("accelerators") or []
    return {"found": acc or "none (no Edge TPU, NPU device node or devfreq GPU)"}


def section_power(fs: "SysFS | str | None" = None, runner: Runner | None = None, spec: str = "auto") -> dict[str, Any]:
    fs = as_fs(fs)
    runner = runner or default_runner(fs)
    disc = discover_power(spec, fs, runner)
    out: dict[str, Any] = {}
    if disc.source is None:
        out.update(source="none", why=disc.reason)
    else:
        src = disc.source
        try:
            out.update(source=src.name, covers=src.scope, method=src.method)
            if src.flags:
                out["flags"] = list(src.flags)
            try:
                r = src.read()
                if r.total_w is not None:
                    out["now_w"] = round(r.total_w, 4)
                    if r.rails_w:
                        out["rails_w"] = {k: None if v is None else round(v, 4) for k, v in r.rails_w.items()}
                elif r.energy_j is not None:
                    out["counter_j"] = round(r.energy_j, 3)
                    out["now_w"] = "needs two readings (see a run's power section)"
            except (ProbeError, OSError, ValueError) as e:
                out["now_w"] = f"reading failed: {e}"
        finally:
            src.close()
    if disc.tried:
        out["not_used"] = disc.tried
    return out


def section_thermal(fs: "SysFS | str | None" = None, runner: Runner | None = None) -> dict[str, Any]:
    fs = as_fs(fs)
    probe = ThermalProbe(fs, runner or default_runner(fs))
    r = probe.read()
    zones: dict[str, Any] = {}
    for z in probe.zones:
        v = r.temps_c.get(z.name)
        zones[z.name] = {
            "now_c": "offline" if v is None else v,
            "kind": z.kind,
            **({"trips_c": z.trips_c} if z.trips_c else {}),
        }
    out: dict[str, Any] = {"zones": zones or "none found"}
    if probe.skipped:
        out["skipped"] = probe.skipped
    if probe.cpus:
        out["cpu_freq_mhz"] = {
            f"cpu{c.cpu}": f"{_fmt(_mhz(r.cpu_khz.get(c.cpu)))} (cap {_fmt(_mhz(r.cpu_max_khz.get(c.cpu)))}, {c.governor})"
            for c in probe.cpus
        }
    return out


def section_throttling(fs: "SysFS | str | None" = None, runner: Runner | None = None) -> dict[str, Any]:
    fs = as_fs(fs)
    probe = ThermalProbe(fs, runner or default_runner(fs))
    r = probe.read()
    out: dict[str, Any] = {"watching": probe.watched() or "nothing found"}
    if r.rpi_throttled is not None:
        d = decode_throttled(r.rpi_throttled)
        out.update(get_throttled=d["raw_hex"], now=d["now"] or "none", since_boot=d["since_boot"] or "none")
    if r.oc_counts:
        out["oc_event_counts"] = {f"oc{k}": v for k, v in r.oc_counts.items()}
    if probe.cooling:
        out["clock_cooling_active"] = [k for k, v in r.cooling.items() if v] or "none"
    return out


def probe_sections() -> dict[str, Callable[[], dict[str, Any]]]:
    """The sections ``edgebench info`` adds for the board and its probes (root:
    ``$EDGEBENCH_SYSFS_ROOT`` or ``/``)."""
    return {
        "board": section_board,
        "accelerators": section_accelerators,
        "power": section_power,
        "thermal": section_thermal,
        "throttling": section_throttling,
    }


def run_summary_line(res: dict[str, Any]) -> str | None:
    """One line of power, temperature and throttling for ``edgebench run``'s summary."""
    if not any(k in res for k in ("power", "thermal", "throttling")):
        return None
    parts = []
    p = res.get("power") or {}
    if p.get("available") and p.get("mean_w") is not None:
        what = p["source"] + (f" {p['total_rail']}" if p.get("total_rail") else "")
        flags = f" [{', '.join(p['flags'])}]" if p.get("flags") else ""
        epi = p.get("energy_per_inference_mj") or {}
        s = f"power {p['mean_w']:.3f} W mean ({what}{flags}), {p['energy_j']:.3f} J"
        if epi.get("gross") is not None:
            s += f", {epi['gross']:.3f} mJ/inference"
            if epi.get("net") is not None:
                s += f" ({epi['net']:.3f} net of {p['idle_w']:.3f} W idle)"
        if p.get("gaps"):
            s += f", {p['gaps']} gap(s)"
        parts.append(s)
    elif p:
        parts.append("power n/a")
    t = res.get("thermal") or {}
    if t.get("max_c") is not None:
        parts.append(f"max {t['max_c']:g} °C ({t['max_zone']})")
    th = res.get("throttling") or {}
    if "throttled" in th:
        if not th.get("watched") and not th["throttled"]:
            parts.append("no throttling source on this board")
        elif th["throttled"]:
            parts.append("THROTTLED: " + ", ".join(f"{e['flag']} at {e['at_s']:g} s" for e in th["events"]))
        else:
            parts.append("no throttling seen")
    return "; ".join(parts) if parts else None
