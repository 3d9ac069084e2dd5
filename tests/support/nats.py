"""A private NATS cluster for tests and benchmarks: N nats-server processes on free loopback
ports, each with JetStream (its store under the given folder) and an MQTT listener, joined
by cluster routes. Its own config files under a temporary folder; it never touches a
system NATS service. ``stop(i)`` kills a node (SIGKILL), ``start(i)`` brings it back with
the same store.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time

from edgebench.collector.broker.embedded import free_port
from edgebench.collector.ingest.jetstream import DURABLE, STREAM, SUBJECTS


def nats_server() -> str | None:
    return shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)


class NatsCluster:
    def __init__(self, folder: str, nodes: int = 3):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.n = nodes
        self.client_ports = [free_port() for _ in range(nodes)]
        self.route_ports = [free_port() for _ in range(nodes)]
        self.mqtt_ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen | None] = [None] * nodes

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.client_ports)

    def mqtt_url(self, i: int) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_ports[i]}"

    def _config(self, i: int) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i)
        store = os.path.join(self.folder, f"n{i}")
        os.makedirs(store, exist_ok=True)
        text = (
            f"server_name: n{i}\nlisten: 127.0.0.1:{self.client_ports[i]}\n"
            f'jetstream {{ store_dir: "{store}" }}\n'
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_ports[i]} }}\n"
        )
        if self.n > 1:
            text += f"cluster {{ name: edgebench-test, listen: 127.0.0.1:{self.route_ports[i]}, routes: [{routes}] }}\n"
        path = os.path.join(self.folder, f"n{i}.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, i: int | None = None, timeout: float = 30.0) -> "NatsCluster":
        for k in range(self.n) if i is None else [i]:
            log = open(os.path.join(self.folder, f"n{k}.log"), "ab")
            self.procs[k] = subprocess.Popen(
                [nats_server(), "-c", self._config(k)], stdout=log, stderr=subprocess.STDOUT
            )
        for k in range(self.n) if i is None else [i]:
            _wait_port(self.client_ports[k], timeout)
            _wait_port(self.mqtt_ports[k], timeout)
        return self

    def stop(self, i: int) -> None:
        p = self.procs[i]
        if p is not None:
            p.kill()
            p.wait(10)
            self.procs[i] = None

    def close(self) -> None:
        for i in range(self.n):
            self.stop(i)

    def log(self, i: int) -> str:
        with open(os.path.join(self.folder, f"n{i}.log"), errors="replace") as f:
            return f.read()


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nats-server did not listen on port {port} within {timeout} s")


def prepare_stream(url: str, ack_wait_s: float) -> str:
    """The stream (3 replicas) and the shared consumer, with a short ack wait so that what a
    killed collector held is delivered again within the test's time; returns the name of the
    node that leads the stream."""
    from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType

    async def go():
        import nats

        nc = await nats.connect(servers=url.split(","), connect_timeout=5)
        js = nc.jetstream()
        deadline = time.monotonic() + 60
        while True:
            try:
                await js.add_stream(
                    name=STREAM,
                    subjects=SUBJECTS,
                    retention=RetentionPolicy.WORK_QUEUE,
                    storage=StorageType.FILE,
                    num_replicas=3,
                )
                await js.add_consumer(
                    STREAM,
                    ConsumerConfig(
                        durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s, max_ack_pending=-1
                    ),
                )
                info = await js.stream_info(STREAM)
                if info.cluster and info.cluster.leader:
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the test cluster did not elect a stream leader")
            await asyncio.sleep(0.5)
        await nc.close()
        return info.cluster.leader

    return asyncio.run(go())
