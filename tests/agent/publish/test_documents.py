"""Sweeps and scenario results from the agent to the dashboard, through a real Mosquitto:
`edgebench sweep --mqtt`, `edgebench run --scenario ... --mqtt`, scenario jobs of the agent
service; malformed documents quarantined; a dead broker keeps the document and exits 5."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys

from edgebench.agent.wire import protocol
from edgebench.collector.aggregate import run_detail, scenario_rows, sweep_rows
from edgebench.collector.broker.embedded import free_port
from edgebench.collector.views.web import Dashboard, WebServer
from tests.support.documents import summary_of, sweep_doc
from tests.support.paths import ROOT, SHAPES_MODEL, run_cli, run_collector_cli
from tests.support.transport import (
    RawClient,
    agent_env,
    message_rows,
    outbox_rows,
    spawn,
    start_collector,
    stop_collector,
    stop_process,
    wait_until,
    write_config,
)

FIXED_MODEL = ROOT / "models" / "shapes_int8_fixed_batch.tflite"


def q(col, sql, params=()):
    return col.store.query(sql, params)


def summary_of_run(col, device: str, run_id: str):
    rows = q(
        col, "SELECT summary FROM runs WHERE device_id = ? AND run_id = ? AND summary IS NOT NULL", (device, run_id)
    )
    return json.loads(rows[0][0]) if rows else None


def test_published_sweep_reaches_the_collector_and_its_page_draws_the_curves(mosquitto, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.support.browser import chromium_driver

    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id=f"col-sweep-{tmp_path.name}")
    env = agent_env(tmp_path / "state")
    web = drv = None
    try:
        docs = {}
        for name, model, batch in (("resizable", SHAPES_MODEL, "1,2,4"), ("fixed", FIXED_MODEL, "1,2")):
            out = tmp_path / f"{name}.json"
            r = run_cli(
                "sweep",
                "--model",
                str(model),
                "--batch",
                batch,
                "--instances",
                "1,2",
                "--duration",
                "0.3",
                "--mqtt",
                mosquitto.url,
                "--device-id",
                "sweep-dev",
                "--json",
                str(out),
                env=env,
            )
            assert r.returncode == 0, r.stderr
            docs[name] = doc = json.loads(out.read_text())
            assert f"published sweep {doc['run_id']} as device sweep-dev" in r.stdout
            wait_until(
                lambda doc=doc: summary_of_run(col, "sweep-dev", doc["run_id"]), 30, f"the {name} sweep's summary"
            )
        col.wait_idle()
        for doc in docs.values():
            assert summary_of_run(col, "sweep-dev", doc["run_id"]) == doc  # the whole document, every point
            meta = json.loads(q(col, "SELECT meta FROM runs WHERE run_id = ?", (doc["run_id"],))[0][0])
            assert meta["result_schema"] == protocol.SWEEP_SCHEMA and meta["config"]["grid"] == doc["grid"]
        assert q(col, "SELECT COUNT(*) FROM frame_batches") == [(0,)]  # a sweep publishes no frames
        kinds = [k for _, _, k in message_rows(col, "sweep-dev")]
        assert kinds.count("meta") == 2 and kinds.count("summary") == 2
        seqs = [s for s, _, _ in message_rows(col, "sweep-dev")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost between them
        assert outbox_rows(tmp_path / "state" / "outbox-sweep-dev.db") == []
        rows = {r["run_id"]: r for r in sweep_rows(col.store)}
        fixed = rows[docs["fixed"]["run_id"]]
        assert fixed["counts"] == {"ok": 2, "unsupported": 2, "failed": 0} and fixed["unsupported_batches"] == [2]
        assert rows[docs["resizable"]["run_id"]]["counts"]["ok"] == 6

        web = WebServer(Dashboard(col.store), "127.0.0.1", 0).start()
        drv = chromium_driver()
        drv.set_page_load_timeout(60)
        drv.get(web.url + f"run/sweep-dev/{docs['resizable']['run_id']}")
        lat = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="sweep-latency"]')
        assert lat.find_element(By.CSS_SELECTOR, "text.xlabel").text == "batch size (items per invoke)"
        assert lat.find_element(By.CSS_SELECTOR, "text.ylabel").text == "latency per batch (ms)"
        assert len(lat.find_elements(By.CSS_SELECTOR, "circle.point")) == 12  # 6 points: p50 and p99
        thr = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="sweep-throughput"]')
        assert thr.find_element(By.CSS_SELECTOR, "text.xlabel").text == "batch size (items per invoke)"
        assert thr.find_element(By.CSS_SELECTOR, "text.ylabel").text == "throughput (items/s)"
        assert len(thr.find_elements(By.CSS_SELECTOR, "circle.point")) == 6
        front = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="sweep-frontier"]')
        assert front.find_element(By.CSS_SELECTOR, "text.xlabel").text == "p99 latency per batch (ms)"
        assert front.find_element(By.CSS_SELECTOR, "text.ylabel").text == "throughput (items/s)"
        assert len(front.find_elements(By.CSS_SELECTOR, "circle.point")) == 6
        hist = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="histogram"]')
        assert hist.find_element(By.CSS_SELECTOR, "text.ylabel").text == "batches"
        assert len(hist.find_elements(By.CSS_SELECTOR, "rect.bar")) == 40
        assert len(drv.find_elements(By.CSS_SELECTOR, "#sweep tbody tr")) == 6
        drv.save_screenshot(str(tmp_path / "sweep.png"))

        drv.get(web.url + f"run/sweep-dev/{docs['fixed']['run_id']}")
        lat = drv.find_element(By.CSS_SELECTOR, 'svg.chart[data-chart="sweep-latency"]')
        crosses = lat.find_elements(By.CSS_SELECTOR, "path.unsupported")
        assert len(crosses) == 2  # batch 2 with 1 and 2 instances
        table = drv.find_element(By.ID, "sweep").text
        rows = [r.text for r in drv.find_elements(By.CSS_SELECTOR, "#sweep tbody tr")]
        unsupported = [r for r in rows if " unsupported " in r]
        assert len(unsupported) == 2 and "failed to prepare" in table
        assert sum("failed to prepare" in r for r in unsupported) == 1  # the reason once, the other row points to it
        assert "2 unsupported" in drv.find_element(By.ID, "sweep-summary").text
    finally:
        if drv is not None:
            drv.quit()
        if web is not None:
            web.stop()
        stop_collector(col)
    rep = run_collector_cli("report", "--db", str(tmp_path / "c.db"), "--what", "sweeps", "--format", "json")
    assert rep.returncode == 0, rep.stderr
    got = {r["run_id"]: r for r in json.loads(rep.stdout)}
    assert got[docs["fixed"]["run_id"]]["counts"]["unsupported"] == 2
    best = docs["resizable"]["best"]["throughput"]
    assert got[docs["resizable"]["run_id"]]["best_throughput_items_per_s"] == best["throughput_items_per_s"]


def test_published_scenarios_reach_the_collector_with_their_verdicts(mosquitto, tmp_path):
    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id=f"col-scen-{tmp_path.name}")
    env = agent_env(tmp_path / "state")
    runs = {}
    try:
        for name, args in (
            ("valid", ["--scenario", "server", "--target-qps", "100", "--latency-bound-ms", "500", "--duration", "1"]),
            ("invalid", ["--scenario", "single-stream", "--latency-bound-ms", "0.0001", "--duration", "1"]),
        ):
            out = tmp_path / f"{name}.json"
            r = run_cli(
                "run",
                "--model",
                str(SHAPES_MODEL),
                *args,
                "--mqtt",
                mosquitto.url,
                "--device-id",
                "scen-dev",
                "--json",
                str(out),
                env=env,
            )
            assert r.returncode == 0, r.stderr
            runs[name] = doc = json.loads(out.read_text())
            assert f"published scenario {doc['run_id']} as device scen-dev" in r.stdout
            wait_until(lambda doc=doc: summary_of_run(col, "scen-dev", doc["run_id"]), 30, f"the {name} scenario")
        col.wait_idle()
        assert runs["valid"]["verdict"] == "VALID", runs["valid"]["reasons"]
        assert runs["invalid"]["verdict"] == "INVALID"
        for doc in runs.values():
            assert summary_of_run(col, "scen-dev", doc["run_id"]) == doc
        rows = {r["run_id"]: r for r in scenario_rows(col.store)}
        v, i = rows[runs["valid"]["run_id"]], rows[runs["invalid"]["run_id"]]
        assert (v["scenario"], v["verdict"], v["within_bound"], v["target_qps"]) == ("server", "VALID", True, 100.0)
        assert v["headline"] == {
            "metric": "p99_latency_ms",
            "value": runs["valid"]["headline"]["p99_latency_ms"],
            "unit": "ms",
        }
        assert (i["scenario"], i["verdict"]) == ("single-stream", "INVALID")
        assert any("bound missed" in reason for reason in i["reasons"])
        assert i["headline"]["value"] == runs["invalid"]["headline"]["value"]
        d = run_detail(col.store, "scen-dev", runs["invalid"]["run_id"])
        assert (d["kind"], d["verdict"], d["frames_stored"]) == ("scenario", "INVALID", 0)
        page = Dashboard(col.store).handle(f"/run/scen-dev/{runs['invalid']['run_id']}", "")[2].decode()
        assert 'id=verdict>Verdict: <span class="INVALID">INVALID</span>' in page and "bound missed" in page
        assert 'data-chart="histogram"' in page
    finally:
        stop_collector(col)
    rep = run_collector_cli("report", "--db", str(tmp_path / "c.db"), "--what", "scenarios")
    assert rep.returncode == 0, rep.stderr
    line = next(x for x in rep.stdout.splitlines() if runs["invalid"]["run_id"] in x)
    assert "single-stream" in line and "INVALID" in line and "bound missed" in line
    line = next(x for x in rep.stdout.splitlines() if runs["valid"]["run_id"] in x)
    assert "VALID" in line and "<= 500 ms bound" in line


def test_malformed_sweeps_are_quarantined_with_a_reason(mosquitto, tmp_path):
    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id=f"col-bad-{tmp_path.name}")
    raw = RawClient(mosquitto.port)
    try:
        good = sweep_doc("bad-sweeper", "good")
        missing = copy.deepcopy(sweep_doc("bad-sweeper", "missing"))
        missing["points"].pop(2)
        negative = copy.deepcopy(sweep_doc("bad-sweeper", "negative"))
        negative["points"][0]["throughput_items_per_s"] = -5.0
        for seq, doc in enumerate((missing, negative, good), start=1):
            raw.publish(protocol.run_topic("bad-sweeper", doc["run_id"], "summary"), summary_of(doc, seq=seq))
        wait_until(lambda: summary_of_run(col, "bad-sweeper", "good"), 30, "the good sweep")
        col.wait_idle()
        rows = q(
            col, "SELECT topic, code, reason FROM quarantine WHERE topic LIKE 'edgebench/v1/bad-sweeper/%' ORDER BY id"
        )
        assert [(t.split("/")[4], c) for t, c, _ in rows] == [("missing", "inconsistent"), ("negative", "invalid")]
        assert "the grid has 8 points but the document reports 7: every point must be reported" in rows[0][2]
        assert "throughput_items_per_s" in rows[1][2] and "-5.0 is less than the minimum of 0" in rows[1][2]
        assert q(col, "SELECT run_id FROM runs WHERE device_id = 'bad-sweeper'") == [("good",)]
        assert col.rejections["inconsistent"] >= 1 and col.rejections["invalid"] >= 1
    finally:
        raw.close()
        stop_collector(col)


def test_dead_broker_keeps_the_sweep_and_exits_5_and_the_next_start_sends_it(mosquitto, tmp_path):
    env = agent_env(tmp_path / "state")
    dead = f"mqtt://127.0.0.1:{free_port()}"
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgebench.agent.cli",
            "sweep",
            "--model",
            str(SHAPES_MODEL),
            "--batch",
            "1,2",
            "--duration",
            "0.3",
            "--mqtt",
            dead,
            "--device-id",
            "sweep-dead",
            "--mqtt-wait",
            "1",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=work,
        env=env,
    )
    assert r.returncode == 5, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr  # one line, no traceback
    assert "cannot reach MQTT broker" in err[0] and "Connection refused" in err[0]
    assert "2 message(s) remain queued in the outbox" in err[0]
    assert "with device id sweep-dead sends them" in err[0]
    (kept,) = work.glob("edgebench-sweep-*.json")
    assert f"the sweep result is kept in {kept}" in err[0]
    doc = json.loads(kept.read_text())
    assert doc["schema"] == protocol.SWEEP_SCHEMA and doc["counts"]["ok"] == 2 and len(doc["points"]) == 2
    assert [k for _, k, _, _ in outbox_rows(tmp_path / "state" / "outbox-sweep-dead.db")] == ["meta", "summary"]

    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id=f"col-dead-{tmp_path.name}")
    try:
        r = run_cli(
            "run",
            "--model",
            str(SHAPES_MODEL),
            "--frames",
            "50",
            "--mqtt",
            mosquitto.url,
            "--device-id",
            "sweep-dead",
            "-q",
            env=env,
        )
        assert r.returncode == 0, r.stderr
        wait_until(lambda: summary_of_run(col, "sweep-dead", doc["run_id"]), 30, "the queued sweep")
        col.wait_idle()
        assert summary_of_run(col, "sweep-dead", doc["run_id"]) == doc
        replayed = {(k, rep) for _, rep, k in message_rows(col, "sweep-dead") if k in ("meta", "summary")}
        assert (("summary", 1) in replayed) and (("meta", 1) in replayed)
        assert outbox_rows(tmp_path / "state" / "outbox-sweep-dead.db") == []
    finally:
        stop_collector(col)


def test_agent_service_runs_scenario_jobs_and_remote_scenario_commands(mosquitto, tmp_path):
    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id=f"col-svc-{tmp_path.name}")
    cfg = write_config(
        tmp_path / "agent.yaml",
        device_id="svc-scen",
        mqtt={"url": mosquitto.url, "reconnect_max_s": 1},
        telemetry={"interval_s": 5},
        jobs=[
            {
                "name": "boot-scenario",
                "model": str(SHAPES_MODEL),
                "scenario": "single-stream",
                "frames": 40,
                "min_queries": 10,
            }
        ],
    )
    a = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "state"), tmp_path / "a.log"
    )
    try:
        wait_until(
            lambda: q(
                col,
                "SELECT run_id FROM runs WHERE device_id = 'svc-scen' AND kind = 'scenario' AND summary IS NOT NULL",
            ),
            90,
            "the boot scenario job's result",
        )
        (row,) = scenario_rows(col.store, where={"device_id": "svc-scen"})
        assert row["scenario"] == "single-stream" and row["queries"] == 40 and row["verdict"] in ("VALID", "INVALID")
        r = run_collector_cli(
            "cmd",
            "run",
            "--mqtt",
            mosquitto.url,
            "--device",
            "svc-scen",
            "--model",
            "shapes-int8",
            "--set",
            "scenario=server",
            "--set",
            "target_qps=50",
            "--set",
            "latency_bound_ms=1000",
            "--set",
            "duration_s=1",
            "--set",
            "min_queries=10",
            "--wait-done",
            "--timeout",
            "120",
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "svc-scen: done run" in r.stdout and "(server: VALID, p99_within_bound True ms)" in r.stdout
        wait_until(
            lambda: len(scenario_rows(col.store, where={"device_id": "svc-scen"})) == 2, 30, "the remote scenario"
        )
        servers = [x for x in scenario_rows(col.store, where={"device_id": "svc-scen"}) if x["scenario"] == "server"]
        assert servers[0]["verdict"] == "VALID" and servers[0]["within_bound"] is True
    finally:
        rc = stop_process(a, signal.SIGTERM)
        stop_collector(col)
    log = (tmp_path / "a.log").read_text()
    assert rc == 0, log
    assert "failed" not in log, log


def test_publishing_loads_no_plotting_stack_and_nothing_of_the_collector(mosquitto, tmp_path):
    """The agent stays light on a board: publishing a sweep or a scenario imports neither
    matplotlib nor any collector code."""
    code = f"""
