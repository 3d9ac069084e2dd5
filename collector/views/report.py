"""Terminal tables, JSON and CSV for the collector's reports.

Whatever a device sent reaches a terminal only through ``printable`` (control characters
shown as escapes, never sent raw), and JSON only through ``finite`` (a stored value or a
figure computed from stored values that is not a finite number is written as null: JSON has
no Infinity).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from typing import Any, Sequence

from edgebench.collector.aggregate import DEFAULT_GROUP, flatten


def _f(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: Any) -> str:
    """Text with its control characters (escape sequences, newlines, C1 codes) as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def finite(v: Any) -> Any:
    """``v`` with every non-finite float (inf, nan) replaced by None, recursively."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    return v


def render(head: Sequence[str], body: list[Sequence[str]], left: set[int]) -> list[str]:
    body = [[printable(c) for c in b] for b in body]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]


def table(rows: list[dict[str, Any]], by: Sequence[str] = DEFAULT_GROUP) -> str:
    if not rows:
        return "no results stored yet"
    names = {"device_id": "device"}
    head = [names.get(k, k) for k in by] + [
        "runs",
        "frames",
        "FPS",
        "inf p50",
        "inf p90",
        "inf p99",
        "e2e p50",
        "e2e p90",
        "e2e p99",
        "mJ/inf",
        "throttled",
        "missing",
        "dups",
        "replayed",
    ]
    body = []
    for r in rows:
        lat = r["latency_ms"]
        e = r.get("energy_per_inference_mj") or {}
        thr = r.get("throttled_runs")
        body.append(
            [
                *("-" if r.get(k) is None else str(r[k]) for k in by),
                str(r["runs"]),
                str(r["frames"]),
                _f(r["fps"], ".1f"),
                *(_f(lat["inference"][k], ".3f") for k in ("p50", "p90", "p99")),
                *(_f(lat["e2e"][k], ".3f") for k in ("p50", "p90", "p99")),
                _f(e.get("gross"), ".3f"),
                "-" if thr is None else f"{thr}/{r['thermal_runs']}",
                str(r["missing_frames"]),
                str(r["duplicates"]),
                str(r["replayed"]),
            ]
        )
    out = render(head, body, set(range(len(by))))
    out.append(
        "latency in ms over the stored per-frame samples (inf = interpreter.invoke() only; e2e = capture to"
        " postprocess); FPS = frames / measured time of completed runs; mJ/inf = gross energy per inference"
        " where power was measured; throttled = runs throttled / runs with throttling data; missing = frames"
        " announced by summaries but not stored; dups = duplicate messages dropped; replayed = frame batches"
        " replayed from a device's spool"
    )
    return "\n".join(out)


def _num_text(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "-" if v is None else str(v)
    return f"{v:.1f}" if abs(v) >= 1000 else f"{v:.4g}"


def headline_text(
    metric: str | None, value: Any, unit: str | None, within: bool | None = None, bound: float | None = None
) -> str:
    """``p90 1.234 ms``, ``max 456.7 queries/s with p99 <= 5 ms``, ``1234.5 samples/s``,
    ``p99 2.1 ms <= 50 ms bound``, ``best 7731.3 items/s``."""
    if metric is None:
        return "-"
    if metric == "max_qps" and value is None:
        return "no rate meets the bound" + (f" (p99 <= {bound:g} ms)" if bound is not None else "")
    name = {
        "p90_latency_ms": "p90",
        "p99_latency_ms": "p99",
        "max_qps": "max",
        "samples_per_s": "",
        "best_throughput_items_per_s": "best",
    }.get(metric, metric)
    text = f"{name} {_num_text(value)} {unit or ''}".strip()
    if within is not None and bound is not None:
        text += f" {'<=' if within else 'NOT <='} {bound:g} ms bound"
    elif bound is not None and metric == "max_qps":
        text += f" with p99 <= {bound:g} ms"
    return text


def scenario_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no scenario results stored yet (edgebench run --scenario ... --mqtt URL)"
    head = [
        "device",
        "model",
        "threads",
        "scenario",
        "batch",
        "verdict",
        "headline",
        "target qps",
        "done qps",
        "queries",
        "duration s",
        "run",
        "reasons",
    ]
    body = []
    for r in rows:
        h = r["headline"]
        body.append(
            [
                r["device_id"],
                r["model"] or "-",
                "-" if r["num_threads"] is None else str(r["num_threads"]),
                r["scenario"] or "-",
                "-" if r["batch"] is None else str(r["batch"]),
                r["verdict"] or "-",
                headline_text(h["metric"], h["value"], h["unit"], r["within_bound"], r["latency_bound_ms"]),
                _f(r["target_qps"], ".4g"),
                _f(r["completed_qps"], ".4g"),
                "-" if r["queries"] is None else str(r["queries"]),
                _f(r["duration_s"], ".3f"),
                r["run_id"],
                "; ".join(r["reasons"]) or "-",
            ]
        )
    out = render(head, body, {0, 1, 3, 5, 6, 11, 12})
    out.append(
        "headline as the agent computed it over every query (single-stream p90, multi-stream p99 query latency;"
        " offline samples/s; server p99 from each query's scheduled arrival against its bound; find-max-qps the"
        " highest Poisson rate whose p99 held the bound); INVALID results say why in reasons"
    )
    return "\n".join(out)


def sweep_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no sweeps stored yet (edgebench sweep ... --mqtt URL)"
    head = [
        "device",
        "model",
        "grid b x t x i",
        "ok",
        "unsupported",
        "failed",
        "INVALID",
        "best items/s",
        "at",
        "lowest p99 ms",
        "at",
        "run",
    ]
    body = []
    for r in rows:
        g = r["grid"]
        body.append(
            [
                r["device_id"],
                r["model"] or "-",
                f"{len(g['batch'])} x {len(g['threads'])} x {len(g['instances'])} ({g['instance_mode']})",
                str(r["counts"]["ok"]),
                str(r["counts"]["unsupported"]),
                str(r["counts"]["failed"]),
                str(r["invalid_points"]),
                _f(r["best_throughput_items_per_s"], ".1f"),
                r["best_throughput_at"] or "-",
                _f(r["lowest_p99_ms"], ".4f"),
                r["lowest_p99_at"] or "-",
                r["run_id"],
            ]
        )
    out = render(head, body, {0, 1, 2, 8, 10, 11})
    out.append(
        "b = batch sizes, t = thread counts, i = concurrent instances; latency is per batch; best points are"
        " picked among VALID points when any; unsupported = batch sizes the model cannot take (see each point's reason)"
    )
    return "\n".join(out)


def tune_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no tune searches stored yet (edgebench-collector cmd tune ...)"
    head = ["device", "board", "model", "bound ms", "objective", "best configuration", "items/s", "p99 ms", "verdict"]
    body = []
    for r in rows:
        cfg = r["best_config"]
        best = (
            ", ".join(f"{k} {_switch(v)}" for k, v in cfg.items() if v is not None) if cfg else "none meets the bound"
        )
        body.append(
            [
                r["device_id"],
                r["board"] or "-",
                r["model"] or "-",
                _f(r["bound_ms"], "g"),
                r["objective"] or "-",
                best,
                _f(r["best_items_per_s"], ".1f"),
                _f(r["best_p99_ms"], ".3f"),
                r["verdict"] or "-",
            ]
        )
    out = render([*head, "run"], [[*b, r["run_id"]] for b, r in zip(body, rows)], {0, 1, 2, 4, 5, 8, 9})
    out.append("p99 is of a batch's latency (a frame waits for its whole batch); newest first")
    return "\n".join(out)


def _switch(v: Any) -> Any:
    return "on" if v is True else "off" if v is False else v


def devices_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no devices seen yet"
    head = ["device", "state", "last seen", "agent", "board", "runs", "sessions", "seq gaps", "dups", "replayed"]
    head += ["stored to seq", "waiting on device"]
    body = []
    for r in rows:
        body.append(
            [
                r["device_id"],
                r["state"],
                _age(r["last_seen_age_s"]),
                r["agent_version"] or "-",
                str(r["board"] or "-"),
                str(r["runs"]),
                str(r["sessions"]),
                str(r["seq_gaps"]),
                str(r["duplicates"]),
                str(r["replayed"]),
                "-" if r.get("stored_seq") is None else str(r["stored_seq"]),
                waiting_text(r),
            ]
        )
    out = render(head, body, {0, 1, 3, 4, 11})
    out.append(
        "state from the device's retained status (offline = its last will); seq gaps = missing sequence"
        " numbers between the first and last seen of each session; stored to seq = the highest seq stored (what"
        " collectors confirmed to the device); waiting on device = its outbox at its last telemetry (messages"
        " queued, of which sent but not yet confirmed by a collector)"
    )
    return "\n".join(out)


def waiting_text(r: dict[str, Any]) -> str:
    """What waits in a device's outbox, as its last telemetry said."""
    if r.get("waiting_on_device") is None:
        return "-"
    text = f"{r['waiting_on_device']} ({r.get('unconfirmed_on_device') or 0} unconfirmed)"
    text += ", no collector confirms" if r.get("confirmation") == "broker-only" else ""
    return text + (f", outbox damaged {r['outbox_damage']}x" if r.get("outbox_damage") else "")


