"""The read-only web dashboard and ``/metrics``, on the standard library's HTTP server.

Pages: fleet overview (``/``), device (``/device/<id>``), model comparison across boards
(``/model/<name>``), run (``/run/<device>/<run_id>``): for a per-frame run its latency
histogram per stage and a comparison with a chosen ``?baseline=DEVICE/RUN``; for a sweep
(edgebench.sweep/1) its curves (latency and throughput vs batch size, the latency/throughput
frontier across threads and instances, the latency distribution of any point, ``?point=N``)
and every point, unsupported ones with their reason; for a scenario (edgebench.scenario/1)
its verdict with reasons, headline, latency histogram, and a max-QPS search's steps; the
capacity plan (``/plan``, a form) and the regression watch (``/regressions``). JSON under
``/api/``; Prometheus at ``/metrics``. Charts are inline SVG made on the server.

This module is the HTTP side: routing, the token, headers. Each page's data is shaped in
``pages/`` (one module per page) and its markup is a Jinja2 template in ``templates/``
(templating.py: autoescaped).

Only GET and HEAD are served. Bound to 127.0.0.1 unless told otherwise. With a token,
every request needs ``Authorization: Bearer <token>``, or ``?token=<token>`` once (a
cookie then carries it).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from edgebench.agent.errors import UserError
from edgebench.collector.aggregate import DEFAULT_GROUP, GROUP_COLUMNS, device_rows, group_rows, run_detail
from edgebench.collector.views.pages.device import device as device_page
from edgebench.collector.views.pages.fleet import overview as overview_page
from edgebench.collector.views.pages.model import model as model_page
from edgebench.collector.views.pages.run import run as run_page
from edgebench.collector.views.report import finite, printable
from edgebench.collector.views.templating import render

log = logging.getLogger("edgebench.web")

HTML = "text/html; charset=utf-8"
#: The headers every answer carries: nothing cached, no content sniffing, and a page may
#: load nothing (charts are inline SVG, styles inline, no scripts).
SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'"),
)
TOKEN_COOKIE = "edgebench_token"


class Dashboard:
    def __init__(self, store, *, token: str | None = None, ingest=None):
        self.store = store
        self.token = token
        self.ingest = ingest
        self._metrics = None

    # -- pages -------------------------------------------------------------------
    def overview(self, q: dict[str, str]) -> bytes:
        return render(*overview_page(self.store))

    def device(self, device_id: str, q: dict[str, str] | None = None) -> bytes:
        return render(*device_page(self.store, device_id, q))

    def model(self, model: str) -> bytes:
        return render(*model_page(self.store, model))

    def run(self, device_id: str, run_id: str, q: dict[str, str]) -> bytes:
        return render(*run_page(self.store, device_id, run_id, q))

    def metrics(self) -> bytes:
        if self._metrics is None:
            from edgebench.collector.views.metrics import MetricsEndpoint

            self._metrics = MetricsEndpoint(self.store, self.ingest)
        return self._metrics.render()

    # -- routing -------------------------------------------------------------------
    def handle(self, path: str, query: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``; LookupError for no such page."""
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if not parts:
            return 200, HTML, self.overview(q)
        head, n = parts[0], len(parts)
        if head == "metrics" and n == 1:
            from prometheus_client import CONTENT_TYPE_LATEST

            return 200, CONTENT_TYPE_LATEST, self.metrics()
        if head == "healthz":
            return 200, "text/plain", b"ok\n"
        if head == "device" and n == 2:
            return 200, HTML, self.device(parts[1], q)
        if head == "model" and n == 2:
            return 200, HTML, self.model(parts[1])
        if head == "run" and n == 3:
            return 200, HTML, self.run(parts[1], parts[2], q)
        if head in ("plan", "regressions") and n == 1:
            from edgebench.collector.views.pages import answers

            page = answers.plan(self.store, q) if head == "plan" else answers.regressions(self.store)
            return 200, HTML, render(*page)
        if head == "api" and n >= 2:
            body = json.dumps(finite(self.api(parts[1:], q)), default=str, allow_nan=False)
            return 200, "application/json", body.encode()
        raise LookupError(f"no page {path!r}")

    def api(self, parts: list[str], q: dict[str, str]) -> Any:
        if parts == ["fleet"]:
            by = tuple(q["by"].split(",")) if q.get("by") else DEFAULT_GROUP
            bad = [k for k in by if k not in GROUP_COLUMNS]
            if bad:
                raise UserError(f"cannot group by {printable(bad[0])[:80]!r}: use one of {', '.join(GROUP_COLUMNS)}")
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


def authorize(token: str | None, headers, query: str) -> tuple[bool, str | None]:
    """Whether a request may be served, and the cookie to set: any request without a token
    configured; else the token as a bearer, in the cookie, or once as ``?token=`` (which
    sets the cookie). Compared in constant time."""
    if not token:
        return True, None
    tok = token.encode()
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), tok):
        return True, None
    for part in headers.get("Cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == TOKEN_COOKIE and hmac.compare_digest(unquote(v).encode(), tok):
            return True, None
    qt = parse_qs(query).get("token", [""])[-1]
    if qt and hmac.compare_digest(qt.encode(), tok):
        return True, f"{TOKEN_COOKIE}={quote(token)}; HttpOnly; SameSite=Strict; Path=/"
    return False, None


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the dashboard's pages; every other method is refused (405).
    make_handler gives a subclass bound to one Dashboard."""

    server_version = "edgebench-collector"
    dash: Dashboard

    def log_message(self, fmt, *args):  # through logging, not stderr
        log.info("%s %s", self.address_string(), fmt % args)

    def _send(self, code: int, ctype: str, body: bytes, cookie: str | None = None, head: bool = False):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _answer(self, u) -> tuple[int, str, bytes]:
        try:
            return self.dash.handle(u.path, u.query)
        except LookupError as e:
            return 404, HTML, render("not_found.html", title="Not found", message=str(e))
        except UserError as e:  # a bad query: one line, no traceback
            return 400, "text/plain; charset=utf-8", f"bad request: {e}\n".encode()
        except Exception:
            log.exception("error rendering %s", u.path)
            return 500, "text/plain", b"internal error; see the collector's log\n"

    def do_GET(self, head: bool = False):
        u = urlsplit(self.path)
        ok, cookie = authorize(self.dash.token, self.headers, u.query)
        if not ok:
            body = b"unauthorized: give the token (Authorization: Bearer ... or ?token=...)\n"
            self._send(401, "text/plain", body, head=head)
            return
        code, ctype, body = self._answer(u)
        self._send(code, ctype, body, cookie, head=head)

    def do_HEAD(self):
        self.do_GET(head=True)

    def _refuse(self):
        self._send(405, "text/plain", b"read-only: only GET and HEAD\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse


def make_handler(dash: Dashboard) -> type[Handler]:
    """A request handler class serving ``dash``."""
    return type("Handler", (Handler,), {"dash": dash})


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
