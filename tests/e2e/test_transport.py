"""Delivery end to end against real Mosquitto processes: nothing lost, nothing
doubled, across dead brokers, broker restarts, agent kills and a full outbox."""

from __future__ import annotations

import json
import signal
import time

from edgebench.agent.wire import protocol
from edgebench.collector.broker.embedded import MosquittoBroker, free_port
from tests.support.paths import SHAPES_MODEL, run_cli
from tests.support.transport import (
    RawClient,
    agent_env,
    frame_numbers,
    message_rows,
    outbox_rows,
    spawn,
    start_collector,
    stop_collector,
    stop_process,
    wait_until,
    write_config,
)

RUN = ["run", "--model", str(SHAPES_MODEL), "--source", "synthetic:64x64"]


def q(col, sql, params=()):
    return col.store.query(sql, params)


def check_run_complete(col, device: str, run_id: str, frames: int) -> None:
    """Every frame of the run stored once, the summary there, seqs without holes."""
    got = frame_numbers(col, "WHERE device_id=? AND run_id=?", (device, run_id))
    assert (len(got), len(set(got)), got[0], got[-1]) == (frames, frames, 0, frames - 1)
    assert q(
        col, "SELECT frames FROM runs WHERE device_id=? AND run_id=? AND summary IS NOT NULL", (device, run_id)
    ) == [(frames,)]


def seqs(col, device: str) -> list[int]:
    return [r[0] for r in message_rows(col, device)]


def test_run_streams_through_the_outbox_and_leaves_it_empty(tmp_path, mosquitto):
    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id="col-stream")
    try:
        r = run_cli(
            *RUN,
            "--frames",
            "3000",
            "--mqtt",
            mosquitto.url,
            "--device-id",
            "dev-stream",
            "--run-id",
            "run-stream",
            env=agent_env(tmp_path / "state"),
        )
        assert r.returncode == 0, r.stderr
        assert "published run run-stream as device dev-stream" in r.stdout
        wait_until(lambda: q(col, "SELECT summary FROM runs WHERE run_id='run-stream'")[0][0], 30, "the summary")
        col.wait_idle()
        check_run_complete(col, "dev-stream", "run-stream", 3000)
        s = seqs(col, "dev-stream")
        assert s == list(range(1, len(s) + 1))  # info, meta, frame batches, summary: no hole
        assert q(col, "SELECT SUM(replayed) FROM messages WHERE device_id='dev-stream'")[0][0] == 0
        assert q(col, "SELECT state FROM devices WHERE device_id='dev-stream'") == [("stopped",)]
        assert outbox_rows(tmp_path / "state" / "outbox-dev-stream.db") == []
    finally:
        stop_collector(col)


def test_dead_broker_keeps_the_outbox_and_the_next_start_sends_it(tmp_path, mosquitto):
    env = agent_env(tmp_path / "state")
    dead = f"mqtt://127.0.0.1:{free_port()}"
    out = tmp_path / "r1.json"
    t0 = time.monotonic()
    r = run_cli(
        *RUN,
        "--frames",
        "2000",
        "--mqtt",
        dead,
        "--device-id",
        "dev-dead",
        "--run-id",
        "run-dead",
        "--mqtt-wait",
        "2",
        "--json",
        str(out),
        env=env,
    )
    assert r.returncode == 5
    assert time.monotonic() - t0 < 60
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr  # one line, no traceback
    assert "cannot reach MQTT broker" in err[0] and "Connection refused" in err[0]
    assert "remain queued in the outbox" in err[0] and "(2000 frames)" in err[0]
    assert "the next `edgebench run` or `edgebench agent` with device id dev-dead sends them" in err[0]
    assert f"the result is kept in {out}" in err[0]
    assert json.loads(out.read_text())["frames"] == 2000
    queued = outbox_rows(tmp_path / "state" / "outbox-dev-dead.db")
    assert [k for _, k, _, _ in queued][0] == "meta" and queued[-1][1] == "summary"

    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id="col-dead")
    try:
        r = run_cli(
            *RUN, "--frames", "500", "--mqtt", mosquitto.url, "--device-id", "dev-dead", "--run-id", "run-next", env=env
        )
        assert r.returncode == 0, r.stderr
        wait_until(lambda: len(q(col, "SELECT 1 FROM runs WHERE summary IS NOT NULL")) == 2, 30, "both summaries")
        col.wait_idle()
        check_run_complete(col, "dev-dead", "run-dead", 2000)
        check_run_complete(col, "dev-dead", "run-next", 500)
        old = {s for s, *_ in queued}
        rows = [(s, rep) for s, rep, _ in message_rows(col, "dev-dead")]
        assert {s for s, rep in rows if rep} == old  # exactly the backlog came back marked replayed
        s = sorted(s for s, _ in rows)
        assert s == list(range(1, len(s) + 1))
        assert col.counts["duplicates"] == 0
    finally:
        stop_collector(col)


