"""NATS JetStream ingest on a real 3-node nats-server cluster the test starts itself (free
loopback ports, its own config and store under tmp_path): devices publish MQTT 3.1.1 QoS 1
through different nodes, two collector processes share the durable consumer, a collector
and a broker node (a follower of the stream) are killed (SIGKILL) mid-stream and restarted;
PostgreSQL ends with every frame batch exactly once. Skips where nats-server or nats-py is absent (.ci/run installs
nats-server)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.broker.connection import Connection
from edgebench.collector.ingest.jetstream import JetStreamCollector, subject_to_topic
from edgebench.collector.store import SQLiteStore
from tests.support.fleet import columns, frames, fresh_pg_store
from tests.support.nats import NatsCluster, nats_server, prepare_stream
from tests.support.paths import ROOT

pytestmark = [
    pytest.mark.skipif(nats_server() is None, reason="nats-server is not installed (apt-get install nats-server)"),
    pytest.mark.timeout(300),
]
nats = pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[collector]')")


def test_subjects_map_back_to_topics():
    assert subject_to_topic("edgebench.v1.dev-1.run.r1.frames") == "edgebench/v1/dev-1/run/r1/frames"
    assert subject_to_topic("edgebench.v1.dev-1.run.r//1.frames") == "edgebench/v1/dev-1/run/r.1/frames"


def _collector(url: str, db: str, name: str, out) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgebench.collector.cli", "serve", "--nats", url, "--db", db, "--client-id", name],
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def _publish(url: str, devs: list[str], per: int, rate: float, errors: list) -> None:
    """Devices publishing frame batches at ``rate`` messages/s through one node."""
    try:
        conn = Connection(url, client_id=f"pub-{devs[0]}", protocol="3.1.1").connect(30)
        rng = np.random.default_rng(len(devs[0]))
        mids = []
        t0 = time.monotonic()
        for i in range(per):
            for d in devs:
                mids.append(
                    conn.publish(
                        protocol.run_topic(d, "r1", "frames"),
                        frames(d, 1, i + 1, "r1", i * 10, columns(10, rng)),
                        qos=1,
                    )
                )
            time.sleep(max(0.0, t0 + (i + 1) * len(devs) / rate - time.monotonic()))
        missing = conn.wait_acked(mids, 120)
        if missing:
            errors.append(f"{len(missing)} publishes not acknowledged by the broker")
        conn.close()
    except Exception as e:  # reported by the test
        errors.append(repr(e))


def _stored(out_path: str) -> int | None:
    with open(out_path) as f:
        m = re.search(r"stopped; received \d+, stored (\d+)", f.read())
    return int(m.group(1)) if m else None


def test_two_collectors_a_killed_collector_and_a_killed_node_lose_and_duplicate_nothing(tmp_path, pg_url):
    fresh_pg_store(pg_url).close()
    cluster = NatsCluster(str(tmp_path / "nats"), 3).start()
    procs: list[subprocess.Popen] = []
    try:
        leader = int(prepare_stream(cluster.url, ack_wait_s=3.0)[1:])  # "n2" -> 2
        # a follower of the stream dies, not its leader: nats-server 2.9 acknowledges MQTT
        # publishes that a leader's death can then drop (docs/scale-out.md, bench_jetstream);
        # collectors connected to it lose their connection (nats-py cancels their fetches)
        killed = (leader + 1) % 3
        others = [i for i in range(3) if i != killed]
        outs = {n: str(tmp_path / f"{n}.log") for n in ("a1", "a2", "b")}
        a = _collector(cluster.url, pg_url, "col-a", open(outs["a1"], "w"))
        b = _collector(cluster.url, pg_url, "col-b", open(outs["b"], "w"))
        procs += [a, b]
        per, devices = 300, 6
        groups = [[f"dev-{k}" for k in range(i, devices, 2)] for i in range(2)]
        errors: list = []
        pubs = [
            threading.Thread(target=_publish, args=(cluster.mqtt_url(node), groups[k], per, 150.0, errors))
            for k, node in enumerate(others)
        ]  # devices publish through the two nodes that stay up
        time.sleep(3)
        for t in pubs:
            t.start()
        time.sleep(2.5)
        a.send_signal(signal.SIGKILL)  # a collector dies with fetched, unacknowledged messages
        a.wait(10)
        time.sleep(1.5)
        cluster.stop(killed)  # a node holding a replica of the stream dies
        time.sleep(3)
        cluster.start(killed)
        a2 = _collector(cluster.url, pg_url, "col-a", open(outs["a2"], "w"))
        procs.append(a2)
        for t in pubs:
            t.join(180)
        assert not errors, errors
        total = per * devices
        st = __import__("edgebench.collector.store", fromlist=["PostgresStore"]).PostgresStore(pg_url)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and st.query("SELECT COUNT(*) FROM frame_batches")[0][0] < total:
            time.sleep(0.5)
        time.sleep(4)  # anything delivered again after its ack wait would show up now
        for p in (b, a2):
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        rows = st.query("SELECT device_id, seq FROM frame_batches")
        content = st.query("SELECT COUNT(DISTINCT device_id || '/' || run_id || '/' || first_frame) FROM frame_batches")
        st.close()
        keys = sorted(rows)
        want = sorted((f"dev-{k}", s) for k in range(devices) for s in range(1, per + 1))
        lost = len(set(want) - set(keys))
        duplicated = len(keys) - len(set(keys)) + (len(keys) - content[0][0])
        shares = {"col-b": _stored(outs["b"]), "col-a (after restart)": _stored(outs["a2"])}
        shares["col-a (killed, by difference)"] = len(keys) - sum(v or 0 for v in shares.values())
        print(
            f"\nJetStream fault test: {len(keys)}/{total} stored, lost {lost}, duplicated {duplicated}; shares {shares}"
        )
        assert lost == 0 and duplicated == 0 and len(keys) == total
        assert shares["col-b"] and shares["col-a (killed, by difference)"] > 0  # both took part
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        cluster.close()


def test_collector_creates_its_stream_on_a_single_server_and_stores(tmp_path):
    cluster = NatsCluster(str(tmp_path / "nats"), 1).start()
    store = SQLiteStore(str(tmp_path / "js.db"))
    col = None
    try:
        col = JetStreamCollector(cluster.url, store).start(30)
        rng = np.random.default_rng(0)
        conn = Connection(cluster.mqtt_url(0), client_id="one-dev", protocol="3.1.1").connect(30)
        mids = [
            conn.publish(
                protocol.run_topic("one", "r1", "frames"),
                frames("one", 1, i + 1, "r1", i * 10, columns(10, rng)),
                qos=1,
            )
            for i in range(50)
        ]
        assert not conn.wait_acked(mids, 30)
        conn.close()
        assert col.wait_for(lambda: col.counts["stored"] == 50, 30), col.stats()
    finally:
        if col is not None:
            col.stop()
        cluster.close()
    assert store.query("SELECT COUNT(*) FROM frame_batches")[0][0] == 50
    store.close()
    assert os.path.isdir(tmp_path / "nats" / "n0")


def test_subjects_for_mqtt_topics_and_filters():
    from edgebench.collector.ingest.jetstream import SUBJECTS, topic_to_subject

    assert topic_to_subject("edgebench/v1/d-1/run/v1.2/frames") == "edgebench.v1.d-1.run.v1//2.frames"
    assert subject_to_topic(topic_to_subject("edgebench/v1/d-1/run/v1.2/frames")) == "edgebench/v1/d-1/run/v1.2/frames"
    assert topic_to_subject("edgebench/v1/+/run/+/frames") == "edgebench.v1.*.run.*.frames"
    assert "edgebench.v1.*.telemetry" in SUBJECTS and "edgebench.v1.*.info" in SUBJECTS
    # what the collectors and commands publish under edgebench.v1 is not captured as work
    assert not any(s.endswith((".ack", ".cmd.>")) or "alerts" in s for s in SUBJECTS)


def _old_stream(url: str) -> None:
    """The stream as collectors before confirmations through NATS made it: all of edgebench.v1.>."""
    import asyncio

    from nats.js.api import RetentionPolicy, StorageType

    from edgebench.collector.ingest.jetstream import FILTER, STREAM

    async def go():
        nc = await nats.connect(url)
        await nc.jetstream().add_stream(
            name=STREAM, subjects=[FILTER], retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE
        )
        await nc.close()

    asyncio.run(go())


def _stream_state(url: str) -> tuple[list[str], int]:
    import asyncio

    from edgebench.collector.ingest.jetstream import STREAM

    async def go():
        nc = await nats.connect(url)
        info = await nc.jetstream().stream_info(STREAM)
        await nc.close()
        return info.config.subjects, info.state.messages

    return asyncio.run(go())


def test_a_device_behind_the_nats_mqtt_listener_gets_its_messages_confirmed(tmp_path):
    """A real agent Publisher (outbox and MQTT link, protocol auto-probed) on a nats-server's
    MQTT listener; a --nats collector confirms through core NATS: the outbox empties long
    before confirm_wait_s and says "confirmed", never falling back to the broker's PUBACK.
    The stream, made the old way (all of edgebench.v1.>), is narrowed so that the
    confirmations do not land in the work queue."""
    from edgebench.agent.publish.publisher import Publisher
    from edgebench.agent.wire.transport import MqttSettings
    from edgebench.collector.ingest.jetstream import SUBJECTS

    cluster = NatsCluster(str(tmp_path / "nats"), 1).start()
    store = SQLiteStore(str(tmp_path / "js.db"))
    col = pub = None
    try:
        _old_stream(cluster.url)
        col = JetStreamCollector(cluster.url, store, client_id="col-nats").start(30)
        assert sorted(_stream_state(cluster.url)[0]) == sorted(SUBJECTS)
        settings = MqttSettings.from_config({"url": cluster.mqtt_url(0), "reconnect_min_s": 0.2})
        pub = Publisher(
            settings, "dev-n", outbox_path=str(tmp_path / "ob.db"), resend_s=30, confirm_wait_s=15, inventory={}
        ).start()
        stream = pub.stream()
        stream.run_id = "r1"
        rng = np.random.default_rng(5)
        for i in range(20):
            stream.sink(i * 10, {s: rng.integers(1, 10**7, 10, dtype=np.int64) for s in protocol.STAGES})
            pub.telemetry({})
        t0 = time.monotonic()
        assert pub.wait_drained(12), pub.outbox.stats()
        took = time.monotonic() - t0
        st = pub.outbox.stats()
        assert st["confirmation"] == "confirmed" and st["released_unconfirmed"] == 0, st
        assert st["confirmed_messages"] >= 41, st  # 20 frame batches, 20 telemetry, the birth info
        assert col.counts["confirmations"] > 0 and col.confirmed["dev-n"][0] == st["last_seq"]
        assert store.query("SELECT COUNT(*) FROM frame_batches WHERE device_id='dev-n'")[0][0] == 20
        col.wait_idle()
        assert col.counts["ignored"] == 0  # no confirmation came back as work
        assert _stream_state(cluster.url)[1] == 0  # and none waits in the stream
        print(f"\nconfirmed through NATS: {st['confirmed_messages']} messages in {took:.1f} s (confirm_wait_s 15)")
    finally:
        if pub is not None:
            pub.close()
        if col is not None:
            col.stop()
        cluster.close()
        store.close()
