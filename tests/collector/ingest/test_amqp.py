"""RabbitMQ quorum-queue ingest (serve --amqp) on real rabbitmq-server nodes the tests start
themselves (free loopback ports, their own names, cookie, config and data under tmp_path;
the system RabbitMQ is left alone): one node for storing and confirming, and a 3-node
cluster where devices publish MQTT 3.1.1 QoS 1 through two nodes, two collector processes
share the queue, a collector is killed (SIGKILL) and the node leading the quorum queue is
killed mid-stream, both restarted: every frame batch ends up stored exactly once.
Skips where rabbitmq-server or pika is absent (.ci/run installs rabbitmq-server)."""

from __future__ import annotations

import json
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
from edgebench.collector.ingest.amqp import BINDINGS, AmqpCollector, key_to_topic, topic_to_key
from edgebench.collector.store import SQLiteStore, open_store
from tests.support.fleet import columns, frames, fresh_pg_store
from tests.support.paths import ROOT
from tests.support.rabbit import RabbitCluster, rabbitmq_server

pika = pytest.importorskip("pika", reason="pika is not installed (pip install -e '.[collector]')")
needs_rabbit = pytest.mark.skipif(
    rabbitmq_server() is None, reason="rabbitmq-server is not installed (apt-get install rabbitmq-server)"
)


def test_routing_keys_map_back_to_topics():
    topic = "edgebench/v1/dev-1/run/v1.2/frames"
    assert topic_to_key(topic) == "edgebench.v1.dev-1.run.v1.2.frames"  # what the MQTT plugin does
    assert key_to_topic(topic_to_key(topic)) == topic
    assert key_to_topic("edgebench.v1.dev-1.telemetry") == "edgebench/v1/dev-1/telemetry"
    assert "edgebench.v1.*.run.#.frames" in BINDINGS
    assert not any(k.endswith(".ack") for k in BINDINGS)  # never consumes its own confirmations


