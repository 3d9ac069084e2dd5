"""The probe sections of ``edgebench info``: board, accelerators, power, thermal, throttling."""

from __future__ import annotations

from typing import Any

from ._fs import ProbeError, Runner, SysFS, as_fs, default_runner
from .inventory import board_inventory
from .power import discover_power
from .thermal import ThermalProbe, decode_throttled

#: (title, [(key, value), ...]); values are printed as they are
Section = tuple[str, list[tuple[str, Any]]]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v) or "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def board_section(inv: dict[str, Any]) -> Section:
    rows: list[tuple[str, Any]] = [
        ("model", inv.get("model")),
        ("model from", inv.get("model_source")),
    ]
    if inv.get("vendor"):
        rows.append(("vendor", inv["vendor"]))
    rows.append(("soc", inv.get("soc")))
    if "jetson" in inv:
        j = inv["jetson"]
        rows += [("L4T", j.get("l4t")), ("JetPack", j.get("jetpack")), ("nvpmodel", j.get("power_mode"))]
    if "raspberry_pi" in inv:
        rows.append(("pi revision", inv["raspberry_pi"].get("revision")))
    c = inv.get("cpu", {})
    cores = f"{c.get('cores')}" + (f" ({c['cores_online']} online)" if c.get("cores_online") is not None else "")
    freq = (
        f"{_fmt(c.get('min_freq_mhz'))}-{_fmt(c.get('max_freq_mhz'))} MHz" if c.get("max_freq_mhz") else None
    )
    rows += [
        ("cpu", c.get("model")),
        ("arch", c.get("arch")),
        ("cores", cores),
        ("governor", c.get("governor")),
        ("cpu clock", freq),
        ("memory", f"{inv['memory_total_mb']:g} MB" if inv.get("memory_total_mb") else None),
        ("swap", f"{inv['swap_total_mb']:g} MB" if inv.get("swap_total_mb") is not None else None),
        ("os", (inv.get("os") or {}).get("name")),
        ("kernel", inv.get("kernel")),
        ("python", inv.get("python")),
        ("hostname", inv.get("hostname")),
    ]
    return "board", rows


def accelerator_section(inv: dict[str, Any]) -> Section:
    acc = inv.get("accelerators") or []
    if not acc:
        return "accelerators", [("found", "none (no Edge TPU, NPU device node or devfreq GPU)")]
    rows = []
    for a in acc:
        extra = []
        if a.get("usb_speed_mbps"):
            extra.append(f"USB {a['usb_speed_mbps']:g} Mb/s")
        if a.get("driver"):
            extra.append(f"driver {a['driver']}")
        rows.append((a["kind"], f"{a['name']} at {a['path']}" + (f" ({', '.join(extra)})" if extra else "")))
    return "accelerators", rows


def power_section(fs: SysFS, runner: Runner, spec: str = "auto") -> Section:
    disc = discover_power(spec, fs, runner)
    rows: list[tuple[str, Any]] = []
    if disc.source is None:
        rows.append(("source", "none"))
        rows.append(("why", disc.reason))
    else:
        src = disc.source
        try:
            rows.append(("source", src.name))
            rows.append(("covers", src.scope))
            if src.flags:
                rows.append(("flags", list(src.flags)))
            rows.append(("method", src.method))
            try:
                r = src.read()
                if r.total_w is not None:
                    rows.append(("now", f"{r.total_w:.3f} W"))
                    for k, v in r.rails_w.items():
                        rows.append((f"  {k}", "-" if v is None else f"{v:.3f} W"))
                elif r.energy_j is not None:
                    rows.append(("counter", f"{r.energy_j:.3f} J (power needs two readings: see a run)"))
            except (ProbeError, OSError, ValueError) as e:
                rows.append(("now", f"reading failed: {e}"))
        finally:
            src.close()
    for t in disc.tried:
        rows.append(("not used", t))
    return "power", rows


def thermal_sections(fs: SysFS, runner: Runner) -> list[Section]:
    probe = ThermalProbe(fs, runner)
    r = probe.read()
    rows: list[tuple[str, Any]] = []
    for z in probe.zones:
        v = r.temps_c.get(z.name)
        trips = ", ".join(f"{k} {t:g}" for k, t in z.trips_c.items())
        rows.append((z.name, ("offline" if v is None else f"{v:g} °C") + f" ({z.kind}" + (f"; trips {trips})" if trips else ")")))
    if not rows:
        rows.append(("sensors", "none found"))
    for s in probe.skipped:
        rows.append(("skipped", s))
    for c in probe.cpus:
        cur = r.cpu_khz.get(c.cpu)
        cap = r.cpu_max_khz.get(c.cpu)
        rows.append((f"cpu{c.cpu}", f"{_fmt(None if cur is None else cur / 1000)} MHz (cap {_fmt(None if cap is None else cap / 1000)} MHz, {c.governor})"))
    thr_rows: list[tuple[str, Any]] = [("watching", probe.watched() or "nothing found")]
    if r.rpi_throttled is not None:
        d = decode_throttled(r.rpi_throttled)
        thr_rows += [("get_throttled", d["raw_hex"]), ("now", d["now"] or "none"), ("since boot", d["since_boot"] or "none")]
    if r.oc_counts:
        thr_rows.append(("oc event counts", {f"oc{k}": v for k, v in r.oc_counts.items()}))
    active = [k for k, v in r.cooling.items() if v]
    if probe.cooling:
        thr_rows.append(("clock cooling active", active or "none"))
    return [("thermal", rows), ("throttling", thr_rows)]


def probe_sections(root: "SysFS | str | None" = None, runner: Runner | None = None, power: str = "auto") -> list[Section]:
    fs = as_fs(root)
    runner = runner or default_runner(fs)
    inv = board_inventory(fs, runner)
    return [board_section(inv), accelerator_section(inv), power_section(fs, runner, power), *thermal_sections(fs, runner)]


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
        if th["throttled"]:
            parts.append("THROTTLED: " + ", ".join(f"{e['flag']} at {e['at_s']:g} s" for e in th["events"]))
        else:
            parts.append("no throttling seen")
    return "; ".join(parts) if parts else None
