"""A run's page (``/run/<device>/<run_id>``). A per-frame run: what ran, latency per stage
over its stored frames, the histogram of one stage (``?stage=``) and a comparison with a
chosen baseline run (``?baseline=DEVICE/RUN``, the shared method). A sweep or a scenario
result is shown from its stored document (sweep.py, scenario.py); one whose result has
not arrived yet shows what its meta announced."""

from __future__ import annotations

import json
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire import words
from edgebench.collector.aggregate import compare_runs, find_run, histogram, run_detail, run_samples
from edgebench.collector.views import charts
from edgebench.collector.views.pages.cells import Link, Mark, Table, facts, fmt, run_href
from edgebench.collector.views.pages.scenario import scenario
from edgebench.collector.views.pages.sweep import sweep
from edgebench.collector.views.pages.tables import accelerator, threads
from edgebench.collector.views.templating import svg

HISTOGRAM_BINS = 40


def run(store, device_id: str, run_id: str, q: dict[str, str]) -> tuple[str, dict[str, Any]]:
    try:
        d = run_detail(store, device_id, run_id)
    except UserError as e:
        raise LookupError(str(e)) from None
    if d["kind"] in ("sweep", "scenario", "tune"):
        return document_run(d, q)
    lat = d["latency_ms"]
    stage = q.get("stage", "e2e")
    if stage not in lat:
        stage = "e2e"
    samples = run_samples(store, device_id, run_id, [stage])[stage]
    h = histogram(samples, HISTOGRAM_BINS)
    base = q.get("baseline")
    return "run.html", {
        "title": f"Run {device_id}/{run_id}",
        "info": facts("run-info", run_facts(d)),
        "latency": Table(
            "run-latency",
            ["stage", "p50", "p90", "p99", "mean"],
            [[s, *(fmt(lat[s][k]) for k in ("p50", "p90", "p99", "mean"))] for s in lat],
        ),
        "stages": [Link(f"{run_href(device_id, run_id)}?stage={s}", s) for s in lat],
        "histogram": svg(
            charts.histogram_svg(
                f"{stage} latency, {samples.size} frames",
                h["counts"],
                h["edges"],
                "ms",
                {"p50": lat[stage]["p50"], "p99": lat[stage]["p99"]},
            )
        ),
        **comparison(store, (device_id, run_id), base, stage),
        **ops_view(d.get("summary") or {}),
        "baseline": base or "",
        "stage": stage,
        **sustained_section((d.get("summary") or {}).get("sustained")),
    }


#: operators shown in the per-operator chart (the slowest; the table in the result has them all)
OPS_SHOWN = 40


def ops_view(summary: dict[str, Any]) -> dict[str, Any]:
    """What ran where (the result's ``ops``): the placement line, the fallback operators, and
    the per-operator times as a sorted bar chart when the run was made with ``--ops``."""
    out: dict[str, Any] = {"placement": None, "fallback": None, "ops_chart": None, "ops_note": None}
    ops = summary.get("ops")
    if not isinstance(ops, dict):
        return out
    if "fully_accelerated" in ops and "ops" not in ops:
        return {**out, "placement": f"LiteRT CompiledModel, fully accelerated: {ops.get('fully_accelerated')}"}
    out.update(placement=ops.get("summary"), fallback=", ".join(ops.get("fallback") or []) or "none")
    timed = [o for o in ops.get("ops") or [] if isinstance(o, dict) and isinstance(o.get("ms"), (int, float))]
    times = ops.get("times") if isinstance(ops.get("times"), dict) else None
    if timed and times:
        timed.sort(key=lambda o: -o["ms"])
        shown = timed[:OPS_SHOWN]
        labels = [f"#{o.get('index')} {o.get('type')} ({o.get('backend')})" for o in shown]
        more = f", the slowest {len(shown)} of {len(timed)}" if len(timed) > len(shown) else ""
        out["ops_chart"] = svg(
            charts.bar_chart(
                f"time per operator{more}", labels, {str(times.get("method")): [o["ms"] for o in shown]}, "ms"
            )
        )
        out["ops_note"] = (
            f"sum {fmt(times.get('sum_ms'))} ms against the whole invoke {fmt(times.get('whole_invoke_ms'))} ms "
            f"({fmt(times.get('sum_vs_whole'))}x); method {times.get('method')}: {times.get('caveats')}"
        )
    return out


