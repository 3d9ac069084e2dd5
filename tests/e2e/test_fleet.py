"""Agent -> real Mosquitto -> collector -> SQLite -> report, checked frame by frame."""

import json

import numpy as np
import pytest

from edgebench.collector.aggregate import fleet_rows, run_samples
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.store import SQLiteStore
from tests.support.paths import SHAPES_MODEL, run_cli, run_collector_cli


@pytest.fixture
def collector(mosquitto, tmp_path):
    store = SQLiteStore(str(tmp_path / "fleet.db"))
    # its own shared-subscription group and no session left behind: the broker is shared
    # by the whole test session, and a stopped group member keeps being dealt messages
    col = Collector(
        mosquitto.url,
        store,
        client_id=f"test-collector-{tmp_path.name}",
        group=f"g-{tmp_path.name}",
        session_expiry_s=0,
    ).start()
    yield col
    col.stop()
    store.close()


def test_collector_stores_exactly_the_measured_frames(mosquitto, collector, tmp_path):
    out = tmp_path / "r.json"
    p = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--frames",
        "2500",
        "--warmup",
        "4",
        "--json",
        str(out),
        "--mqtt",
        mosquitto.url,
        "--device-id",
        "e2e-dev-1",
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    run_id = res["run_id"]
    store = collector.store
    assert collector.wait_for(
        lambda: store.query("SELECT COUNT(*) FROM runs WHERE run_id = ? AND summary IS NOT NULL", (run_id,))[0][0] == 1,
        30,
    )
    assert collector.wait_idle(10)
    batches = store.query(
        "SELECT first_frame, n FROM frame_batches WHERE device_id = ? AND run_id = ? ORDER BY first_frame",
        ("e2e-dev-1", run_id),
    )
    # every measured frame, once, numbered 0..N-1
    numbers = [f for first, n in batches for f in range(first, first + n)]
    assert numbers == list(range(res["frames"]))
    samples = run_samples(store, "e2e-dev-1", run_id)
    inf = samples["inference"]
    # the stored per-frame values reproduce the agent's own statistics
    assert np.percentile(inf, 50) == pytest.approx(res["latency_ms"]["inference"]["p50"], abs=2e-4)
    assert np.percentile(inf, 99) == pytest.approx(res["latency_ms"]["inference"]["p99"], abs=2e-4)
    e2e = samples["e2e"]
    assert e2e.max() == pytest.approx(res["latency_ms"]["e2e"]["max"], abs=2e-4)
    state = store.query("SELECT state, agent_version FROM devices WHERE device_id = 'e2e-dev-1'")
    assert state == [("stopped", res["agent_version"])]
    assert collector.counts["rejected"] == 0 and collector.counts["duplicates"] == 0

    rows = [r for r in fleet_rows(store) if r["device_id"] == "e2e-dev-1"]
    assert len(rows) == 1 and rows[0]["frames"] == res["frames"]
    assert rows[0]["fps"] == pytest.approx(res["fps"], rel=1e-3)

    # the report command prints the same row
    collector.stop()
    rep = run_collector_cli("report", "--db", store.path, "--format", "json")
    assert rep.returncode == 0, rep.stderr
    row = [r for r in json.loads(rep.stdout) if r["device_id"] == "e2e-dev-1"][0]
    assert row["frames"] == res["frames"] and row["model"] == "shapes_int8.tflite"
    assert row["latency_ms"]["inference"]["p50"] == pytest.approx(res["latency_ms"]["inference"]["p50"], abs=2e-4)


def test_two_devices_one_row_each(mosquitto, collector, tmp_path):
    for dev in ("e2e-a", "e2e-b"):
        p = run_cli(
            "run", "--model", str(SHAPES_MODEL), "--frames", "50", "--mqtt", mosquitto.url, "--device-id", dev, "-q"
        )
        assert p.returncode == 0, p.stderr
    store = collector.store
    assert collector.wait_for(
        lambda: (
            store.query("SELECT COUNT(*) FROM runs WHERE device_id IN ('e2e-a','e2e-b') AND summary IS NOT NULL")[0][0]
            == 2
        ),
        30,
    )
    rows = {r["device_id"]: r for r in fleet_rows(store)}
    assert rows["e2e-a"]["frames"] == 50 and rows["e2e-b"]["frames"] == 50
