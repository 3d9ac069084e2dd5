"""Scale-out benchmark on a private 3-node RabbitMQ cluster (prints figures; asserts nothing).

    .venv/bin/python -m tests.benchmarks.bench_amqp [--messages 20000] [--busy 1] [--runs 3]
        [--only rates|quorum|leader]

The cluster (rabbitmq-server with its MQTT plugin, tests/support/rabbit.py) gets the collectors'
quorum queue ``edgebench-ingest`` (3 replicas), then:

* rates: devices' frame batches (20 frames each) are published with ``mosquitto_pub -l``
  (MQTT 3.1.1, QoS 1) through two nodes' MQTT listeners into the queue, then consumers drain
  that backlog (the rate counts from the first message consumed to the last), one at a time
  on the same queue: a bare pika consumer that acknowledges without storing (the engine's
  ceiling for a Python consumer), then one and two ``edgebench-collector serve --amqp``
  processes storing into PostgreSQL (127.0.0.1:5432, a throwaway database; SQLite where
  PostgreSQL is absent);
* quorum: does the MQTT plugin wait for the quorum queue before its PUBACK? Two of the three
  nodes are killed and a device publishes QoS 1 to the third: no PUBACK may come while the
  queue has no majority; one node back, the PUBACK comes;
* leader: the queue's leader node is killed for 3 s while 4 devices publish 2,400 QoS 1
  messages through the two other nodes (``--runs`` times, each on a fresh cluster): how many
  of the acknowledged publishes a collector stored (what bench_jetstream measures for NATS).

Every figure has the machine's load beside it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from edgebench.collector.store import open_store
from tests.benchmarks.bench_collector import _load, _spin, _stream_files
from tests.benchmarks.bench_jetstream import _database, _rate_while, print_rate
from tests.support.paths import ROOT
from tests.support.rabbit import RabbitCluster, rabbitmq_server


def _publish(cluster: RabbitCluster, files: list[tuple[str, str]], nodes: list[int]) -> None:
    procs = [
        subprocess.Popen(
            ["mosquitto_pub", "-p", str(cluster.mqtt_ports[nodes[k % len(nodes)]]), "-h", "127.0.0.1"]
            + ["-q", "1", "-V", "mqttv311", "-t", topic, "-l", "-i", f"bench-pub-{k}-{os.getpid()}"],
            stdin=open(path, "rb"),
            stderr=subprocess.DEVNULL,
        )
        for k, (topic, path) in enumerate(files)
    ]
    for p in procs:
        p.wait()


def _bare_consumer(url: str, total: int, prefetch: int = 1000) -> float:
    """A pika consumer that acknowledges (multiple, every 500) without storing."""
    import pika

    from edgebench.collector.ingest.amqp import QUEUE

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    got, t0, t1 = 0, None, None
    for method, _props, _body in ch.consume(QUEUE, auto_ack=False, inactivity_timeout=30):
        if method is None:
            break
        t0 = t0 or time.time()
        got += 1
        if got % 500 == 0 or got == total:
            ch.basic_ack(method.delivery_tag, multiple=True)
        t1 = time.time()
        if got >= total:
            break
    ch.cancel()
    conn.close()
    return (got - 1) / (t1 - t0) if t0 and t1 and t1 > t0 else float("nan")


def _collectors(url: str, db: str, k: int, folder: str) -> list[subprocess.Popen]:
    procs = []
    for i in range(k):
        out = open(os.path.join(folder, f"col-{i}.log"), "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "edgebench.collector.cli", "serve", "--amqp", url, "--db", db]
                + ["--client-id", f"bench-col-{i}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(ROOT),
            )
        )
    return procs


def bench_rates(cluster: RabbitCluster, folder: str, total: int, devices: int = 6) -> None:
    per = total // devices
    total = per * devices
    print(f"== {total} frame batches (20 frames each) per case, {devices} mosquitto_pub -l through nodes 0 and 1")
    session = 10
    t0 = time.time()
    _publish(cluster, _stream_files(folder, devices, per, 20, session), [0, 1])
    print_rate("devices publishing through MQTT into the queue", total / (time.time() - t0))
    print_rate("bare pika consume+ack (no storing)", _bare_consumer(cluster.amqp_url(2), total))
    db, drop = _database(folder)
    try:
        for k in (1, 2):
            session += 1
            store = open_store(db)
            before = store.query("SELECT COUNT(*) FROM frame_batches")[0][0]
            _publish(cluster, _stream_files(folder, devices, per, 20, session), [0, 1])  # a backlog, then drain
            procs = _collectors(cluster.url, db, k, folder)
            rate, n = _rate_while(store, before + total)
            print_rate(f"{k} collector(s) storing into {store.dialect}", rate, f"stored {n - before}/{total}")
            for p in procs:
                p.terminate()
                p.wait(60)
            store.close()
    finally:
        drop()


def bench_quorum(cluster: RabbitCluster) -> None:
    """PUBACK with the queue's majority gone, then with it back."""
    from edgebench.agent.wire import protocol
    from edgebench.collector.broker.connection import Connection

    conn = Connection(cluster.mqtt_url(0), client_id="quorum-probe", protocol="3.1.1").connect(30)
    topic = f"{protocol.PREFIX}/probe/status"
    mid = conn.publish(topic, b'{"probe": 1}', qos=1)
    ok_before = not conn.wait_acked([mid], 10)
    cluster.stop(1)
    cluster.stop(2)
    t0 = time.monotonic()
    mid = conn.publish(topic, b'{"probe": 2}', qos=1)
    during = not conn.wait_acked([mid], 8)
    cluster.start(2)
    after = not conn.wait_acked([mid], 60)
    waited = time.monotonic() - t0
    conn.close()
    cluster.start(1)
    print(
        f"PUBACK with all 3 nodes up: {'yes' if ok_before else 'NO'}; with 2 of 3 nodes killed (no majority for"
        f" the quorum queue): {'yes (NOT waiting for the queue)' if during else 'none within 8 s'}; after one came"
        f" back: {'yes' if after else 'NO'}, {waited:.1f} s after the publish | load {_load()}",
        flush=True,
    )


