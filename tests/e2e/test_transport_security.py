"""Nobody gets in, nobody speaks for another device: the shipped Mosquitto ACL and
password script, TLS with a test CA, secrets kept out of logs and results."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import time

import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.broker.embedded import MosquittoBroker, free_port
from tests.support.paths import SHAPES_MODEL, run_cli
from tests.support.transport import (
    DEPLOY,
    RawClient,
    agent_env,
    frame_numbers,
    make_secrets,
    secure_broker,
    start_collector,
    stop_collector,
    url_with,
    wait_until,
    write_config,
)

RUN = ["run", "--model", str(SHAPES_MODEL), "--source", "synthetic:64x64", "--frames", "600"]


@pytest.fixture
def fleet(tmp_path):
    broker, secrets = secure_broker(tmp_path, ["pi-a", "pi-b"])
    yield broker, secrets
    broker.cleanup()


def test_password_script_makes_hashed_accounts_and_keeps_existing_secrets(tmp_path):
    secrets = make_secrets(tmp_path, ["pi-a", "pi-b"])
    assert set(secrets) == {"pi-a", "pi-b", "collector"}
    passwd = (tmp_path / "auth" / "passwd").read_text()
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["pi-a", "pi-b", "collector"]
    assert all(s not in passwd for s in secrets.values())  # hashes only
    assert (tmp_path / "auth" / "secrets" / "pi-a").stat().st_mode & 0o077 == 0
    again = make_secrets(tmp_path, ["pi-a", "pi-b", "pi-c"])
    assert again["pi-a"] == secrets["pi-a"] and "pi-c" in again
    bad = tmp_path / "bad.txt"
    bad.write_text("Pi/A\n")
    r = subprocess.run(
        ["sh", str(DEPLOY / "gen-passwords.sh"), str(bad), str(tmp_path / "x")], capture_output=True, text=True
    )
    assert r.returncode == 1 and "bad device id 'Pi/A'" in r.stderr


def test_anonymous_and_wrong_password_are_refused(tmp_path, fleet):
    broker, secrets = fleet
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got = {}
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon", protocol=mqtt.MQTTv5)
    c.on_connect = lambda c, u, f, rc, p: got.setdefault("rc", rc)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    wait_until(lambda: "rc" in got, 10, "CONNACK")
    c.loop_stop()
    assert got["rc"].is_failure and "authori" in str(got["rc"]).lower()
    # The agent says so in one line and gives up at once, the result kept.
    t0 = time.monotonic()
    r = run_cli(
        *RUN,
        "--mqtt",
        url_with(broker.url, "pi-a", "Zq9-not-it"),
        "--device-id",
        "pi-a",
        "--mqtt-wait",
        "30",
        "--json",
        str(tmp_path / "r.json"),
        env=agent_env(tmp_path / "state"),
    )
    assert r.returncode == 5
    assert time.monotonic() - t0 < 25  # a refusal does not wait out --mqtt-wait
    assert "refused the connection: Not authorized" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Zq9-not-it" not in r.stderr


def test_a_device_cannot_speak_for_another(tmp_path, fleet):
    broker, secrets = fleet
    col = start_collector(
        url_with(broker.url, "collector", secrets["collector"]), tmp_path / "c.db", client_id="col-acl"
    )
    a = RawClient(broker.port, "pi-a", secrets["pi-a"])
    try:
        body = protocol.status_message("pi-b", 99, "offline", time.time())
        # pi-a writing into pi-b's tree: refused by the broker (MQTT 5 PUBACK), never seen
        rc = a.publish(protocol.status_topic("pi-b"), body, retain=True)
        assert rc.is_failure and "authori" in str(rc).lower()
        tele = {"schema": protocol.TELEMETRY_SCHEMA, "device_id": "pi-b", "session": 1, "seq": 1, "ts": time.time()}
        assert a.publish(protocol.telemetry_topic("pi-b"), tele).is_failure
        # a device writes no confirmation, not even its own (only the collector's account does)
        for dev in ("pi-a", "pi-b"):
            ack = protocol.ack_messages(dev, "forged", [1], time.time())[0]
            assert a.publish(protocol.ack_topic(dev), ack).is_failure
        # pi-a writing its own commands: refused too (only the collector writes cmd)
        assert a.publish(protocol.cmd_topic("pi-a", "run"), {"schema": protocol.CMD_RUN_SCHEMA}).is_failure
        # on its own topic with another device's id in the payload: the collector rejects it
        assert not a.publish(protocol.telemetry_topic("pi-a"), tele).is_failure
        wait_until(lambda: col.counts["rejected"] == 1, 10, "the collector's rejection")
        reason = col.store.query("SELECT reason FROM quarantine")[0][0]
        assert "does not match topic device 'pi-a'" in reason
        # and what pi-a may write is stored
        ok = dict(tele, device_id="pi-a")
        assert not a.publish(protocol.telemetry_topic("pi-a"), ok).is_failure
        wait_until(lambda: col.counts["stored"] == 1, 10, "pi-a's own telemetry")
        col.wait_idle()
        assert col.store.query("SELECT device_id FROM devices") == [("pi-a",)]
        assert col.store.query("SELECT COUNT(*) FROM messages WHERE device_id = 'pi-b'")[0][0] == 0
        col.wait_idle()
        time.sleep(0.5)  # the collector's own confirmations of what pi-a sent have gone out
        # a device reads only its own commands and its own confirmations
        a.subscribe("edgebench/#")
        collector = RawClient(broker.port, "collector", secrets["collector"])
        for dev in ("pi-a", "pi-b"):
            assert not collector.publish(protocol.cmd_topic(dev, "run"), {"x": dev}).is_failure
            ack = protocol.ack_messages(dev, "collector", [7], time.time())[0]
            assert not collector.publish(protocol.ack_topic(dev), ack).is_failure
        collector.close()
        wait_until(lambda: len(a.messages) >= 2, 10, "pi-a's command and confirmation")
        time.sleep(0.5)
        got = sorted((t, json.loads(p).get("seqs")) for t, p, _ in a.messages)
        assert got == [(protocol.ack_topic("pi-a"), [[7, 7]]), (protocol.cmd_topic("pi-a", "run"), None)]
    finally:
        a.close()
        stop_collector(col)


def test_agent_authenticates_with_a_password_file_and_never_shows_it(tmp_path, fleet):
    broker, secrets = fleet
    pwfile = tmp_path / "pi-a.password"
    pwfile.write_text(secrets["pi-a"] + "\n")
    col = start_collector(
        url_with(broker.url, "collector", secrets["collector"]), tmp_path / "c.db", client_id="col-pw"
    )
    state = tmp_path / "state"
    cfg = write_config(
        tmp_path / "agent.yaml", mqtt={"url": broker.url, "username": "pi-a", "password_file": str(pwfile)}
    )
    try:
        out = tmp_path / "r.json"
        r = run_cli("-v", *RUN, "--config", str(cfg), "--device-id", "pi-a", "--json", str(out), env=agent_env(state))
        assert r.returncode == 0, r.stderr
        wait_until(
            lambda: col.store.query("SELECT COUNT(*) FROM runs WHERE summary IS NOT NULL")[0][0] == 1, 30, "the run"
        )
        col.wait_idle()
        assert len(frame_numbers(col)) == 600
        # password from the environment works the same
        cfg2 = write_config(
            tmp_path / "agent2.yaml", mqtt={"url": broker.url, "username": "pi-a", "password_env": "PI_A_PW"}
        )
        r2 = run_cli(
            "-v", *RUN, "--config", str(cfg2), "--device-id", "pi-a", env=agent_env(state, PI_A_PW=secrets["pi-a"])
        )
        assert r2.returncode == 0, r2.stderr
        wait_until(
            lambda: col.store.query("SELECT COUNT(*) FROM runs WHERE summary IS NOT NULL")[0][0] == 2,
            30,
            "the second run",
        )
        col.wait_idle()
        secret = secrets["pi-a"]
        for text in (r.stdout, r.stderr, r2.stdout, r2.stderr, out.read_text()):
            assert secret not in text
        for (payload,) in col.store.query("SELECT summary FROM runs") + col.store.query("SELECT meta FROM runs"):
            assert secret not in payload
        assert secret.encode() not in (state / "outbox-pi-a.db").read_bytes()
        # a missing password file is one clear line before any work
        cfg3 = write_config(tmp_path / "agent3.yaml", mqtt={"url": broker.url, "password_file": str(tmp_path / "nope")})
        r3 = run_cli(*RUN, "--config", str(cfg3), "--device-id", "pi-a", env=agent_env(state))
        assert r3.returncode == 2
        assert r3.stderr.strip() == f"edgebench: error: mqtt.password_file: file not found: {tmp_path / 'nope'}"
    finally:
        stop_collector(col)


# -- TLS ------------------------------------------------------------------------------
def _certs(tmp_path):
    """A throwaway CA, a server certificate for 127.0.0.1/localhost, a client certificate."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem, key, cert):
        (tmp_path / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (tmp_path / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(cn, ca_key, ca_name, *, ca=False, san=None, usage=None):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_name or name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            b = b.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return key, b.sign(ca_key or key, hashes.SHA256())

    ca_key, ca = issue("edgebench test CA", None, None, ca=True)
    write("ca", ca_key, ca)
    k, c = issue(
        "127.0.0.1",
        ca_key,
        ca.subject,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    write("server", k, c)
    k, c = issue("pi-a", ca_key, ca.subject, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    write("client", k, c)
    other_key, other = issue("another CA", None, None, ca=True)
    write("other-ca", other_key, other)
    return tmp_path


def test_tls_with_a_test_ca_and_client_certificates(tmp_path):
    certs = _certs(tmp_path)
    tls_port = free_port()
    broker, secrets = secure_broker(
        tmp_path,
        ["pi-a"],
        extra=(
            f"listener {tls_port} 127.0.0.1\n"
            f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
            "require_certificate true\ntls_version tlsv1.2\n"
        ),
    )
    col = start_collector(
        url_with(broker.url, "collector", secrets["collector"]), tmp_path / "c.db", client_id="col-tls"
    )
    state = tmp_path / "state"
    try:
        pw = tmp_path / "pw"
        pw.write_text(secrets["pi-a"])
        tls = {
            "url": f"mqtts://127.0.0.1:{tls_port}",
            "username": "pi-a",
            "password_file": str(pw),
            "ca": str(certs / "ca.crt"),
            "cert": str(certs / "client.crt"),
            "key": str(certs / "client.key"),
        }
        cfg = write_config(tmp_path / "tls.yaml", mqtt=tls)
        r = run_cli(*RUN, "--config", str(cfg), "--device-id", "pi-a", env=agent_env(state))
        assert r.returncode == 0, r.stderr
        assert f"to mqtts://127.0.0.1:{tls_port} (user pi-a, client certificate)" in r.stdout
        wait_until(lambda: len(frame_numbers(col)) == 600, 30, "the frames over TLS")
        # a broker certificate from an unknown CA: refused, one line
        cfg2 = write_config(tmp_path / "bad-ca.yaml", mqtt={**tls, "ca": str(certs / "other-ca.crt")})
        r2 = run_cli(
            *RUN,
            "--config",
            str(cfg2),
            "--device-id",
            "pi-a",
            "--mqtt-wait",
            "1",
            "--json",
            str(tmp_path / "r2.json"),
            env=agent_env(state),
        )
        assert r2.returncode == 5
        assert "certificate verify failed" in r2.stderr and len(r2.stderr.strip().splitlines()) == 1
        # no client certificate where the broker requires one: refused
        cfg3 = write_config(tmp_path / "no-cert.yaml", mqtt={k: v for k, v in tls.items() if k not in ("cert", "key")})
        r3 = run_cli(
            *RUN,
            "--config",
            str(cfg3),
            "--device-id",
            "pi-a",
            "--mqtt-wait",
            "1",
            "--json",
            str(tmp_path / "r3.json"),
            env=agent_env(state),
        )
        assert r3.returncode == 5 and "MQTT broker at mqtts://127.0.0.1" in r3.stderr
    finally:
        stop_collector(col)
        broker.cleanup()


def test_shipped_broker_config_starts_and_refuses_anonymous(tmp_path):
    """deploy/mosquitto/edgebench.conf as shipped, with its paths and ports moved here."""
    certs = _certs(tmp_path)
    make_secrets(tmp_path, ["pi-a"])
    etc = tmp_path / "etc"
    etc.mkdir()
    for src, dst in (
        (tmp_path / "auth" / "passwd", "passwd"),
        (tmp_path / "auth" / "passwd-collector", "passwd-collector"),
        (DEPLOY / "acl", "acl"),
        (certs / "ca.crt", "ca.crt"),
        (certs / "server.crt", "server.crt"),
        (certs / "server.key", "server.key"),
    ):
        (etc / dst).write_bytes(src.read_bytes())
    plain, tls = free_port(), free_port()
    conf = (DEPLOY / "edgebench.conf").read_text()
    conf = conf.replace("/etc/mosquitto/edgebench", str(etc)).replace("/var/lib/mosquitto/", f"{tmp_path}/")
    conf = conf.replace("listener 1883 127.0.0.1", f"listener {plain} 127.0.0.1")
    conf = conf.replace("listener 8883\n", f"listener {tls} 127.0.0.1\n")
    conf = conf.replace("listener 8884\n", f"listener {free_port()} 127.0.0.1\n")
    assert f"listener {tls} 127.0.0.1" in conf and "allow_anonymous false" in conf
    broker = MosquittoBroker(port=plain)
    broker.config_text = lambda: ("user root\n" if __import__("os").geteuid() == 0 else "") + conf
    broker.start()
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        got = {}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon", protocol=mqtt.MQTTv5)
        c.on_connect = lambda c, u, f, rc, p: got.setdefault("rc", rc)
        c.tls_set(ca_certs=str(certs / "ca.crt"))
        c.connect("127.0.0.1", tls)
        c.loop_start()
        wait_until(lambda: "rc" in got, 10, "CONNACK over TLS")
        c.loop_stop()
        assert "authori" in str(got["rc"]).lower()
    finally:
        broker.cleanup()


def test_a_device_using_another_accounts_name_is_told(tmp_path, fleet):
    """Device id pi-b with pi-a's account: the ACL refuses its status (MQTT 5 PUBACK) and
    mosquitto drops the connection; the agent says why at once, keeps everything queued."""
    broker, secrets = fleet
    state = tmp_path / "state"
    t0 = time.monotonic()
    r = run_cli(
        *RUN,
        "--mqtt",
        url_with(broker.url, "pi-a", secrets["pi-a"]),
        "--device-id",
        "pi-b",
        "--json",
        str(tmp_path / "r.json"),
        "--mqtt-wait",
        "30",
        env=agent_env(state),
    )
    assert r.returncode == 5 and time.monotonic() - t0 < 25
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert "refused this device's status (Not authorized): is the MQTT username this device's id (pi-b)?" in err[0]
    assert re.search(r"\d+ message\(s\) \(600 frames\) remain queued", err[0])


def test_collector_serve_logs_in_with_a_password_file(tmp_path, fleet):
    import signal
    import sqlite3

    from tests.support.transport import spawn, stop_process

    broker, secrets = fleet
    pw = tmp_path / "collector.pw"
    pw.write_text(secrets["collector"])
    db = tmp_path / "fleet.db"
    serve = spawn(
        [
            "-m",
            "edgebench.collector.cli",
            "serve",
            "--mqtt",
            broker.url,
            "--username",
            "collector",
            "--password-file",
            str(pw),
            "--db",
            str(db),
        ],
        agent_env(tmp_path / "cstate"),
        tmp_path / "serve.log",
    )
    try:
        wait_until(lambda: "collector: connected to" in (tmp_path / "serve.log").read_text(), 30, "the collector")
        apw = tmp_path / "pi-a.pw"
        apw.write_text(secrets["pi-a"])
        cfg = write_config(tmp_path / "a.yaml", mqtt={"url": broker.url, "username": "pi-a", "password_file": str(apw)})
        r = run_cli(*RUN, "--config", str(cfg), "--device-id", "pi-a", env=agent_env(tmp_path / "state"))
        assert r.returncode == 0, r.stderr

        def frames():
            with sqlite3.connect(db) as c:
                return c.execute("SELECT COALESCE(SUM(n), 0) FROM frame_batches").fetchone()[0]

        wait_until(lambda: frames() == 600, 30, "the frames in the collector's database")
    finally:
        assert stop_process(serve, signal.SIGTERM) == 0
    log = (tmp_path / "serve.log").read_text()
    assert secrets["collector"] not in log and "rejected 0, store errors 0" in log


def test_only_the_collector_publishes_fleet_alerts(tmp_path, fleet):
    """The regression watch's retained alerts (edgebench/v1/_fleet/alerts/<key>): the
    shipped ACL lets the collector's account write them and no device."""
    from edgebench.collector.aggregate.regressions import ALERTS_TOPIC

    broker, secrets = fleet
    collector = RawClient(broker.port, "collector", secrets["collector"])
    a = RawClient(broker.port, "pi-a", secrets["pi-a"])
    try:
        rc = a.publish(f"{ALERTS_TOPIC}/k-from-pi-a", {"verdict": "faster"}, retain=True)
        assert rc.is_failure and "authori" in str(rc).lower()
        assert not collector.publish(f"{ALERTS_TOPIC}/k1", {"verdict": "slower"}, retain=True).is_failure
        late = RawClient(broker.port, "collector", secrets["collector"], client_id="late-reader")
        try:
            late.subscribe(f"{ALERTS_TOPIC}/#")
            wait_until(lambda: late.messages, 10, "the retained alert")
            time.sleep(0.3)
            assert [(t, r) for t, _, r in late.messages] == [(f"{ALERTS_TOPIC}/k1", True)]
        finally:
            late.close()
    finally:
        a.close()
        collector.close()
