"""A device's page: its telemetry over time (temperature, power, CPU clock, throttling), its
inventory as a table in words, and its runs by model, runtime, accelerator and threads; and
the overview and model pages name what each board ran on."""

from __future__ import annotations

import re

import pytest

from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.web import Dashboard
from tests.support.fleet import as_message, info, status
from tests.support.showcase import fill


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    store = SQLiteStore(str(tmp_path_factory.mktemp("dev") / "d.db"))
    fill(store)
    store.apply([as_message(status("quiet-1", 1, "online"), True), as_message(info("quiet-1", 1, 1))])
    yield Dashboard(store)
    store.close()


def page(dash, path: str, query: str = "") -> str:
    code, _, body = dash.handle(path, query)
    assert code == 200
    return body.decode()


def _table(html: str, tid: str) -> list[list[str]]:
    body = html.split(f'<table id="{tid}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)] for r in rows
    ]


def test_telemetry_over_time_in_four_charts(dash):
    html = page(dash, "/device/pi5-kitchen")
    kinds = re.findall(r'data-chart="(telemetry-[a-z_]+)"', html)
    assert kinds == ["telemetry-max_temp_c", "telemetry-power_w", "telemetry-cpu_mhz", "telemetry-throttled"]
    temp = html.split('data-chart="telemetry-max_temp_c"', 1)[1].split("</svg>", 1)[0]
    assert "temperature (°C)" in temp and "120 readings" in temp and "minutes since" in temp
    throttled = html.split('data-chart="telemetry-throttled"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'class="ytick"[^>]*>([^<]+)<', throttled) == ["0", "1"]
    # a shorter window (the last 6 minutes of ten, a reading every 5 s) holds fewer readings
    n = int(re.search(r"Hottest temperature, (\d+) readings", page(dash, "/device/pi5-kitchen", "hours=0.1")).group(1))
    assert 60 <= n <= 73


def test_a_device_without_telemetry_says_where_it_comes_from(dash):
    html = page(dash, "/device/quiet-1")
    assert "telemetry-" not in html and "No telemetry from this device" in html and "edgebench agent" in html


def test_inventory_is_a_table_in_words(dash):
    rows = dict(tuple(r) for r in _table(page(dash, "/device/imx8-line-3"), "inventory"))
    assert rows["board"] == "NXP i.MX 8M Plus EVK" and rows["CPU cores"] == "4"
    assert rows["accelerators"] == "npu VeriSilicon VIP8000 /dev/galcore"
    assert rows["operating system"] == "Debian GNU/Linux 12 (bookworm)"
    assert not any("{" in v for v in rows.values())


@pytest.mark.parametrize(
    "path,tid", [("/", "fleet"), ("/device/imx8-line-3", "fleet"), ("/model/shapes_int8.tflite", "comparison")]
)
def test_board_comparisons_name_runtime_accelerator_and_threads(dash, path, tid):
    head, *rows = _table(page(dash, path), tid)
    assert {"runtime", "accelerator", "threads"} <= set(head)
    acc, thr = head.index("accelerator"), head.index("threads")
    assert {r[acc] for r in rows} >= {"CPU"} if path != "/device/imx8-line-3" else {"libvx_delegate.so"}
    assert {r[thr] for r in rows} >= {"1"}
