"""Ingest against real brokers: shared subscriptions, validation under a fuzzed stream,
persistent sessions across collector and broker restarts, a crash before storing, two
collectors on one shared subscription (PostgreSQL), the MQTT 3.1.1 fallback."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.aggregate import device_rows, group_rows, quarantine_counts
from edgebench.collector.broker.connection import Connection
from edgebench.collector.broker.embedded import EmbeddedBroker, MosquittoBroker
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.store import SQLiteStore
from tests.support.fleet import (
    columns,
    frames,
    fresh_pg_store,
    meta,
    result_doc,
    status,
    summary,
    topic_for,
)
from tests.support.paths import ROOT


@pytest.fixture
def mosquitto(private_mosquitto):
    """These tests count messages exactly: a broker of their own, not the session's."""
    return private_mosquitto


def publisher(url: str) -> Connection:
    return Connection(url, client_id=f"test-pub-{secrets.token_hex(3)}", protocol="5").connect(10)


def send(conn: Connection, items: list[tuple[str, bytes]], retain: bool = False) -> None:
    mids = [conn.publish(t, p, qos=1, retain=retain) for t, p in items]
    assert not conn.wait_acked(mids, 60), "the broker did not acknowledge every publish"


def enc(body) -> bytes:
    return json.dumps(body).encode()


def frame_stream(dev: str, run: str, count: int, session: int = 1, n: int = 20, seed: int = 0, seq0: int = 1):
    rng = np.random.default_rng(seed)
    return [
        (protocol.run_topic(dev, run, "frames"), enc(frames(dev, session, seq0 + i, run, i * n, columns(n, rng))))
        for i in range(count)
    ]


def make_collector(url, store, **kw) -> Collector:
    kw.setdefault("client_id", f"test-col-{secrets.token_hex(3)}")
    kw.setdefault("group", f"g{secrets.token_hex(3)}")
    return Collector(url, store, **kw).start(15)


def test_end_to_end_shared_subscriptions(mosquitto, tmp_path):
    store = SQLiteStore(str(tmp_path / "f.db"))
    col = make_collector(mosquitto.url, store, share=True)
    try:
        assert any(s.startswith(f"$share/{col.group}/edgebench/v1/+/run/+/frames") for s in col.subscriptions)
        assert "edgebench/v1/+/status" in col.subscriptions
        dev = f"e2e-{secrets.token_hex(2)}"
        pub = publisher(mosquitto.url)
        send(pub, [(protocol.status_topic(dev), enc(status(dev, 1, "online")))], retain=True)
        body_meta = meta(dev, 1, 1, "run-a")
        stream = frame_stream(dev, "run-a", 10, seed=5, seq0=2)
        samples = {s: [] for s in protocol.STAGES}
        for _, p in stream:
            for s in protocol.STAGES:
                samples[s] += json.loads(p)["latency_ms"][s]
        res = result_doc(dev, "run-a", samples)
        send(pub, [(topic_for(body_meta), enc(body_meta))], retain=True)
        send(pub, stream + [(protocol.run_topic(dev, "run-a", "summary"), enc(summary(dev, 1, 12, res)))])
        assert col.wait_for(
            lambda: (
                store.query("SELECT COUNT(*) FROM runs WHERE summary IS NOT NULL")[0][0] == 1
                and store.counts()["frame_batches"] == 10
            ),
            60,
        )
        (row,) = group_rows(store, where={"device_id": dev})
        assert row["frames"] == 200 and row["model"] == "m.tflite"
        assert row["latency_ms"]["e2e"]["p90"] == pytest.approx(
            round(float(np.percentile(samples["e2e"], 90)), 4), abs=1e-4
        )
        assert [d["state"] for d in device_rows(store)] == ["online"]
        # publish-to-stored delay is recorded for every stored message
        d = store.query("SELECT MAX(stored_at - ts) FROM messages")[0][0]
        assert 0 <= d < 60
        send(pub, [(protocol.status_topic(dev), b"")], retain=True)  # clean up the retained state
        send(pub, [(topic_for(body_meta), b"")], retain=True)
        pub.close()
    finally:
        col.stop()
        store.close()