def test_broker_stopped_mid_run_loses_and_doubles_nothing(tmp_path):
    broker = MosquittoBroker().start()
    col = start_collector(broker.url, tmp_path / "c.db", client_id="col-restart")
    cfg = write_config(tmp_path / "agent.yaml", mqtt={"reconnect_min_s": 0.2, "reconnect_max_s": 0.5})
    p = None
    try:
        # ~100k frames: several seconds of measuring, 200 frame batches
        p = spawn(
            [
                "-m",
                "edgebench.agent.cli",
                *RUN,
                "--frames",
                "100000",
                "--config",
                str(cfg),
                "--mqtt",
                broker.url,
                "--device-id",
                "dev-restart",
                "--run-id",
                "run-restart",
                "--mqtt-wait",
                "60",
            ],
            agent_env(tmp_path / "state"),
            tmp_path / "agent.log",
        )
        wait_until(lambda: frame_numbers(col), 60, "the first frames at the collector")
        broker.stop()
        stopped_at = len(frame_numbers(col))
        wait_until(
            lambda: len(outbox_rows(tmp_path / "state" / "outbox-dev-restart.db")) >= 5 or p.poll() is not None,
            60,
            "a backlog while the broker is down",
        )
        time.sleep(1.0)  # down for a while: the agent keeps measuring into the outbox
        broker.start()  # same port, same persistence: the collector's session is back
        assert p.wait(120) == 0, (tmp_path / "agent.log").read_text()
        wait_until(lambda: q(col, "SELECT summary FROM runs WHERE run_id='run-restart'")[0][0], 60, "the summary")
        col.wait_idle()
        check_run_complete(col, "dev-restart", "run-restart", 100000)
        s = seqs(col, "dev-restart")
        assert s == list(range(1, len(s) + 1))
        replayed = sum(rep for _, rep, _ in message_rows(col, "dev-restart"))
        assert replayed > 0 and stopped_at < 100000
        print(
            f"broker restart: {len(s)} messages, {replayed} replayed, "
            f"{col.counts['duplicates']} duplicate deliveries dropped by the collector"
        )
    finally:
        if p is not None and p.poll() is None:
            p.kill()
        stop_collector(col)
        broker.cleanup()


def test_agent_killed_mid_run_replays_its_outbox_on_restart(tmp_path):
    broker = MosquittoBroker()  # not started yet: the run queues everything
    state = tmp_path / "state"
    ob = state / "outbox-dev-kill.db"
    p = spawn(
        [
            "-m",
            "edgebench.agent.cli",
            *RUN,
            "--frames",
            "1000000",
            "--mqtt",
            broker.url,
            "--device-id",
            "dev-kill",
            "--run-id",
            "run-kill",
        ],
        agent_env(state),
        tmp_path / "agent.log",
    )
    try:
        wait_until(lambda: len(outbox_rows(ob)) >= 10, 60, "frame batches in the outbox")
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        queued = outbox_rows(ob)
        assert queued[0][1] == "meta" and all(k == "frames" for _, k, _, _ in queued[1:])
        firsts = [f for _, _, f, _ in queued[1:]]
        assert firsts[0] == 0 and firsts == sorted(firsts)
        frames_queued = sum(n for *_, n in queued[1:])
        broker.start()
        col = start_collector(broker.url, tmp_path / "c.db", client_id="col-kill")
        try:
            cfg = write_config(
                tmp_path / "agent.yaml", device_id="dev-kill", mqtt={"url": broker.url}, telemetry={"interval_s": 60}
            )
            a = spawn(
                ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(state), tmp_path / "agent2.log"
            )
            try:
                wait_until(
                    lambda: len(frame_numbers(col, "WHERE run_id='run-kill'")) == frames_queued,
                    60,
                    "the replayed frames",
                )
            finally:
                assert stop_process(a) == 0
            col.wait_idle()
            rows = message_rows(col, "dev-kill")
            replayed = {s for s, rep, _ in rows if rep}
            assert replayed == {s for s, *_ in queued}
            got = frame_numbers(col, "WHERE run_id='run-kill'")
            assert (len(set(got)), got[-1]) == (frames_queued, frames_queued - 1)  # from frame 0, no hole
            assert col.counts["duplicates"] == 0
            assert outbox_rows(ob) == []
        finally:
            stop_collector(col)
    finally:
        if p.poll() is None:
            p.kill()
        broker.cleanup()


