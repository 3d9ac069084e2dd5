"""edgebench tune's search as a remote job: `edgebench-collector cmd tune` on a device
group over a private Mosquitto (the shipped ACL), two agent services, a collector storing
each device's edgebench.tune/1 document; the device page shows it."""

from __future__ import annotations

import json

import pytest

from edgebench.collector.views.web import Dashboard
from tests.agent.service.test_service import agent_config, device_state, q
from tests.support.paths import run_collector_cli
from tests.support.transport import (
    agent_env,
    secure_broker,
    spawn,
    start_collector,
    stop_collector,
    stop_process,
    url_with,
    wait_until,
)


@pytest.fixture
def fleet(tmp_path):
    broker, secrets = secure_broker(tmp_path, ["pi-a", "pi-b"])
    col = start_collector(
        url_with(broker.collector_url, "collector", secrets["collector"]), tmp_path / "c.db", client_id="col-tune"
    )
    yield broker, secrets, col
    stop_collector(col)
    broker.cleanup()


def test_tune_job_on_a_device_group_is_stored_and_shown_per_board(tmp_path, fleet):
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
            "cmd", "tune", *auth, "--device", "pi-*", "--model", "shapes-int8", "--latency-bound-ms", "5000",
            "--budget-s", "1", "--max-batch", "2", "--wait-done", "--timeout", "240",
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        lines = sorted(r.stdout.strip().splitlines())
        assert [line.split(":")[0] for line in lines] == ["pi-a", "pi-b"], lines
        assert all(" done run " in line and "(tune: " in line and "; best delegate" not in line for line in lines)
        runs = {line.split(":")[0]: line.split(" run ")[1].split()[0] for line in lines}
        wait_until(lambda: len(q(col, "SELECT 1 FROM runs WHERE summary IS NOT NULL")) == 2, 30, "both tunes stored")
        rows = q(
            col, "SELECT device_id, run_id, kind, headline_value, latency_bound_ms, within_bound, summary FROM runs"
        )
        assert {(d, rid) for d, rid, *_ in rows} == set(runs.items())
        for dev, _, kind, headline, bound, within, summary in rows:
            doc = json.loads(summary)
            assert doc["schema"] == "edgebench.tune/1"
            assert kind == "tune" and bound == 5000.0 and within == 1
            # a 5 s bound on a small model: something meets it, and the stored headline is the winner's
            assert doc["best"]["meets_bound"] and headline == doc["best"]["throughput_items_per_s"]
            assert doc["device_id"] == dev and len(doc["model"]["sha256"]) == 64
            assert doc["run_section"]["threads"] == doc["best"]["config"]["threads"]
            line = next(x for x in lines if x.startswith(dev))
            assert f"threads {doc['best']['config']['threads']}" in line and doc["verdict"]["verdict"] in line
        assert q(col, "SELECT COUNT(*) FROM quarantine") == [(0,)]  # each passed the protocol's checks
        states = q(col, "SELECT state FROM command_acks WHERE device_id = 'pi-a' ORDER BY seq")
        assert [s for (s,) in states] == ["accepted", "started", "done"]
        # the device page shows the board's tune result; the run page the search
        dash = Dashboard(col.store)
        dev, rid = "pi-a", runs["pi-a"]
        doc = json.loads(next(s for d, _, _, _, _, _, s in rows if d == dev))
        page = dash.handle(f"/device/{dev}", "")[2].decode()
        assert "<h2>Tune results</h2>" in page and f"/run/{dev}/{rid}" in page
        run_page = dash.handle(f"/run/{dev}/{rid}", "")[2].decode()
        assert "Tune:" in run_page and run_page.count("<tr>") >= len(doc["points"]) + len(doc["pruned"])
        cfg = doc["best"]["config"]
        assert f"threads {cfg['threads']}, batch {cfg['batch']}, instances {cfg['instances']}" in run_page
        # and the terminal report, one row per search
        r = run_collector_cli("report", "--db", str(tmp_path / "c.db"), "--what", "tunes")
        assert r.returncode == 0, r.stderr
        body = [x for x in r.stdout.splitlines() if x.startswith("pi-")]
        assert sorted(x.split()[0] for x in body) == ["pi-a", "pi-b"] and all(runs[x.split()[0]] in x for x in body)
        assert f"threads {cfg['threads']}, batch {cfg['batch']}" in next(x for x in body if x.startswith("pi-a"))
        # a tune job without its bound is rejected, with the reason
        r = run_collector_cli(
            "cmd", "run", *auth, "--device", "pi-a", "--model", "shapes-int8", "--set", "tune=true"
        )  # fmt: skip
        assert r.returncode == 1
        assert "pi-a: rejected: job.tune needs job.latency_bound_ms" in r.stdout
        r = run_collector_cli(
            "cmd", "tune", *auth, "--device", "pi-a", "--model", "shapes-int8", "--latency-bound-ms", "5",
            "--objective", "speed",
        )  # fmt: skip
        assert r.returncode == 1 and "pi-a: rejected: job.objective" in r.stdout
    finally:
        for a in agents:
            assert stop_process(a) == 0


def test_a_tune_job_in_the_agents_own_config_runs_and_is_stored(tmp_path, private_mosquitto):
    from tests.support.paths import SHAPES_MODEL, run_cli
    from tests.support.transport import write_config

    job = {"name": "boot-tune", "model": str(SHAPES_MODEL), "tune": True, "budget_s": 1, "max_batch": 1}
    bad = write_config(tmp_path / "bad.yaml", device_id="cfg-tune", mqtt={"url": private_mosquitto.url}, jobs=[job])
    r = run_cli("agent", "--config", str(bad))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "edgebench: error: job boot-tune: job.tune needs job.latency_bound_ms: the p99 in ms a batch must hold"
    ]
    cfg = write_config(
        tmp_path / "a.yaml",
        device_id="cfg-tune",
        mqtt={"url": private_mosquitto.url},
        telemetry={"interval_s": 30},
        jobs=[{**job, "latency_bound_ms": 5000, "objective": "latency"}],
    )
    col = start_collector(private_mosquitto.url, tmp_path / "c.db", client_id=f"cfg-{tmp_path.name}")
    a = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "st"), tmp_path / "a.log"
    )
    try:
        wait_until(lambda: q(col, "SELECT summary FROM runs WHERE kind = 'tune' AND summary IS NOT NULL"), 120, "tune")
        doc = json.loads(q(col, "SELECT summary FROM runs")[0][0])
    finally:
        assert stop_process(a) == 0
        stop_collector(col)
    assert doc["objective"] == "latency" and doc["bound_ms"] == 5000 and doc["device_id"] == "cfg-tune"
    assert all(p["config"]["batch"] == 1 for p in doc["points"])  # max_batch 1: no larger batch tried
