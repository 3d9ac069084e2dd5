"""PostgreSQL: frame batches partitioned by day, exact dedup across partitions (frame_keys),
retention by dropping partitions, per-minute rollups against the raw frames, and a database
made before partitioning that keeps working."""

from __future__ import annotations

import secrets
import threading
import time

import numpy as np
import pytest

from edgebench.agent.wire import protocol
from edgebench.collector.aggregate import group_rows
from edgebench.collector.store.rollups import ALPHA, HIST_STAGES
from tests.support.fleet import PG_ADMIN_URL, as_message, columns, frames, meta, result_doc, summary

DAY = 86400
#: a UTC midnight some days ago, so the days below are whole and in the past
T0 = (int(time.time()) // DAY - 10) * DAY


@pytest.fixture
def pg(pg_url):
    from tests.support.fleet import fresh_pg_store

    st = fresh_pg_store(pg_url)
    yield st
    st.close()


def _frames(dev, session, seq, run, first, ts, seed=0, n=50):
    return as_message(frames(dev, session, seq, run, first, columns(n, np.random.default_rng(seed)), ts=ts))


def _parts(st) -> dict[str, int]:
    """Partition name -> rows in it."""
    rows = st.query("SELECT tableoid::regclass::text, COUNT(*) FROM frame_batches GROUP BY 1")
    return dict(rows)


def test_frame_batches_go_to_day_partitions_created_on_demand(pg):
    assert pg.layout == "partitioned"
    days = [T0 + 3600, T0 + DAY + 60, T0 + 5 * DAY + 7200]
    c = pg.apply([_frames("d1", 1, i + 1, "r1", i * 50, t) for i, t in enumerate(days)])
    assert c["stored"] == 3
    names = {time.strftime("frame_batches_p%Y%m%d", time.gmtime(t)): 1 for t in days}
    assert _parts(pg) == names
    # the default partition exists (nothing is refused) and holds nothing
    assert pg.query("SELECT COUNT(*) FROM frame_batches_default") == [(0,)]
    # a reader's window on the partition key prunes to the partitions it needs
    plan = "\n".join(
        r[0]
        for r in pg.query(
            "EXPLAIN SELECT COUNT(*) FROM frame_batches WHERE COALESCE(ts, received_at) >= ?", (T0 + 5 * DAY,)
        )
    )
    assert time.strftime("p%Y%m%d", time.gmtime(days[2])) in plan
    assert time.strftime("p%Y%m%d", time.gmtime(days[0])) not in plan


def test_dedup_is_exact_across_partitions(pg):
    first = _frames("d1", 1, 1, "r1", 0, T0 + 100)
    assert pg.apply([first])["stored"] == 1
    # the same message redelivered a day later (another receipt time): a duplicate
    again = _frames("d1", 1, 1, "r1", 0, T0 + 100)
    again.received_at = first.received_at + DAY
    assert pg.apply([again])["duplicates"] == 1
    # another message under the used key, measured on another day: seq reused, quarantined
    other = _frames("d1", 1, 1, "r1", 50, T0 + 2 * DAY, seed=1)
    assert pg.apply([other])["seq_reused"] == 1
    # the same frames resent under a new (session, seq) and another day: stored once
    resent = _frames("d1", 2, 1, "r1", 0, T0 + 3 * DAY)
    assert pg.apply([resent])["duplicates"] == 1
    assert pg.query("SELECT COUNT(*) FROM frame_batches") == [(1,)]
    assert pg.query("SELECT COUNT(*) FROM frame_keys") == [(1,)]


def test_two_collectors_racing_store_a_batch_once(pg_url, pg):
    from edgebench.collector.store import PostgresStore

    msgs = [_frames("d1", 1, i + 1, "r1", i * 50, T0 + i * 3600, seed=i, n=20) for i in range(40)]
    stores = [PostgresStore(pg_url) for _ in range(2)]
    counts = []
    barrier = threading.Barrier(2)

    def go(st):
        barrier.wait()
        counts.append(st.apply(msgs))

    threads = [threading.Thread(target=go, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for st in stores:
        st.close()
    assert sum(c["stored"] for c in counts) == 40
    assert pg.query("SELECT COUNT(*), COUNT(DISTINCT seq) FROM frame_batches") == [(40, 40)]
    assert pg.query("SELECT SUM(batches), SUM(frames) FROM frame_rollups") == [(40, 800)]


def test_retention_drops_whole_partitions_and_deletes_only_in_the_boundary_one(pg):
    ts = [T0 + 3600, T0 + DAY + 3600, T0 + DAY + 20 * 3600, T0 + 2 * DAY + 3600]
    pg.apply([_frames("d1", 1, i + 1, "r1", i * 50, t) for i, t in enumerate(ts)])
    gone = time.strftime("frame_batches_p%Y%m%d", time.gmtime(ts[0]))
    n = pg.purge(T0 + DAY + 12 * 3600)
    assert n["frame_batches"] == 2
    names = {
        r[0] for r in pg.query("SELECT relname::text FROM pg_class WHERE starts_with(relname::text, 'frame_batches_p')")
    }
    assert gone not in names  # dropped, not emptied
    assert sorted(r[0] for r in pg.query("SELECT ts FROM frame_batches")) == ts[2:]
    assert pg.query("SELECT COUNT(*) FROM frame_keys") == [(2,)]
    # rollups stay (the overview covers all history)
    assert pg.query("SELECT SUM(batches) FROM frame_rollups") == [(4,)]
    assert pg.query("SELECT batches FROM run_rollups") == [(4,)]
    # a purged message that comes again is stored again, as on SQLite (its key went with it)
    assert pg.apply([_frames("d1", 1, 1, "r1", 0, ts[0])])["stored"] == 1


def _run(st, dev, run, batches, model="m.tflite", seed=0):
    rng = np.random.default_rng(seed)
    msgs = [as_message(meta(dev, 1, 1, run, model=model))]
    allc = {s: [] for s in protocol.STAGES}
    for b in range(batches):
        cols = columns(300, rng, scale=1 + b % 3)
        for s in protocol.STAGES:
            allc[s] += cols[s]
        msgs.append(as_message(frames(dev, 1, b + 2, run, b * 300, cols, ts=T0 + b * 50)))
    msgs.append(as_message(summary(dev, 1, batches + 2, result_doc(dev, run, allc, model=model))))
    st.apply(msgs)


def test_rollups_equal_the_raw_aggregates_within_the_stated_bound(pg):
    _run(pg, "d1", "r1", 12, seed=1)
    _run(pg, "d2", "r2", 7, model="n.tflite", seed=2)
    pg.apply([_frames("d1", 1, 3, "r1", 300, T0 + 50)])  # a duplicate adds nothing
    exact = {(r["device_id"], r["model"]): r for r in group_rows(pg)}
    rolled = {(r["device_id"], r["model"]): r for r in group_rows(pg, rollups=True)}
    assert exact.keys() == rolled.keys() == {("d1", "m.tflite"), ("d2", "n.tflite")}
    for k, e in exact.items():
        r = rolled[k]
        assert r["frames"] == e["frames"] and "rollups" in r["latency_method"]
        for s in protocol.STAGES:
            assert r["latency_ms"][s]["mean"] == pytest.approx(e["latency_ms"][s]["mean"], abs=1e-4)
            for p in ("p50", "p90", "p99"):
                if s not in HIST_STAGES:  # percentiles of e2e and inference only
                    assert r["latency_ms"][s][p] is None
                    continue
                assert abs(r["latency_ms"][s][p] - e["latency_ms"][s][p]) <= ALPHA * e["latency_ms"][s][p] + 1e-3
    # a window in whole minutes: batches 0..5 of each run are at T0 + 0..250 s
    part = group_rows(pg, since=T0, until=T0 + 240, rollups=True)
    assert sorted(r["frames"] for r in part) == [1500, 1500]
    # d2's run lies wholly inside this window (read from run_rollups), d1's straddles it (its minutes)
    part = {r["device_id"]: r["frames"] for r in group_rows(pg, since=T0, until=T0 + 360, rollups=True)}
    assert part == {"d1": 2400, "d2": 2100}


def test_a_database_made_before_partitioning_keeps_working_and_is_rolled_up(pg_url):
    import psycopg

    from edgebench.collector.store import PostgresStore
    from edgebench.collector.store.postgres import _TYPES
    from edgebench.collector.store.schema import SCHEMA_VERSION, ddl

    name = f"edgebench_plain_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        with psycopg.connect(url, autocommit=True) as c:  # what a collector before partitions made
            for stmt in ddl(**_TYPES).split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute("INSERT INTO schema_info VALUES ('version', %s)", (str(SCHEMA_VERSION),))
            c.execute(
                "INSERT INTO frame_batches VALUES ('d1', 'r1', 0, 2, 1, 1, %s, %s, %s, 0,"
                " '{1,2}', '{1,2}', '{4,8}', '{1,2}', '{7,14}', NULL)",
                (T0, T0, T0),
            )
        st = PostgresStore(url)
        try:
            assert st.layout == "plain"
            assert st.query("SELECT frames, inference_n, inference_sum, inference_max FROM frame_rollups") == [
                (2, 2, 12.0, 8.0)
            ]
            c = st.apply([_frames("d1", 1, 2, "r1", 2, T0 + DAY), _frames("d1", 1, 1, "r1", 0, T0)])
            assert (c["stored"], c["duplicates"]) == (1, 1)
            assert st.query("SELECT SUM(batches) FROM frame_rollups") == [(2,)]
            assert st.purge(T0 + 10)["frame_batches"] == 1
        finally:
            st.close()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_the_overview_reads_the_rollups_and_says_so(pg):
    from edgebench.collector.views.web import Dashboard

    _run(pg, "d1", "r1", 3, seed=3)
    page = Dashboard(pg).overview({}).decode()
    assert "from 1-minute rollups" in page and "error &lt;= 2 %" in page
    # the run's pages stay exact: they do not say so
    assert "rollups" not in Dashboard(pg).run("d1", "r1", {}).decode()
