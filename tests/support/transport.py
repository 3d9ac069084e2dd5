"""Helpers for the fleet-transport tests: secured Mosquitto brokers built from
the shipped deploy/mosquitto files, agent configs, collectors, raw clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edgebench.collector.broker.embedded import MosquittoBroker, free_port
from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy" / "mosquitto"


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def make_secrets(tmp: Path, devices: list[str]) -> dict[str, str]:
    """Run the shipped gen-passwords.sh; return {account: password}."""
    devfile = tmp / "devices.txt"
    devfile.write_text("# test fleet\n" + "\n".join(devices) + "\n")
    out = tmp / "auth"
    subprocess.run(["sh", str(DEPLOY / "gen-passwords.sh"), str(devfile), str(out)], check=True, capture_output=True)
    return {p.name: p.read_text().strip() for p in (out / "secrets").iterdir()}


def secure_broker(tmp: Path, devices: list[str], extra: str = "") -> tuple[MosquittoBroker, dict[str, str]]:
    """A Mosquitto with the shipped ACL, the password files made by the shipped script, and
    the shipped listeners' client-id binding (deploy/mosquitto/edgebench.conf): ``broker.url``
    (and every listener in ``extra``) is the fleet's, where each account's client id is its
    name; ``broker.collector_url`` is the collectors' (the collector account only, any id)."""
    secrets = make_secrets(tmp, devices)
    fleet = (
        f"allow_anonymous false\npassword_file {tmp / 'auth' / 'passwd'}\nacl_file {DEPLOY / 'acl'}\n"
        "use_username_as_clientid true\n"
    )
    extra = "".join(line + "\n" + (fleet if line.startswith("listener ") else "") for line in extra.splitlines())
    cport = free_port()
    collectors = (
        f"listener {cport} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {tmp / 'auth' / 'passwd-collector'}\nacl_file {DEPLOY / 'acl'}\n"
    )
    broker = MosquittoBroker(extra_config=fleet + extra + collectors)
    broker.config_text = lambda base=broker.config_text: "per_listener_settings true\n" + base()
    broker.collector_url = f"mqtt://127.0.0.1:{cport}"
    broker.start()
    return broker, secrets


def url_with(broker_url: str, user: str | None = None, password: str | None = None) -> str:
    if not user:
        return broker_url
    host = broker_url.split("://", 1)[1]
    return f"mqtt://{user}:{password}@{host}"


def write_config(path: Path, **sections: Any) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def start_collector(url: str, db: Path, client_id: str = "edgebench-test-collector"):
    from edgebench.collector.ingest.collector import Collector
    from edgebench.collector.store import SQLiteStore

    store = SQLiteStore(str(db))
    # A group of its own: a stopped collector of another test keeps its persistent
    # session in a shared group, and the broker would deal it a share of our messages.
    return Collector(url, store, client_id=client_id, group=f"g-{client_id}").start()


def stop_collector(col) -> None:
    col.stop()
    col.store.close()


def agent_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "EDGEBENCH_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    f = open(log, "wb")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)


def stop_process(p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if p.poll() is None:
        p.send_signal(sig)
    return p.wait(timeout)


def outbox_rows(path: Path) -> list[tuple]:
    """(seq, kind, first_frame, frames) of what is queued, read without taking the lock."""
    import sqlite3

    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT seq, kind, first_frame, frames FROM outbox ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


class RawClient:
    """A bare paho client (MQTT 5) recording connack, PUBACK reason codes and messages."""

    def __init__(
        self,
        port: int,
        user: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        tls: dict | None = None,
    ):
        self.connack = None
        self.pubacks: dict[int, Any] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"raw-{user}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        if user:
            self.c.username_pw_set(user, password)
        if tls:
            self.c.tls_set(**tls)
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        wait_until(lambda: self.connack is not None, 10, "CONNACK")

    def _on_publish(self, c, u, mid, rc, props):
        with self._lock:
            self.pubacks[mid] = rc

    def _on_message(self, c, u, msg):
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def publish(self, topic: str, payload: Any, qos: int = 1, retain: bool = False):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        mid = self.c.publish(topic, data, qos=qos, retain=retain).mid
        wait_until(lambda: mid in self.pubacks, 10, f"PUBACK for {topic}")
        return self.pubacks[mid]

    def subscribe(self, topic: str) -> None:
        self.c.subscribe(topic, qos=1)
        time.sleep(0.3)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def frame_numbers(col, where: str = "", params=()) -> list[int]:
    """Every stored frame's index (one entry per stored frame; the collector keeps a
    row per frame batch, with its ``first_frame`` and ``n``)."""
    rows = col.store.query(f"SELECT first_frame, n FROM frame_batches {where}", params)
    return sorted(f for first, n in rows for f in range(first, first + n))


def message_rows(col, device: str) -> list[tuple[int, int, str]]:
    """(seq, replayed, kind) of every data message stored for a device: frame batches
    keep their seq in frame_batches, the other kinds in messages."""
    rows = col.store.query("SELECT seq, replayed, kind FROM messages WHERE device_id=?", (device,))
    rows += col.store.query("SELECT seq, replayed, 'frames' FROM frame_batches WHERE device_id=?", (device,))
    return sorted(rows)


class NoPersistenceBroker(MosquittoBroker):
    """Mosquitto as a user who installs it and writes only a listener gets it: no
    persistence, the default queue limits. A restart forgets every session."""

    def config_text(self) -> str:
        stay = "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        return stay + f"listener {self.port} 127.0.0.1\nallow_anonymous true\n" + self.extra_config


def unconfirmed_rows(path: Path) -> list[tuple]:
    """(seq, kind, first_frame, frames) of what the broker acknowledged and no collector confirmed."""
    import sqlite3

    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(
            "SELECT seq, kind, first_frame, frames FROM outbox WHERE sent_at IS NOT NULL ORDER BY id"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
