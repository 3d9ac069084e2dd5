"""The dashboard's answers pages: /plan (a form; its answer from the stored sweep) and
/regressions (each key's newest verdict), on a store filled with protocol-valid messages."""

import re

import numpy as np

from edgebench.collector.aggregate.regressions import watch
from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.web import Dashboard
from tests.support.documents import meta_of, summary_of, sweep_doc
from tests.support.fleet import as_message, columns, frames, info, meta, result_doc, summary


def _fleet(store):
    inv = info("pi-1", 1, 1)
    inv["inventory"] = {"model": "Raspberry Pi 5"}
    sw = sweep_doc("pi-1", "sw1")
    msgs = [as_message(inv), as_message(meta_of(sw, seq=2)), as_message(summary_of(sw, seq=3))]
    rng = np.random.default_rng(0)
    seq = 4
    for run, scale in (("r-base", 1.0), ("r-slow", 1.6)):
        cols = columns(1200, rng, scale)
        msgs += [
            as_message(meta("pi-1", 1, seq, run)),
            as_message(frames("pi-1", 1, seq + 1, run, 0, cols)),
            as_message(summary("pi-1", 1, seq + 2, result_doc("pi-1", run, cols))),
        ]
        seq += 3
    store.apply(msgs)
    for run in ("r-base", "r-slow"):
        watch(store, "pi-1", run)


def test_plan_page_answers_its_form(tmp_path):
    store = SQLiteStore(str(tmp_path / "f.db"))
    _fleet(store)
    dash = Dashboard(store)
    code, _, body = dash.handle("/plan", "")
    assert code == 200 and b"<form" in body and b'id="plan"' not in body
    # the sweep's best VALID point within p99 <= 3 ms: batch 4, 2 threads (p99 1.5*4**0.8/2 = 2.27 ms)
    code, _, body = dash.handle("/plan", "model=m.tflite&streams=100&fps=30&p99_ms=3")
    page = body.decode()
    cap = round(1000.0 * 4**0.2 * 2, 3)
    per_board = int(cap // 30)
    row = re.search(r"<td class=\"l\">Raspberry Pi 5</td>.*?</tr>", page, re.S).group(0)
    assert f"{-(-100 // per_board)} board(s), {per_board} streams each" in row
    assert "pi-1/sw1: sweep point batch 4, threads 2" in row
    code, _, body = dash.handle("/plan", "model=m.tflite&streams=0&fps=x&p99_ms=3")
    assert b"streams: must be above 0" in body and b"is not a number" in body
    store.close()


def test_regressions_page_shows_the_slower_run(tmp_path):
    store = SQLiteStore(str(tmp_path / "f.db"))
    dash = Dashboard(store)
    assert b"no verdict yet" in dash.handle("/regressions", "")[2]
    _fleet(store)
    page = dash.handle("/regressions", "")[2].decode()
    row = re.search(r'<table id="regressions">.*?</table>', page, re.S).group(0)
    assert 'class="failed">slower<' in row and "pi-1/r-slow" in row and "e2e p50 +" in row
    store.close()