def test_full_outbox_reports_exactly_what_it_dropped(tmp_path, mosquitto):
    state = tmp_path / "state"
    cfg = write_config(tmp_path / "agent.yaml", outbox={"max_mb": 0.1})  # ~6 frame batches of 500
    r = run_cli(
        *RUN,
        "--frames",
        "10000",
        "--config",
        str(cfg),
        "--mqtt",
        f"mqtt://127.0.0.1:{free_port()}",
        "--device-id",
        "dev-full",
        "--run-id",
        "run-full",
        "--mqtt-wait",
        "1",
        "--json",
        str(tmp_path / "r.json"),
        env=agent_env(state),
    )
    assert r.returncode == 5
    assert "the outbox bound (104857 bytes) dropped" in r.stderr
    queued = outbox_rows(state / "outbox-dev-full.db")
    kept = {f: n for _, k, f, n in queued if k == "frames"}
    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id="col-full")
    raw = RawClient(mosquitto.port)
    raw.subscribe(protocol.run_topic("dev-full", "run-full", "summary"))
    try:
        cfg2 = write_config(
            tmp_path / "agent2.yaml", device_id="dev-full", mqtt={"url": mosquitto.url}, telemetry={"interval_s": 60}
        )
        a = spawn(
            ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg2)], agent_env(state), tmp_path / "agent.log"
        )
        try:
            wait_until(lambda: raw.messages, 60, "the summary")
            wait_until(
                lambda: len(frame_numbers(col, "WHERE run_id='run-full'")) == sum(kept.values()), 60, "the kept frames"
            )
        finally:
            assert stop_process(a) == 0
        col.wait_idle()
        stored = set(frame_numbers(col, "WHERE run_id='run-full'"))
    finally:
        raw.close()
        stop_collector(col)
    summary = json.loads(raw.messages[0][1])
    dropped = summary["dropped"]  # what the device says it never sent
    missing = set(range(10000)) - stored
    assert missing == {f for a, n in dropped["frame_ranges"] for f in range(a, a + n)}
    assert dropped["frames"] == len(missing) > 0
    assert dropped["messages"] == len(missing) // 500
    assert summary["result"]["frames"] == 10000
    from edgebench.agent.publish.outbox import Outbox

    ob = Outbox(str(state / "outbox-dev-full.db"))
    st = ob.stats()
    ob.close()
    assert st["dropped_frames"] == dropped["frames"]
    assert st["dropped_by_kind"]["frames"] == dropped["messages"]


def test_a_failing_run_says_one_line_and_keeps_what_it_queued(tmp_path, mosquitto):
    r = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--source",
        str(tmp_path / "missing.jpg"),
        "--mqtt",
        mosquitto.url,
        "--device-id",
        "dev-fail",
        env=agent_env(tmp_path / "state"),
    )
    assert r.returncode == 4
    assert len(r.stderr.strip().splitlines()) == 1 and "missing.jpg" in r.stderr
    r = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--mqtt",
        "mqtt://127.0.0.1:notaport",
        "--device-id",
        "dev-fail",
        env=agent_env(tmp_path / "state"),
    )
    assert r.returncode == 2 and "the port is not a number" in r.stderr


def test_a_run_below_its_accuracy_floor_sends_no_run_data(tmp_path, mosquitto):
    """Accuracy runs are held back until the floor passes: a refused one leaves nothing behind."""
    import shutil

    from edgebench import models

    sets = tmp_path / "by-index"
    src = SHAPES_MODEL.parent / "testsets" / "shapes"
    for idx, cls in ((0, "circle"), (1, "square")):
        (sets / str(idx)).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:5]:
            shutil.copy(f, sets / str(idx) / f.name)
    raw = RawClient(mosquitto.port)
    raw.subscribe("edgebench/v1/dev-floor/run/#")
    try:
        r = run_cli(
            "run",
            "--model",
            str(models.path_of("mobilenet-v2-0.35-96-int8-untrained")),
            "--accuracy",
            str(sets),
            "--accuracy-floor",
            "0.9",
            "--json",
            str(tmp_path / "r.json"),
            "--mqtt",
            mosquitto.url,
            "--device-id",
            "dev-floor",
            env=agent_env(tmp_path / "state"),
        )
        assert r.returncode == 6 and "below the floor" in r.stderr
        # only the birth record waits (for a collector's confirmation): no run data
        assert [k for _, k, _, _ in outbox_rows(tmp_path / "state" / "outbox-dev-floor.db")] in ([], ["info"])
        time.sleep(0.5)
        assert raw.messages == []
    finally:
        raw.close()
