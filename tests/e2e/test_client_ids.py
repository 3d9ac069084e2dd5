"""Client ids bound to accounts (issue 20, item 6), proved on a real Mosquitto running the
shipped deploy/mosquitto/edgebench.conf (paths and ports moved here): a device's credentials
can neither take over the collector's persistent session (and lose what is queued in it)
nor knock another board or the collector offline."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.broker.embedded import MosquittoBroker, free_port
from edgebench.collector.store import SQLiteStore
from tests.e2e.test_transport_security import _certs
from tests.support.transport import (
    DEPLOY,
    RawClient,
    make_secrets,
    start_collector,
    stop_collector,
    url_with,
    wait_until,
)

QUEUED = 50


@pytest.fixture
def shipped(tmp_path):
    """The shipped broker config: (broker, secrets, fleet TLS port, collectors' loopback port, CA)."""
    certs = _certs(tmp_path)
    secrets = make_secrets(tmp_path, ["pi-a", "pi-b"])
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "passwd-collector"):
        (etc / name).write_bytes((tmp_path / "auth" / name).read_bytes())
    (etc / "acl").write_bytes((DEPLOY / "acl").read_bytes())
    for name in ("ca.crt", "server.crt", "server.key"):
        (etc / name).write_bytes((certs / name).read_bytes())
    plain, tls = free_port(), free_port()
    conf = (DEPLOY / "edgebench.conf").read_text()
    for old, new in (
        ("/etc/mosquitto/edgebench", str(etc)),
        ("/var/lib/mosquitto/", f"{tmp_path}/"),
        ("listener 1883 127.0.0.1", f"listener {plain} 127.0.0.1"),
        ("listener 8883\n", f"listener {tls} 127.0.0.1\n"),
        ("listener 8884\n", f"listener {free_port()} 127.0.0.1\n"),
    ):
        assert old in conf, old
        conf = conf.replace(old, new)
    broker = MosquittoBroker(port=plain)
    broker.config_text = lambda: ("user root\n" if os.geteuid() == 0 else "") + conf
    broker.start()
    yield broker, secrets, tls, plain, {"ca_certs": str(certs / "ca.crt")}
    broker.cleanup()


def _telemetry(seq: int) -> bytes:
    body = {"schema": protocol.TELEMETRY_SCHEMA, "device_id": "pi-a", "session": 1, "seq": seq, "ts": time.time()}
    return json.dumps(body).encode()


def _stored(db) -> int:
    st = SQLiteStore(str(db))
    try:
        return st.query("SELECT COUNT(*) FROM telemetry")[0][0]
    finally:
        st.close()


def test_a_device_cannot_take_over_the_collectors_session(shipped, tmp_path):
    broker, secrets, tls, plain, ca = shipped
    url = url_with(f"mqtt://127.0.0.1:{plain}", "collector", secrets["collector"])
    db = tmp_path / "fleet.db"
    col = start_collector(url, db, client_id="edgebench-collector")
    stop_collector(col)  # away: the broker queues for its persistent session
    dev = RawClient(tls, "pi-a", secrets["pi-a"], client_id="edgebench-pi-a", tls=ca)
    for seq in range(1, QUEUED + 1):
        assert not dev.publish(protocol.telemetry_topic("pi-a"), _telemetry(seq)).is_failure
    # pi-a's credentials under the collector's client id, with a clean start: on the fleet's
    # listener the client id is the account's own; the collectors' listener refuses the account
    thief = RawClient(tls, "pi-a", secrets["pi-a"], client_id="edgebench-collector", tls=ca)
    assert not thief.connack.is_failure
    thief.close()
    local = RawClient(plain, "pi-a", secrets["pi-a"], client_id="edgebench-collector")
    assert local.connack.is_failure and "authori" in str(local.connack).lower()
    local.close()
    dev.close()
    col = start_collector(url, db, client_id="edgebench-collector")
    try:
        wait_until(lambda: _stored(db) == QUEUED, 30, f"{QUEUED} queued messages stored")
        time.sleep(0.5)
        assert _stored(db) == QUEUED
    finally:
        stop_collector(col)


def test_a_device_cannot_knock_another_board_or_the_collector_offline(shipped, tmp_path):
    broker, secrets, tls, plain, ca = shipped
    url = url_with(f"mqtt://127.0.0.1:{plain}", "collector", secrets["collector"])
    col = start_collector(url, tmp_path / "fleet.db", client_id="edgebench-collector")
    a = RawClient(tls, "pi-a", secrets["pi-a"], client_id="edgebench-pi-a", tls=ca)
    try:
        for stolen in ("edgebench-pi-a", "pi-a", "edgebench-collector"):
            b = RawClient(tls, "pi-b", secrets["pi-b"], client_id=stolen, tls=ca)
            assert not b.connack.is_failure
            time.sleep(0.5)
            b.close()
        # both still connected: pi-a's publish is acknowledged, the collector stores it
        assert not a.publish(protocol.telemetry_topic("pi-a"), _telemetry(1)).is_failure
        wait_until(lambda: col.counts["stored"] >= 1, 10, "the collector storing pi-a's message")
        assert a.c.is_connected() and col.conn.connected.is_set()
    finally:
        a.close()
        stop_collector(col)


def test_the_password_script_keeps_collector_client_ids_for_collectors(tmp_path):
    devfile = tmp_path / "devices.txt"
    devfile.write_text("pi-a\nedgebench-collector\n")
    r = subprocess.run(
        ["sh", str(DEPLOY / "gen-passwords.sh"), str(devfile), str(tmp_path / "auth")], capture_output=True, text=True
    )
    assert r.returncode == 1
    assert "bad device id 'edgebench-collector'" in r.stderr