def _fuzz_stream(dev: str, rng: np.random.Generator):
    """(topic, payload, expected reason) for a stream of bad messages of every kind."""
    ft = protocol.run_topic(dev, "fz", "frames")
    good = frames(dev, 9, 1, "fz", 0, columns(5, rng))
    bad: list[tuple[str, bytes, str]] = []
    for _i in range(20):
        bad.append((ft, b"\xff" + rng.bytes(int(rng.integers(8, 300))), "not_json"))
    bad.append((ft, enc(good).replace(b'"n": 5', b'"n": NaN'), "not_json"))
    bad.append((ft, b'{"schema": "edgebench.frames/1", "x": Infinity}', "not_json"))
    bad.append((ft, b"[1, 2, 3]", "not_object"))
    bad.append((ft, b"", "empty"))
    bad.append((ft, enc(dict(good, n="five")), "invalid"))
    bad.append((ft, enc(dict(good, seq=-3)), "invalid"))
    bad.append((ft, enc(dict(good, session="1")), "invalid"))
    neg = json.loads(json.dumps(good))
    neg["latency_ms"]["inference"][2] = -0.5
    bad.append((ft, enc(neg), "invalid"))
    boolv = json.loads(json.dumps(good))
    boolv["latency_ms"]["e2e"][0] = True
    bad.append((ft, enc(boolv), "invalid"))
    huge = json.loads(json.dumps(good))
    huge["n"] = 3000
    huge["latency_ms"] = {s: [1.0] * 3000 for s in protocol.STAGES}
    bad.append((ft, enc(huge), "invalid"))
    bad.append(
        (ft, b'{"schema":"edgebench.frames/1","pad":"' + b"x" * (protocol.MAX_PAYLOAD_BYTES + 10) + b'"}', "oversized")
    )
    bad.append((ft, enc(dict(good, schema="acme.frames/1")), "unknown_schema"))
    bad.append((ft, enc({k: v for k, v in good.items() if k != "schema"}), "unknown_schema"))
    bad.append((ft, enc(dict(good, schema="edgebench.frames/2")), "wrong_version"))
    bad.append((ft, enc(dict(good, schema=protocol.SUMMARY_SCHEMA)), "wrong_schema"))
    bad.append((ft, enc(dict(good, device_id="someone-else")), "inconsistent"))
    bad.append((ft, enc(dict(good, run_id="other-run")), "inconsistent"))
    short = json.loads(json.dumps(good))
    short["latency_ms"]["capture"] = short["latency_ms"]["capture"][:3]
    bad.append((ft, enc(short), "inconsistent"))
    bad.append(
        (
            protocol.status_topic(dev),
            enc({"schema": protocol.STATUS_SCHEMA, "device_id": dev, "session": 1, "state": "exploded"}),
            "invalid",
        )
    )
    bad.append(
        (
            protocol.telemetry_topic(dev),
            enc(
                {"schema": protocol.TELEMETRY_SCHEMA, "device_id": dev, "session": 1, "seq": 1, "ts": float("nan")}
            ).replace(b"NaN", b"NaN"),
            "not_json",
        )
    )
    return good, bad


def test_fuzzed_stream_is_counted_and_never_reaches_results(mosquitto, tmp_path):
    store = SQLiteStore(str(tmp_path / "fuzz.db"))
    col = make_collector(mosquitto.url, store)
    dev = f"fz-{secrets.token_hex(2)}"
    rng = np.random.default_rng(42)
    good, bad = _fuzz_stream(dev, rng)
    try:
        pub = publisher(mosquitto.url)
        order = rng.permutation(len(bad))
        send(pub, [(bad[i][0], bad[i][1]) for i in order])
        send(pub, [(protocol.run_topic(dev, "fz", "frames"), enc(good))])
        assert col.wait_for(lambda: col.counts["received"] >= len(bad) + 1, 60)
        col.wait_idle(30)
        assert col._writer.is_alive() and col.conn.connected.is_set()
        want: dict[str, int] = {}
        for _, _, reason in bad:
            want[reason] = want.get(reason, 0) + 1
        assert {k: v for k, v in col.rejections.items() if v} == want
        assert col.counts["rejected"] == len(bad)
        assert quarantine_counts(store) == want
        (row,) = group_rows(store)
        assert row["frames"] == 5 and row["device_id"] == dev
        assert store.counts()["frame_batches"] == 1
        # the quarantine keeps what arrived (cut to 64 KiB) with its reason
        reasons = store.query("SELECT reason FROM quarantine WHERE code = 'inconsistent'")
        assert any("does not match topic device" in r[0] for r in reasons)
        pub.close()
    finally:
        col.stop()
        store.close()


def test_persistent_session_survives_collector_and_broker_restart(tmp_path):
    broker = MosquittoBroker().start()
    store = SQLiteStore(str(tmp_path / "p.db"))
    cid, group = f"persist-{secrets.token_hex(3)}", f"g{secrets.token_hex(3)}"
    try:
        col = make_collector(broker.url, store, client_id=cid, group=group)
        col.stop()  # the broker keeps the session and queues for it
        pub = publisher(broker.url)
        send(pub, frame_stream("away", "r1", 50))
        pub.close()
        broker.stop()  # mosquitto writes its persistence file on the way down
        broker.start()
        col = make_collector(broker.url, store, client_id=cid, group=group)
        assert col.wait_for(lambda: store.counts()["frame_batches"] == 50, 60), store.counts()
        col.wait_idle(10)
        assert col.counts["duplicates"] == 0
        col.stop()
    finally:
        store.close()
        broker.cleanup()


