"""The read-only web dashboard and ``/metrics``, on the standard library's HTTP server.

Pages: fleet overview (``/``), device (``/device/<id>``), model comparison across boards
(``/model/<name>``), run (``/run/<device>/<run_id>``): for a per-frame run its latency
histogram per stage and a comparison with a chosen ``?baseline=DEVICE/RUN``; for a sweep
(edgebench.sweep/1) its curves (latency and throughput vs batch size, the latency/throughput
frontier across threads and instances, the latency distribution of any point, ``?point=N``)
and every point, unsupported ones with their reason; for a scenario (edgebench.scenario/1)
its verdict with reasons, headline, latency histogram, and a max-QPS search's steps. JSON under
``/api/``; Prometheus at ``/metrics``. Charts are inline SVG made on the server.

Only GET and HEAD are served. Bound to 127.0.0.1 unless told otherwise. With a token,
every request needs ``Authorization: Bearer <token>``, or ``?token=<token>`` once (a
cookie then carries it).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from edgebench.agent.errors import UserError
from edgebench.collector.aggregate import (
    compare_runs,
    device_rows,
    find_run,
    group_rows,
    histogram,
    quarantine_counts,
    run_detail,
    run_list,
    run_samples,
    scenario_rows,
    sweep_overview,
    sweep_rows,
)
from edgebench.collector.views import charts
from edgebench.collector.views.report import headline_text, iso

log = logging.getLogger("edgebench.web")

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;font-size:13px}
th{background:#f3f3f3} td.l,th.l{text-align:left}
nav a{margin-right:1em} .online{color:#109618} .offline{color:#dc3912} .stopped{color:#888}
.note{color:#666;font-size:12px} .yes{color:#dc3912;font-weight:bold}
.VALID{color:#109618;font-weight:bold} .INVALID{color:#dc3912;font-weight:bold}
.unsupported,.failed{color:#dc3912} p.verdict{font-size:18px}
"""


def _v(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return escape(str(v))


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _dev_href(d: str) -> str:
    return "/device/" + quote(d, safe="")


def _run_href(d: str, r: str) -> str:
    return f"/run/{quote(d, safe='')}/{quote(r, safe='')}"


def _model_href(m: str) -> str:
    return "/model/" + quote(m, safe="")


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} · edgebench</title><style>{CSS}</style></head><body>"
        '<nav><a href="/">fleet</a><a href="/metrics">metrics</a><a href="/api/fleet">json</a></nav>'
        f"<h1>{escape(title)}</h1>{body}"
        f"<p class=note>edgebench collector · page made {escape(iso(time.time()))}</p></body></html>"
    ).encode()


