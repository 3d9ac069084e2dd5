"""Collector ingest benchmarks against a real Mosquitto (prints figures; asserts nothing).

    .venv/bin/python -m tests.benchmarks.bench_collector [--messages 60000] [--devices 1000 --seconds 30] [--busy 1]

Every summary line ends with the machine's load average; ``--busy N`` (default 1) keeps N
cores busy with spinning processes for the whole run, since collectors rarely run on idle boxes.

1. Throughput: frame-batch messages (20 frames each) published by C clients
   (``mosquitto_pub -l``, one per device) as fast as they go; one collector process
   (shared subscription, SQLite) and a bare ``mosquitto_sub`` subscribe to the same
   stream in the same run. Then the backlog case: both offline with persistent sessions
   while the stream is published, then each drains its queue alone. Prints each
   consumer's rate, their ratio, and whether every message was stored exactly once.
   The test broker (edgebench.collector.broker.embedded.MosquittoBroker) sets ``max_queued_messages 0`` (no
   per-client queue limit) on purpose: at the default of 1000 a consumer that falls behind
   loses messages silently; and ``max_inflight_messages 0``: the collector acknowledges
   only what it has stored, and at the default of 20 in flight it would idle between batches.
2. Fleet: N simulated devices (default 1000), each publishing one frame batch (30
   frames) and one telemetry message every second, from a few publisher processes;
   prints the p50/p99/max delay from publish (the payload's ts) to stored (the row's
   stored_at), loss, and the ratio to a bare mosquitto_sub on the same stream.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from edgebench.agent.wire import protocol
from edgebench.collector.broker.embedded import MosquittoBroker
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.store import SQLiteStore
from tests.support.paths import ROOT as PATHS_ROOT

ROOT = str(PATHS_ROOT)

FRAMES_FILTER = f"{protocol.PREFIX}/+/run/+/frames"
PROTO = "5"  # the collector's MQTT version (--mqtt-protocol)


#: a PostgreSQL server to store into instead of SQLite (--postgres): a throwaway database on it
PG_ADMIN: str | None = None


def _open_store(sqlite_path: str):
    """SQLite at ``sqlite_path``, or a fresh database on PG_ADMIN's server (dropped at exit)."""
    if PG_ADMIN is None:
        return SQLiteStore(sqlite_path)
    import atexit
    import secrets

    import psycopg

    from edgebench.collector.store import PostgresStore

    admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    name = f"edgebench_bench_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    atexit.register(lambda: admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return PostgresStore(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)


def _load() -> str:
    return "{:.1f}".format(os.getloadavg()[0])


def _spin() -> None:
    while True:
        pass


def _columns(n: int, rng) -> dict[str, list[float]]:
    c = {s: np.round(rng.gamma(4.0, 0.5, n), 4).tolist() for s in protocol.STAGES}
    return c


class Sub:
    """A bare mosquitto_sub counting what it receives, with C-side timestamps (%U)."""

    def __init__(self, port: int, topic: str, count: int, client_id: str | None = None, persistent: bool = False):
        cmd = [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            topic,
            "-q",
            "1",
            "-V",
            "mqttv5",
            "-C",
            str(count),
            "-F",
            "%U",
        ]
        if client_id:
            cmd += ["-i", client_id]
        if persistent:
            cmd += ["-c", "-x", "3600"]
        self.cmd = cmd
        self.times: list[float] = []

    def start(self) -> "Sub":
        # mosquitto_sub writes its timestamps to a file, read after it ends: a thread reading
        # them live would take the GIL from the collector measured in this same process.
        self.out = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.cmd, stdout=self.out, stderr=subprocess.DEVNULL, text=True)
        return self

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.seek(0)
        for line in self.out:
            try:
                self.times.append(float(line.strip()))
            except ValueError:
                pass
        self.out.close()

    @property
    def rate(self) -> float:
        if len(self.times) < 2:
            return float("nan")
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def _publish_files(port: int, files: list[tuple[str, str]]) -> float:
    t0 = time.time()
    procs = [
        subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-V", "mqttv5", "-t", topic, "-l"],
            stdin=open(path, "rb"),
            stderr=subprocess.DEVNULL,
        )
        for topic, path in files
    ]
    for p in procs:
        p.wait()
    return time.time() - t0


