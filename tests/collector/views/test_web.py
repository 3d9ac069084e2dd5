"""The dashboard: HTTP behaviour (read-only, token), /metrics, and a real headless browser
(Debian's chromium + chromedriver, driven by selenium) finding the fleet table and charts."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.web import Dashboard, WebServer
from tests.support.browser import chromium_driver
from tests.support.documents import meta_of, scenario_doc, summary_of, sweep_doc
from tests.support.fleet import as_message, columns, frames, info, meta, result_doc, status, summary
from tests.support.paths import ROOT

TOKEN = "s3cret-token"


def _fill(store) -> None:
    rng = np.random.default_rng(3)
    for d, dev in enumerate(("pi-kitchen", "jetson-lab")):
        msgs = [
            as_message(status(dev, 1, "online"), True),
            as_message(info(dev, 1, 1)),
            as_message(meta(dev, 1, 2, "r1")),
        ]
        allc = {s: [] for s in protocol.STAGES}
        for b in range(4):
            cols = columns(250, rng, 1 + d)
            for s in protocol.STAGES:
                allc[s] += cols[s]
            msgs.append(as_message(frames(dev, 1, 3 + b, "r1", b * 250, cols)))
        extra = (
            {}
            if d == 0
            else {
                "power": {"energy_per_inference_mj": {"gross": 3.0, "net": 1.0}},
                "throttling": {"flags": {"soft_temp_limit": True}},
            }
        )
        msgs.append(as_message(summary(dev, 1, 9, result_doc(dev, "r1", allc, **extra))))
        if d == 0:  # a sweep and a scenario result too (no frames)
            sw, sc = sweep_doc(dev, "sw1"), scenario_doc(dev, "sc1", "server", valid=False)
            msgs += [
                as_message(meta_of(sw, seq=10)),
                as_message(summary_of(sw, seq=11)),
                as_message(meta_of(sc, seq=12)),
                as_message(summary_of(sc, seq=13)),
            ]
        store.apply(msgs)


@pytest.fixture(scope="module")
def site():
    d = tempfile.mkdtemp(prefix="edgebench-web-")
    store = SQLiteStore(os.path.join(d, "web.db"))
    _fill(store)
    web = WebServer(Dashboard(store, token=TOKEN), "127.0.0.1", 0).start()
    yield web
    web.stop()
    store.close()
    shutil.rmtree(d, ignore_errors=True)


def get(url: str, headers: dict | None = None, method: str = "GET"):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def test_bound_to_loopback_read_only_and_token(site):
    assert site.bind == "127.0.0.1"
    assert get(site.url)[0] == 401
    assert get(site.url, {"Authorization": "Bearer wrong"})[0] == 401
    code, _, body = get(site.url, {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and 'id="fleet"' in body and "pi-kitchen" in body
    code, headers, _ = get(site.url + f"?token={TOKEN}")
    assert code == 200 and "edgebench_token=" in headers["Set-Cookie"]
    assert get(site.url, {"Cookie": f"edgebench_token={TOKEN}"})[0] == 200
    assert get(site.url, {"Authorization": f"Bearer {TOKEN}"}, method="POST")[0] == 405
    assert get(site.url + "device/nobody", {"Authorization": f"Bearer {TOKEN}"})[0] == 404
    code, _, body = get(site.url + "device/%3Cscript%3E", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 404 and "<script>" not in body


def test_metrics_are_valid_prometheus(site):
    from prometheus_client.parser import text_string_to_metric_families

    code, headers, body = get(site.url + "metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    up = {s.labels["device_id"]: s.value for s in fams["edgebench_device_up"].samples}
    assert up == {"pi-kitchen": 1.0, "jetson-lab": 1.0}
    hist = fams["edgebench_frame_latency_seconds"]
    counts = [s for s in hist.samples if s.name.endswith("_count") and s.labels["stage"] == "e2e"]
    assert sorted(s.value for s in counts) == [1000.0, 1000.0]
    inf = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
    assert all(s.value == 1000.0 for s in inf)
    p99 = [s for s in fams["edgebench_last_run_latency_p99_seconds"].samples if s.labels["stage"] == "e2e"]
    assert len(p99) == 2 and all(0 < s.value < 1 for s in p99)
    e = fams["edgebench_last_run_energy_per_inference_joules"].samples
    assert {(s.labels["device_id"], s.labels["kind"]): s.value for s in e} == {
        ("jetson-lab", "gross"): 0.003,
        ("jetson-lab", "net"): 0.001,
    }


def test_browser_finds_fleet_table_and_charts(site, tmp_path):
    from selenium.webdriver.common.by import By

    drv = chromium_driver()
    try:
        drv.set_page_load_timeout(60)
        drv.get(site.url + f"?token={TOKEN}")  # sets the cookie the next pages use
        table = drv.find_element(By.ID, "fleet")
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 2
        assert {r.find_elements(By.TAG_NAME, "td")[0].text for r in rows} == {"pi-kitchen", "jetson-lab"}
        chart = drv.find_element(By.CSS_SELECTOR, "svg.chart")
        assert chart.is_displayed() and chart.size["width"] > 300
        assert len(chart.find_elements(By.CSS_SELECTOR, "rect.bar")) == 6  # 2 groups x 3 series
        drv.save_screenshot(str(tmp_path / "fleet.png"))
        # device page -> the sweep's page: its curves, every point, unsupported ones marked
        drv.find_element(By.LINK_TEXT, "pi-kitchen").click()
        assert "INVALID" in drv.find_element(By.ID, "scenarios").text
        drv.find_element(By.LINK_TEXT, "sw1").click()
        lat = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="sweep-latency"]')
        assert lat.find_element(By.CSS_SELECTOR, "text.xlabel").text == "batch size (items per invoke)"
        assert lat.find_element(By.CSS_SELECTOR, "text.ylabel").text == "latency per batch (ms)"
        assert len(lat.find_elements(By.CSS_SELECTOR, "circle.point")) == 12  # 6 points ran, p50 and p99
        assert len(lat.find_elements(By.CSS_SELECTOR, "path.unsupported")) == 2  # batch 8, both thread counts
        thr = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="sweep-throughput"]')
        assert thr.find_element(By.CSS_SELECTOR, "text.ylabel").text == "throughput (items/s)"
        assert len(thr.find_elements(By.CSS_SELECTOR, "circle.point")) == 6
        front = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="sweep-frontier"]')
        assert front.find_element(By.CSS_SELECTOR, "text.xlabel").text == "p99 latency per batch (ms)"
        assert len(front.find_elements(By.CSS_SELECTOR, "path.frontier")) == 1
        rows = drv.find_elements(By.CSS_SELECTOR, "#sweep tbody tr")
        # batch 8 is unsupported at both thread counts: its reason once, the other row pointing to it
        assert len(rows) == 8 and sum("unsupported" in r.text and "hard-codes batch 1" in r.text for r in rows) == 1
        assert sum("batch 8 unsupported: the reason is on its first row" in r.text for r in rows) == 1
        # the latency distribution of another point
        rows[0].find_element(By.LINK_TEXT, "histogram").click()
        hist = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="histogram"]')
        assert (
            "batch 1, threads 1, instances 1" in hist.text and len(hist.find_elements(By.CSS_SELECTOR, "rect.bar")) == 3
        )
        drv.save_screenshot(str(tmp_path / "sweep.png"))
        # a scenario's page: verdict, reasons, latency distribution
        drv.get(site.url + "run/pi-kitchen/sc1")
        assert "INVALID" in drv.find_element(By.ID, "verdict").text
        assert "bound missed" in drv.find_element(By.ID, "reasons").text
        hist = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="histogram"]')
        assert hist.find_element(By.CSS_SELECTOR, "text.ylabel").text == "queries"
        assert len(hist.find_elements(By.CSS_SELECTOR, "rect.bar")) == 3
        assert len(hist.find_elements(By.CSS_SELECTOR, "line.mark")) == 3  # p50, p99, the 5 ms bound
        # the per-frame run's page: its latency histogram
        drv.get(site.url + "run/pi-kitchen/r1")
        hist = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="histogram"]')
        assert len(hist.find_elements(By.CSS_SELECTOR, "rect.bar")) == 40
        # compare against the other board's run through the form
        box = drv.find_element(By.NAME, "baseline")
        box.send_keys("jetson-lab/r1")
        box.submit()
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(drv, 60).until(EC.presence_of_element_located((By.ID, "compare")))
        cmp_rows = drv.find_elements(By.CSS_SELECTOR, "#compare tbody tr")
        assert any("e2e p50" in r.text and "yes" in r.text for r in cmp_rows)
        drv.save_screenshot(str(tmp_path / "run.png"))
        drv.get(site.url + "model/m.tflite")
        assert len(drv.find_elements(By.CSS_SELECTOR, "#comparison tbody tr")) == 2
    finally:
        drv.quit()


def test_grafana_dashboard_uses_only_exposed_metrics(tmp_path):
    """Every metric the shipped Grafana dashboard queries is one the collector exposes, by the
    name and suffix Prometheus gives it (a fleet with telemetry, so every family has samples)."""
    import json
    import re

    from prometheus_client.parser import text_string_to_metric_families

    from edgebench.collector.ingest.collector import Collector
    from edgebench.collector.views.metrics import MetricsEndpoint
    from tests.support.showcase import fill

    dash = json.loads((ROOT / "deploy" / "grafana" / "edgebench-fleet.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"]]
    wanted = set(re.findall(r"edgebench_[a-z0-9_]+", " ".join(exprs)))
    store = SQLiteStore(str(tmp_path / "g.db"))
    fill(store)
    ingest = Collector("mqtt://127.0.0.1:1", store)  # not started: its counters are all zero
    body = MetricsEndpoint(store, ingest=ingest).render().decode()
    fams = list(text_string_to_metric_families(body))
    exposed = {s.name for f in fams for s in f.samples}
    families = {f.name for f in fams}
    # a family without samples in this fleet (a max-QPS search) still counts as exposed
    missing = {w for w in wanted - exposed if w not in families}
    assert not missing, missing
    labels = set(re.findall(r"(\w+)=~", " ".join(exprs)))
    assert labels == {"device_id", "model", "runtime", "accelerator", "threads"}
    store.close()


def test_names_from_devices_are_escaped(tmp_path):
    """Device, run and model names come from the fleet: the pages must never render them as HTML."""
    store = SQLiteStore(str(tmp_path / "x.db"))
    rng = np.random.default_rng(0)
    evil = "<script>alert(1)</script>.tflite"
    res = result_doc("evil-dev", "r1", model=evil)
    store.apply(
        [
            as_message(meta("evil-dev", 1, 1, "r1", model=evil)),
            as_message(frames("evil-dev", 1, 2, "r1", 0, columns(10, rng))),
            as_message(summary("evil-dev", 1, 3, res)),
        ]
    )
    dash = Dashboard(store)
    pages = [
        dash.handle("/", "")[2],
        dash.handle("/device/evil-dev", "")[2],
        dash.handle("/run/evil-dev/r1", "")[2],
        dash.handle("/model/" + evil.replace("/", "%2F"), "")[2],
    ]
    for body in pages:
        assert b"<script>" not in body and b"&lt;script&gt;" in body
    store.close()


def test_boards_are_compared_at_their_thread_counts(tmp_path):
    """The model-across-boards page, the overview and the report keep runs at different
    thread counts apart and show the count (issue 16, item 1)."""
    from edgebench.collector.aggregate import group_rows
    from edgebench.collector.views.report import table

    store = SQLiteStore(str(tmp_path / "t.db"))
    rng = np.random.default_rng(1)
    seq = 0
    for dev, run, n in (("pi-a", "r1", 1), ("pi-a", "r2", 4), ("jetson-b", "r3", 6)):
        res = result_doc(dev, run, runtime="ai-edge-litert")
        res["runtime"]["num_threads"] = n
        seq += 3
        store.apply(
            [
                as_message(meta(dev, 1, seq, run)),
                as_message(frames(dev, 1, seq + 1, run, 0, columns(20, rng))),
                as_message(summary(dev, 1, seq + 2, res)),
            ]
        )
    dash = Dashboard(store)
    page = dash.handle("/model/m.tflite", "")[2].decode()
    head = page.split('id="comparison"', 1)[1].split("</thead>", 1)[0]
    assert ">threads<" in head
    body = page.split('id="comparison"', 1)[1].split("</table>", 1)[0]
    assert body.count("<tr") - 1 == 3  # pi-a at 1 and at 4 threads are two rows, not one
    rows = group_rows(store)
    assert sorted((r["device_id"], r["threads"]) for r in rows) == [("jetson-b", 6), ("pi-a", 1), ("pi-a", 4)]
    text = table(rows)
    assert text.splitlines()[0].split()[:3] == ["device", "model", "threads"]
    store.close()


def test_sweeps_and_scenarios_show_what_is_stored_not_zero_frames(tmp_path):
    """Issue 16, item 13: "stored 0" for a sweep or a scenario read as data lost."""
    from edgebench.collector.aggregate import run_list
    from edgebench.collector.views.pages.tables import runs_table

    store = SQLiteStore(str(tmp_path / "d.db"))
    _fill(store)
    sw_pending = sweep_doc("pi-kitchen", "sw2")
    store.apply([as_message(meta_of(sw_pending, seq=20))])
    t = runs_table(run_list(store, device_id="pi-kitchen"))
    col = t.head.index("frames (stored)")
    stored = {str(row[0].text): row[col] for row in t.rows}
    assert stored["sw1"] == "the sweep's points"
    assert stored["sc1"] == "the scenario result"
    assert stored["sw2"] == "its announcement (result pending)"
    assert stored["r1"].endswith("(1000)")  # a per-frame run: its frames measured (stored)
    page = Dashboard(store).handle("/device/pi-kitchen", "")[2].decode()
    assert "the sweep&#39;s points" in page or "the sweep's points" in page
    store.close()
