"""The read-only web dashboard and ``/metrics``, on the standard library's HTTP server.

Pages: fleet overview (``/``), device (``/device/<id>``), model comparison across boards
(``/model/<name>``), run (``/run/<device>/<run_id>``: latency histogram, sweep curves when
the summary has a sweep, comparison with a chosen ``?baseline=DEVICE/RUN``); JSON under
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

from agent.errors import UserError

from . import charts
from .aggregate import (
    compare_runs, device_rows, find_run, group_rows, histogram, quarantine_counts, run_detail, run_list,
    run_samples,
)
from .report import iso

log = logging.getLogger("edgebench.web")

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;font-size:13px}
th{background:#f3f3f3} td.l,th.l{text-align:left}
nav a{margin-right:1em} .online{color:#109618} .offline{color:#dc3912} .stopped{color:#888}
.note{color:#666;font-size:12px} .yes{color:#dc3912;font-weight:bold}
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
        f'<p class=note>edgebench collector · page made {escape(iso(time.time()))}</p></body></html>'
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
    return _table("devices", ["device", "state", "last seen", "agent", "board", "runs", "seq gaps", "duplicates",
                              "replayed"], rows, left=5)


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
            str(r["runs"]), str(r["frames"]), _v(r["fps"], ".1f"),
            *(_v(lat["inference"][k]) for k in ("p50", "p90", "p99")),
            *(_v(lat["e2e"][k]) for k in ("p50", "p90", "p99")),
            _v(e.get("gross")), _v(e.get("net")),
            "-" if thr is None else f"{thr}/{r['thermal_runs']}",
            str(r["missing_frames"]), str(r["duplicates"]), str(r["replayed"]),
        ]
        out.append(cells)
    head = [{"device_id": "device"}.get(k, k) for k in by] + [
        "runs", "frames", "FPS", "inference p50 ms", "p90", "p99", "e2e p50 ms", "p90", "p99",
        "mJ/inference gross", "net", "throttled runs", "missing frames", "duplicates", "replayed",
    ]
    return _table(tid, head, out, left=len(by))


def latency_chart(rows: list[dict[str, Any]], label_keys: tuple[str, ...], title: str) -> str:
    labels = [" / ".join(str(r.get(k) or "-") for k in label_keys) for r in rows]
    return charts.bar_chart(
        title, labels,
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
            + (", ".join(f"{escape(k)} {v}" for k, v in qc.items()) or "none") + ".</p>",
            "<h2>Devices</h2>", devices_html(devs),
            "<h2>Fleet: per device and model</h2>", fleet_html(rows, ("device_id", "model")),
            '<p class=note>Latency percentiles are exact, over every stored frame of the group; FPS = frames / '
            "measured time of completed runs; energy per inference is frame-weighted over runs that measured power.</p>",
            latency_chart(rows, ("device_id", "model"), "Latency per device and model (ms)"),
        ]
        models = sorted({r["model"] for r in rows if r["model"]})
        if models:
            body.append("<h2>Compare a model across boards</h2><ul>"
                        + "".join(f"<li>{_link(_model_href(m), m)}</li>" for m in models) + "</ul>")
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
            "<h2>Runs</h2>", self._runs_table(runs),
            "<h2>Sessions (data quality)</h2>",
            _table("sessions", ["session", "first seq", "last seq", "stored", "seq gaps", "duplicates", "replayed",
                                "first seen", "last seen"],
                   [[str(s), str(a), str(b), str(n), str(max(0, b - a + 1 - n)), str(du), str(rp), escape(iso(f)),
                     escape(iso(la))] for s, a, b, n, du, rp, f, la in sessions], left=1),
            "<h2>Inventory</h2><pre>" + escape(json.dumps(inv, indent=2)[:20000]) + "</pre>",
        ]
        return _page(f"Device {device_id}", "".join(body))

    def _runs_table(self, runs: list[dict[str, Any]]) -> str:
        return _table(
            "runs",
            ["run", "device", "model", "runtime", "delegate", "threads", "scenario", "frames", "stored", "FPS",
             "mJ/inf", "throttled", "sweep", "received"],
            [[_link(_run_href(r["device_id"], r["run_id"]), r["run_id"]), escape(r["device_id"]), _v(r["model"]),
              _v(r["runtime"]), _v(r["delegate"]), _v(r["num_threads"]), _v(r["scenario"]), _v(r["frames"]),
              _v(r["frames_stored"]), _v(r["fps"], ".1f"), _v(r["energy_mj_gross"]),
              {None: "-", 0: "no", 1: "yes"}.get(r["throttled"], "-"), "yes" if r["has_sweep"] else "",
              escape(iso(r["summary_at"] or r["first_seen"]))] for r in runs],
            left=2,
        )

    def model(self, model: str) -> bytes:
        rows = group_rows(self.store, ("device_id", "board", "runtime", "delegate"), where={"model": model})
        if not rows:
            raise LookupError(f"no model {model!r}")
        body = [
            f"<p>{escape(model)} on every board that ran it, side by side.</p>",
            fleet_html(rows, ("device_id", "board", "runtime", "delegate"), tid="comparison"),
            latency_chart(rows, ("device_id", "delegate"), f"{model}: latency per board (ms)"),
            charts.bar_chart(f"{model}: throughput per board", [r["device_id"] for r in rows],
                             {"FPS": [r["fps"] for r in rows]}, "frames/s"),
            "<h2>Runs</h2>", self._runs_table(run_list(self.store, model=model)),
        ]
        return _page(f"Model {model}", "".join(body))

    def run(self, device_id: str, run_id: str, q: dict[str, str]) -> bytes:
        try:
            d = run_detail(self.store, device_id, run_id)
        except UserError as e:
            raise LookupError(str(e)) from None
        lat = d["latency_ms"]
        stage = q.get("stage", "e2e")
        if stage not in lat:
            stage = "e2e"
        samples = run_samples(self.store, device_id, run_id, [stage])[stage]
        h = histogram(samples, 40)
        info = [
            ("model", d["model"]), ("runtime", f"{d['runtime'] or '-'} {d['runtime_version'] or ''}"),
            ("delegate", d["delegate"]), ("threads", d["num_threads"]), ("scenario", d["scenario"]),
            ("board", d["board"]), ("source", d["source_kind"]), ("started", d["started_at"]),
            ("frames (summary / stored)", f"{d['frames'] if d['frames'] is not None else '-'} / {d['frames_stored']}"),
            ("FPS", None if d["fps"] is None else f"{d['fps']:.2f}"),
            ("power mean W", None if d["power_mean_w"] is None else f"{d['power_mean_w']:.3f}"),
            ("energy per inference mJ (gross / net)",
             " / ".join("-" if x is None else f"{x:.3f}" for x in (d["energy_mj_gross"], d["energy_mj_net"]))),
            ("throttled", {None: "no data", 0: "no", 1: "yes"}.get(d["throttled"], "-")),
            ("max temperature °C", None if d["temp_max_c"] is None else f"{d['temp_max_c']:.1f}"),
            ("duplicates dropped / replayed batches", f"{d['duplicates']} / {d['replayed']}"),
        ]
        body = [
            _table("run-info", ["", ""], [[escape(k), _v(v)] for k, v in info], left=1),
            "<h2>Latency per stage (ms, stored frames)</h2>",
            _table("run-latency", ["stage", "p50", "p90", "p99", "mean"],
                   [[s, *(_v(lat[s][k]) for k in ("p50", "p90", "p99", "mean"))] for s in lat]),
            "<p>Histogram of stage: " + " ".join(
                _link(f"{_run_href(device_id, run_id)}?stage={s}", s) for s in lat) + "</p>",
            charts.histogram_svg(f"{stage} latency, {samples.size} frames", h["counts"], h["edges"], "ms",
                                 {"p50": lat[stage]["p50"], "p99": lat[stage]["p99"]}),
        ]
        if d["sweep"]:
            body.append(self._sweep(d["sweep"]))
        base = q.get("baseline")
        if base:
            try:
                c = compare_runs(self.store, (device_id, run_id), find_run(self.store, base), stage=stage)
                body.append(self._compare(c))
            except UserError as e:
                body.append(f"<p class=yes>{escape(str(e))}</p>")
        body.append(
            '<form method=get><label>Compare with baseline run (DEVICE/RUN_ID): <input name=baseline value="'
            + escape(base or "") + f'"></label><input type=hidden name=stage value="{escape(stage)}">'
            " <button>compare</button></form>"
        )
        return _page(f"Run {device_id}/{run_id}", "".join(body))

    def _sweep(self, pts: list[dict[str, Any]]) -> str:
        series_lat: dict[str, list] = {}
        series_thr: dict[str, list] = {}
        for p in pts:
            if p["status"] not in ("ok", "valid", None):
                continue
            name = f"threads {p['threads'] if p['threads'] is not None else '-'}, instances {p['instances']}"
            series_lat.setdefault(name, []).append((p["batch"], p["latency_ms"].get("p50", p["latency_ms"].get("mean"))))
            series_thr.setdefault(name, []).append((p["batch"], p["throughput_ips"]))
        rows = [[_v(p["batch"]), _v(p["threads"]), _v(p["instances"]),
                 *(_v(p["latency_ms"].get(k)) for k in ("mean", "p50", "p90", "p99")),
                 _v(p["latency_per_item_ms"]), _v(p["throughput_ips"], ".1f"), _v(p["status"])] for p in pts]
        return "".join([
            "<h2>Sweep</h2>",
            charts.line_chart("Latency per batch vs batch size (p50, ms)", series_lat, "batch size", "ms"),
            charts.line_chart("Throughput vs batch size (items/s)", series_thr, "batch size", "items/s"),
            _table("sweep", ["batch", "threads", "instances", "mean ms", "p50 ms", "p90 ms", "p99 ms",
                             "per item ms", "items/s", "status"], rows, left=0),
        ])

    def _compare(self, c: dict[str, Any]) -> str:
        rows = []
        for m in c["metrics"]:
            bn = m.get("beyond_noise")
            ci = m.get("ci95")
            rows.append([
                escape(f"{m['metric']} ({m['unit']})"), _v(m["baseline"]), _v(m["run"]), _v(m["change"], "+.3f"),
                _v(m["change_pct"], "+.1f"), f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "-",
                {True: '<span class=yes>yes</span>', False: "no", None: "unknown"}[bn],
            ])
        return (f"<h2>Against baseline {escape(c['baseline'])}</h2>"
                + _table("compare", ["metric", "baseline", "this run", "change", "change %", "95% CI", "beyond noise"],
                         rows) + f"<p class=note>{escape(c['criterion'])}</p>")

    def metrics(self) -> bytes:
        if self._metrics is None:
            from .metrics import MetricsEndpoint

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
            return d
        raise LookupError(f"no API {'/'.join(parts)!r}")


def make_handler(dash: Dashboard):
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
            self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'")
            if cookie:
                self.send_header("Set-Cookie", cookie)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def do_GET(self, head: bool = False):
            u = urlsplit(self.path)
            ok, cookie = self._authorized(u.query)
            if not ok:
                self._send(401, "text/plain", b"unauthorized: give the token (Authorization: Bearer ... or ?token=...)\n",
                           head=head)
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
