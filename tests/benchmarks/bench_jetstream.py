"""Scale-out benchmark on a private 3-node NATS JetStream cluster (prints figures; asserts nothing).

    .venv/bin/python -m tests.benchmarks.bench_jetstream [--messages 20000] [--busy 1]

Devices' frame batches (20 frames each) are published with ``mosquitto_pub -l`` (MQTT 3.1.1,
QoS 1) through two nodes' MQTT listeners into the stream, then the consumers drain that
backlog (the rate counts from the first message consumed to the last). Consumers, one at a time on the same stream and the same
machine: the engine's ceiling (``nats bench`` where the nats CLI is installed; else a bare
nats-py pull consumer that fetches and acknowledges without storing), then one and two
``edgebench-collector serve --nats`` processes storing into PostgreSQL (127.0.0.1:5432, a
throwaway database; SQLite where PostgreSQL is absent). Last, the stream's leader is killed
while devices publish: how many acknowledged publishes the stream never stored; then
(``--only confirmed``, ``--runs N``) the same kill with real agent outboxes, which keep each
message until a collector confirms it through NATS: stored, doubled, sent again.
Every figure has the machine's load beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from edgebench.collector.store import open_store
from tests.benchmarks.bench_collector import _load, _spin, _stream_files
from tests.support.nats import NatsCluster, nats_server, prepare_stream
from tests.support.paths import ROOT

PG_ADMIN = os.environ.get("EDGEBENCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _publish(cluster: NatsCluster, files: list[tuple[str, str]], nodes: list[int]) -> None:
    procs = [
        subprocess.Popen(
            ["mosquitto_pub", "-p", str(cluster.mqtt_ports[nodes[k % len(nodes)]]), "-h", "127.0.0.1"]
            + ["-q", "1", "-V", "mqttv311", "-t", topic, "-l", "-i", f"bench-pub-{k}-{secrets.token_hex(2)}"],
            stdin=open(path, "rb"),
            stderr=subprocess.DEVNULL,
        )
        for k, (topic, path) in enumerate(files)
    ]
    for p in procs:
        p.wait()


def _bare_consumer(url: str, total: int) -> float:
    """A nats-py pull consumer that fetches and acknowledges, storing nothing."""
    import nats

    from edgebench.collector.ingest.jetstream import DURABLE, FILTER, STREAM

    async def go() -> float:
        nc = await nats.connect(servers=url.split(","))
        psub = await nc.jetstream().pull_subscribe(FILTER, durable=DURABLE, stream=STREAM)
        got, t0, t1 = 0, None, None
        deadline = time.monotonic() + 300
        while got < total and time.monotonic() < deadline:
            try:
                msgs = await psub.fetch(500, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            t0 = t0 or time.time()
            for m in msgs:
                await m.ack()
            got += len(msgs)
            t1 = time.time()
        await nc.flush()
        await nc.close()
        return (got - 1) / (t1 - t0) if t0 and t1 and t1 > t0 else float("nan")

    return asyncio.run(go())


def _rate_while(store, total: int, timeout: float = 300) -> tuple[float, int]:
    """Poll the stored count: (rate from the first stored row to the last, rows stored)."""
    t0 = t1 = None
    n = 0
    deadline = time.monotonic() + timeout
    while n < total and time.monotonic() < deadline:
        n = store.query("SELECT COUNT(*) FROM frame_batches")[0][0]
        now = time.time()
        if n and t0 is None:
            t0, n0 = now, n
        t1 = now
        time.sleep(0.1)
    return ((n - n0) / (t1 - t0) if t0 and t1 > t0 else float("nan")), n


def _collectors(url: str, db: str, k: int, folder: str) -> list[subprocess.Popen]:
    procs = []
    for i in range(k):
        out = open(os.path.join(folder, f"col-{i}.log"), "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "edgebench.collector.cli", "serve", "--nats", url, "--db", db]
                + ["--client-id", f"bench-col-{i}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(ROOT),
            )
        )
    for i in range(k):
        deadline = time.monotonic() + 60
        while "connected" not in open(os.path.join(folder, f"col-{i}.log")).read():
            if time.monotonic() > deadline:
                raise SystemExit(f"collector {i} did not start: " + open(os.path.join(folder, f"col-{i}.log")).read())
            time.sleep(0.2)
    return procs


def _database(folder: str) -> tuple[str, callable]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except Exception as e:
        print(f"PostgreSQL not reachable ({str(e).splitlines()[0][:80]}); collectors store into SQLite")
        return os.path.join(folder, "js.db"), lambda: None
    name = f"edgebench_bench_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def bench_rates(cluster: NatsCluster, folder: str, total: int, devices: int = 6) -> None:
    per = total // devices
    total = per * devices
    print(f"== {total} frame batches (20 frames each) per case, {devices} mosquitto_pub -l through nodes n0 and n1")
    if shutil.which("nats"):
        out = subprocess.run(
            [
                "nats",
                "bench",
                "bench.subject",
                "--js",
                "--pub",
                "1",
                "--sub",
                "1",
                "--msgs",
                str(total),
                "--size",
                "900",
            ]
            + ["--server", cluster.url],
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
        print("nats bench (the engine's own tool):\n" + out.strip() + f"\n   load {_load()}")
    session = 10
    t0 = time.time()
    _publish(cluster, _stream_files(folder, devices, per, 20, session), [0, 1])
    print_rate("devices publishing through MQTT into the stream", total / (time.time() - t0))
    print_rate("bare nats-py fetch+ack (no storing)", _bare_consumer(cluster.url, total))
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


def print_rate(what: str, rate: float, extra: str = "") -> None:
    print(f"{what:45s} {rate:8.0f} msg/s {extra} | load {_load()}", flush=True)


def bench_leader_kill(cluster: NatsCluster, folder: str, leader: str) -> None:
    """Devices publish through the two other nodes while the stream's leader dies."""
    from edgebench.collector.ingest.jetstream import JetStreamCollector

    i = int(leader[1:])
    others = [k for k in range(3) if k != i]
    db = os.path.join(folder, "leader.db")
    store = open_store(db)
    col = JetStreamCollector(",".join(f"nats://127.0.0.1:{cluster.client_ports[k]}" for k in others), store).start(30)
    files = _stream_files(folder, 4, 600, 20, 77)  # paced by _paced_publish below: ~300 msg/s for 8 s
    pub = threading.Thread(target=_paced_publish, args=(cluster, files, others, 300.0))
    pub.start()
    time.sleep(3)
    cluster.stop(i)
    time.sleep(3)
    cluster.start(i)
    pub.join(120)
    t_end = time.monotonic()
    # what was delivered by a fetch the dying node never answered comes again after the ack wait (30 s)
    col.wait_for(lambda: col.counts["stored"] >= 2400, 90)
    waited = time.monotonic() - t_end
    held = asyncio.run(_consumer_state(cluster.url))
    col.stop()
    c = col.counts
    held += (
        f"; the collector received {c['received']}, stored {c['stored']}, duplicates {c['duplicates']},"
        f" rejected {c['rejected']}, store errors {c['store_errors']}"
    )
    n = store.query("SELECT COUNT(*) FROM frame_batches")[0][0]
    store.close()
    print(
        f"stream leader {leader} killed for 3 s while devices published 2400 QoS 1 messages through the other"
        f" nodes, every one acknowledged (PUBACK): stored {n}, missing {2400 - n}, the last"
        f" {waited:.0f} s after publishing ended; the consumer then: {held} | load {_load()}"
    )