def _table(tid: str, head: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f'<table id="{escape(tid)}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def devices_html(devs: list[dict[str, Any]]) -> str:
    rows = [
        [
            _link(_dev_href(d["device_id"]), d["device_id"]),
            f'<span class="{escape(d["state"])}">{escape(d["state"])}</span>',
            escape(iso(d["last_seen"])),
            _v(d["agent_version"]),
            _v(d["board"]),
            str(d["runs"]),
            str(d["seq_gaps"]),
            str(d["duplicates"]),
            str(d["replayed"]),
        ]
        for d in devs
    ]
    return _table(
        "devices",
        ["device", "state", "last seen", "agent", "board", "runs", "seq gaps", "duplicates", "replayed"],
        rows,
        left=5,
    )


def fleet_html(rows: list[dict[str, Any]], by: tuple[str, ...], tid: str = "fleet") -> str:
    out = []
    for r in rows:
        lat = r["latency_ms"]
        e = r.get("energy_per_inference_mj") or {}
        cells = []
        for k in by:
            v = r.get(k)
            if k == "device_id" and v:
                cells.append(_link(_dev_href(v), v))
            elif k == "model" and v:
                cells.append(_link(_model_href(v), v))
            else:
                cells.append(_v(v))
        thr = r.get("throttled_runs")
        cells += [
            str(r["runs"]),
            str(r["frames"]),
            _v(r["fps"], ".1f"),
            *(_v(lat["inference"][k]) for k in ("p50", "p90", "p99")),
            *(_v(lat["e2e"][k]) for k in ("p50", "p90", "p99")),
            _v(e.get("gross")),
            _v(e.get("net")),
            "-" if thr is None else f"{thr}/{r['thermal_runs']}",
            str(r["missing_frames"]),
            str(r["duplicates"]),
            str(r["replayed"]),
        ]
        out.append(cells)
    head = [{"device_id": "device"}.get(k, k) for k in by] + [
        "runs",
        "frames",
        "FPS",
        "inference p50 ms",
        "p90",
        "p99",
        "e2e p50 ms",
        "p90",
        "p99",
        "mJ/inference gross",
        "net",
        "throttled runs",
        "missing frames",
        "duplicates",
        "replayed",
    ]
    return _table(tid, head, out, left=len(by))


def _verdict(v: str | None) -> str:
    return "-" if v is None else f'<span class="{escape(v)}">{escape(v)}</span>'


def latency_chart(rows: list[dict[str, Any]], label_keys: tuple[str, ...], title: str) -> str:
    labels = [" / ".join(str(r.get(k) or "-") for k in label_keys) for r in rows]
    return charts.bar_chart(
        title,
        labels,
        {
            "e2e p50": [r["latency_ms"]["e2e"]["p50"] for r in rows],
            "e2e p99": [r["latency_ms"]["e2e"]["p99"] for r in rows],
            "inference p50": [r["latency_ms"]["inference"]["p50"] for r in rows],
        },
        "ms",
    )


class Dashboard:
    def __init__(self, store, *, token: str | None = None, metrics_window_s: float = 3600.0, ingest=None):
        self.store = store
        self.token = token
        self.ingest = ingest
        self.metrics_window_s = metrics_window_s
        self._metrics = None

    # -- pages -------------------------------------------------------------------
    def overview(self, q: dict[str, str]) -> bytes:
        devs = device_rows(self.store)
        rows = group_rows(self.store, ("device_id", "model"))
        states = {s: sum(1 for d in devs if d["state"] == s) for s in ("online", "stopped", "offline")}
        qc = quarantine_counts(self.store)
        body = [
            f"<p>{len(devs)} devices: {states['online']} online, {states['stopped']} stopped, "
            f"{states['offline']} offline. Rejected messages in quarantine: "
            + (", ".join(f"{escape(k)} {v}" for k, v in qc.items()) or "none")
            + ".</p>",
            "<h2>Devices</h2>",
            devices_html(devs),
            "<h2>Fleet: per device and model</h2>",
            fleet_html(rows, ("device_id", "model")),
            "<p class=note>Latency percentiles are exact, over every stored frame of the group; FPS = frames / "
            "measured time of completed runs; energy per inference is frame-weighted over runs that measured power.</p>",
            latency_chart(rows, ("device_id", "model"), "Latency per device and model (ms)"),
        ]
        body.append(self._documents(scenario_rows(self.store), sweep_rows(self.store), limit=20))
        models = sorted({r["model"] for r in rows if r["model"]})
        if models:
            body.append(
                "<h2>Compare a model across boards</h2><ul>"
                + "".join(f"<li>{_link(_model_href(m), m)}</li>" for m in models)
                + "</ul>"
            )
        return _page("Fleet", "".join(body))

    def device(self, device_id: str) -> bytes:
        devs = [d for d in device_rows(self.store) if d["device_id"] == device_id]
        if not devs:
            raise LookupError(f"no device {device_id!r}")
        d = devs[0]
        rows = group_rows(self.store, ("model", "runtime", "delegate", "scenario"), where={"device_id": device_id})
        runs = run_list(self.store, device_id=device_id)
        sessions = self.store.query(
            "SELECT session, first_seq, last_seq, received, duplicates, replayed, first_seen, last_seen FROM sessions"
            " WHERE device_id = ? ORDER BY session DESC LIMIT 50",
            (device_id,),
        )
        inv = d["inventory"]
        body = [
            devices_html(devs),
            "<h2>Per model, runtime, delegate and scenario</h2>",
            fleet_html(rows, ("model", "runtime", "delegate", "scenario")),
            latency_chart(rows, ("model", "delegate"), f"Latency on {device_id} (ms)"),
            self._documents(
                scenario_rows(self.store, where={"device_id": device_id}),
                sweep_rows(self.store, where={"device_id": device_id}),
            ),
            "<h2>Runs</h2>",
            self._runs_table(runs),
            "<h2>Sessions (data quality)</h2>",
            _table(
                "sessions",
                [
                    "session",
                    "first seq",
                    "last seq",
                    "stored",
                    "seq gaps",
                    "duplicates",
                    "replayed",
                    "first seen",
                    "last seen",
                ],
                [
                    [
                        str(s),
                        str(a),
                        str(b),
                        str(n),
                        str(max(0, b - a + 1 - n)),
                        str(du),
                        str(rp),
                        escape(iso(f)),
                        escape(iso(la)),
                    ]
                    for s, a, b, n, du, rp, f, la in sessions
                ],
                left=1,
            ),
            "<h2>Inventory</h2><pre>" + escape(json.dumps(inv, indent=2)[:20000]) + "</pre>",
        ]
        return _page(f"Device {device_id}", "".join(body))

    def _runs_table(self, runs: list[dict[str, Any]]) -> str:
        return _table(
            "runs",
            [
                "run",
                "device",
                "kind",
                "model",
                "runtime",
                "delegate",
                "threads",
                "scenario",
                "verdict",
                "headline",
                "frames",
                "stored",
                "FPS",
                "mJ/inf",
                "throttled",
                "received",
            ],
            [
                [
                    _link(_run_href(r["device_id"], r["run_id"]), r["run_id"]),
                    escape(r["device_id"]),
                    escape(r["kind"]),
                    _v(r["model"]),
                    _v(r["runtime"]),
                    _v(r["delegate"]),
                    _v(r["num_threads"]),
                    _v(r["scenario"]),
                    _verdict(r["verdict"]),
                    escape(
                        headline_text(
                            r["headline_metric"],
                            r["headline_value"],
                            r["headline_unit"],
                            None if r["within_bound"] is None else bool(r["within_bound"]),
                        )
                    ),
                    _v(r["frames"]),
                    _v(r["frames_stored"]),
                    _v(r["fps"], ".1f"),
                    _v(r["energy_mj_gross"]),
                    {None: "-", 0: "no", 1: "yes"}.get(r["throttled"], "-"),
                    escape(iso(r["summary_at"] or r["first_seen"]))
                    if r["summary_at"]
                    else escape(iso(r["first_seen"])) + (" (in progress)" if r["kind"] != "run" else ""),
                ]
                for r in runs
            ],
            left=3,
        )

    def model(self, model: str) -> bytes:
        rows = group_rows(self.store, ("device_id", "board", "runtime", "delegate"), where={"model": model})
        if not rows:
            raise LookupError(f"no model {model!r}")
        body = [
            f"<p>{escape(model)} on every board that ran it, side by side.</p>",
            fleet_html(rows, ("device_id", "board", "runtime", "delegate"), tid="comparison"),
            latency_chart(rows, ("device_id", "delegate"), f"{model}: latency per board (ms)"),
            charts.bar_chart(
                f"{model}: throughput per board",
                [r["device_id"] for r in rows],
                {"FPS": [r["fps"] for r in rows]},
                "frames/s",
            ),
            "<h2>Runs</h2>",
            self._runs_table(run_list(self.store, model=model)),
        ]
        return _page(f"Model {model}", "".join(body))

    def _documents(self, scen: list[dict[str, Any]], sweeps: list[dict[str, Any]], limit: int = 200) -> str:
        """Tables of scenario results (verdict, headline, reasons) and sweeps (points, best figures)."""
        out = []
        if scen:
            out.append(
                "<h2>Scenario results</h2>"
                + _table(
                    "scenarios",
                    [
                        "run",
                        "device",
                        "model",
                        "scenario",
                        "verdict",
                        "headline",
                        "target qps",
                        "done qps",
                        "queries",
                        "reasons",
                        "received",
                    ],
                    [
                        [
                            _link(_run_href(r["device_id"], r["run_id"]), r["run_id"]),
                            escape(r["device_id"]),
                            _v(r["model"]),
                            _v(r["scenario"]),
                            _verdict(r["verdict"]),
                            escape(
                                headline_text(
                                    r["headline"]["metric"],
                                    r["headline"]["value"],
                                    r["headline"]["unit"],
                                    r["within_bound"],
                                    r["latency_bound_ms"],
                                )
                            ),
                            _v(r["target_qps"], ".4g"),
                            _v(r["completed_qps"], ".4g"),
                            _v(r["queries"]),
                            escape("; ".join(r["reasons"])) or "-",
                            escape(iso(r["received_at"])),
                        ]
                        for r in scen[:limit]
                    ],
                    left=6,
                )
            )
        if sweeps:
            out.append(
                "<h2>Sweeps</h2>"
                + _table(
                    "sweeps",
                    [
                        "run",
                        "device",
                        "model",
                        "points ok",
                        "unsupported",
                        "failed",
                        "INVALID",
                        "best items/s",
                        "at",
                        "lowest p99 ms",
                        "at",
                        "received",
                    ],
                    [
                        [
                            _link(_run_href(r["device_id"], r["run_id"]), r["run_id"]),
                            escape(r["device_id"]),
                            _v(r["model"]),
                            str(r["counts"]["ok"]),
                            str(r["counts"]["unsupported"]),
                            str(r["counts"]["failed"]),
                            str(r["invalid_points"]),
                            _v(r["best_throughput_items_per_s"], ".1f"),
                            _v(r["best_throughput_at"]),
                            _v(r["lowest_p99_ms"], ".4f"),
                            _v(r["lowest_p99_at"]),
                            escape(iso(r["received_at"])),
                        ]
                        for r in sweeps[:limit]
                    ],
                    left=3,
                )
            )
        return "".join(out)

    def run(self, device_id: str, run_id: str, q: dict[str, str]) -> bytes:
        try:
            d = run_detail(self.store, device_id, run_id)
        except UserError as e:
            raise LookupError(str(e)) from None
        if d["kind"] in ("sweep", "scenario"):
            return self._document_run(d, q)
        lat = d["latency_ms"]
        stage = q.get("stage", "e2e")
        if stage not in lat:
            stage = "e2e"
        samples = run_samples(self.store, device_id, run_id, [stage])[stage]
        h = histogram(samples, 40)
        info = [
            ("model", d["model"]),
            ("runtime", f"{d['runtime'] or '-'} {d['runtime_version'] or ''}"),
            ("delegate", d["delegate"]),
            ("threads", d["num_threads"]),
            ("scenario", d["scenario"]),
            ("board", d["board"]),
            ("source", d["source_kind"]),
            ("started", d["started_at"]),
            ("frames (summary / stored)", f"{d['frames'] if d['frames'] is not None else '-'} / {d['frames_stored']}"),
            ("FPS", None if d["fps"] is None else f"{d['fps']:.2f}"),
            ("verdict", d["verdict"]),
            ("power mean W", None if d["power_mean_w"] is None else f"{d['power_mean_w']:.3f}"),
            (
                "energy per inference mJ (gross / net)",
                " / ".join("-" if x is None else f"{x:.3f}" for x in (d["energy_mj_gross"], d["energy_mj_net"])),
            ),
            ("throttled", {None: "no data", 0: "no", 1: "yes"}.get(d["throttled"], "-")),
            ("max temperature °C", None if d["temp_max_c"] is None else f"{d['temp_max_c']:.1f}"),
            ("duplicates dropped / replayed batches", f"{d['duplicates']} / {d['replayed']}"),
        ]
        body = [
            _table("run-info", ["", ""], [[escape(k), _v(v)] for k, v in info], left=1),
            "<h2>Latency per stage (ms, stored frames)</h2>",
            _table(
                "run-latency",
                ["stage", "p50", "p90", "p99", "mean"],
                [[s, *(_v(lat[s][k]) for k in ("p50", "p90", "p99", "mean"))] for s in lat],
            ),
            "<p>Histogram of stage: "
            + " ".join(_link(f"{_run_href(device_id, run_id)}?stage={s}", s) for s in lat)
            + "</p>",
            charts.histogram_svg(
                f"{stage} latency, {samples.size} frames",
                h["counts"],
                h["edges"],
                "ms",
                {"p50": lat[stage]["p50"], "p99": lat[stage]["p99"]},
            ),
        ]
        base = q.get("baseline")
        if base:
            try:
                c = compare_runs(self.store, (device_id, run_id), find_run(self.store, base), stage=stage)
                body.append(self._compare(c))
            except UserError as e:
                body.append(f"<p class=yes>{escape(str(e))}</p>")
        body.append(
            '<form method=get><label>Compare with baseline run (DEVICE/RUN_ID): <input name=baseline value="'
            + escape(base or "")
            + f'"></label><input type=hidden name=stage value="{escape(stage)}">'
            " <button>compare</button></form>"
        )
        return _page(f"Run {device_id}/{run_id}", "".join(body))

    def _document_run(self, d: dict[str, Any], q: dict[str, str]) -> bytes:
        """A sweep's or a scenario's page: from its stored document (no frames are published for them)."""
        doc = d["summary"]
        what = "Sweep" if d["kind"] == "sweep" else "Scenario"
        title = f"{what} {d['device_id']}/{d['run_id']}"
        rt = (doc or {}).get("runtime") or {}
        info = [
            ("model", d["model"]),
            ("runtime", f"{d['runtime'] or '-'} {d['runtime_version'] or ''}"),
            ("delegate", d["delegate"]),
            ("XNNPACK", rt.get("xnnpack")),
            ("board", d["board"]),
            ("source", d["source_kind"]),
            ("started", d["started_at"]),
        ]
        if doc is None:
            meta = d.get("meta") or {}
            cfg = meta.get("config") or {}
            body = [
                _table("run-info", ["", ""], [[escape(k), _v(v)] for k, v in info], left=1),
                f"<p>In progress: the device announced this {what.lower()} (its meta is stored); its result has not"
                " arrived yet.</p>",
                "<pre>" + escape(json.dumps(cfg, indent=2)[:5000]) + "</pre>",
            ]
            return _page(title, "".join(body))
        if d["kind"] == "sweep":
            return _page(
                title,
                _table("run-info", ["", ""], [[escape(k), _v(v)] for k, v in info], left=1) + self._sweep(d, doc, q),
            )
        info += [("threads", d["num_threads"]), ("batch", doc.get("batch"))]
        return _page(
            title, _table("run-info", ["", ""], [[escape(k), _v(v)] for k, v in info], left=1) + self._scenario(d, doc)
        )

    def _sweep(self, d: dict[str, Any], doc: dict[str, Any], q: dict[str, str]) -> str:
        pts = d["sweep"]
        ok = [p for p in pts if p["status"] == "ok"]
        ov = sweep_overview(doc)
        g = doc["grid"]

        def series_name(p: dict[str, Any]) -> str:
            return f"{p['threads']} thread{'s' if p['threads'] != 1 else ''}, {p['instances']} instance{'s' if p['instances'] != 1 else ''}"

        def invalid(p: dict[str, Any]) -> str | None:
            return None if p.get("verdict") == "VALID" else "INVALID: " + "; ".join(p.get("reasons") or [])

        lat: dict[str, list] = {}
        thr: dict[str, list] = {}
        dashed = []
        for p in sorted(ok, key=lambda p: (p["threads"], p["instances"], p["batch"])):
            n = series_name(p)
            lat.setdefault(f"p50, {n}", []).append((p["batch"], p["latency_ms"]["p50"], invalid(p)))
            lat.setdefault(f"p99, {n}", []).append((p["batch"], p["latency_ms"]["p99"], invalid(p)))
            thr.setdefault(n, []).append((p["batch"], p["throughput_items_per_s"], invalid(p)))
            if f"p99, {n}" not in dashed:
                dashed.append(f"p99, {n}")
        missing = []
        for p in pts:
            if p["status"] != "ok":
                missing.append(
                    (
                        p["batch"],
                        f"batch {p['batch']}, threads {p['threads']}, instances {p['instances']}: "
                        f"{p['status']}: {p.get('reason', '')}",
                    )
                )
        batches = sorted({p["batch"] for p in pts})
        groups = sorted({series_name(p) for p in ok}, key=lambda n: [int(x.split()[0]) for x in n.split(", ")])
        front = ov["frontier"]
        scatter = [
            {
                "x": p["latency_ms"]["p99"],
                "y": p["throughput_items_per_s"],
                "group": series_name(p),
                "label": f"b{p['batch']} t{p['threads']} i{p['instances']}",
                "hollow": invalid(p) is not None,
                "note": invalid(p),
            }
            for p in ok
        ]
        # the latency distribution of one point: ?point=N, else the best-throughput point
        bt = (doc.get("best") or {}).get("throughput") or {}
        default = next(
            (
                p["index"]
                for p in ok
                if (p["batch"], p["threads"], p["instances"])
                == (bt.get("batch"), bt.get("threads"), bt.get("instances"))
            ),
            ok[0]["index"] if ok else None,
        )
        try:
            sel = int(q.get("point", default if default is not None else -1))
        except ValueError:
            sel = default if default is not None else -1
        chosen = next((p for p in ok if p["index"] == sel), None)
        href = _run_href(d["device_id"], d["run_id"])
        counts = ov["counts"]
        out = [
            "<h2>Sweep</h2>",
            f"<p id=sweep-summary>Grid: batch {escape(str(g['batch']))} x threads {escape(str(g['threads']))} x instances "
            f"{escape(str(g['instances']))}, instances as {escape(g['instance_mode'])}: {ov['points']} points, "
            f"{counts['ok']} ran ({ov['invalid_points']} INVALID), "
            f"<span class=unsupported>{counts['unsupported']} unsupported</span>, "
            f"<span class=failed>{counts['failed']} failed</span>. "
            f"Best throughput {_v(ov['best_throughput_items_per_s'], '.1f')} items/s at {_v(ov['best_throughput_at'])}; "
            f"lowest p99 {_v(ov['lowest_p99_ms'], '.4f')} ms per batch at {_v(ov['lowest_p99_at'])}.</p>",
            "<p class=note>"
            + escape(doc.get("latency_scope", ""))
            + ". Throughput: "
            + escape(doc.get("throughput_scope", ""))
            + ". Hollow points are INVALID (too few batches or too short);"
            " red crosses on the x axis are points that did not run (hover for the reason).</p>",
            charts.line_chart(
                "Latency vs batch size (p50 solid, p99 dashed)",
                lat,
                "batch size (items per invoke)",
                "latency per batch (ms)",
                dashed=dashed,
                missing=missing,
                kind="sweep-latency",
                xticks=batches,
                colors={n: groups.index(n.split(", ", 1)[1]) for n in lat},
            ),
            charts.line_chart(
                "Throughput vs batch size",
                thr,
                "batch size (items per invoke)",
                "throughput (items/s)",
                missing=missing,
                kind="sweep-throughput",
                xticks=batches,
                colors={n: groups.index(n) for n in thr},
            ),
            charts.scatter_chart(
                "Latency/throughput frontier across threads and instances (b = batch, t = threads, i = instances)",
                scatter,
                "p99 latency per batch (ms)",
                "throughput (items/s)",
                line=[(f["p99_ms"], f["throughput_items_per_s"]) for f in front],
                line_name="frontier (no point is both faster and higher)",
                groups=groups,
                kind="sweep-frontier",
            ),
        ]
        if chosen is not None:
            hist = chosen.get("latency_histogram_ms") or {}
            out.append(
                charts.histogram_svg(
                    f"Latency per batch at batch {chosen['batch']}, threads {chosen['threads']}, instances "
                    f"{chosen['instances']} ({chosen.get('batches', '-')} batches)",
                    hist.get("counts") or [],
                    hist.get("edges_ms") or [],
                    "ms",
                    {"p50": chosen["latency_ms"]["p50"], "p99": chosen["latency_ms"]["p99"]},
                    log_x=True,
                    what="batches",
                    xlabel="latency per batch (ms)",
                )
            )
            if not hist:
                out.append(
                    "<p class=note>This point was published without its histogram"
                    " (see the document's published_without).</p>"
                )
        rows = []
        for p in pts:
            pw = p.get("power") or {}
            per = p.get("latency_per_item_ms") or {}
            l_ = p.get("latency_ms") or {}
            status = p["status"] if p["status"] != "ok" else (p.get("verdict") or "ok")
            why = p.get("reason") or "; ".join(p.get("reasons") or [])
            rows.append(
                [
                    str(p["index"]),
                    str(p["batch"]),
                    str(p["threads"]),
                    str(p["instances"]),
                    f'<span class="{escape(status)}">{escape(status)}</span>',
                    _v(p.get("throughput_items_per_s"), ".1f"),
                    *(_v(l_.get(k), ".4f") for k in ("p50", "p90", "p99")),
                    _v(per.get("p50"), ".4f"),
                    _v(p.get("cpu_pct"), ".1f"),
                    _v(pw.get("energy_per_item_mj"), ".4f"),
                    _v(pw.get("mean_w"), ".3f"),
                    escape(why) or "-",
                    _link(f"{href}?point={p['index']}", "histogram") if p["status"] == "ok" else "-",
                ]
            )
        out.append(
            _table(
                "sweep",
                [
                    "#",
                    "batch",
                    "threads",
                    "instances",
                    "status",
                    "items/s",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "per item p50 ms",
                    "CPU %",
                    "mJ/item",
                    "power W",
                    "reason",
                    "distribution",
                ],
                rows,
                left=0,
            )
        )
        notes = [escape(n) for n in doc.get("notes", [])]
        if notes:
            out.append("<ul class=note>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>")
        return "".join(out)

    def _scenario(self, d: dict[str, Any], doc: dict[str, Any]) -> str:
        scen = doc["scenario"]
        h = doc["headline"]
        bound = d["latency_bound_ms"]
        out = [
            f"<h2>Scenario: {escape(scen)}</h2>",
            f'<p class=verdict id=verdict>Verdict: <span class="{escape(doc["verdict"])}">{escape(doc["verdict"])}</span>'
            f" · {escape(headline_text(d['headline_metric'], d['headline_value'], d['headline_unit'], None if d['within_bound'] is None else bool(d['within_bound']), bound))}</p>",
        ]
        if doc["reasons"]:
            out.append("<ul id=reasons>" + "".join(f"<li>{escape(r)}</li>" for r in doc["reasons"]) + "</ul>")
        hv = h["value"]
        facts = [
            (
                "headline",
                f"{h['metric']}: {'yes' if hv else 'no'}"
                if isinstance(hv, bool)
                else f"{h['metric']}: {'-' if hv is None else hv} {h['unit']}",
            )
        ]
        for k in (
            "target_qps",
            "scheduled_qps",
            "completed_qps",
            "qps",
            "samples_per_s",
            "queries",
            "samples",
            "queries_unserved",
            "queries_not_arrived",
            "overlatency_queries",
            "duration_s",
            "latency_bound_ms",
            "max_qps",
            "query_latency_ms",
        ):
            if doc.get(k) is not None:
                facts.append((k, doc[k]))
        es = doc.get("early_stopping")
        if isinstance(es, dict):
            facts.append(
                (
                    "early stopping (99 % confidence)",
                    f"p{es.get('percentile', 0):g} <= {es.get('estimate_ms')} ms"
                    if es.get("met")
                    else f"not met: {es.get('queries')} queries, {es.get('queries_needed')} needed",
                )
            )
        pw = doc.get("power") or {}
        if pw.get("available"):
            facts.append(("power mean W", pw.get("mean_w")))
            facts.append(
                (
                    "energy per query / per sample mJ",
                    f"{_v(pw.get('energy_per_query_mj'))} / {_v(pw.get('energy_per_sample_mj'))}",
                )
            )
        elif pw:
            facts.append(("power", pw.get("reason")))
        out.append(_table("scenario-facts", ["", ""], [[escape(k), _v(v)] for k, v in facts], left=1))
        blocks = [
            (name, doc[name]) for name in ("latency_ms", "queue_ms", "service_ms") if isinstance(doc.get(name), dict)
        ]
        if blocks:
            out.append(
                _table(
                    "scenario-latency",
                    ["", "mean", "p50", "p90", "p99", "p99.9", "max"],
                    [
                        [escape(n), *(_v(b.get(k), ".4f") for k in ("mean", "p50", "p90", "p99", "p999", "max"))]
                        for n, b in blocks
                    ],
                    left=1,
                )
            )
            out.append("<p class=note>" + escape(doc.get("latency_scope", "")) + "</p>")
        hist = doc.get("latency_histogram_ms")
        if isinstance(hist, dict):
            unit = "batches" if scen == "offline" else "queries"
            lat = doc.get("latency_ms") or {}
            marks = {
                "p50": lat.get("p50"),
                "p90" if scen == "single-stream" else "p99": lat.get("p90" if scen == "single-stream" else "p99"),
            }
            where = ""
            if bound:
                marks["bound"] = bound
                edges = hist.get("edges_ms") or []
                if edges and bound > edges[-1]:
                    where = f"; the {bound:g} ms bound lies above every query"
            count = f"{doc.get('queries', '-')} queries" if scen != "offline" else f"{doc.get('samples', '-')} samples"
            out.append(
                charts.histogram_svg(
                    f"{scen} latency distribution ({count}{where})",
                    hist.get("counts") or [],
                    hist.get("edges_ms") or [],
                    "ms",
                    marks,
                    log_x=True,
                    what=unit,
                    xlabel=f"latency per {'batch' if scen == 'offline' else 'query'} (ms)",
                )
            )
        if isinstance(doc.get("steps"), list):
            steps = doc["steps"]
            out.append(
                charts.scatter_chart(
                    "Server p99 latency vs offered load (max-QPS search)",
                    [
                        {
                            "x": st["target_qps"],
                            "y": st.get("p99_latency_ms"),
                            "group": "pass" if st["passed"] else "fail",
                            "label": f"{i + 1}",
                            "hollow": not st["passed"],
                            "note": "; ".join(st.get("reasons") or []),
                        }
                        for i, st in enumerate(steps)
                    ],
                    "offered load (queries/s, Poisson)",
                    "p99 latency from scheduled arrival (ms)",
                    hline=(doc.get("latency_bound_ms"), f"bound {doc.get('latency_bound_ms')} ms"),
                    vline=(doc.get("max_qps"), f"max {doc.get('max_qps')} qps") if doc.get("max_qps") else None,
                    groups=["pass", "fail"],
                    kind="max-qps",
                )
            )
            out.append(
                _table(
                    "steps",
                    ["step", "phase", "target qps", "p99 ms", "done qps", "queries", "verdict", "reasons"],
                    [
                        [
                            str(i + 1),
                            _v(st.get("phase")),
                            _v(st["target_qps"], ".4g"),
                            _v(st.get("p99_latency_ms"), ".4f"),
                            _v(st.get("completed_qps"), ".4g"),
                            _v(st.get("queries")),
                            _verdict(st["verdict"]),
                            escape("; ".join(st.get("reasons") or [])) or "-",
                        ]
                        for i, st in enumerate(steps)
                    ],
                    left=0,
                )
            )
        for label, items in (("warning", doc.get("warnings") or []), ("note", doc.get("notes") or [])):
            if items:
                out.append("<ul class=note>" + "".join(f"<li>{label}: {escape(x)}</li>" for x in items) + "</ul>")
        return "".join(out)

    def _compare(self, c: dict[str, Any]) -> str:
        rows = []
        for m in c["metrics"]:
            bn = m.get("beyond_noise")
            ci = m.get("ci95")
            rows.append(
                [
                    escape(f"{m['metric']} ({m['unit']})"),
                    _v(m["baseline"]),
                    _v(m["run"]),
                    _v(m["change"], "+.3f"),
                    _v(m["change_pct"], "+.1f"),
                    f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "-",
                    {True: "<span class=yes>yes</span>", False: "no", None: "unknown"}[bn],
                ]
            )
        return (
            f"<h2>Against baseline {escape(c['baseline'])}</h2>"
            + _table(
                "compare", ["metric", "baseline", "this run", "change", "change %", "95% CI", "beyond noise"], rows
            )
            + f"<p class=note>{escape(c['criterion'])}</p>"
        )

    def metrics(self) -> bytes:
        if self._metrics is None:
            from edgebench.collector.views.metrics import MetricsEndpoint

            self._metrics = MetricsEndpoint(self.store, self.metrics_window_s, self.ingest)
        return self._metrics.render()

    # -- routing -------------------------------------------------------------------
    def handle(self, path: str, query: str) -> tuple[int, str, bytes]:
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if not parts:
            return 200, "text/html; charset=utf-8", self.overview(q)
        head = parts[0]
        if head == "metrics" and len(parts) == 1:
            from prometheus_client import CONTENT_TYPE_LATEST

            return 200, CONTENT_TYPE_LATEST, self.metrics()
        if head == "healthz":
            return 200, "text/plain", b"ok\n"
        if head == "device" and len(parts) == 2:
            return 200, "text/html; charset=utf-8", self.device(parts[1])
        if head == "model" and len(parts) == 2:
            return 200, "text/html; charset=utf-8", self.model(parts[1])
        if head == "run" and len(parts) == 3:
            return 200, "text/html; charset=utf-8", self.run(parts[1], parts[2], q)
        if head == "api" and len(parts) >= 2:
            return 200, "application/json", json.dumps(self.api(parts[1:], q), default=str).encode()
        raise LookupError(f"no page {path!r}")

    def api(self, parts: list[str], q: dict[str, str]) -> Any:
        if parts == ["fleet"]:
            by = tuple(q.get("by", "device_id,model").split(","))
            return group_rows(self.store, by)
        if parts == ["devices"]:
            return device_rows(self.store)
        if parts[0] == "run" and len(parts) == 3:
            try:
                d = run_detail(self.store, parts[1], parts[2])
            except UserError as e:
                raise LookupError(str(e)) from None
            d.pop("summary", None)
            d.pop("meta", None)
            return d
        raise LookupError(f"no API {'/'.join(parts)!r}")


def make_handler(dash: Dashboard):  # noqa: C901
    dash_ = dash

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgebench-collector"
        dash = dash_

        def log_message(self, fmt, *args):  # through logging, not stderr
            log.info("%s %s", self.address_string(), fmt % args)

        def _authorized(self, query: str) -> tuple[bool, str | None]:
            if not dash.token:
                return True, None
            tok = dash.token.encode()
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), tok):
                return True, None
            for part in self.headers.get("Cookie", "").split(";"):
                k, _, v = part.strip().partition("=")
                if k == "edgebench_token" and hmac.compare_digest(unquote(v).encode(), tok):
                    return True, None
            qt = parse_qs(query).get("token", [""])[-1]
            if qt and hmac.compare_digest(qt.encode(), tok):
                return True, f"edgebench_token={quote(dash.token)}; HttpOnly; SameSite=Strict; Path=/"
            return False, None

        def _send(self, code: int, ctype: str, body: bytes, cookie: str | None = None, head: bool = False):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'",
            )
            if cookie:
                self.send_header("Set-Cookie", cookie)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def do_GET(self, head: bool = False):
            u = urlsplit(self.path)
            ok, cookie = self._authorized(u.query)
            if not ok:
                self._send(
                    401,
                    "text/plain",
                    b"unauthorized: give the token (Authorization: Bearer ... or ?token=...)\n",
                    head=head,
                )
                return
            try:
                code, ctype, body = dash.handle(u.path, u.query)
            except LookupError as e:
                code, ctype, body = 404, "text/html; charset=utf-8", _page("Not found", f"<p>{escape(str(e))}</p>")
            except Exception:
                log.exception("error rendering %s", u.path)
                code, ctype, body = 500, "text/plain", b"internal error; see the collector's log\n"
            self._send(code, ctype, body, cookie, head=head)

        def do_HEAD(self):
            self.do_GET(head=True)

        def _refuse(self):
            self._send(405, "text/plain", b"read-only: only GET and HEAD\n")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    return Handler


class WebServer:
    def __init__(self, dash: Dashboard, bind: str = "127.0.0.1", port: int = 8080):
        try:
            self.httpd = ThreadingHTTPServer((bind, port), make_handler(dash))
        except OSError as e:
            raise UserError(f"cannot serve the dashboard on {bind}:{port}: {e.strerror or e}") from None
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.bind = bind
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.bind if self.bind not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{self.port}/"

    def start(self) -> "WebServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="edgebench-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