def test_serve_amqp_with_no_broker_says_so_in_one_line(tmp_path):
    from edgebench.collector.broker.embedded import free_port

    r = subprocess.run(
        [sys.executable, "-m", "edgebench.collector.cli", "serve", "--db", str(tmp_path / "x.db")]
        + ["--amqp", f"amqp://guest:guest@127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:" in r.stderr
    assert "guest:guest" not in r.stderr  # no password in the message


def _device_messages(conn: Connection, dev: str, run: str, n: int, session: int = 1) -> list[int]:
    rng = np.random.default_rng(session)
    topic = protocol.run_topic(dev, run, "frames")
    return [conn.publish(topic, frames(dev, session, i + 1, run, i * 10, columns(10, rng)), qos=1) for i in range(n)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One 3-node cluster for the module (a node takes seconds to start); the fault test
    restarts what it kills."""
    if rabbitmq_server() is None:
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    c = RabbitCluster(str(tmp_path_factory.mktemp("rabbit")), 3)
    try:
        yield c.start()
    finally:
        c.close()


@needs_rabbit
@pytest.mark.slow
def test_a_collector_stores_and_confirms_to_the_device_through_another_node(tmp_path, cluster):
    store = SQLiteStore(str(tmp_path / "amqp.db"))
    col = dev = None
    try:
        col = AmqpCollector(cluster.amqp_url(2), store, name="col-one").start(30)
        acks: list = []
        dev = Connection(cluster.mqtt_url(1), client_id="one-dev", protocol="3.1.1", on_message=acks.append)
        dev.connect(30)
        dev.subscribe([(protocol.ack_topic("one"), 1)])
        time.sleep(0.3)
        assert not dev.wait_acked(_device_messages(dev, "one", "r.1", 50), 30)  # a '.' in the run id

        def confirmed() -> set[int]:
            got = set()
            for m in list(acks):
                assert m.topic == protocol.ack_topic("one") and m.qos == 1
                assert protocol.ack_errors("one", json.loads(m.payload)) == []
                got |= {s for a, b in json.loads(m.payload)["seqs"] for s in range(a, b + 1)}
            return got

        assert col.wait_for(lambda: confirmed() == set(range(1, 51)), 30), (col.stats(), confirmed())
        assert col.counts["stored"] == 50 and col.counts["received"] == 50  # its confirmations are not ingested
    finally:
        if dev is not None:
            dev.close()
        if col is not None:
            col.stop()
    assert store.query("SELECT DISTINCT run_id FROM frame_batches") == [("r.1",)]
    store.close()


def _collector(url: str, db: str, name: str, out) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgebench.collector.cli", "serve", "--amqp", url, "--db", db, "--client-id", name],
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
                topic = protocol.run_topic(d, "r1", "frames")
                mids.append(conn.publish(topic, frames(d, 1, i + 1, "r1", i * 10, columns(10, rng)), qos=1))
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


@pytest.fixture
def shared_db(request, tmp_path) -> str:
    """PostgreSQL where there is one (a throwaway database), else a SQLite file both share."""
    try:
        url = request.getfixturevalue("pg_url")
    except pytest.skip.Exception as e:
        print(f"\nno PostgreSQL ({e}); the collectors share a SQLite file")
        return str(tmp_path / "shared.db")
    fresh_pg_store(url).close()
    return url


@needs_rabbit
@pytest.mark.slow
def test_two_collectors_a_killed_collector_and_a_killed_queue_leader_lose_and_duplicate_nothing(
    tmp_path, shared_db, cluster
):
    t_start = time.monotonic()
    procs: list[subprocess.Popen] = []
    try:
        cluster.declare()
        leader = cluster.queue_leader()
        others = [i for i in range(3) if i != leader]
        url_from = [",".join(cluster.amqp_url(k) for k in [i] + [j for j in range(3) if j != i]) for i in range(3)]
        outs = {n: str(tmp_path / f"{n}.log") for n in ("a1", "a2", "b")}
        a = _collector(url_from[others[0]], shared_db, "col-a", open(outs["a1"], "w"))
        b = _collector(url_from[leader], shared_db, "col-b", open(outs["b"], "w"))  # on the node that dies
        procs += [a, b]
        per, devices = 300, 6
        groups = [[f"dev-{k}" for k in range(i, devices, 2)] for i in range(2)]
        errors: list = []
        pubs = [
            threading.Thread(target=_publish, args=(cluster.mqtt_url(node), groups[k], per, 200.0, errors))
            for k, node in enumerate(others)
        ]  # devices publish through the two nodes that stay up
        time.sleep(2.5)  # the collectors connect
        for t in pubs:
            t.start()
        time.sleep(2.0)
        a.send_signal(signal.SIGKILL)  # a collector dies with unacknowledged messages in hand
        a.wait(10)
        time.sleep(1.0)
        cluster.stop(leader)  # the quorum queue's leader dies; col-b loses its node
        a2 = _collector(url_from[others[1]], shared_db, "col-a", open(outs["a2"], "w"))
        procs.append(a2)
        time.sleep(3)
        cluster.start(leader)
        for t in pubs:
            t.join(120)
        assert not errors, errors
        total = per * devices
        st = open_store(shared_db)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and st.query("SELECT COUNT(*) FROM frame_batches")[0][0] < total:
            time.sleep(0.3)
        time.sleep(1.5)  # anything delivered twice would show up now
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
            f"\nRabbitMQ fault test ({time.monotonic() - t_start:.0f} s after the cluster started): {len(keys)}/{total} stored, lost {lost},"
            f" duplicated {duplicated}; shares {shares}; leader was node {leader}, now {cluster.queue_leader()}"
        )
        assert lost == 0 and duplicated == 0 and len(keys) == total
        assert shares["col-b"] and shares["col-a (killed, by difference)"] > 0  # both took part
        assert "AMQP: connection lost" in open(outs["b"]).read()  # col-b went on through another node
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