def _stream_files(tmp: str, devices: int, per_device: int, n: int, session: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(session)
    files = []
    for d in range(devices):
        dev, run = f"bench-{d:03d}", f"run-{session}"
        path = os.path.join(tmp, f"{dev}-{session}.jsonl")
        with open(path, "w") as f:
            cols = _columns(n, rng)
            for i in range(per_device):
                msg = protocol.frames_message(dev, session, i + 1, run, i * n, cols, time.time())
                f.write(json.dumps(msg, separators=(",", ":")) + "\n")
        files.append((protocol.run_topic(dev, run, "frames"), path))
    return files


def _stored(store, session: int) -> int:
    return store.query("SELECT COUNT(*) FROM frame_batches WHERE session = ?", (session,))[0][0]


def bench_throughput(total: int, devices: int = 6, n: int = 20) -> None:
    per = total // devices
    total = per * devices
    tmp = tempfile.mkdtemp(prefix="edgebench-bench-")
    broker = MosquittoBroker().start()
    port = broker.port
    store = _open_store(os.path.join(tmp, "bench.db"))
    try:
        print(
            f"== throughput: {total} frame-batch messages ({n} frames each, ~{len(open(_stream_files(tmp, 1, 1, n, 99)[0][1]).read())} bytes),"
            f" {devices} mosquitto_pub -l publishers, QoS 1"
        )
        # --- live: both subscribed while the stream is published
        files = _stream_files(tmp, devices, per, n, session=1)
        col = Collector(broker.url, store, client_id="bench-col", group="bench", protocol_version=PROTO).start(15)
        sub = Sub(port, FRAMES_FILTER, total).start()
        time.sleep(0.5)
        pub_s = _publish_files(port, files)
        col.wait_for(lambda: col.counts["stored"] + col.counts["duplicates"] >= total, 300)
        col.wait_idle(60)
        sub.wait(60)
        c_rate = (total - 1) / (col.last_stored_at - col.first_received_at)
        print(
            f"live:    publishers {total / pub_s:8.0f} msg/s | collector stored {col.counts['stored']}/{total}"
            f" at {c_rate:8.0f} msg/s | mosquitto_sub received {len(sub.times)}/{total} at {sub.rate:8.0f} msg/s"
            f" | ratio collector/mosquitto_sub {c_rate / sub.rate:.2f} | load {_load()}"
        )
        print(
            f"         stored exactly once: {_stored(store, 1) == total}, duplicates {col.counts['duplicates']},"
            f" rejected {col.counts['rejected']}"
        )
        col.stop()
        # --- backlog: both away (persistent sessions) while the stream is published, then each drains alone
        s0 = Sub(port, FRAMES_FILTER, 1, client_id="bench-sub", persistent=True).start()
        time.sleep(0.5)
        s0.proc.kill()
        s0.wait(5)
        files = _stream_files(tmp, devices, per, n, session=2)
        _publish_files(port, files)
        t0 = time.time()
        col = Collector(broker.url, store, client_id="bench-col", group="bench", protocol_version=PROTO).start(15)
        col.wait_for(lambda: col.counts["stored"] + col.counts["duplicates"] >= total, 300)
        col.wait_idle(60)
        c_rate = (total - 1) / (col.last_stored_at - col.first_received_at)
        col.stop()
        sub = Sub(port, FRAMES_FILTER, total, client_id="bench-sub", persistent=True).start()
        sub.wait(300)
        print(
            f"backlog: collector drained {_stored(store, 2)}/{total} at {c_rate:8.0f} msg/s"
            f" ({time.time() - t0:.1f} s incl. start) | mosquitto_sub drained {len(sub.times)}/{total} at"
            f" {sub.rate:8.0f} msg/s | ratio {c_rate / sub.rate:.2f} | load {_load()}"
        )
    finally:
        store.close()
        broker.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _fleet_publisher(url: str, devices: list[int], seconds: int, start_at: float, n: int, q) -> None:
    from edgebench.collector.broker.connection import Connection

    conn = Connection(url, client_id=f"bench-fleet-{devices[0]}", protocol="5").connect(30)
    rng = np.random.default_rng(devices[0])
    cols = _columns(n, rng)
    per = len(devices)
    mids = []
    sent = 0
    for t in range(seconds):
        for k, d in enumerate(devices):
            due = start_at + t + (k / per)  # spread each publisher's devices over the second
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            dev = f"fleet-{d:04d}"
            now = time.time()
            fr = protocol.frames_message(dev, 1, 2 * t + 1, "live", t * n, cols, now)
            tel = {
                "schema": protocol.TELEMETRY_SCHEMA,
                "device_id": dev,
                "session": 1,
                "seq": 2 * t + 2,
                "ts": now,
                "power_w": 4.2,
                "temps_c": {"soc": 55.0},
            }
            mids.append(conn.publish(protocol.run_topic(dev, "live", "frames"), fr, qos=1))
            mids.append(conn.publish(protocol.telemetry_topic(dev), tel, qos=1))
            sent += 2
    missing = conn.wait_acked(mids, 120)
    conn.close()
    q.put((sent, len(missing), time.time() - start_at - seconds))


def bench_fleet(devices: int, seconds: int, procs: int = 3, n: int = 30) -> None:
    tmp = tempfile.mkdtemp(prefix="edgebench-fleet-")
    broker = MosquittoBroker().start()
    store = _open_store(os.path.join(tmp, "fleet.db"))
    total = devices * seconds * 2
    try:
        print(
            f"== fleet: {devices} devices x (1 frame batch of {n} frames + 1 telemetry) per second for {seconds} s"
            f" = {devices * 2} msg/s, {procs} publisher processes"
        )
        col = Collector(broker.url, store, client_id="fleet-col", group="fleet", protocol_version=PROTO).start(15)
        sub = Sub(broker.port, f"{protocol.PREFIX}/#", total).start()
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        start_at = time.time() + 3.0
        ps = [
            ctx.Process(
                target=_fleet_publisher, args=(broker.url, list(range(i, devices, procs)), seconds, start_at, n, q)
            )
            for i in range(procs)
        ]
        for p in ps:
            p.start()
        res = [q.get(timeout=seconds + 180) for _ in ps]
        for p in ps:
            p.join(30)
        sent = sum(r[0] for r in res)
        lag = max(r[2] for r in res)
        col.wait_for(lambda: col.counts["stored"] + col.counts["duplicates"] >= total, 120)
        col.wait_idle(60)
        sub.wait(60)
        rows = np.asarray(
            store.query(
                "SELECT ts, stored_at - ts FROM frame_batches WHERE device_id LIKE ?"
                " UNION ALL SELECT ts, stored_at - ts FROM messages WHERE device_id LIKE ?",
                ("fleet-%", "fleet-%"),
            )
        )
        d = rows[:, 1]
        t_rel = rows[:, 0] - start_at
        per = []
        for w0 in range(0, seconds, 5):
            sel = d[(t_rel >= w0) & (t_rel < w0 + 5)]
            if sel.size:
                per.append(f"{w0}-{w0 + 5}s {np.percentile(sel, 99) * 1000:.0f}")
        print("p99 delay (ms) by publish time: " + ", ".join(per))
        stored = d.size
        c_rate = (stored - 1) / (col.last_stored_at - col.first_received_at)
        print(
            f"sent {sent} (unacked by broker: {sum(r[1] for r in res)}; publishers ended {lag:.2f} s behind schedule)"
        )
        print(
            f"collector stored {stored}/{total}, duplicates {col.counts['duplicates']}, seq gaps "
            f"{store.query('SELECT COALESCE(SUM(last_seq - first_seq + 1 - received), 0) FROM sessions')[0][0]}"
        )
        print(
            f"publish-to-stored delay: p50 {np.percentile(d, 50) * 1000:.0f} ms, p99 {np.percentile(d, 99) * 1000:.0f} ms,"
            f" max {d.max() * 1000:.0f} ms  (target p99 < 1000 ms) | load {_load()}"
        )
        print(
            f"rate: collector {c_rate:.0f} msg/s, mosquitto_sub {sub.rate:.0f} msg/s ({len(sub.times)}/{total}),"
            f" ratio {c_rate / sub.rate:.2f} | load {_load()}"
        )
        col.stop()
    finally:
        store.close()
        broker.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=60000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--only", choices=["throughput", "fleet"])
    ap.add_argument(
        "--mqtt-protocol",
        choices=["5", "3.1.1"],
        default="5",
        help="the collector's MQTT version (mosquitto shares subscriptions with 3.1.1 clients too)",
    )
    ap.add_argument(
        "--busy",
        type=int,
        default=1,
        help="processes that keep a core busy beside the benchmark (default 1: collectors rarely run on idle boxes)",
    )
    ap.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/postgres",
        help="store into a throwaway database on this PostgreSQL server (default 127.0.0.1:5432) instead of SQLite",
    )
    a = ap.parse_args()
    global PROTO, PG_ADMIN
    PROTO = a.mqtt_protocol
    PG_ADMIN = a.postgres
    for tool in ("mosquitto", "mosquitto_pub", "mosquitto_sub"):
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            sys.exit(f"bench_collector: {tool} is needed: apt-get install -y mosquitto mosquitto-clients")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]};"
        f" collector on MQTT {PROTO}, storing into {'PostgreSQL' if PG_ADMIN else 'SQLite'}"
    )
    spinners = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(a.busy)]
    for p in spinners:
        p.start()
    print(f"{a.busy} process(es) keep a core busy beside the benchmark (--busy)")
    try:
        if a.only in (None, "throughput"):
            bench_throughput(a.messages)
        if a.only in (None, "fleet"):
            bench_fleet(a.devices, a.seconds)
    finally:
        for p in spinners:
            p.terminate()


if __name__ == "__main__":
    main()