def test_crash_before_storing_loses_nothing(tmp_path):
    """A collector killed (SIGKILL) while its database is locked has acknowledged nothing;
    the broker gives the messages to the restarted collector."""
    broker = MosquittoBroker(extra_config="log_type all\n").start()
    db = str(tmp_path / "crash.db")
    SQLiteStore(db).close()
    cid = f"crash-{secrets.token_hex(3)}"
    cmd = [
        sys.executable,
        "-m",
        "edgebench.collector.cli",
        "serve",
        "--mqtt",
        broker.url,
        "--db",
        db,
        "--client-id",
        cid,
    ]
    lock = sqlite3.connect(db, isolation_level=None)
    proc = None
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "collector: connected" in proc.stdout.readline()
        lock.execute("BEGIN EXCLUSIVE")  # the collector's writer now waits for the database
        pub = publisher(broker.url)
        send(pub, frame_stream("crashy", "r1", 30))
        pub.close()
        # wait until the broker has handed all 30 to the collector (its log says so)
        log = os.path.join(broker.dir, "mosquitto.log")
        deadline = time.monotonic() + 60
        while open(log, errors="replace").read().count(f"Sending PUBLISH to {cid} ") < 30:
            assert time.monotonic() < deadline, "the broker did not deliver the messages to the collector"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        lock.execute("ROLLBACK")
        store = SQLiteStore(db)
        assert store.counts()["frame_batches"] == 0
        col = Collector(broker.url, store, client_id=cid).start(15)
        assert col.wait_for(lambda: store.counts()["frame_batches"] == 30, 60), store.counts()
        col.stop()
        store.close()
    finally:
        lock.close()
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.cleanup()


def test_two_collectors_share_the_load_and_store_each_message_once(mosquitto, pg_url):
    s1, s2 = fresh_pg_store(pg_url), fresh_pg_store(pg_url)
    group = f"g{secrets.token_hex(3)}"
    c1 = make_collector(mosquitto.url, s1, group=group, share=True)
    c2 = make_collector(mosquitto.url, s2, group=group, share=True)
    try:
        pub = publisher(mosquitto.url)
        total = 0
        for d in range(4):
            stream = frame_stream(f"shared-{d}", "r", 100, seed=d)
            send(pub, stream)
            total += len(stream)
        pub.close()
        got = lambda: c1.counts["received"] + c2.counts["received"]  # noqa: E731
        assert c1.wait_for(lambda: got() >= total, 60)
        c1.wait_idle(30)
        c2.wait_idle(30)
        assert got() == total, "a message was delivered to both collectors"
        assert c1.counts["received"] > 0 and c2.counts["received"] > 0, "the load was not shared"
        assert s1.counts()["frame_batches"] == total
        assert s1.query("SELECT COUNT(DISTINCT seq) FROM frame_batches WHERE device_id = 'shared-0'")[0][0] == 100
        assert c1.counts["duplicates"] + c2.counts["duplicates"] == 0
        assert sum(r["frames"] for r in group_rows(s1)) == total * 20
    finally:
        c1.stop()
        c2.stop()
        s1.close()
        s2.close()


def test_mqtt_311_broker_falls_back_to_plain_subscriptions(tmp_path):
    store = SQLiteStore(str(tmp_path / "e.db"))
    with EmbeddedBroker() as b:
        col = make_collector(b.url, store)
        try:
            assert not any(s.startswith("$share/") for s in col.subscriptions)
            pub = Connection(b.url, client_id="test-pub-311", protocol="3.1.1").connect(10)
            send(pub, frame_stream("amqtt-dev", "r", 5))
            pub.close()
            assert col.wait_for(lambda: store.counts()["frame_batches"] == 5, 60)
        finally:
            col.stop()
    store.close()


def test_after_commit_hook_sees_each_batch_once_stored_and_before_the_ack(mosquitto, tmp_path):
    """The one hook for work that must follow storage (e.g. telling devices what is stored):
    called with every batch's validated messages once its transaction committed, before the
    broker gets our acknowledgement."""
    store = SQLiteStore(str(tmp_path / "hook.db"))
    col = Collector(mosquitto.url, store, client_id="hook-col")
    seen: list[tuple[int, int, int]] = []  # (messages in the call, rows stored then, acks sent then)
    acks = []
    real_ack = col._ack
    col._ack = lambda items: (acks.extend(items), real_ack(items))
    col.after_commit.append(
        lambda msgs: seen.append((len(msgs), store.query("SELECT COUNT(*) FROM frame_batches")[0][0], len(acks)))
    )
    col.start(10)
    pub = publisher(mosquitto.url)
    try:
        send(pub, frame_stream("hook-dev", "r1", 50))
        assert col.wait_for(lambda: col.counts["stored"] == 50, 30), col.stats()
        col.wait_idle(10)
    finally:
        pub.close()
        col.stop()
        store.close()
    assert sum(n for n, _, _ in seen) == 50
    stored_before = 0
    for n, rows, acked in seen:
        assert rows == stored_before + n  # the batch was in the database when the hook ran
        assert acked == stored_before  # and not yet acknowledged
        stored_before = rows
