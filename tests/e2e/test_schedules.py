"""Recurring jobs from the collector: `jobs schedule` stores one, `serve` sends it when due
to the online devices matching its globs (a private Mosquitto, a real agent service), the
run arrives and is stored, the schedule moves on by whole periods; bad input is one line."""

from __future__ import annotations

import json
import signal
import time

from edgebench.collector.broker.schedules import next_after
from edgebench.collector.store import SQLiteStore
from tests.support.paths import run_collector_cli
from tests.support.transport import agent_env, spawn, stop_process, wait_until, write_config

JOB = ["--model", "shapes-int8", "--frames", "100", "--source", "synthetic:64x64", "--threads", "1"]


def listed(db) -> list[dict]:
    r = run_collector_cli("jobs", "list", "--db", str(db), "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_missed_period_is_sent_once_and_the_next_is_in_whole_periods():
    assert next_after(1000.0, 100.0, 1000.0) == 1100.0
    assert next_after(1000.0, 100.0, 1350.0) == 1400.0  # three periods missed: one send, then 1400
    assert next_after(1000.0, 100.0, 999.0) == 1000.0


def test_serve_sends_a_due_schedule_and_the_run_is_stored(tmp_path, private_mosquitto):
    db = tmp_path / "c.db"
    r = run_collector_cli(
        "jobs", "schedule", "--db", str(db), "--name", "canary", "--every", "1h", "--device", "pi-*", *JOB
    )  # fmt: skip
    assert r.returncode == 0 and "schedule canary: every 3600 s to pi-*" in r.stdout, r.stderr
    (s,) = listed(db)
    created = s["created_at"]
    assert s["job"] == {"model": "shapes-int8", "frames": 100, "source": "synthetic:64x64", "threads": 1}
    assert s["devices"] == ["pi-*"] and s["every_s"] == 3600 and s["last_sent_at"] is None
    assert abs(s["next_at"] - created) < 1  # due now
    cfg = write_config(
        tmp_path / "a.yaml", device_id="pi-a", mqtt={"url": private_mosquitto.url}, telemetry={"interval_s": 30}
    )
    agent = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "st"), tmp_path / "a.log"
    )
    serve = None
    try:
        time.sleep(2)  # the agent's retained status is on the broker before the first check
        serve = spawn(
            ["-m", "edgebench.collector.cli", "serve", "--db", str(db), "--mqtt", private_mosquitto.url,
             "--schedule-check-s", "0.5", "--client-id", f"sched-{tmp_path.name}"],
            agent_env(tmp_path / "cst"),
            tmp_path / "serve.log",
        )  # fmt: skip
        store = SQLiteStore(str(db))
        try:
            wait_until(
                lambda: store.query("SELECT frames FROM runs WHERE device_id = 'pi-a' AND summary IS NOT NULL"),
                90,
                "the scheduled run stored",
            )
            assert store.query("SELECT frames FROM runs")[0][0] == 100
        finally:
            store.close()
    finally:
        if serve is not None:
            assert stop_process(serve, signal.SIGINT) == 0, (tmp_path / "serve.log").read_text()
        assert stop_process(agent) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "collector: schedule canary sent: pi-a accepted" in log, log
    assert log.count("schedule canary sent") == 1  # sent once, not every check
    (s,) = listed(db)
    assert s["last_result"] == "pi-a accepted" and s["last_sent_at"] >= created
    assert abs(s["next_at"] - (created + 3600)) < 1e-3  # one period on from when it was due
    r = run_collector_cli("jobs", "send-due", "--db", str(db), "--mqtt", private_mosquitto.url)
    assert r.returncode == 0 and r.stdout.strip() == "nothing due", r.stderr
    r = run_collector_cli("jobs", "list", "--db", str(db))
    assert (
        r.stdout.startswith("canary: every 3600 s to pi-*: frames=100, model=shapes-int8")
        and ": pi-a accepted" in r.stdout
    )
    r = run_collector_cli("jobs", "remove", "--db", str(db), "--name", "canary")
    assert r.returncode == 0 and listed(db) == []


def test_bad_schedules_are_one_line_and_a_nonzero_exit(tmp_path):
    db = str(tmp_path / "c.db")
    base = ["jobs", "schedule", "--db", db, "--name", "c1", "--device", "pi-*", "--model", "m"]
    for extra, said in (
        (["--every", "10s"], "a recurring job runs at most once a minute"),
        (["--every", "daily"], "expected a period such as 30m, 24h, 7d"),
        (["--every", "1h", "--tune"], "--tune needs --latency-bound-ms"),
    ):
        r = run_collector_cli(*base, *extra)
        assert r.returncode == 2 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert run_collector_cli(*base, "--every", "1h", "--tune", "--latency-bound-ms", "30").returncode == 0
    r = run_collector_cli(*base, "--every", "1h")
    assert r.returncode == 2 and "a schedule named 'c1' exists" in r.stderr
    assert listed(tmp_path / "c.db")[0]["job"] == {"model": "m", "tune": True, "latency_bound_ms": 30.0}
    r = run_collector_cli("jobs", "remove", "--db", db, "--name", "nope")
    assert r.returncode == 2 and "no schedule named 'nope' (schedules: c1)" in r.stderr
