"""Every picture renders and reads at a glance: every dashboard page of a fleet that has every
kind of result (tests/support/showcase.py: real sweep, scenario and max-QPS documents of the
bundled model, boards with telemetry), every PNG the agent writes, and the HTML report, in a
real headless Chromium. Beyond "it renders", the house chart style is checked where it shows:
tick labels are plain numbers and a log axis ticks at 1, 2 and 5; no chart has more than 8
series; labels do not overlap; every axis has a unit.

Set EDGEBENCH_SCREENSHOTS=DIR to keep the screenshots (and look at them).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from edgebench.agent.wire import chartstyle as cs
from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.web import Dashboard, WebServer
from tests.support.browser import chromium_driver
from tests.support.showcase import fill, make_documents

pytestmark = pytest.mark.slow
PLAIN = re.compile(r"^-?\d+(\.\d+)?$")


@pytest.fixture(scope="module")
def showcase():
    d = Path(tempfile.mkdtemp(prefix="edgebench-showcase-"))
    docs = make_documents(d)
    store = SQLiteStore(str(d / "showcase.db"))
    fill(store, docs)
    web = WebServer(Dashboard(store), "127.0.0.1", 0).start()
    yield d, docs, store, web
    web.stop()
    store.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    drv = chromium_driver()
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _keep(drv, name: str, tmp: Path) -> None:
    folder = Path(os.environ.get("EDGEBENCH_SCREENSHOTS") or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(drv.get_window_size()["width"], min(max(1000, height + 20), 6000))
    drv.save_screenshot(str(folder / f"{name}.png"))
    drv.set_window_size(1400, 1000)


def pages(store) -> list[str]:
    """Every page of the dashboard for this fleet."""
    from urllib.parse import quote

    out = ["/"]
    out += [f"/device/{quote(d)}" for (d,) in store.query("SELECT device_id FROM devices ORDER BY device_id")]
    out += [f"/model/{quote(m)}" for (m,) in store.query("SELECT DISTINCT model_name FROM runs WHERE kind = 'run'")]
    out += [f"/run/{quote(d)}/{quote(r)}" for d, r in store.query("SELECT device_id, run_id FROM runs ORDER BY run_id")]
    return out


#: what every chart on a page must satisfy, measured by the browser: the text of every tick
#: label, the number of legend entries, and pairs of labels whose boxes overlap
_CHART_FACTS = """
const out = [];
for (const svg of document.querySelectorAll('svg.chart')) {
  const ticks = [...svg.querySelectorAll('text.xtick, text.ytick')].map(t => t.textContent);
  const xlog = svg.textContent.includes('log-log') || svg.textContent.includes('log x');
  const ylog = svg.textContent.includes('log-log') || svg.textContent.includes('log y');
  const yticks = [...svg.querySelectorAll('text.ytick')].map(t => t.textContent);
  const labels = [...svg.querySelectorAll('text.point-label, text.xtick, text.ytick, text.legend')];
  const boxes = labels.map(t => t.getBBox());
  let overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.x < b.x + b.width - 1 && b.x < a.x + a.width - 1 && a.y < b.y + b.height - 2 && b.y < a.y + a.height - 2)
      overlaps.push(labels[i].textContent + ' / ' + labels[j].textContent);
  }
  out.push({kind: svg.dataset.chart, ticks, yticks, ylog, xlog, legend: svg.querySelectorAll('text.legend').length,
            overlaps, xlabel: (svg.querySelector('text.xlabel') || {}).textContent || null,
            ylabel: (svg.querySelector('text.ylabel') || {}).textContent || null});
}
return out;
"""


def _check_chart(page: str, c: dict) -> list[str]:
    bad = []
    where = f"{page} {c['kind']}"
    bad += [f"{where}: tick {t!r} is not a plain number" for t in c["ticks"] if not PLAIN.match(t)]
    if c["ylog"] and c["kind"] != "histogram":
        mant = [round(float(t) / 10 ** math.floor(math.log10(float(t)) + 1e-9)) for t in c["yticks"] if float(t) > 0]
        if len(c["yticks"]) >= 2 and not all(m in (1, 2, 5) for m in mant) and len(mant) > 3:
            bad.append(f"{where}: log ticks {c['yticks']} are not 1-2-5")
    if c["legend"] > cs.MAX_SERIES + 2:  # +2: a frontier or bound named beside the series
        bad.append(f"{where}: {c['legend']} legend entries")
    bad += [f"{where}: labels overlap: {o}" for o in c["overlaps"]]
    if c["kind"] != "bars" and c["xlabel"] is not None and "(" not in c["xlabel"] and "latency" not in c["xlabel"]:
        bad.append(f"{where}: x axis {c['xlabel']!r} has no unit")
    if c["ylabel"] is None and c["kind"] not in ("bars",):
        bad.append(f"{where}: no y axis label")
    return bad


def test_every_dashboard_page_renders_and_its_charts_follow_the_style(showcase, browser, tmp_path):
    _d, _docs, store, web = showcase
    problems, charts = [], 0
    all_pages = pages(store)
    assert len(all_pages) >= 15
    for page in all_pages:
        browser.get(web.url.rstrip("/") + page)
        assert browser.title.endswith("· edgebench"), page
        assert "internal error" not in browser.page_source
        width = browser.execute_script("return document.documentElement.scrollWidth")
        if width > 1400:
            problems.append(f"{page}: {width} px wide, more than the 1,400 px window (a scrollbar)")
        text = browser.find_element("tag name", "body").text
        problems += [f"{page}: shows {k!r}" for k in ("target_qps", "XNNPACK True", "latency_bound_ms") if k in text]
        facts = browser.execute_script(_CHART_FACTS)
        charts += len(facts)
        for c in facts:
            problems += _check_chart(page, c)
        _keep(browser, re.sub(r"\W+", "_", page.strip("/")) or "fleet", tmp_path)
    assert charts >= 20
    assert not problems, "\n".join(problems)


def test_every_agent_png_renders_with_its_units(showcase):
    from PIL import Image

    d, _docs, _store, _web = showcase
    pngs = sorted((d / "png").rglob("*.png"))
    names = {p.name for p in pngs}
    assert {
        "sweep_latency_vs_batch.png",
        "sweep_throughput_vs_batch.png",
        "sweep_frontier.png",
        "sweep_latency_distribution.png",
        "single-stream_latency_cdf.png",
        "server_latency_cdf.png",
        "offline_latency_cdf.png",
        "max_qps_search.png",
        "run_latency_over_time.png",
        "run_latency_per_stage.png",
    } <= names
    for p in pngs:
        with Image.open(p) as im:
            assert im.size[0] >= 700 and im.size[1] >= 300, p
            assert im.getextrema() != ((255, 255), (255, 255), (255, 255), (255, 255)), f"{p} is blank"
            for label in im.text["x_label"].split("; ") + im.text["y_label"].split("; "):
                assert "(" in label and label.endswith(")"), f"{p.name}: axis {label!r} has no unit"


def test_agent_figures_tick_in_plain_1_2_5_and_pick_their_series(showcase):
    """The PNGs' ticks, from the figures themselves: plain numbers, 1-2-5 on log axes, and the
    24-point sweep's distribution shows 8 curves and says which."""
    import json

    import matplotlib.pyplot as plt

    from edgebench.agent.report.plots import scenario_figures, sweep_figures

    _d, docs, _s, _w = showcase
    figs = sweep_figures(json.loads(docs["sweep.json"].read_text()))
    figs += scenario_figures(json.loads(docs["server.json"].read_text()))
    for name, fig in figs:
        fig.canvas.draw()
        for ax in fig.axes:
            for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
                labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
                assert all(PLAIN.match(t) for t in labels), (name, labels)
                if scale == "log" and axis is ax.yaxis:
                    vals = [v for v in axis.get_ticklocs() if v > 0]
                    steps = {round(b - a, 9) for a, b in zip(vals, vals[1:])}
                    one_two_five = all(round(v / 10 ** math.floor(math.log10(v) + 1e-9)) in (1, 2, 5) for v in vals)
                    assert one_two_five or len(steps) == 1, (name, vals)  # a narrow range: linear steps
    dist = dict(figs)["latency_distribution"]
    assert len(dist.axes[0].get_lines()) == cs.MAX_SERIES
    assert "8 of 24 shown" in dist.axes[0].get_title(loc="left")
    lat = dict(figs)["latency_vs_batch"]
    assert len(lat.axes[0].get_lines()) == cs.MAX_SERIES  # 4 configurations x p50 and p99
    plt.close("all")


def test_the_html_report_renders_on_a_phone(showcase, browser, tmp_path):
    from tests.support.paths import run_cli

    d, docs, _s, _w = showcase
    out = d / "report.html"
    p = run_cli("report", *map(str, docs.values()), "--html", str(out))
    assert p.returncode == 0, p.stderr
    browser.set_window_size(390, 900)
    try:
        browser.get(out.as_uri())
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
        svgs = browser.execute_script(
            "return [...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().width)"
        )
        assert len(svgs) >= 10 and all(0 < w <= 390 for w in svgs)
        _keep(browser, "report_phone", tmp_path)
    finally:
        browser.set_window_size(1400, 1000)