def bench_leader_kill_confirmed(cluster: NatsCluster, folder: str, leader: str, runs: int = 1) -> None:
    """The same leader kill with real agent outboxes: each message stays on its device until a
    collector confirms it (through core NATS), and what no collector confirmed within
    ``resend_s`` is sent again; stored at the end, and how many the devices sent again."""
    import logging

    logging.getLogger("edgebench").setLevel(logging.ERROR)  # the outboxes' resends, the links' reconnects
    for run in range(runs):
        line = _confirmed_run(cluster, folder, run, int(leader[1:]))
        print(f"stream leader {leader} killed for ~3 s, {line} | load {_load()}", flush=True)
        leader = asyncio.run(_leader(cluster.url))


def _agent_devices(cluster: NatsCluster, folder: str, run: int, nodes: list[int]) -> list:
    """Four agent Publishers (outbox, MQTT link) on the nodes' MQTT listeners, resend_s 5."""
    from edgebench.agent.publish.publisher import Publisher
    from edgebench.agent.wire.transport import MqttSettings

    return [
        Publisher(
            MqttSettings.from_config({"url": cluster.mqtt_url(nodes[d % len(nodes)]), "reconnect_min_s": 0.2}),
            f"dev-{run}-{d}",
            outbox_path=os.path.join(folder, f"ob-{run}-{d}.db"),
            resend_s=5,
            confirm_wait_s=60,
            inventory={},
        ).start()
        for d in range(4)
    ]


