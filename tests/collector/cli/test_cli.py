"""``edgebench-collector`` as a user runs it: report/devices/export/compare on SQLite and
PostgreSQL, clear one-line errors, and the demo."""

from __future__ import annotations

import csv
import io
import json
import time

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from tests.support.fleet import (
    as_message,
    columns,
    frames,
    info,
    meta,
    result_doc,
    status,
    summary,
)
from tests.support.paths import run_collector_cli


@pytest.fixture
def mosquitto(private_mosquitto):
    """These tests count messages exactly: a broker of their own, not the session's."""
    return private_mosquitto


def _fill(store):
    rng = np.random.default_rng(9)
    for d, dev in enumerate(("pi-a", "pi-b")):
        for k, run in enumerate(("r1", "r2")):
            seq = 10 * k + 1
            msgs = [
                as_message(status(dev, 1, "online"), True),
                as_message(info(dev, 1, 100)),
                as_message(meta(dev, 1, seq, run)),
            ]
            allc = {s: [] for s in protocol.STAGES}
            for b in range(3):
                cols = columns(400, rng, 1 + d + 0.5 * k)
                for s in protocol.STAGES:
                    allc[s] += cols[s]
                msgs.append(as_message(frames(dev, 1, seq + 1 + b, run, b * 400, cols)))
            msgs.append(as_message(summary(dev, 1, seq + 5, result_doc(dev, run, allc))))
            store.apply(msgs)


def test_report_devices_export_compare(store, tmp_path):
    _fill(store)
    db = store.url
    r = run_collector_cli("report", "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["device_id"], x["model"], x["frames"]) for x in rows] == [
        ("pi-a", "m.tflite", 2400),
        ("pi-b", "m.tflite", 2400),
    ]
    for x in rows:
        assert x["fps"] > 0 and set(x["latency_ms"]["e2e"]) >= {"p50", "p90", "p99"}
    r = run_collector_cli("report", "--db", db, "--format", "csv", "--by", "device_id,run_id", "--device", "pi-b")
    assert r.returncode == 0, r.stderr
    recs = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["run_id"] for x in recs] == ["r1", "r2"] and float(recs[0]["e2e_p99_ms"]) > 0
    r = run_collector_cli("report", "--db", db)
    assert r.returncode == 0 and "pi-a" in r.stdout and "e2e p99" in r.stdout
    if store.dialect == "postgresql":  # the same groups from the per-minute rollups, saying so
        r = run_collector_cli("report", "--db", db, "--rollups")
        assert r.returncode == 0 and "pi-a" in r.stdout and "error <= 2 %" in r.stdout, r.stderr
        r = run_collector_cli("report", "--db", db, "--rollups", "--format", "json")
        assert [(x["device_id"], x["frames"]) for x in json.loads(r.stdout)] == [("pi-a", 2400), ("pi-b", 2400)]
    r = run_collector_cli("devices", "--db", db, "--format", "json")
    devs = json.loads(r.stdout)
    assert [(d["device_id"], d["state"], d["agent_version"]) for d in devs] == [
        ("pi-a", "online", "0.1.0"),
        ("pi-b", "online", "0.1.0"),
    ]
    out = tmp_path / "frames.csv"
    r = run_collector_cli("export", "--db", db, "--out", str(out), "--device", "pi-a")
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 2400 and lines[0].startswith("device_id,run_id,model")
    pq = tmp_path / "runs.parquet"
    r = run_collector_cli("export", "--db", db, "--what", "runs", "--format", "parquet", "--out", str(pq))
    assert r.returncode == 0, r.stderr
    import pyarrow.parquet as pqm

    t = pqm.read_table(pq)
    assert t.num_rows == 4 and "energy_mj_gross" in t.column_names
    r = run_collector_cli("compare", "--db", db, "--run", "pi-a/r2", "--baseline", "pi-a/r1", "--format", "json")
    assert r.returncode == 0, r.stderr
    c = {m["metric"]: m for m in json.loads(r.stdout)["metrics"]}
    assert c["e2e p50"]["beyond_noise"] is True and c["e2e p50"]["change"] > 0
    r = run_collector_cli("compare", "--db", db, "--model", "m.tflite")
    assert r.returncode == 0 and "pi-a" in r.stdout and "pi-b" in r.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["report", "--db", "/nonexistent/x.db"], "database not found"),
        (["report", "--db", "mysql://x/y"], "unknown database URL"),
        (["report", "--db", "postgresql://nobody@127.0.0.1:1/none"], "cannot connect to PostgreSQL"),
        (["report", "--db", "README.md"], "cannot open database"),
        (["report", "--db", "{db}", "--by", "colour"], "cannot group by colour"),
        (["report", "--db", "{db}", "--since", "yesterday-ish"], "cannot read the time"),
        (["compare", "--db", "{db}", "--run", "nope"], "needs --baseline"),
        (["compare", "--db", "{db}", "--run", "nope", "--baseline", "x/y"], "no run 'nope'"),
        (["export", "--db", "{db}", "--out", "/nonexistent/dir/f.csv"], "cannot write"),
        (["report", "--db", "{db}", "--rollups"], "rollups are kept on PostgreSQL only"),
    ],
)
def test_bad_input_gives_one_line(args, words, tmp_path):
    from edgebench.collector.store import SQLiteStore

    db = str(tmp_path / "e.db")
    SQLiteStore(db).close()
    r = run_collector_cli(*[a.replace("{db}", db) for a in args])
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert words in r.stderr


@pytest.mark.slow
def test_demo_runs_and_cleans_up():
    r = run_collector_cli("demo", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "demo-pi-01" in r.stdout and "demo-jetson-02" in r.stdout and "stopped" in r.stdout
    assert "rejected 0" in r.stdout


def test_serve_with_dashboard_stores_and_stops_cleanly(mosquitto, tmp_path):
    """`serve` as a user runs it: stores what devices publish, serves /metrics with its own
    counters from the same process, and on SIGTERM stops cleanly with a summary line."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from edgebench.collector.broker.connection import Connection
    from edgebench.collector.broker.embedded import free_port
    from tests.support.paths import ROOT

    db = str(tmp_path / "serve.db")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgebench.collector.cli",
            "serve",
            "--mqtt",
            mosquitto.url,
            "--db",
            db,
            "--client-id",
            f"serve-{os.getpid()}",
            "--session-expiry",
            "0",
            "--web-port",
            str(port),
            "--share",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "shared subscriptions" in proc.stdout.readline()
        assert "dashboard on http://127.0.0.1:" in proc.stdout.readline()
        pub = Connection(mosquitto.url, client_id=f"serve-pub-{os.getpid()}", protocol="5").connect(10)
        rng = np.random.default_rng(1)
        mids = [
            pub.publish(
                protocol.run_topic("srv-dev", "r", "frames"), frames("srv-dev", 1, i + 1, "r", i * 10, columns(10, rng))
            )
            for i in range(5)
        ]
        mids.append(pub.publish(protocol.run_topic("srv-dev", "r", "frames"), b"not json"))
        assert not pub.wait_acked(mids, 30)
        pub.close()
        body = ""
        deadline = time.monotonic() + 60
        while 'edgebench_collector_messages_total{outcome="stored"} 5.0' not in body:
            assert time.monotonic() < deadline, body[-2000:]
            time.sleep(0.5)  # polling the endpoint until the counter shows; the value decides
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                body = r.read().decode()
        assert 'edgebench_collector_rejected_messages_total{reason="not_json"} 1.0' in body
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stored 5" in out and "rejected 1 (not_json 1)" in out
        assert "rejected message on" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