def _age(s: float | None) -> str:
    if s is None:
        return "never"
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    if s < 172800:
        return f"{s / 3600:.0f} h ago"
    return f"{s / 86400:.0f} d ago"


def compare_table(c: dict[str, Any]) -> str:
    head = ["metric", "baseline", "run", "change", "change %", "95% CI of change", "beyond noise"]
    body = []
    for m in c["metrics"]:
        ci = m.get("ci95")
        bn = m.get("beyond_noise")
        body.append(
            [
                f"{m['metric']} ({m['unit']})",
                _f(m["baseline"], ".3f"),
                _f(m["run"], ".3f"),
                _f(m["change"], "+.3f"),
                _f(m["change_pct"], "+.1f"),
                f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "-",
                {True: "yes", False: "no", None: "unknown"}[bn],
            ]
        )
    out = [
        f"run {c['run']} ({c['frames']['run']} frames) against baseline {c['baseline']}"
        f" ({c['frames']['baseline']} frames)"
    ]
    out += render(head, body, {0})
    out.append(f"criterion: {c['criterion']}")
    return "\n".join(out)


def as_json(rows: Any) -> str:
    return json.dumps(finite(rows), indent=2, default=str, allow_nan=False)


def as_csv(rows: list[dict[str, Any]]) -> str:
    flat = [flatten(r) for r in rows]
    cols: list[str] = []
    for r in flat:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def iso(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
