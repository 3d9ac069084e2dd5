"""The run page shows what ran where and the per-operator times of a real `edgebench run --ops` (issue 13)."""

from __future__ import annotations

import json
import re

import numpy as np

from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.web import Dashboard
from tests.support.fleet import as_message, columns, frames, meta, summary
from tests.support.paths import ROOT, run_cli

MOBILENET_INT8 = ROOT / "models" / "mobilenet_v2_0.35_96_int8_untrained.tflite"


def real_result(tmp_path, *args) -> dict:
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(MOBILENET_INT8), "--frames", "5", "--threads", "1", "--json", str(out), *args)
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    res["device_id"], res["run_id"] = "pi-ops", "r1"
    return res


def page(tmp_path, res: dict) -> str:
    store = SQLiteStore(str(tmp_path / "ops.db"))
    rng = np.random.default_rng(0)
    store.apply(
        [
            as_message(meta("pi-ops", 1, 1, "r1", model=res["model"]["name"])),
            as_message(frames("pi-ops", 1, 2, "r1", 0, columns(5, rng))),
            as_message(summary("pi-ops", 1, 3, res)),
        ]
    )
    body = Dashboard(store).handle("/run/pi-ops/r1", "")[2].decode()
    store.close()
    return body


def test_run_page_shows_placement_fallback_and_sorted_operator_times(tmp_path):
    res = real_result(tmp_path, "--ops")
    body = page(tmp_path, res)
    ops = res["ops"]
    assert f"{ops['summary']}; operators left to the CPU: {', '.join(ops['fallback'])}" in body
    bars = re.findall(r'<rect class="bar"[^>]*><title>([^<]*)</title>', body.split("What ran where", 1)[1])
    assert len(bars) == min(40, ops["total"])
    shown = [float(t.rsplit(": ", 1)[1].split()[0]) for t in bars]
    assert shown == sorted(shown, reverse=True)
    slowest = max(ops["ops"], key=lambda o: o["ms"])
    assert bars[0].startswith(f"#{slowest['index']} {slowest['type']} ({slowest['backend']})")
    assert "against the whole invoke" in body and "isolated" in body


def test_run_page_without_times_shows_placement_only(tmp_path):
    res = real_result(tmp_path)
    body = page(tmp_path, res)
    assert res["ops"]["summary"] in body and "time per operator" not in body


def test_device_page_shows_what_ran_where_per_model(tmp_path):
    res = real_result(tmp_path)
    store = SQLiteStore(str(tmp_path / "dev.db"))
    rng = np.random.default_rng(0)
    store.apply(
        [
            as_message(meta("pi-ops", 1, 1, "r1", model=res["model"]["name"])),
            as_message(frames("pi-ops", 1, 2, "r1", 0, columns(5, rng))),
            as_message(summary("pi-ops", 1, 3, res)),
        ]
    )
    body = Dashboard(store).handle("/device/pi-ops", "")[2].decode()
    store.close()
    table = body.split('id="device-placement"', 1)[1].split("</table>", 1)[0]
    assert res["ops"]["summary"] in table and ", ".join(res["ops"]["fallback"]) in table
    assert res["model"]["name"] in table.replace("<wbr>", "") and "/run/pi-ops/r1" in table


def test_a_compiled_model_run_is_stored_with_the_accelerators_it_used(tmp_path):
    res = real_result(tmp_path, "--accelerator", "cpu")
    body = page(tmp_path, res)
    assert "CompiledModel CPU" in body and "fully accelerated: False" in body