def sustained_section(s: dict[str, Any] | None) -> dict[str, Any]:
    """A sustained run (agent/measure/sustained.py): FPS and p99 per interval over time, and
    the intervals with temperature and clock, as stored in its summary."""
    if not s or not s.get("intervals"):
        return {"sustained": None}
    ivs = s["intervals"]
    mid = [(iv["t0_s"] + iv["t1_s"]) / 2 for iv in ivs]
    chart = charts.line_chart(
        f"Sustained: FPS per {s['interval_s']:g} s interval",
        {"FPS": [(x, iv["fps"]) for x, iv in zip(mid, ivs) if iv["fps"]]},
        "time since the measured window started (s)",
        "frames/s",
        log=False,
        log_x=False,
    )
    table = Table(
        "sustained",
        ["interval (s)", "frames", "FPS", "p50 ms", "p99 ms", "max temp °C", "CPU MHz", "throttled"],
        [
            [
                f"{iv['t0_s']:g}-{iv['t1_s']:g}",
                str(iv["frames"]),
                fmt(iv["fps"], ".1f"),
                fmt(iv["p50_ms"]),
                fmt(iv["p99_ms"]),
                fmt(iv["temp_max_c"], ".1f"),
                fmt(iv["cpu_mhz_mean"], ".0f"),
                "-" if iv["throttled"] is None else ("yes" if iv["throttled"] else "no"),
            ]  # fmt: skip
            for iv in ivs
        ],
    )
    st = s.get("steady")
    words = (
        f"steady since {s['steady_since_s']:g} s: {st['fps']:g} FPS, p99 {st['p99_ms']:g} ms; minute 1 / steady FPS "
        f"{s['minute1_vs_steady']}"
        if st
        else f"steady state: none ({s.get('steady_note')})"
    )
    thr = s["time_to_first_throttle_s"]
    words += f"; first throttle at {thr:g} s" if thr is not None else f"; {s.get('throttle_note')}"
    return {"sustained": {"chart": svg(chart), "table": table, "words": words}}


def run_facts(d: dict[str, Any]) -> list[tuple[str, Any]]:
    """What a per-frame run ran on and what it came to."""
    return [
        ("model", d["model"]),
        ("runtime", f"{d['runtime'] or '-'} {d['runtime_version'] or ''}"),
        ("accelerator", accelerator(d["delegate"])),
        ("threads", threads(d["num_threads"])),
        ("scenario", d["scenario"]),
        ("board", d["board"]),
        ("source", d["source_kind"]),
        ("started", d["started_at"]),
        ("frames (summary / stored)", f"{d['frames'] if d['frames'] is not None else '-'} / {d['frames_stored']}"),
        ("FPS", None if d["fps"] is None else f"{d['fps']:.2f}"),
        ("verdict", d["verdict"]),
        ("power, mean (W)", None if d["power_mean_w"] is None else f"{d['power_mean_w']:.3f}"),
        (
            "energy per inference, gross / net (mJ)",
            " / ".join("-" if x is None else f"{x:.3f}" for x in (d["energy_mj_gross"], d["energy_mj_net"])),
        ),
        ("throttled", {None: "no data", 0: "no", 1: "yes"}.get(d["throttled"], "-")),
        ("hottest temperature (°C)", None if d["temp_max_c"] is None else f"{d['temp_max_c']:.1f}"),
        ("duplicates dropped / replayed batches", f"{d['duplicates']} / {d['replayed']}"),
    ]


def comparison(store, run: tuple[str, str], base: str | None, stage: str) -> dict[str, Any]:
    """The run against ``base`` (DEVICE/RUN_ID): ``compare`` (its table and criterion), or
    ``compare_error`` when the baseline cannot be compared; neither without a baseline."""
    out: dict[str, Any] = {"compare": None, "compare_error": None}
    if not base:
        return out
    try:
        c = compare_runs(store, run, find_run(store, base), stage=stage)
    except UserError as e:
        out["compare_error"] = str(e)
        return out
    out["compare"] = {
        "baseline": c["baseline"],
        "criterion": c["criterion"],
        "table": Table(
            "compare",
            ["metric", "baseline", "this run", "change", "change %", "95% CI", "beyond noise"],
            [_compare_row(m) for m in c["metrics"]],
        ),
    }
    return out


def _compare_row(m: dict[str, Any]) -> list[Any]:
    ci = m.get("ci95")
    return [
        f"{m['metric']} ({m['unit']})",
        fmt(m["baseline"]),
        fmt(m["run"]),
        fmt(m["change"], "+.3f"),
        fmt(m["change_pct"], "+.1f"),
        f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "-",
        {True: Mark("yes", "yes"), False: "no", None: "unknown"}[m.get("beyond_noise")],
    ]


def document_run(d: dict[str, Any], q: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """A sweep's or a scenario's page: from its stored document (no frames are published for them)."""
    doc = d["summary"]
    what = {"sweep": "Sweep", "tune": "Tune"}.get(d["kind"], "Scenario")
    rt = (doc or {}).get("runtime") or {}
    info = [
        ("model", d["model"]),
        ("runtime", f"{d['runtime'] or '-'} {d['runtime_version'] or ''}"),
        ("accelerator", words.accelerator(rt) if rt else accelerator(d["delegate"])),
        ("board", d["board"]),
        ("source", d["source_kind"]),
        ("started", d["started_at"]),
    ]
    page = {"title": f"{what} {d['device_id']}/{d['run_id']}"}
    if doc is None:
        cfg = (d.get("meta") or {}).get("config") or {}
        return "pending.html", {
            **page,
            "info": facts("run-info", info),
            "what": what.lower(),
            "config": json.dumps(cfg, indent=2)[:5000],
        }
    if d["kind"] == "sweep":
        return "sweep.html", {**page, "info": facts("run-info", info), **sweep(d, doc, q)}
    if d["kind"] == "tune":
        from edgebench.collector.views.pages.tune import tune_page

        return "tune.html", {**page, **tune_page(info, doc)}
    info += [("threads", threads(d["num_threads"]))]
    return "scenario.html", {**page, "info": facts("run-info", info), **scenario(d, doc)}
