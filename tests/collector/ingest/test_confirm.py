"""The collector's confirmations (``edgebench.ack/1``) against a real Mosquitto, and what the
views show per device of what is confirmed and what still waits on it."""

from __future__ import annotations

import json
import time

import numpy as np

from edgebench.agent.wire import protocol
from edgebench.collector.aggregate import device_rows
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.store import SQLiteStore
from edgebench.collector.views.report import devices_table
from tests.support.fleet import as_message, columns, frames
from tests.support.paths import ROOT
from tests.support.transport import RawClient, wait_until

DEV = "d-ack"


def test_the_collector_confirms_what_it_stored_duplicates_and_quarantine_included(tmp_path, mosquitto):
    import jsonschema_rs

    store = SQLiteStore(str(tmp_path / "c.db"))
    col = Collector(mosquitto.url, store, client_id="col-confirm", group="g-confirm").start()
    dev = RawClient(mosquitto.port)
    dev.subscribe(protocol.ack_topic(DEV))
    other = RawClient(mosquitto.port)
    other.subscribe(protocol.ack_topic("d-other"))
    try:
        rng = np.random.default_rng(3)
        topic = protocol.run_topic(DEV, "r1", "frames")
        for seq in (1, 2, 3, 2):  # seq 2 twice: a duplicate is confirmed too
            dev.publish(topic, frames(DEV, 1, seq, "r1", (seq - 1) * 10, columns(10, rng)))
        bad = frames(DEV, 1, 4, "r1", 30, columns(10, rng))
        bad["n"] = 11  # inconsistent: quarantined, and confirmed (sending it again would not help)
        dev.publish(topic, bad)
        broken = frames(DEV, 1, 5, "r1", 40, columns(10, rng))
        dev.publish(topic, json.dumps(broken).encode()[:-5])  # not JSON, no seq to read: not confirmed

        def confirmed() -> set[int]:
            got = set()
            for t, payload, _ in list(dev.messages):
                if t == protocol.ack_topic(DEV):
                    got |= {s for a, b in json.loads(payload)["seqs"] for s in range(a, b + 1)}
            return got

        wait_until(lambda: confirmed() == {1, 2, 3, 4}, 20, "confirmations of seq 1-4")
        time.sleep(0.5)
        assert confirmed() == {1, 2, 3, 4}
        shipped = json.loads((ROOT / "docs" / "schemas" / "edgebench.ack.v1.schema.json").read_text())
        check = jsonschema_rs.validator_for(shipped)
        for _, payload, retained in dev.messages:
            body = json.loads(payload)
            check.validate(body)
            assert protocol.ack_errors(DEV, body) == [] and not retained and body["collector"] == "col-confirm"
        assert other.messages == []  # each device hears only of its own
        assert col.stats()["confirmed_seqs"] >= 4
    finally:
        dev.close()
        other.close()
        col.stop()
        store.close()


def test_ack_errors_matches_the_schema_on_what_a_device_could_receive():
    import jsonschema_rs

    check = jsonschema_rs.validator_for(protocol.SCHEMAS[protocol.ACK_SCHEMA])
    good = protocol.ack_messages(DEV, "c", [1, 2, 3, 9], 1.0)[0]
    assert good["seqs"] == [[1, 3], [9, 9]]
    cases = [
        good,
        {**good, "seqs": [[1]]},
        {**good, "seqs": [[-1, 2]]},
        {**good, "seqs": [[1.5, 2]]},
        {**good, "seqs": [[True, 2]]},
        {**good, "extra": 1},
        {**good, "ts": "now"},
        {k: v for k, v in good.items() if k != "collector"},
        {**good, "seqs": [[1, 1]] * (protocol.MAX_ACK_RANGES + 1)},
    ]
    for body in cases:
        assert (protocol.ack_errors(DEV, body) == []) == check.is_valid(body), body
    assert protocol.ack_errors("someone-else", good)  # another device's confirmation is refused
    assert len(protocol.ack_messages(DEV, "c", range(0, 5000, 2), 1.0)) == 3  # 2500 ranges, 1000 a message


def test_devices_show_what_is_stored_and_what_waits_on_each_device(tmp_path):
    store = SQLiteStore(str(tmp_path / "c.db"))
    try:
        rng = np.random.default_rng(4)
        tel = {
            "schema": protocol.TELEMETRY_SCHEMA,
            "device_id": DEV,
            "session": 1,
            "seq": 8,
            "ts": time.time(),
            "outbox": {
                "queued_messages": 12,
                "unconfirmed_messages": 5,
                "confirmation": "confirmed",
                "damage": [{"at": 1.0, "reason": "emptied (0 bytes)", "moved_to": None, "messages": None}],
            },
        }
        store.apply([as_message(frames(DEV, 1, 7, "r1", 0, columns(10, rng))), as_message(tel)])
        (d,) = device_rows(store)
        assert (d["stored_seq"], d["waiting_on_device"], d["unconfirmed_on_device"]) == (8, 12, 5)
        text = devices_table([d])
        assert "stored to seq" in text and "12 (5 unconfirmed), outbox damaged 1x" in text
    finally:
        store.close()