def _confirmed_run(cluster: NatsCluster, folder: str, run: int, leader: int) -> str:
    import numpy as np

    from edgebench.agent.wire import protocol
    from edgebench.collector.ingest.jetstream import JetStreamCollector

    others = [k for k in range(3) if k != leader]
    store = open_store(os.path.join(folder, f"confirmed-{run}.db"))
    url = ",".join(f"nats://127.0.0.1:{cluster.client_ports[k]}" for k in others)
    col = JetStreamCollector(url, store, client_id="bench").start(30)
    pubs = _agent_devices(cluster, folder, run, others)
    streams = [p.stream() for p in pubs]
    for s in streams:
        s.run_id = "r1"
    rng = np.random.default_rng(run)
    cols = {k: rng.integers(1, 10**7, 20, dtype=np.int64) for k in protocol.STAGES}
    per, t0 = 600, time.monotonic()  # 4 devices x 600 batches at ~300 msg/s: 8 s
    for j in range(per):
        for s in streams:
            s.sink(j * 20, cols)
        if j == 225:  # the leader down for ~3 s in the middle
            cluster.stop(leader)
        elif j == 450:
            cluster.start(leader)
        time.sleep(max(0.0, t0 + (j + 1) * 4 / 300.0 - time.monotonic()))
    t_end = time.monotonic()
    drained = all(p.wait_drained(180) for p in pubs)
    waited = time.monotonic() - t_end
    resent = sum(p.outbox.stats()["resent_messages"] for p in pubs)
    for p in pubs:
        p.close()
    col.stop()
    # this run's devices only: the stream may still hold an earlier run's messages sent twice
    mine = f"WHERE device_id LIKE 'dev-{run}-%'"
    n = store.query(f"SELECT COUNT(*) FROM frame_batches {mine}")[0][0]
    twice = n - store.query(f"SELECT COUNT(DISTINCT device_id || '/' || seq) FROM frame_batches {mine}")[0][0]
    store.close()
    return (
        f"4 agent outboxes (confirmations, resend_s 5) publishing 2400 frame batches through the other nodes:"
        f" stored {n}, missing {per * 4 - n}, doubled {twice}; devices sent {resent} again; outboxes"
        f" {'empty' if drained else 'NOT empty'} {waited:.0f} s after publishing ended"
    )


async def _leader(url: str) -> str:
    import nats

    from edgebench.collector.ingest.jetstream import STREAM

    nc = await nats.connect(servers=url.split(","))
    try:
        for _ in range(60):
            try:
                info = await nc.jetstream().stream_info(STREAM)
                if info.cluster and info.cluster.leader:
                    return info.cluster.leader
            except Exception:
                pass
            await asyncio.sleep(0.5)
        raise TimeoutError("no stream leader")
    finally:
        await nc.close()


async def _consumer_state(url: str) -> str:
    """What the stream still holds for the collectors: not yet delivered, delivered and unacknowledged."""
    import nats

    from edgebench.collector.ingest.jetstream import DURABLE, STREAM

    nc = await nats.connect(servers=url.split(","))
    try:
        ci = await nc.jetstream().consumer_info(STREAM, DURABLE)
        si = await nc.jetstream().stream_info(STREAM)
        return (
            f"{ci.num_pending} not yet delivered, {ci.num_ack_pending} awaiting acknowledgement,"
            f" stream sequence {si.state.last_seq} (messages ever stored), {si.state.messages} held"
        )
    except Exception as e:
        return f"unknown ({e})"
    finally:
        await nc.close()


def _paced_publish(cluster: NatsCluster, files, nodes: list[int], rate: float) -> None:
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
    unacked = sum(len(c.wait_acked(m, 60)) for c, m in zip(conns, mids))
    for c in conns:
        c.close()
    if unacked:
        print(f"   ({unacked} publishes were not acknowledged by the broker)")


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up the cluster when stopped
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--busy", type=int, default=1, help="processes keeping a core busy beside the benchmark")
    ap.add_argument("--only", choices=["rates", "leader", "confirmed"])
    ap.add_argument("--runs", type=int, default=1, help="leader kills with agent outboxes (--only confirmed)")
    a = ap.parse_args()
    if nats_server() is None or not shutil.which("mosquitto_pub"):
        sys.exit(
            "bench_jetstream: needs nats-server and mosquitto_pub: apt-get install -y nats-server mosquitto-clients"
        )
    spinners = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(a.busy)]
    for p in spinners:
        p.start()
    print(
        f"machine: {os.cpu_count()} cores, load {_load()}, {a.busy} busy process(es); python {sys.version.split()[0]}"
    )
    folder = tempfile.mkdtemp(prefix="edgebench-js-")
    cluster = NatsCluster(os.path.join(folder, "nats"), 3).start()
    try:
        leader = prepare_stream(cluster.url, ack_wait_s=30.0)
        print(
            f"3-node nats-server cluster ({subprocess.run([nats_server(), '--version'], capture_output=True, text=True).stdout.strip()}), stream leader {leader}"
        )
        if not shutil.which("nats"):
            print("the nats CLI (nats bench) is not installed: the engine's ceiling is a bare nats-py consumer")
        if a.only in (None, "rates"):
            bench_rates(cluster, folder, a.messages)
        if a.only in (None, "leader"):
            bench_leader_kill(cluster, folder, leader)
        if a.only in (None, "confirmed"):
            bench_leader_kill_confirmed(cluster, folder, asyncio.run(_leader(cluster.url)), a.runs)
    finally:
        cluster.close()
        for p in spinners:
            p.terminate()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
