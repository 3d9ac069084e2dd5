"""`edgebench agent` as a service: birth, telemetry, jobs, last will, clean stop,
remote commands; and the link's watchdog."""

from __future__ import annotations

import json
import signal
import time

import pytest

from edgebench.agent.wire import protocol
from tests.support.paths import SHAPES_MODEL, run_collector_cli
from tests.support.transport import (
    RawClient,
    agent_env,
    frame_numbers,
    message_rows,
    secure_broker,
    spawn,
    start_collector,
    stop_collector,
    stop_process,
    url_with,
    wait_until,
    write_config,
)


def q(col, sql, params=()):
    return col.store.query(sql, params)


def device_state(col, dev):
    rows = q(col, "SELECT state, session FROM devices WHERE device_id = ?", (dev,))
    return rows[0] if rows else (None, None)


@pytest.fixture
def fleet(tmp_path):
    broker, secrets = secure_broker(tmp_path, ["pi-a", "pi-b"])
    col = start_collector(
        url_with(broker.collector_url, "collector", secrets["collector"]), tmp_path / "c.db", client_id="col-svc"
    )
    yield broker, secrets, col
    stop_collector(col)
    broker.cleanup()


def agent_config(tmp_path, broker, secrets, dev, **extra):
    pw = tmp_path / f"{dev}.pw"
    pw.write_text(secrets[dev])
    sections = {
        "device_id": dev,
        "mqtt": {"url": broker.url, "username": dev, "password_file": str(pw), "reconnect_max_s": 1},
        "telemetry": {"interval_s": 0.5},
        **extra,
    }
    return write_config(tmp_path / f"{dev}.yaml", **sections)


def test_service_announces_runs_jobs_sends_telemetry_and_stops_cleanly(tmp_path, fleet):
    broker, secrets, col = fleet
    cfg = agent_config(
        tmp_path,
        broker,
        secrets,
        "pi-a",
        jobs=[{"name": "boot", "model": str(SHAPES_MODEL), "frames": 300, "source": "synthetic:64x64"}],
    )
    watcher = RawClient(broker.port, "collector", secrets["collector"])
    watcher.subscribe(protocol.telemetry_topic("pi-a"))
    a = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "state"), tmp_path / "a.log"
    )
    try:
        wait_until(lambda: device_state(col, "pi-a")[0] == "online", 30, "pi-a online")
        wait_until(lambda: q(col, "SELECT frames FROM runs WHERE summary IS NOT NULL"), 60, "the boot job's run")
        wait_until(lambda: len(watcher.messages) >= 2, 30, "telemetry")
        info = q(col, "SELECT agent_version, inventory FROM devices WHERE device_id='pi-a'")[0]
        assert info[0] and json.loads(info[1])["cpu"]["arch"]  # the board inventory (edgebench.agent.probes)
        tel = json.loads(watcher.messages[-1][1])
        assert tel["schema"] == protocol.TELEMETRY_SCHEMA and 0 <= tel["cpu_pct"] <= 100
        assert tel["mem_available_mb"] > 0 and tel["outbox"]["max_bytes"] > 0
        assert tel["link"]["connected"] is True and tel["link"]["loop_restarts"] == 0
        assert tel["seq"] > json.loads(watcher.messages[0][1])["seq"]
    finally:
        rc = stop_process(a, signal.SIGTERM)
        watcher.close()
    log = (tmp_path / "a.log").read_text()
    assert rc == 0, log
    assert "edgebench agent: stopped (everything was delivered)" in log
    wait_until(lambda: device_state(col, "pi-a")[0] == "stopped", 10, "pi-a stopped")
    col.wait_idle()
    assert len(frame_numbers(col)) == 300
    s = [r[0] for r in message_rows(col, "pi-a")]
    assert s == list(range(1, len(s) + 1))


def test_last_will_marks_a_killed_device_offline(tmp_path, fleet):
    broker, secrets, col = fleet
    cfg = agent_config(tmp_path, broker, secrets, "pi-b")
    a = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "state"), tmp_path / "b.log"
    )
    try:
        wait_until(lambda: device_state(col, "pi-b")[0] == "online", 30, "pi-b online")
        session = device_state(col, "pi-b")[1]
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait(30)
    wait_until(lambda: device_state(col, "pi-b")[0] == "offline", 30, "the will")
    assert device_state(col, "pi-b") == ("offline", session)  # the will carries the session it died in
    # the next start is a new session, online again; a stale will could not undo it
    a = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "state"), tmp_path / "b2.log"
    )
    try:
        wait_until(lambda: device_state(col, "pi-b")[0] == "online", 30, "pi-b online again")
        assert device_state(col, "pi-b")[1] > session
    finally:
        assert stop_process(a) == 0