import sys
from edgebench.agent.cli import main
url, m = {mosquitto.url!r}, {str(SHAPES_MODEL)!r}
assert main(["sweep", "--model", m, "--frames", "3", "-q", "--mqtt", url, "--device-id", "light-dev"]) == 0
assert main(["run", "--model", m, "--scenario", "single-stream", "--frames", "10", "--min-queries", "1", "-q",
             "--mqtt", url, "--device-id", "light-dev"]) == 0
assert "matplotlib" not in sys.modules, "matplotlib was imported"
assert not [k for k in sys.modules if k == "collector" or k.startswith("collector.")], "collector code was imported"
print("light")
"""
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env=agent_env(tmp_path / "state"),
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "light"


def test_sigterm_ends_a_long_scenario_job_at_its_next_query(mosquitto, tmp_path):
    col = start_collector(mosquitto.url, tmp_path / "c.db", client_id=f"col-stop-{tmp_path.name}")
    cfg = write_config(
        tmp_path / "agent.yaml",
        device_id="svc-stop",
        mqtt={"url": mosquitto.url, "reconnect_max_s": 1},
        jobs=[
            {
                "name": "long",
                "model": str(SHAPES_MODEL),
                "scenario": "single-stream",
                "duration_s": 600,
                "max_duration_s": 600,
            }
        ],
    )
    a = spawn(
        ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(tmp_path / "state"), tmp_path / "a.log"
    )
    try:
        wait_until(
            lambda: q(col, "SELECT meta FROM runs WHERE device_id = 'svc-stop' AND kind = 'scenario'"),
            60,
            "the long scenario's meta",
        )
        rc = stop_process(a, signal.SIGTERM, timeout=60)  # long before its 600 s
    finally:
        if a.poll() is None:
            a.kill()
        stop_collector(col)
    log = (tmp_path / "a.log").read_text()
    assert rc == 0, log
    assert "long failed: the agent is stopping: scenario ended early" in log
    assert "edgebench agent: stopped (everything was delivered)" in log
