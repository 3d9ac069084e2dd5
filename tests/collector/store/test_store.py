"""The store and the aggregations, the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.aggregate import (
    compare_runs,
    device_rows,
    group_rows,
    quarantine_counts,
    run_detail,
    run_list,
    run_samples,
    scenario_rows,
    sweep_overview,
    sweep_points,
    sweep_rows,
)
from tests.support.documents import meta_of, scenario_doc, summary_of, sweep_doc
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


def _run(store, dev, session, run, n_batches=3, batch=200, seed=0, scale=1.0, seq0=1, **result_extra):
    """Store meta, frame batches and summary of one run; return its samples per stage."""
    rng = np.random.default_rng(seed)
    seq = seq0
    msgs = [as_message(meta(dev, session, seq, run, model=result_extra.get("model", "m.tflite")))]
    allc = {s: [] for s in protocol.STAGES}
    for b in range(n_batches):
        seq += 1
        cols = columns(batch, rng, scale)
        for s in protocol.STAGES:
            allc[s] += cols[s]
        msgs.append(as_message(frames(dev, session, seq, run, b * batch, cols)))
    seq += 1
    msgs.append(as_message(summary(dev, session, seq, result_doc(dev, run, allc, **result_extra))))
    c = store.apply(msgs)
    assert c["stored"] == len(msgs) and c["duplicates"] == 0
    return allc


def test_percentiles_are_exact_over_the_group(store):
    a = _run(store, "pi-1", 1, "r1", seed=1)
    b = _run(store, "pi-1", 1, "r2", seed=2, seq0=10)
    _run(store, "jetson-1", 4, "r3", seed=3, scale=0.3)
    rows = group_rows(store, ("device_id", "model"))
    assert [(r["device_id"], r["model"]) for r in rows] == [("jetson-1", "m.tflite"), ("pi-1", "m.tflite")]
    pi = rows[1]
    assert pi["runs"] == 2 and pi["frames"] == 1200
    for stage in protocol.STAGES:
        allv = np.asarray(a[stage] + b[stage])
        for q in (50, 90, 99):
            want = round(float(np.percentile(allv, q, method="linear")), 4)
            assert pi["latency_ms"][stage][f"p{q}"] == pytest.approx(want, abs=1e-4), (stage, q)
        assert pi["latency_ms"][stage]["mean"] == pytest.approx(allv.mean(), abs=1e-4)
    # not the mean of the per-run percentiles
    per_run = [np.percentile(np.asarray(x["e2e"]), 99) for x in (a, b)]
    assert pi["latency_ms"]["e2e"]["p99"] != pytest.approx(np.mean(per_run), abs=1e-6)
    assert pi["fps"] == pytest.approx(1200 / 2.0, abs=0.01)  # two runs of 600 frames in 1 s each
    assert pi["missing_frames"] == 0 and pi["duplicates"] == 0
    assert pi["energy_per_inference_mj"] is None and pi["throttled_runs"] is None


def test_energy_and_throttling_when_present_absent_otherwise(store):
    _run(
        store,
        "pi-5",
        1,
        "hot",
        power={"mean_w": 5.1, "energy_j": 2.0, "source": "pmic", "energy_per_inference_mj": {"gross": 4.0, "net": 1.5}},
        throttling={"flags": {"under_voltage": False, "throttled": True}},
        thermal={"max_c": 81.5},
    )
    _run(
        store,
        "pi-5",
        1,
        "cool",
        seq0=20,
        n_batches=1,
        power={"energy_per_inference_mj": {"gross": 2.0, "net": 0.5}},
        throttling={"flags": []},
    )
    _run(store, "pi-5", 1, "nopower", seq0=40, n_batches=1)
    (row,) = group_rows(store, ("device_id",))
    # frame-weighted: (4.0*600 + 2.0*200) / 800, (1.5*600 + 0.5*200) / 800
    assert row["energy_per_inference_mj"] == {"gross": pytest.approx(3.5), "net": pytest.approx(1.25)}
    assert row["power_runs"] == 2
    assert row["throttled_runs"] == 1 and row["thermal_runs"] == 2
    assert row["temp_max_c"] == 81.5
    d = run_detail(store, "pi-5", "hot")
    assert d["power_mean_w"] == 5.1 and d["throttled"] == 1


def test_duplicates_retained_again_gaps_and_seq_reuse(store):
    rng = np.random.default_rng(0)
    f1 = frames("cam-1", 3, 1, "r", 0, columns(10, rng))
    f2 = frames("cam-1", 3, 2, "r", 10, columns(10, rng))
    f5 = frames("cam-1", 3, 5, "r", 20, columns(10, rng), replayed=True)
    c = store.apply([as_message(f1), as_message(f2), as_message(f1)])
    assert c == {"stored": 2, "duplicates": 1, "retained_again": 0, "seq_reused": 0}
    c = store.apply([as_message(f2), as_message(f5)])
    assert c["stored"] == 1 and c["duplicates"] == 1
    # the same frames again under a new seq: stored once, counted as a duplicate
    again = dict(f1, seq=6)
    c = store.apply([as_message(again)])
    assert c["stored"] == 0 and c["duplicates"] == 1
    # a retained message delivered again on resubscribe is not a fleet duplicate
    m = meta("cam-1", 3, 7, "r")
    store.apply([as_message(m, retained=True)])
    c = store.apply([as_message(m, retained=True)])
    assert c["retained_again"] == 1 and c["duplicates"] == 0
    # a reused (session, seq) with other content is quarantined, never dropped silently
    other = frames("cam-1", 3, 2, "another-run", 0, columns(10, rng))
    c = store.apply([as_message(other)])
    assert c["seq_reused"] == 1 and c["stored"] == 0
    assert quarantine_counts(store) == {"seq_reused": 1}
    (d,) = device_rows(store)
    assert d["seq_gaps"] == 2  # seq 3 and 4 never arrived (1..7 seen, minus 5 stored)
    assert d["duplicates"] == 3 and d["replayed"] == 1
    (row,) = group_rows(store, ("device_id", "run_id"))
    assert row["frames"] == 30 and row["replayed"] == 1 and row["duplicates"] == 3


def test_device_state_follows_sessions(store):
    store.apply([as_message(status("d1", 2, "online"), retained=True), as_message(info("d1", 2, 1, "0.2.0"))])
    # a will from the older session arrives late: ignored
    store.apply([as_message(status("d1", 1, "offline"), retained=True)])
    (d,) = device_rows(store)
    assert (d["state"], d["session"], d["agent_version"]) == ("online", 2, "0.2.0")
    store.apply([as_message(status("d1", 2, "offline"), retained=True)])
    assert device_rows(store)[0]["state"] == "offline"
    assert device_rows(store)[0]["last_seen_age_s"] < 60


def test_frames_before_meta_and_missing_frames(store):
    rng = np.random.default_rng(1)
    cols = columns(50, rng)
    store.apply([as_message(frames("d2", 1, 2, "late", 0, cols))])
    res = result_doc("d2", "late", {s: cols[s] * 2 for s in protocol.STAGES})  # announces 100 frames
    store.apply([as_message(summary("d2", 1, 4, res)), as_message(meta("d2", 1, 1, "late", model="x.tflite"))])
    (row,) = group_rows(store)
    assert row["model"] == "m.tflite"  # the summary is authoritative; meta only fills gaps
    assert row["frames"] == 50 and row["missing_frames"] == 50


def test_group_by_runtime_delegate_scenario_and_window(store):
    _run(store, "b1", 1, "cpu", runtime="ai-edge-litert", scenario="single-stream")
    _run(store, "b1", 1, "npu", seq0=10, delegate="vx", scenario={"name": "offline"})
    rows = group_rows(store, ("runtime", "delegate", "scenario"))
    assert [(r["delegate"], r["scenario"]) for r in rows] == [(None, "single-stream"), ("vx", "offline")]
    assert all(r["frames"] == 600 for r in rows)
    assert group_rows(store, since=time.time() + 3600) == []
    assert group_rows(store, until=time.time() + 3600)[0]["frames"] == 1200
    assert group_rows(store, where={"delegate": "vx"})[0]["runs"] == 1


def test_retention_keeps_summaries(store):
    _run(store, "r1", 1, "old")
    n = store.purge(time.time() + 1)
    assert n["frame_batches"] == 3
    (row,) = group_rows(store)
    assert row["frames"] == 0 and row["runs"] == 1 and row["fps"] == pytest.approx(600.0)
    assert run_detail(store, "r1", "old")["summary"]["frames"] == 600


def test_compare_detects_a_real_change_and_not_noise(store):
    _run(store, "c1", 1, "base", n_batches=5, batch=400, seed=1)
    _run(store, "c1", 1, "same", n_batches=5, batch=400, seed=2, seq0=10)
    _run(store, "c1", 1, "slow", n_batches=5, batch=400, seed=3, seq0=20, scale=1.3)
    same = {m["metric"]: m for m in compare_runs(store, ("c1", "same"), ("c1", "base"))["metrics"]}
    slow = {m["metric"]: m for m in compare_runs(store, ("c1", "slow"), ("c1", "base"))["metrics"]}
    assert same["e2e p50"]["beyond_noise"] is False
    assert slow["e2e p50"]["beyond_noise"] is True and slow["e2e p50"]["change"] > 0
    assert slow["e2e p99"]["beyond_noise"] is True
    assert slow["fps"]["beyond_noise"] is True
    lo, hi = slow["e2e p50"]["ci95"]
    assert lo <= slow["e2e p50"]["change"] <= hi
    assert slow["energy per inference (gross)"]["beyond_noise"] is None


def test_compare_refuses_to_judge_a_tail_without_frames(store):
    _run(store, "c2", 1, "a", n_batches=1, batch=100, seed=1)
    _run(store, "c2", 1, "b", n_batches=1, batch=100, seed=2, seq0=10, scale=2)
    m = {m["metric"]: m for m in compare_runs(store, ("c2", "b"), ("c2", "a"))["metrics"]}
    assert m["e2e p99"]["beyond_noise"] is None and "too few frames" in m["e2e p99"]["note"]
    assert m["e2e p50"]["beyond_noise"] is True


def test_run_samples_in_frame_order(store):
    a = _run(store, "s1", 1, "r", n_batches=4)
    s = run_samples(store, "s1", "r")
    assert s["e2e"].tolist() == pytest.approx(a["e2e"])
    assert run_detail(store, "s1", "r")["kind"] == "run" and run_detail(store, "s1", "r")["sweep"] == []


def test_sweep_summary_is_stored_with_every_point_and_its_headline(store):
    doc = sweep_doc("s1", "sw")
    c = store.apply([as_message(meta_of(doc)), as_message(summary_of(doc))])
    assert c["stored"] == 2
    d = run_detail(store, "s1", "sw")
    assert (d["kind"], d["scenario"], d["frames"], d["fps"]) == ("sweep", None, None, None)
    best = doc["best"]["throughput"]
    assert (d["headline_metric"], d["headline_value"], d["headline_unit"]) == (
        "best_throughput_items_per_s",
        best["throughput_items_per_s"],
        "items/s",
    )
    assert d["summary"] == doc  # the whole document, as published
    pts = d["sweep"]
    assert [(p["batch"], p["threads"], p["status"]) for p in pts] == [
        (p["batch"], p["threads"], p["status"]) for p in doc["points"]
    ]
    assert [p["reason"] for p in pts if p["status"] == "unsupported"] == [
        p["reason"] for p in doc["points"] if p["status"] == "unsupported"
    ]
    (row,) = sweep_rows(store)
    assert row["counts"] == {"ok": 6, "unsupported": 2, "failed": 0} and row["invalid_points"] == 0
    assert row["best_throughput_items_per_s"] == best["throughput_items_per_s"]
    assert row["best_throughput_at"] == f"batch {best['batch']}, threads {best['threads']}, instances 1"
    assert row["unsupported_batches"] == [8]
    # the frontier: no point on it is beaten on both p99 and throughput by another point
    ov = sweep_overview(doc)
    ok = [p for p in doc["points"] if p["status"] == "ok"]
    for f in ov["frontier"]:
        assert not any(
            p["latency_ms"]["p99"] < f["p99_ms"] and p["throughput_items_per_s"] > f["throughput_items_per_s"]
            for p in ok
        )
    assert group_rows(store) == []  # a sweep publishes no frames: not in the per-frame report
    assert sweep_points({"schema": protocol.RESULT_SCHEMA}) == [] and sweep_points(None) == []


def test_scenario_summaries_keep_verdict_and_headline_and_leave_fps_alone(store):
    _run(store, "pi-s", 1, "frames-run", seq0=1)  # 600 frames in 1 s
    good = scenario_doc("pi-s", "srv-ok", "server", valid=True)
    bad = scenario_doc("pi-s", "srv-bad", "server", valid=False)
    single = scenario_doc("pi-s", "ss", "single-stream")
    msgs = []
    for i, doc in enumerate((good, bad, single)):
        msgs += [as_message(meta_of(doc, seq=20 + 2 * i)), as_message(summary_of(doc, seq=21 + 2 * i))]
    assert store.apply(msgs)["stored"] == 6
    rows = {r["run_id"]: r for r in scenario_rows(store)}
    assert rows["srv-ok"]["verdict"] == "VALID" and rows["srv-ok"]["within_bound"] is True
    assert rows["srv-ok"]["headline"] == {"metric": "p99_latency_ms", "value": 9.0, "unit": "ms"}
    assert rows["srv-ok"]["latency_bound_ms"] == 20.0 and rows["srv-ok"]["target_qps"] == 250.0
    assert rows["srv-bad"]["verdict"] == "INVALID" and rows["srv-bad"]["within_bound"] is False
    assert rows["srv-bad"]["reasons"] == bad["reasons"]
    assert rows["ss"]["headline"] == {"metric": "p90_latency_ms", "value": single["latency_ms"]["p90"], "unit": "ms"}
    assert rows["ss"]["within_bound"] is None
    assert {r["run_id"] for r in scenario_rows(store, where={"scenario": "server"})} == {"srv-ok", "srv-bad"}
    # the per-frame report: one run, its own FPS (a scenario's 2 s are not frames' time)
    (row,) = group_rows(store)
    assert row["runs"] == 1 and row["fps"] == pytest.approx(600.0)
    assert {r["kind"] for r in run_list(store, device_id="pi-s")} == {"run", "scenario"}


def test_version_3_database_is_upgraded_in_place(tmp_path):
    """A collector of this version opens a database made before sweeps and scenarios."""
    import sqlite3

    from edgebench.collector.store import RUNS_V4_COLUMNS, SQLiteStore

    path = str(tmp_path / "old.db")
    st = SQLiteStore(path)
    _run(st, "old-dev", 1, "old-run")
    st.close()
    db = sqlite3.connect(path)
    for name, _ in RUNS_V4_COLUMNS:
        db.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    db.execute("UPDATE schema_info SET value = '3'")
    db.commit()
    db.close()
    st = SQLiteStore(path)
    try:
        assert st.query("SELECT value FROM schema_info") == [("4",)]
        assert st.query("SELECT kind, verdict FROM runs") == [("run", None)]
        doc = sweep_doc("old-dev", "new-sweep")
        st.apply([as_message(meta_of(doc, seq=50)), as_message(summary_of(doc, seq=51))])
        assert [r["run_id"] for r in sweep_rows(st)] == ["new-sweep"]
        assert group_rows(st)[0]["runs"] == 1
    finally:
        st.close()


def test_version_3_postgres_database_is_upgraded_in_place(pg_url):
    from edgebench.collector.store import RUNS_V4_COLUMNS, PostgresStore
    from tests.support.fleet import fresh_pg_store

    st = fresh_pg_store(pg_url)
    _run(st, "old-dev", 1, "old-run")
    for name, _ in RUNS_V4_COLUMNS:
        st.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    st.execute("UPDATE schema_info SET value = '3'")
    st.close()
    st = PostgresStore(pg_url)
    try:
        assert st.query("SELECT value FROM schema_info") == [("4",)]
        assert st.query("SELECT kind FROM runs") == [("run",)]
    finally:
        st.close()


def test_quarantine_and_counts(store):
    store.quarantine([(time.time(), "edgebench/v1/x/status", "not_json", "payload is not JSON", b"\xff" * 10)])
    assert quarantine_counts(store) == {"not_json": 1}
    assert store.counts()["quarantine"] == 1
    assert json.loads(json.dumps(device_rows(store))) == []


def test_optional_queue_stage_counts_only_where_measured(store):
    rng = np.random.default_rng(4)
    plain = columns(100, rng)
    live = columns(100, rng)
    live["queue"] = np.round(rng.gamma(2.0, 3.0, 100), 4).tolist()
    store.apply([as_message(frames("cam-q", 1, 1, "r", 0, plain)), as_message(frames("cam-q", 1, 2, "r", 100, live))])
    (row,) = group_rows(store)
    assert row["frames"] == 200
    want = round(float(np.percentile(live["queue"], 90, method="linear")), 4)
    assert row["latency_ms"]["queue"]["p90"] == pytest.approx(want, abs=1e-4)
    assert row["latency_ms"]["e2e"]["p50"] == pytest.approx(
        round(float(np.percentile(plain["e2e"] + live["e2e"], 50)), 4), abs=1e-4
    )
    assert "queue" in run_detail(store, "cam-q", "r")["latency_ms"]
    assert run_samples(store, "cam-q", "r", ["queue"])["queue"].size == 100
    # a group without any queue samples has no queue entry (not a row of made-up numbers)
    _run(store, "other", 1, "x", n_batches=1)
    assert "queue" not in group_rows(store, where={"device_id": "other"})[0]["latency_ms"]


def test_a_delegate_as_the_agent_describes_it_is_stored_by_its_name(store):
    """The agent describes a loaded delegate as {"library": PATH, "options": {...}}; the run is
    stored (the writer once failed on the dict) with the library's file name as its delegate."""
    rt = {"name": "tflite-runtime", "version": "2.14.0", "num_threads": 4, "xnnpack": False}
    rt["delegate"] = {"library": "/usr/lib/libvx_delegate.so", "options": {"cache": "/tmp/vx"}}
    _run(store, "imx8-1", 1, "r1", runtime="tflite-runtime")
    doc = result_doc("imx8-1", "r2", None, runtime="tflite-runtime")
    doc["runtime"] = rt
    assert store.apply([as_message(summary("imx8-1", 1, 20, doc))])["stored"] == 1
    rows = dict(store.query("SELECT run_id, delegate FROM runs WHERE device_id = 'imx8-1'"))
    assert rows == {"r1": None, "r2": "libvx_delegate.so"}


def test_telemetry_is_kept_over_time_with_missing_readings_as_none(store):
    from tests.support.showcase import telemetry

    t0 = time.time() - 100
    full = telemetry("pi-t", 1, t0, 0.0, throttled=True)
    bare = {k: full[k] for k in ("schema", "device_id", "session", "seq", "ts")} | {
        "seq": 2,
        "ts": t0 + 5,
        "cpu_pct": 12.5,
    }
    bare["temps_c"] = {"soc": 51.0, "gpu": None}
    store.apply([as_message(status("pi-t", 1, "online"), True), as_message(full), as_message(bare)])
    rows = store.query("SELECT seq, cpu_pct, max_temp_c, power_w, cpu_mhz, throttled FROM telemetry ORDER BY seq")
    assert rows[0][2] == full["max_temp_c"] and rows[0][4] == 1500.0 and rows[0][5] == 1
    assert rows[1] == (2, 12.5, 51.0, None, None, None)  # the hottest of temps_c; what it lacked stays None
    # a replayed copy is not a second reading; retention deletes readings
    store.apply([as_message(bare)])
    assert store.query("SELECT COUNT(*) FROM telemetry")[0][0] == 2
    assert store.purge(t0 + 1)["telemetry"] == 1
