"""Every dashboard page with hostile strings from the fleet: model, runtime, delegate and
board names, reasons, notes, warnings, scopes, an inventory and an agent version carrying
markup, quotes and control characters. They must reach the page as text, never as markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import quote

import numpy as np
import pytest

from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.web import Dashboard, WebServer
from tests.support.documents import meta_of, scenario_doc, summary_of, sweep_doc
from tests.support.fleet import as_message, columns, frames, info, meta, result_doc, summary

#: markup, both quote kinds (to leave an attribute), an entity that must stay literal, and
#: C0, ESC, DEL and C1 control characters
HOSTILE = '<script>alert("x")</script>"\'><img src=x onerror=alert(1)>&amp;\x01\x1b\x7f\x85'
MODEL = HOSTILE + ".tflite"
#: what a person sees: the same text, control characters as U+FFFD (HTML has no escape for them)
SHOWN = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", "\ufffd", HOSTILE)
#: every element the pages may contain; a hostile string that became markup adds another
ELEMENTS = {
    "html", "head", "meta", "title", "style", "body", "nav", "a", "h1", "h2", "p", "table", "thead",
    "tbody", "tr", "th", "td", "span", "ul", "li", "pre", "form", "label", "input", "button",
    "svg", "text", "line", "rect", "path", "circle", "g", "div", "wbr",
}  # fmt: skip


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def _hostile_fleet(store) -> None:
    rng = np.random.default_rng(1)
    dev = "evil-dev"
    hello = info(dev, 1, 1, version='<b>"0.1"</b>\x01')
    hello["inventory"] = {"model": HOSTILE, "machine": HOSTILE}
    run_meta = meta(dev, 1, 2, "r1", model=MODEL, board=HOSTILE)
    run_meta["runtime"] = dict(run_meta["runtime"], name=HOSTILE, delegate=HOSTILE)
    result = result_doc(dev, "r1", model=MODEL, runtime=HOSTILE, delegate=HOSTILE, board=HOSTILE)
    base = result_doc(dev, "r0", model=MODEL)
    msgs = [as_message(hello), as_message(run_meta), as_message(frames(dev, 1, 3, "r1", 0, columns(20, rng)))]
    msgs += [as_message(summary(dev, 1, 4, result)), as_message(meta(dev, 1, 5, "r0", model=MODEL))]
    msgs += [as_message(frames(dev, 1, 6, "r0", 0, columns(20, rng, 2.0))), as_message(summary(dev, 1, 7, base))]
    sw = sweep_doc(dev, "sw1")
    sw["model"] = dict(sw["model"], name=MODEL)
    sw["runtime"] = dict(sw["runtime"], name=HOSTILE)
    sw.update(latency_scope=HOSTILE, throughput_scope=HOSTILE, notes=[HOSTILE])
    for p in sw["points"]:
        if p["status"] == "ok" and p["batch"] == 2:
            p.update(verdict="INVALID", reasons=[HOSTILE])
        elif p["status"] != "ok":
            p["reason"] = HOSTILE
    sw["counts"] = {"ok": 6, "unsupported": 2, "failed": 0}
    sc = scenario_doc(dev, "sc1", "server", valid=False)
    sc["model"] = dict(sc["model"], name=MODEL)
    sc.update(reasons=[HOSTILE], warnings=[HOSTILE], notes=[HOSTILE], latency_scope=HOSTILE)
    sc["power"] = {"available": False, "reason": HOSTILE}
    fm = scenario_doc(dev, "sc2", "server", valid=True)
    for k in ("queue_ms", "service_ms", "within_bound", "latency_ms", "latency_histogram_ms"):
        fm.pop(k)
    fm.update(scenario="find-max-qps", latency_bound_ms=10.0, max_qps=300.0, target_qps=None)
    fm["headline"] = {"metric": "max_qps", "value": 300.0, "unit": "queries/s"}
    fm["steps"] = [
        {"phase": HOSTILE, "target_qps": 100.0, "verdict": "VALID", "passed": True, "p99_latency_ms": 3.0},
        {"target_qps": 400.0, "verdict": "INVALID", "passed": False, "p99_latency_ms": 30.0, "reasons": [HOSTILE]},
    ]
    pending = sweep_doc(dev, "sw2")
    pending["model"] = dict(pending["model"], name=MODEL)
    seq = 8
    for doc in (sw, sc, fm):
        msgs += [as_message(meta_of(doc, seq=seq)), as_message(summary_of(doc, seq=seq + 1))]
        seq += 2
    msgs.append(as_message(dict(meta_of(pending, seq=seq), config={"note": HOSTILE})))
    store.apply(msgs)


PAGES = [
    "/",
    "/device/evil-dev",
    "/model/" + quote(MODEL, safe=""),
    "/run/evil-dev/r1",
    "/run/evil-dev/r1?baseline=evil-dev/r0",
    "/run/evil-dev/r1?baseline=" + quote(HOSTILE, safe="") + "&stage=" + quote(HOSTILE, safe=""),
    "/run/evil-dev/sw1",
    "/run/evil-dev/sw1?point=2",
    "/run/evil-dev/sw2",
    "/run/evil-dev/sc1",
    "/run/evil-dev/sc2",
]


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    store = SQLiteStore(str(tmp_path_factory.mktemp("escaping") / "evil.db"))
    _hostile_fleet(store)
    yield Dashboard(store)
    store.close()


@pytest.mark.parametrize("url", PAGES)
def test_hostile_strings_are_text_on_every_page(dash, url):
    path, _, query = url.partition("?")
    code, ctype, body = dash.handle(path, query)
    assert code == 200 and ctype.startswith("text/html")
    page = body.decode()
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", page), "a raw control character on the page"
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert parsed.tags <= ELEMENTS, parsed.tags - ELEMENTS
    assert not [a for a, _ in parsed.attrs if a.startswith("on") or a == "src"]
    # the hostile string is on the page, whole, as the text a person reads
    assert SHOWN in "".join(parsed.text)


def test_hostile_string_in_an_attribute_stays_inside_it(dash):
    """The baseline box echoes the query: quotes in it must not end the value attribute."""
    code, _, body = dash.handle("/run/evil-dev/r1", "baseline=" + quote(HOSTILE, safe=""))
    parsed = _Page()
    parsed.feed(body.decode())
    values = [v for a, v in parsed.attrs if a == "value"]
    assert code == 200 and SHOWN in values


def test_not_found_page_escapes_the_path(dash):
    web = WebServer(dash, "127.0.0.1", 0).start()
    try:
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(web.url + "device/" + quote(HOSTILE, safe=""), timeout=30)
        page = e.value.read().decode()
    finally:
        web.stop()
    assert e.value.code == 404
    parsed = _Page()
    parsed.feed(page)
    assert parsed.tags <= ELEMENTS and "<script" not in page
    assert f"no device {HOSTILE!r}" in "".join(parsed.text)  # repr: control characters as \x01