def test_remote_run_command_accepted_run_and_rejections(tmp_path, fleet):
    broker, secrets, col = fleet
    agents = []
    for dev in ("pi-a", "pi-b"):
        cfg = agent_config(tmp_path, broker, secrets, dev, telemetry={"interval_s": 30})
        agents.append(
            spawn(
                ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)],
                agent_env(tmp_path / f"state-{dev}"),
                tmp_path / f"{dev}.log",
            )
        )
    pwf = tmp_path / "collector.pw"
    pwf.write_text(secrets["collector"])
    auth = ["--mqtt", broker.collector_url, "--username", "collector", "--password-file", str(pwf)]
    try:
        for dev in ("pi-a", "pi-b"):
            wait_until(lambda dev=dev: device_state(col, dev)[0] == "online", 30, f"{dev} online")
        r = run_collector_cli(
            "cmd",
            "run",
            *auth,
            "--device",
            "pi-*",
            "--model",
            "shapes-int8",
            "--frames",
            "200",
            "--source",
            "synthetic:64x64",
            "--wait-done",
            "--timeout",
            "60",
        )
        assert r.returncode == 0, r.stdout + r.stderr
        lines = sorted(r.stdout.strip().splitlines())
        assert len(lines) == 2 and all(" done run " in line and "(200 frames" in line for line in lines), lines
        run_ids = {line.split(" run ")[1].split()[0] for line in lines}
        wait_until(lambda: len(q(col, "SELECT 1 FROM runs WHERE summary IS NOT NULL")) == 2, 30, "both runs stored")
        assert {r[0] for r in q(col, "SELECT run_id FROM runs")} == run_ids
        states = q(col, "SELECT device_id, state FROM command_acks ORDER BY device_id, seq")
        assert states == [("pi-a", s) for s in ("accepted", "started", "done")] + [
            ("pi-b", s) for s in ("accepted", "started", "done")
        ]
        # jobs the device cannot run are rejected with the reason
        r = run_collector_cli("cmd", "run", *auth, "--device", "pi-a", "--model", "no-such-model.tflite")
        assert r.returncode == 1
        assert (
            r.stdout.strip()
            == "pi-a: rejected: model not found on this device: no-such-model.tflite (nor is it a model's name in the registry)"
        )
        r = run_collector_cli("cmd", "run", *auth, "--device", "pi-a", "--model", "shapes-int8", "--set", "frames=ten")
        assert r.returncode == 1 and "pi-a: rejected: job.frames: expected a whole number >= 1, got 'ten'" in r.stdout
        r = run_collector_cli("cmd", "run", *auth, "--device", "pi-a", "--model", "shapes-int8", "--set", "bogus=1")
        assert r.returncode == 1 and "pi-a: rejected: unknown key job.bogus" in r.stdout
        r = run_collector_cli("cmd", "run", *auth, "--device", "nobody-*", "--model", "shapes-int8")
        assert r.returncode == 2 and "no device matches nobody-*" in r.stderr
        # a device's account cannot send commands (the ACL), not even to itself
        r = run_collector_cli(
            "cmd",
            "run",
            "--mqtt",
            broker.url,
            "--username",
            "pi-b",
            "--password-file",
            str(tmp_path / "pi-b.pw"),
            "--device",
            "pi-a",
            "--model",
            "shapes-int8",
            "--timeout",
            "3",
            "--include-offline",
        )
        assert r.returncode == 5
        assert "refused the command to pi-a: Not authorized" in r.stderr
        assert "pi-a: accepted" not in r.stdout
    finally:
        for a in agents:
            assert stop_process(a) == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread we kill
def test_watchdog_restarts_a_dead_link_thread_and_callback_errors_are_counted(tmp_path, mosquitto):
    from edgebench.agent.publish.link import Link
    from edgebench.agent.publish.outbox import Outbox
    from edgebench.agent.wire.transport import MqttSettings

    class Boom(BaseException):
        pass

    calls = {"n": 0}

    def bad_command(topic, payload):
        raise ValueError("handler bug")

    ob = Outbox(str(tmp_path / "ob.db"))
    settings = MqttSettings.from_config({"url": mosquitto.url, "reconnect_min_s": 0.1})
    link = Link(settings, "dev-wd", ob, on_command=bad_command)
    real = link._connection

    def dying():
        calls["n"] += 1
        if calls["n"] == 1:
            raise Boom()  # not an Exception: kills the thread
        return real()

    link._connection = dying
    link.start()
    try:
        wait_until(lambda: link.connected.is_set(), 30, "the restarted link")
        assert link.counters["loop_restarts"] == 1
        raw = RawClient(mosquitto.port)
        raw.publish(protocol.cmd_topic("dev-wd", "run"), {"x": 1})
        wait_until(lambda: link.counters["callback_errors"] == 1, 10, "the counted callback error")
        ob.put("telemetry", protocol.telemetry_topic("dev-wd"), {"schema": protocol.TELEMETRY_SCHEMA})
        assert ob.wait_sent(10)  # the link still delivers (the broker acknowledged it)
        raw.close()
    finally:
        link.stop()
        ob.close()


def test_sigterm_ends_a_long_job_early_and_delivers_what_was_measured(tmp_path, fleet):
    broker, secrets, col = fleet
    cfg = agent_config(
        tmp_path,
        broker,
        secrets,
        "pi-a",
        telemetry={"interval_s": 30},
        jobs=[{"name": "long", "model": str(SHAPES_MODEL), "frames": 10_000_000, "source": "synthetic:64x64"}],
    )
    a = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "state"), tmp_path / "a.log"
    )
    try:
        wait_until(lambda: len(frame_numbers(col)) >= 1000, 60, "frames of the long job")
    finally:
        t0 = time.monotonic()
        rc = stop_process(a, signal.SIGTERM)
    log = (tmp_path / "a.log").read_text()
    assert rc == 0 and time.monotonic() - t0 < 30, log
    assert "the agent is stopping: run ended early" in log
    assert "edgebench agent: stopped (everything was delivered)" in log
    wait_until(lambda: device_state(col, "pi-a")[0] == "stopped", 10, "pi-a stopped")
    col.wait_idle()
    got = frame_numbers(col)
    n, top = len(set(got)), got[-1]
    assert n == top + 1  # every frame measured before the stop arrived, from frame 0
    assert q(col, "SELECT COUNT(*) FROM runs WHERE summary IS NOT NULL")[0][0] == 0  # no summary for a cut run
