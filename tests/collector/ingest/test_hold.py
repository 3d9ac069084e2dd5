"""The collector holds against messages that pass for valid (issue 20, items 1-5): numbers
bounded by the schema, a message whose storing fails quarantined, views that stay up and
print no control characters, retained junk quarantined once, a bad query answered 400."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.aggregate import device_rows, group_rows
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.ingest.validate import Message, Rejected, Validator
from edgebench.collector.views.report import as_json, devices_table, table
from edgebench.collector.views.web import Dashboard, WebServer
from tests.support.fleet import as_message, columns, frames, info, meta, result_doc, status, summary, topic_for


def _telemetry(dev: str, session: int, seq: int) -> dict:
    return {"schema": protocol.TELEMETRY_SCHEMA, "device_id": dev, "session": session, "seq": seq, "ts": time.time()}


def _item(body: dict, retained: bool = False, topic: str | None = None, payload: bytes | None = None):
    """What the MQTT callback queues for the writer."""
    raw = json.dumps(body).encode() if payload is None else payload
    return (topic or topic_for(body), raw, retained, 0, 0, 0, time.time())


def _collector(store) -> Collector:
    """A collector that is never connected: its writer step (validate, store, quarantine) is run directly."""
    return Collector("mqtt://127.0.0.1:9", store)


PAGES = ("/", "/api/devices", "/api/fleet", "/metrics", "/device/pi-a")


def _pages_answer(store, paths=PAGES) -> dict[str, int]:
    web = WebServer(Dashboard(store), "127.0.0.1", 0).start()
    out = {}
    try:
        for path in paths:
            try:
                with urllib.request.urlopen(web.url + path, timeout=30) as r:
                    out[path] = r.status
            except urllib.error.HTTPError as e:
                out[path] = e.code
    finally:
        web.stop()
    return out


def _absurd_frames(latency: float) -> dict:
    cols = columns(10, np.random.default_rng(1))
    cols["inference"][3] = latency
    return frames("pi-a", 1, 3, "r1", 0, cols)


def test_a_latency_beyond_a_day_is_rejected_and_a_stored_one_takes_no_page_down(store):
    with pytest.raises(Rejected) as e:
        Validator()(topic_for(_absurd_frames(1e308)), json.dumps(_absurd_frames(1e308)).encode())
    assert e.value.code == "invalid" and "latency_ms/inference/3" in str(e.value)
    # a store filled by an older collector (no bound) still shows every page and prints JSON
    body = _absurd_frames(1e308)
    old = Message(topic_for(body), "frames", "pi-a", "r1", body)
    store.apply([as_message(meta("pi-a", 1, 2, "r1")), old])
    store.apply([as_message(summary("pi-a", 1, 4, result_doc("pi-a", "r1")))])
    assert set(_pages_answer(store, (*PAGES, "/run/pi-a/r1", "/api/run/pi-a/r1")).values()) == {200}
    text = as_json(group_rows(store))
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text)


def test_a_frame_index_at_the_bound_is_stored_and_every_view_answers(store):
    """first_frame up to the schema's count bound (10^12) fits the column on both stores
    (PostgreSQL's INTEGER is 32 bits: the fuzz found it refused there)."""
    col = _collector(store)
    cols = columns(10, np.random.default_rng(2))
    big = frames("pi-a", 1, 3, "r1", protocol.MAX_COUNT - 10, cols)
    col._process([_item(meta("pi-a", 1, 2, "r1")), _item(big)])
    assert (col.counts["stored"], col.counts["store_errors"]) == (2, 0), dict(col.counts)
    assert store.query("SELECT first_frame FROM frame_batches") == [(protocol.MAX_COUNT - 10,)]
    assert set(_pages_answer(store, (*PAGES, "/run/pi-a/r1", "/api/run/pi-a/r1")).values()) == {200}


def test_seq_at_the_bound_is_stored_and_every_view_answers(store):
    """seq 0 then the largest seq of one session: gaps of 2^53 counted without overflow."""
    col = _collector(store)
    col._process([_item(_telemetry("pi-a", 1, 0)), _item(_telemetry("pi-a", 1, protocol.MAX_SEQ))])
    assert col.counts["stored"] == 2, col.stats()
    [row] = device_rows(store)
    assert row["seq_gaps"] == protocol.MAX_SEQ - 1
    assert set(_pages_answer(store).values()) == {200}


@pytest.mark.parametrize("seq", [2**63 - 1, 2**64 - 1, 2**70])
def test_a_seq_beyond_the_bound_is_rejected_as_invalid(store, seq):
    col = _collector(store)
    col._process([_item(_telemetry("pi-a", 1, 0)), _item(_telemetry("pi-a", 1, seq))])
    assert (col.counts["stored"], col.counts["rejected"], col.counts["store_errors"]) == (1, 1, 0)
    assert col.rejections["invalid"] == 1
    assert store.query("SELECT code FROM quarantine") == [("invalid",)]
    assert set(_pages_answer(store).values()) == {200}


def test_a_message_the_store_refuses_is_quarantined_with_the_reason(pg_url):
    """A message that passes the schema but that the database refuses (here a trigger of the
    test's own raises for one model name) is quarantined (one row, the database's reason)
    while the rest of the batch is stored."""
    from tests.support.fleet import fresh_pg_store

    store = fresh_pg_store(pg_url)
    try:
        store.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'model %% refused by the test', NEW.model_name; END $$"
        )
        store.execute(
            "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON runs FOR EACH ROW"
            " WHEN (NEW.model_name = 'refused.tflite') EXECUTE FUNCTION refuse()"
        )
        col = _collector(store)
        bad = meta("pi-a", 1, 2, "r1", model="refused.tflite")
        col._process([_item(info("pi-a", 1, 1)), _item(bad), _item(_telemetry("pi-a", 1, 3))])
        assert (col.counts["stored"], col.counts["store_errors"], col.rejections["store_failed"]) == (2, 1, 1)
        [(code, reason, payload)] = store.query("SELECT code, reason, payload FROM quarantine")
        assert code == "store_failed" and "refused by the test" in reason
        assert json.loads(bytes(payload))["model"]["name"] == "refused.tflite"
    finally:
        store.close()


