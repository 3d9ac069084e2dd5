"""A private RabbitMQ cluster for tests and benchmarks: N rabbitmq-server nodes on free loopback
ports, each with the MQTT plugin, joined into one cluster with rabbitmqctl. Everything is its
own: node names with a random suffix (``eb0-1a2b@localhost``), AMQP, MQTT and Erlang
distribution ports, data and log folders, the enabled-plugins file, an empty env file (the
system's /etc/rabbitmq/rabbitmq-env.conf is not read) and an Erlang cookie in a HOME of its
own, which rabbitmqctl reads too. The system RabbitMQ (rabbit@localhost on 5672) is never
touched; epmd, the Erlang port mapper, is shared (it only maps names to ports).

``stop(i)`` kills a node (SIGKILL to its process group), ``start(i)`` brings it back with the
same data: it rejoins the cluster by itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

from edgebench.collector.broker.embedded import free_port
from edgebench.collector.ingest.amqp import QUEUE, declare

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def rabbitmq_server() -> str | None:
    """The rabbitmq-server start script, where the Debian package (or a tarball on PATH) put it."""
    if os.path.exists(SERVER):
        return SERVER
    return shutil.which("rabbitmq-server")


def _ctl() -> str:
    return CTL if os.path.exists(CTL) else (shutil.which("rabbitmqctl") or CTL)


class RabbitCluster:
    def __init__(self, folder: str, nodes: int = 3):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.n = nodes
        tag = secrets.token_hex(2)
        self.names = [f"eb{i}-{tag}@localhost" for i in range(nodes)]
        self.amqp_ports = [free_port() for _ in range(nodes)]
        self.mqtt_ports = [free_port() for _ in range(nodes)]
        self.dist_ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen | None] = [None] * nodes
        self.home = os.path.join(folder, "home")
        os.makedirs(self.home, exist_ok=True)
        cookie = os.path.join(self.home, ".erlang.cookie")
        if not os.path.exists(cookie):
            with open(cookie, "w") as f:
                f.write(secrets.token_hex(16).upper())
            os.chmod(cookie, 0o400)
        with open(os.path.join(folder, "plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        open(os.path.join(folder, "env.conf"), "w").close()

    @property
    def url(self) -> str:
        return ",".join(self.amqp_url(i) for i in range(self.n))

    def amqp_url(self, i: int) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_ports[i]}/"

    def mqtt_url(self, i: int) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_ports[i]}"

    def _env(self, i: int) -> dict:
        conf = os.path.join(self.folder, f"n{i}.conf")
        with open(conf, "w") as f:
            f.write(
                f"listeners.tcp.default = 127.0.0.1:{self.amqp_ports[i]}\n"
                f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_ports[i]}\n"
                "mqtt.allow_anonymous = true\n"
                "log.console = false\n"
            )
        return {
            **os.environ,
            "HOME": self.home,
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.folder, "env.conf"),
            "RABBITMQ_NODENAME": self.names[i],
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_ports[i]),
            "RABBITMQ_DIST_PORT": str(self.dist_ports[i]),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.folder, "data"),
            "RABBITMQ_LOG_BASE": os.path.join(self.folder, "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.folder, "plugins"),
            "RABBITMQ_CONFIG_FILE": conf,
            "RABBITMQ_PID_FILE": os.path.join(self.folder, f"n{i}.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def ctl(self, i: int, *args: str, timeout: float = 60) -> str:
        env = {**os.environ, "HOME": self.home, "ERL_EPMD_ADDRESS": "127.0.0.1"}
        r = subprocess.run(
            [_ctl(), "-n", self.names[i], *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        if r.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.names[i]}: {r.stderr.strip() or r.stdout}")
        return r.stdout

    def start(self, i: int | None = None, timeout: float = 90.0) -> "RabbitCluster":
        """Start the nodes (all in parallel); on a first start of the whole cluster, join
        nodes 1.. to node 0."""
        first = i is None and not os.path.isdir(os.path.join(self.folder, "data"))
        which = range(self.n) if i is None else [i]
        for k in which:
            log = open(os.path.join(self.folder, f"n{k}.out"), "ab")
            self.procs[k] = subprocess.Popen(
                [rabbitmq_server()], env=self._env(k), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        for k in which:
            self._wait_ready(k, timeout)
        if first and self.n > 1:
            errors: list = []
            joins = [threading.Thread(target=self._join, args=(k, errors)) for k in range(1, self.n)]
            for t in joins:
                t.start()
            for t in joins:
                t.join()
            if errors:
                raise RuntimeError("; ".join(errors))
        return self

    def _join(self, k: int, errors: list) -> None:
        try:
            self.ctl(k, "stop_app")
            self.ctl(k, "join_cluster", self.names[0])
            self.ctl(k, "start_app")
            _wait_port(self.mqtt_ports[k], 60, self.procs[k])
        except Exception as e:  # reported by start()
            errors.append(str(e))

    def _wait_ready(self, k: int, timeout: float) -> None:
        _wait_port(self.amqp_ports[k], timeout, self.procs[k], self.log_path(k))
        _wait_port(self.mqtt_ports[k], timeout, self.procs[k], self.log_path(k))

    def running(self) -> list[str]:
        """The cluster's running nodes, as node 0 (or the first live node) sees them."""
        for k in range(self.n):
            if self.procs[k] is not None:
                out = self.ctl(k, "cluster_status", "--formatter", "json")
                return sorted(json.loads(out[out.index("{") :])["running_nodes"])
        return []

    def queue_leader(self, queue: str = QUEUE) -> int:
        """Which node leads the quorum queue (asked of the first live node)."""
        for k in range(self.n):
            if self.procs[k] is not None:
                out = self.ctl(k, "list_queues", "name", "leader", "--formatter", "json")
                rows = json.loads(out[out.index("[") :])
                return self.names.index(next(r["leader"] for r in rows if r["name"] == queue))
        raise RuntimeError("no node is running")

    def declare(self, queue: str = QUEUE) -> None:
        """The collectors' quorum queue, declared before any device publishes (what is routed
        nowhere is dropped)."""
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url(0)))
        try:
            declare(conn.channel(), queue)
        finally:
            conn.close()

    def stop(self, i: int) -> None:
        p = self.procs[i]
        if p is not None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)
            self.procs[i] = None

    def close(self) -> None:
        for i in range(self.n):
            self.stop(i)

    def log_path(self, i: int) -> str:
        return os.path.join(self.folder, "log", f"{self.names[i]}.log")


def _wait_port(port: int, timeout: float, proc=None, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = open(log, errors="replace").read()[-1500:] if log and os.path.exists(log) else ""
            raise RuntimeError(f"rabbitmq-server exited ({proc.returncode}) before listening on {port}: {tail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"rabbitmq-server did not listen on port {port} within {timeout} s")