def _paced_publish(cluster: RabbitCluster, files, nodes: list[int], rate: float, out: list) -> None:
    from edgebench.collector.broker.connection import Connection

    conns = [
        Connection(cluster.mqtt_url(nodes[k % len(nodes)]), client_id=f"pace-{k}", protocol="3.1.1").connect(30)
        for k in range(len(files))
    ]
    lines = [open(path, "rb").read().splitlines() for _, path in files]
    mids = [[] for _ in files]
    t0 = time.monotonic()
    for j in range(len(lines[0])):
        for k, (topic, _) in enumerate(files):
            mids[k].append(conns[k].publish(topic, lines[k][j], qos=1))
        time.sleep(max(0.0, t0 + (j + 1) * len(files) / rate - time.monotonic()))
    out.append(sum(len(c.wait_acked(m, 120)) for c, m in zip(conns, mids)))
    for c in conns:
        c.close()


def bench_leader_kill(folder: str, run: int) -> None:
    """Devices publish through the two other nodes while the queue's leader dies for 3 s."""
    from edgebench.collector.ingest.amqp import AmqpCollector

    cluster = RabbitCluster(os.path.join(folder, f"leader-{run}"), 3).start()
    try:
        cluster.declare()
        i = cluster.queue_leader()
        others = [k for k in range(3) if k != i]
        store = open_store(os.path.join(folder, f"leader-{run}.db"))
        col = AmqpCollector(",".join(cluster.amqp_url(k) for k in others), store).start(30)
        files = _stream_files(folder, 4, 600, 20, 77 + run)  # ~300 msg/s for 8 s
        unacked: list = []
        pub = threading.Thread(target=_paced_publish, args=(cluster, files, others, 300.0, unacked))
        pub.start()
        time.sleep(3)
        cluster.stop(i)
        time.sleep(3)
        cluster.start(i)
        pub.join(180)
        t_end = time.monotonic()
        col.wait_for(lambda: col.counts["stored"] >= 2400, 60)
        waited = time.monotonic() - t_end
        new_leader = cluster.names[cluster.queue_leader()].split("@")[0]
        col.stop()
        c = col.counts
        n = store.query("SELECT COUNT(*) FROM frame_batches")[0][0]
        store.close()
        print(
            f"run {run}: queue leader {cluster.names[i].split('@')[0]} killed for 3 s while devices published 2400 QoS 1"
            f" messages through the other nodes ({2400 - (unacked[0] if unacked else 2400)} acknowledged):"
            f" stored {n}/2400, missing {2400 - n}, the last {waited:.1f} s after publishing ended; collector"
            f" received {c['received']}, duplicates {c['duplicates']}; leader afterwards {new_leader} | load {_load()}",
            flush=True,
        )
    finally:
        cluster.close()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up the cluster when stopped
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--busy", type=int, default=1, help="processes keeping a core busy beside the benchmark")
    ap.add_argument("--runs", type=int, default=3, help="leader kills, each on a fresh cluster")
    ap.add_argument("--only", choices=["rates", "quorum", "leader"])
    a = ap.parse_args()
    if rabbitmq_server() is None or not shutil.which("mosquitto_pub"):
        sys.exit(
            "bench_amqp: needs rabbitmq-server and mosquitto_pub: apt-get install -y rabbitmq-server mosquitto-clients"
        )
    spinners = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(a.busy)]
    for p in spinners:
        p.start()
    print(
        f"machine: {os.cpu_count()} cores, load {_load()}, {a.busy} busy process(es); python {sys.version.split()[0]}"
    )
    folder = tempfile.mkdtemp(prefix="edgebench-amqp-")
    try:
        if a.only in (None, "rates", "quorum"):
            cluster = RabbitCluster(os.path.join(folder, "rabbit"), 3).start()
            try:
                cluster.declare()
                print(
                    f"3-node RabbitMQ cluster (rabbitmq-server {_version()}), queue leader node {cluster.queue_leader()}"
                )
                if a.only in (None, "quorum"):
                    bench_quorum(cluster)
                if a.only in (None, "rates"):
                    bench_rates(cluster, folder, a.messages)
            finally:
                cluster.close()
        if a.only in (None, "leader"):
            for run in range(1, a.runs + 1):
                bench_leader_kill(folder, run)
    finally:
        for p in spinners:
            p.terminate()
        shutil.rmtree(folder, ignore_errors=True)


def _version() -> str:
    d = "/usr/lib/rabbitmq/lib"
    names = [n for n in os.listdir(d) if n.startswith("rabbitmq_server-")] if os.path.isdir(d) else []
    return names[0].split("-", 1)[1] if names else "?"


if __name__ == "__main__":
    main()