def test_a_nul_character_is_rejected_on_every_store(store):
    """PostgreSQL's text cannot hold NUL: it is refused at validation, so SQLite and
    PostgreSQL keep the same messages, and a batch with it costs no failed transaction."""
    col = _collector(store)
    bad = meta("pi-a", 1, 2, "r1", model="m\u0000.tflite")
    col._process([_item(info("pi-a", 1, 1)), _item(bad), _item(_telemetry("pi-a", 1, 3))])
    assert (col.counts["stored"], col.counts["store_errors"], col.rejections["invalid"]) == (2, 0, 1)
    [(code, reason)] = store.query("SELECT code, reason FROM quarantine")
    assert code == "invalid" and "NUL" in reason


def test_control_characters_never_reach_the_terminal(store):
    evil = "m\x1b]0;owned\x07\x1b[2J\r\n.tflite"
    body = meta("pi-a", 1, 2, "r1", model=evil)
    store.apply([as_message(status("pi-a", 1, "online"), True), as_message(info("pi-a", 1, 1)), as_message(body)])
    store.apply([as_message(summary("pi-a", 1, 3, result_doc("pi-a", "r1", model=evil)))])
    store.execute("UPDATE devices SET agent_version = ?", ("1.0\x1b[31m",))
    out = table(group_rows(store)) + devices_table(device_rows(store))
    assert not any(ord(c) < 32 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in out)
    assert "m\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x0a.tflite" in out and "1.0\\x1b[31m" in out


def test_a_retained_junk_message_is_quarantined_once_across_restarts(store):
    junk = _item({}, retained=True, topic="edgebench/v1/pi-a/info", payload=b"\x00junk")
    for _ in range(3):  # three collector lifetimes, the broker delivering it each time
        col = _collector(store)
        col._process([junk])
        assert col.rejections["not_json"] == 1
    assert store.query("SELECT COUNT(*) FROM quarantine") == [(1,)]
    live = _item({}, topic="edgebench/v1/pi-a/telemetry", payload=b"\x00junk")
    _collector(store)._process([live, live])  # a live message is kept each time it comes
    assert store.query("SELECT COUNT(*) FROM quarantine") == [(3,)]


def test_a_bad_group_on_the_fleet_api_is_a_400_line(tmp_path, caplog):
    from edgebench.collector.store import SQLiteStore

    store = SQLiteStore(str(tmp_path / "f.db"))
    web = WebServer(Dashboard(store), "127.0.0.1", 0).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(web.url + "/api/fleet?by=device_id,nope%1b", timeout=30)
        assert e.value.code == 400
        body = e.value.read().decode()
        assert body.startswith("bad request: cannot group by 'nope\\\\x1b': use one of ") and body.count("\n") == 1
        with urllib.request.urlopen(web.url + "/api/fleet?by=model", timeout=30) as r:
            assert r.status == 200
    finally:
        web.stop()
        store.close()
    assert "Traceback" not in caplog.text


def test_many_sessions_at_the_bound_sum_their_gaps_without_overflow(store):
    """1,100 sessions each spanning seq 0 to MAX_SEQ: their gaps add up past 2^63."""
    col = _collector(store)
    items = []
    for session in range(1, 1101):
        items += [_item(_telemetry("pi-a", session, 0)), _item(_telemetry("pi-a", session, protocol.MAX_SEQ))]
    col._process(items)
    assert col.counts["stored"] == 2200, col.stats()
    [row] = device_rows(store)
    assert row["seq_gaps"] > 2**63
    assert set(_pages_answer(store).values()) == {200}
    assert "pi-a" in devices_table(device_rows(store))
