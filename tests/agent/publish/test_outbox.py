"""The on-disk outbox on its own: numbering, durability, bound and drop ledger, replay marking,
confirmation by collectors."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from edgebench.agent.publish.outbox import Outbox, OutboxBusy
from edgebench.agent.publish.publisher import Publisher
from edgebench.agent.wire import protocol

DEV = "pi-test"


def frames_body(run_id: str, first: int, n: int) -> dict:
    cols = {s: [0.5] * n for s in protocol.STAGES}
    return protocol.frames_message(DEV, None, None, run_id, first, cols, 1.0)


def put_frames(ob: Outbox, run_id: str, first: int, n: int) -> int:
    return ob.put(
        "frames",
        protocol.run_topic(DEV, run_id, "frames"),
        frames_body(run_id, first, n),
        run_id=run_id,
        first_frame=first,
        frames=n,
    )


def test_seq_is_stamped_strictly_increasing_and_survives_reopen(tmp_path):
    path = tmp_path / "ob.db"
    ob = Outbox(str(path))
    ob.session = 7
    seqs = [
        ob.put("telemetry", protocol.telemetry_topic(DEV), {"schema": protocol.TELEMETRY_SCHEMA, "device_id": DEV})
        for _ in range(5)
    ]
    assert seqs == [1, 2, 3, 4, 5]
    rows = ob.claim(10)
    assert [json.loads(r.payload)["seq"] for r in rows] == seqs
    assert all(json.loads(r.payload)["session"] == 7 for r in rows)
    ob.ack([rows[0].id, rows[1].id])
    assert ob.claim(10) == [] and ob.unsent() == 3  # acknowledged ones are kept, not sent again
    ob.confirm([[1, 2]])
    ob.close()
    ob = Outbox(str(path))
    assert ob.pending() == 3
    assert ob.put("telemetry", protocol.telemetry_topic(DEV), {"schema": protocol.TELEMETRY_SCHEMA}) == 6
    assert ob.stats()["acked_messages"] == 2
    ob.close()


def test_one_process_at_a_time(tmp_path):
    ob = Outbox(str(tmp_path / "ob.db"))
    with pytest.raises(OutboxBusy, match="in use by another edgebench process"):
        Outbox(str(tmp_path / "ob.db"))
    ob.close()
    Outbox(str(tmp_path / "ob.db")).close()


def test_bound_drops_telemetry_then_oldest_frames_and_reports_exactly(tmp_path):
    run = "run-1"
    one = len(json.dumps(frames_body(run, 0, 100), separators=(",", ":")))
    ob = Outbox(str(tmp_path / "ob.db"), max_bytes=one * 10)  # room for ~10 batches
    ob.put(
        "meta", protocol.run_topic(DEV, run, "meta"), {"schema": protocol.RUN_META_SCHEMA, "run_id": run}, run_id=run
    )
    ob.put("telemetry", protocol.telemetry_topic(DEV), {"schema": protocol.TELEMETRY_SCHEMA})
    all_seqs = []
    for i in range(30):
        all_seqs.append(put_frames(ob, run, i * 100, 100))
    ob.put(
        "summary",
        protocol.run_topic(DEV, run, "summary"),
        {"schema": protocol.SUMMARY_SCHEMA, "run_id": run},
        run_id=run,
    )
    assert ob.queued_bytes <= ob.max_bytes
    left = ob.claim(100)
    kinds = [r.kind for r in left]
    assert "telemetry" not in kinds  # class 0 went first
    assert kinds[0] == "meta" and kinds[-1] == "summary"  # run records kept
    kept_firsts = [json.loads(r.payload)["first_frame"] for r in left if r.kind == "frames"]
    assert kept_firsts == sorted(kept_firsts) and kept_firsts[-1] == 2900  # the newest frames stay
    dropped = ob.run_drops(run)
    dropped_firsts = {a for first, n in dropped["frame_ranges"] for a in range(first, first + n, 100)}
    assert dropped_firsts.isdisjoint(kept_firsts)
    assert dropped_firsts | set(kept_firsts) == set(range(0, 3000, 100))
    assert dropped["messages"] == 30 - len(kept_firsts)
    assert dropped["frames"] == 100 * dropped["messages"]
    assert dropped["frame_ranges"] == [[0, dropped["frames"]]]  # oldest first: one range
    summary = json.loads(left[-1].payload)
    assert summary["dropped"] == dropped
    st = ob.stats()
    assert st["dropped_by_kind"] == {"telemetry": 1, "frames": dropped["messages"]}
    assert st["dropped_frames"] == dropped["frames"]
    assert st["dropped_messages"] == dropped["messages"] + 1
    ob.close()


def test_summary_already_queued_learns_later_drops(tmp_path):
    run = "run-2"
    one = len(json.dumps(frames_body(run, 0, 100), separators=(",", ":")))
    ob = Outbox(str(tmp_path / "ob.db"), max_bytes=one * 6)
    for i in range(4):
        put_frames(ob, run, i * 100, 100)
    ob.put(
        "summary",
        protocol.run_topic(DEV, run, "summary"),
        {"schema": protocol.SUMMARY_SCHEMA, "run_id": run},
        run_id=run,
    )
    assert ob.run_drops(run)["frames"] == 0
    for i in range(4):  # a next run fills the outbox: run-2's oldest frames go
        put_frames(ob, "run-3", i * 100, 100)
    d2 = ob.run_drops(run)
    assert d2["frames"] > 0
    summary = [json.loads(r.payload) for r in ob.claim(100) if r.kind == "summary"][0]
    assert summary["dropped"] == d2
    ob.close()


def test_in_flight_messages_are_never_dropped(tmp_path):
    run = "run-4"
    one = len(json.dumps(frames_body(run, 0, 100), separators=(",", ":")))
    ob = Outbox(str(tmp_path / "ob.db"), max_bytes=one * 3)
    for i in range(3):
        put_frames(ob, run, i * 100, 100)
    ob.begin_connection("conn-a")
    inflight = ob.claim(2)
    for i in range(3, 8):
        put_frames(ob, run, i * 100, 100)
    present = {r[0] for r in ob.db.execute("SELECT id FROM outbox")}
    assert all(r.id in present for r in inflight)
    assert ob.stats()["dropped_by_kind"]["frames"] >= 3  # the others went
    assert ob.ack([r.id for r in inflight]) == 2
    ob.close()


def test_replayed_means_not_produced_on_the_sending_connection(tmp_path):
    ob = Outbox(str(tmp_path / "ob.db"))
    old = put_frames(ob, "r", 0, 10)  # produced while offline
    ob.begin_connection("c1")
    live = put_frames(ob, "r", 10, 10)
    rows = {json.loads(r.payload)["seq"]: r for r in ob.claim(10)}
    assert ob.is_replay(rows[old]) and not ob.is_replay(rows[live])
    ob.end_connection()  # lost before the PUBACKs
    ob.begin_connection("c2")
    rows = {json.loads(r.payload)["seq"]: r for r in ob.claim(10)}
    assert ob.is_replay(rows[old]) and ob.is_replay(rows[live])
    body = json.loads(protocol.with_replayed(rows[live].payload, True))
    assert body["replayed"] is True and body["seq"] == live
    ob.close()


def test_run_stream_hands_frames_over_and_splits_batches(tmp_path):
    pub = Publisher(None, DEV, outbox_path=str(tmp_path / "ob.db")).start()
    stream = pub.stream()
    stream.run_id = "run-5"
    n = protocol.MAX_FRAMES_PER_BATCH + 500
    cols = {s: np.arange(n, dtype=np.int64) * 1000 for s in protocol.STAGES}
    stream.sink(0, cols)
    assert pub.flush(10)
    rows = pub.outbox.claim(10)
    bodies = [json.loads(r.payload) for r in rows]
    assert [(b["first_frame"], b["n"]) for b in bodies] == [(0, protocol.MAX_FRAMES_PER_BATCH), (2000, 500)]
    assert bodies[1]["latency_ms"]["e2e"][0] == 2.0  # ns -> ms: 2000 * 1000 ns
    pub.close()


def put_telemetry(ob: Outbox) -> int:
    return ob.put("telemetry", protocol.telemetry_topic(DEV), {"schema": protocol.TELEMETRY_SCHEMA, "device_id": DEV})


def test_a_message_the_broker_acknowledged_stays_until_a_collector_confirms_it(tmp_path):
    ob = Outbox(str(tmp_path / "ob.db"), resend_s=30, confirm_wait_s=10)
    seqs = [put_telemetry(ob) for _ in range(4)]
    ob.begin_connection("c1")
    rows = ob.claim(10)
    assert ob.ack([r.id for r in rows]) == 4
    s = ob.stats()
    assert (s["queued_messages"], s["unconfirmed_messages"], s["confirmation"]) == (4, 4, "waiting")
    assert ob.tick(time.time() + 5) == 0  # neither resend_s nor confirm_wait_s passed
    # two collectors, each confirming what it stored: the union leaves
    assert ob.confirm([[seqs[0], seqs[0]], [seqs[2], seqs[2]]]) == 2
    assert ob.confirm([[seqs[1], seqs[1]], [100, 200]]) == 1
    s = ob.stats()
    assert (s["queued_messages"], s["confirmed_messages"], s["confirmation"]) == (1, 3, "confirmed")
    assert ob.pending() == 1 and not ob.wait_empty(0.1)
    ob.close()


def test_unconfirmed_messages_are_sent_again_oldest_first_after_resend_s(tmp_path):
    ob = Outbox(str(tmp_path / "ob.db"), resend_s=2, confirm_wait_s=1000)
    first = [put_telemetry(ob) for _ in range(3)]
    ob.begin_connection("c1")
    ob.ack([r.id for r in ob.claim(10)])
    ob.confirm([[first[0], first[0]]])
    late = put_telemetry(ob)
    ob.ack([r.id for r in ob.claim(10)])
    now = time.time()
    assert ob.tick(now + 1) == 0
    assert ob.tick(now + 3) == 3
    again = ob.claim(10)
    assert [json.loads(r.payload)["seq"] for r in again] == [first[1], first[2], late]
    assert all(ob.is_replay(r) for r in again)  # sent again: marked replayed
    assert ob.stats()["resent_messages"] == 3
    ob.close()


def test_with_no_collector_ever_the_brokers_ack_is_enough_after_confirm_wait(tmp_path, caplog):
    path = str(tmp_path / "ob.db")
    ob = Outbox(path, resend_s=1, confirm_wait_s=5)
    put_telemetry(ob)
    ob.begin_connection("c1")
    ob.ack([r.id for r in ob.claim(10)])
    assert ob.tick(time.time() + 4) == 1  # resent: still waiting for a first confirmation
    ob.ack([r.id for r in ob.claim(10)])
    with caplog.at_level("WARNING"):  # counted from the first acknowledgement, not the last resend
        ob.tick(time.time() + 6)
    assert "no collector has ever confirmed" in caplog.text
    assert (ob.pending(), ob.stats()["confirmation"]) == (0, "broker-only")
    ob.close()
    ob = Outbox(path, resend_s=1, confirm_wait_s=5)  # remembered: no second wait
    seq = put_telemetry(ob)
    ob.begin_connection("c2")
    ob.ack([r.id for r in ob.claim(10)])
    assert ob.pending() == 0
    ob.confirm([[seq, seq]])  # a collector appears: messages are kept again
    put_telemetry(ob)
    ob.ack([r.id for r in ob.claim(10)])
    assert (ob.pending(), ob.stats()["confirmation"]) == (1, "confirmed")
    ob.close()


def test_the_bound_lets_go_of_acknowledged_messages_before_dropping_unsent_ones(tmp_path):
    run = "run-9"
    one = len(json.dumps(frames_body(run, 0, 100), separators=(",", ":")))
    ob = Outbox(str(tmp_path / "ob.db"), max_bytes=one * 4)
    for i in range(3):
        put_frames(ob, run, i * 100, 100)
    ob.begin_connection("c1")
    ob.ack([r.id for r in ob.claim(2)])
    for i in range(3, 5):
        put_frames(ob, run, i * 100, 100)
    s = ob.stats()
    assert (s["released_unconfirmed"], s["dropped_frames"], s["queued_frames"]) == (1, 0, 400)
    ob.close()


def test_an_outbox_of_the_previous_version_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "ob.db"
    ob = Outbox(str(path))
    put_telemetry(ob)
    ob.close()
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE o2 AS SELECT id, lane, cls, kind, topic, qos, retain, session, seq, run_id, first_frame, frames,"
        " produced_on, created_at, bytes, payload FROM outbox; DROP TABLE outbox; ALTER TABLE o2 RENAME TO outbox;"
        " PRAGMA user_version=1;"
    )
    db.close()
    ob = Outbox(str(path))
    assert ob.unsent() == 1 and len(ob.claim(5)) == 1
    ob.close()


def queued_outbox(path, frames: int = 3) -> None:
    ob = Outbox(str(path))
    for i in range(frames):
        put_frames(ob, "run-d", i * 100, 100)
    ob.close()


def test_random_bytes_inside_the_outbox_move_it_aside_and_report_what_it_held(tmp_path, caplog):
    path = tmp_path / "ob.db"
    queued_outbox(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # garble the pages after the header, as a failing card would
        f.seek(1024)
        f.write(os.urandom(size - 1024))
    with caplog.at_level("WARNING"):
        ob = Outbox(str(path))
    moved = list(tmp_path.glob("ob.db.damaged-*Z"))  # (its -wal and -shm beside it)
    assert len(moved) == 1 and "a fresh outbox starts" in caplog.text and str(moved[0]) in caplog.text
    (report,) = ob.stats()["damage"]
    assert report["moved_to"] == str(moved[0]) and report["reason"]
    assert ob.pending() == 0
    ob.begin_connection("c1")
    seq = put_telemetry(ob)
    assert [json.loads(r.payload)["seq"] for r in ob.claim(5)] == [seq]  # it sends again
    ob.close()


def test_an_outbox_truncated_to_zero_bytes_is_reported_not_silently_empty(tmp_path, caplog):
    path = tmp_path / "ob.db"
    queued_outbox(path)
    os.truncate(path, 0)
    with caplog.at_level("WARNING"):
        ob = Outbox(str(path))
    assert "emptied (0 bytes)" in caplog.text
    assert ob.stats()["damage"][0]["messages"] is None  # how much is unknown, and said so
    ob.close()
    pub = Publisher(None, DEV, outbox_path=str(path), inventory={}).start()  # the collector hears of it too
    try:
        assert "emptied" in pub._info_body()["outbox_damage"][0]["reason"]
    finally:
        pub.close()


def test_a_sound_outbox_and_a_new_one_report_nothing(tmp_path):
    path = tmp_path / "ob.db"
    queued_outbox(path)
    ob = Outbox(str(path))
    assert "damage" not in ob.stats() and ob.pending() == 3
    ob.close()
    ob = Outbox(str(tmp_path / "new.db"))
    assert "damage" not in ob.stats()
    ob.close()
