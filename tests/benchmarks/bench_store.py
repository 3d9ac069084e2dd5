"""Storage as history grows: generate a PostgreSQL database of many stored frame batches,
then time the fleet report over the last 7 days and the dashboard overview.

The database is made in SQL (generate_series, in its own database, dropped at the end
unless --keep): ``--devices`` devices over ``--days`` days, each device running one run a
day of about an hour (one frame batch a second, ``--frames`` frames each), so ``--rows``
frame batches in all, with their dedup keys and their per-minute rollups (computed by the
store's own rollup SQL, store/rollups.py). Latencies are drawn from a pool of lognormal
arrays (sigma 0.15 around 2-12 ms per stage: a steady model on a steady board); the spread
sets how many histogram buckets a rollup holds, so it is printed.

Timed, each printed with the machine's load (os.getloadavg()) beside it:
  * generation (rows, keys, rollups, ANALYZE);
  * ``report --since 7d --rollups`` (group_rows over the rollups; goal < 2 s);
  * the dashboard overview page (rollups; goal < 1 s);
  * ``report --since 7d`` exact, over every raw frame (skip with --no-exact).

Usage: python -m tests.benchmarks.bench_store [--rows N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time

PG_ADMIN = os.environ.get("EDGEBENCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DAY = 86400


def load() -> str:
    return "load %.1f/%.1f/%.1f" % os.getloadavg()


def say(what: str, seconds: float | None = None, goal: float | None = None) -> None:
    fig = "" if seconds is None else f": {seconds:.2f} s"
    g = "" if goal is None else f" (goal < {goal:g} s: {'met' if seconds < goal else 'NOT met'})"
    print(f"{what}{fig}{g}  [{load()}]", flush=True)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def generate(c, rows: int, devices: int, days: int, frames: int, now: float) -> None:
    """Runs, frame batches (day by day, each into its partition), keys and rollups."""
    from edgebench.collector.store import partitions, rollups

    per = -(-rows // (devices * days))  # batches per device and day, one a second
    start = (int(now) // DAY - days + 1) * DAY
    c.execute(
        "CREATE TEMP TABLE pool AS SELECT k, "
        + ", ".join(
            f"ARRAY(SELECT round(({m} * exp(0.15 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))"
            f"::numeric, 4)::float8 FROM generate_series(1, {frames}) WHERE k >= 0) AS {s}"
            for s, m in (("c", 2), ("p", 3), ("i", 12), ("o", 2))
        )
        + " FROM generate_series(0, 999) k"
    )
    c.execute(
        "INSERT INTO runs(device_id, run_id, session, model_name, runtime, delegate, num_threads, kind, frames,"
        " duration_s, fps, frames_stored, first_seen, summary_at, summary)"
        f" SELECT 'dev-' || d, 'run-' || d || '-' || k, 1, 'model-' || (d %% 4) || '.tflite', 'ai-edge-litert', NULL,"
        f" 2, 'run', {per * frames}, {per}, {frames}, {per * frames}, {start} + k * {DAY}, {start} + k * {DAY} + {per},"
        " '{}' FROM generate_series(0, %s::int) d, generate_series(0, %s::int) k",
        (devices - 1, days - 1),
    )
    c.execute(
        "INSERT INTO devices(device_id, state, session, first_seen, last_seen)"
        f" SELECT 'dev-' || d, 'online', 1, {start}, {now} FROM generate_series(0, %s::int) d",
        (devices - 1,),
    )
    for k in range(days):
        lo = k * devices * per
        hi = min(rows, lo + devices * per)
        if lo >= rows:
            break
        t = time.perf_counter()
        partitions.ensure_days(c, {start + k * DAY}, set())
        # row i: device i % devices, its (i // devices)-th batch of the day, a second apart,
        # from an hour of the day that depends on the device
        c.execute(
            "INSERT INTO frame_batches SELECT 'dev-' || d, 'run-' || d || '-' || %s, j * %s, %s, 1, %s + j, ts, ts, ts, 0,"
            " p.c, p.p, p.i, p.o, (SELECT array_agg(x + y + z + w) FROM unnest(p.c, p.p, p.i, p.o) AS u(x, y, z, w)),"
            " NULL FROM (SELECT i %% %s AS d, i / %s AS j, %s + (i %% %s * 37 %% 20) * 3600 + (i / %s - %s) AS ts, i"
            "  FROM generate_series(%s::bigint, %s::bigint) i) g JOIN pool p ON p.k = (g.i * 7919) %% 1000",
            (k, frames, frames, k * per, devices, devices, start + k * DAY, devices, devices, k * per, lo, hi - 1),
        )
        c.execute(
            "INSERT INTO frame_keys SELECT device_id, session, seq, run_id, first_frame, ts FROM frame_batches"
            " WHERE COALESCE(ts, received_at) >= %s AND COALESCE(ts, received_at) < %s",
            (start + k * DAY, start + (k + 1) * DAY),
        )
        rollups.backfill(
            c,
            "COALESCE(b.ts, b.received_at) >= %s AND COALESCE(b.ts, b.received_at) < %s",
            (start + k * DAY, start + (k + 1) * DAY),
        )
        print(f"  day {k + 1}/{days}: {hi - lo} batches in {time.perf_counter() - t:.1f} s  [{load()}]", flush=True)
    c.execute("ANALYZE")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="frame batches to generate (default 10 million)")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--frames", type=int, default=8, help="frames per batch")
    ap.add_argument("--no-exact", action="store_true", help="skip the exact 7-day report over raw frames")
    ap.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    ap.add_argument("--db", help="time the queries on a database made before with --keep (no generation)")
    args = ap.parse_args()
    import psycopg

    from edgebench.collector.aggregate import group_rows
    from edgebench.collector.store import PostgresStore
    from edgebench.collector.views.web import Dashboard

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.Error as e:
        print(f"no PostgreSQL at {PG_ADMIN}: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    name = args.db.rsplit("/", 1)[1] if args.db else f"edgebench_bench_store_{secrets.token_hex(4)}"
    if not args.db:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    now = time.time()
    try:
        store = PostgresStore(url)
        print(f"{args.rows:,} frame batches of {args.frames} frames, {args.devices} devices, {args.days} days: {url}")
        if not args.db:
            _, s = timed(lambda: generate(store.conn(), args.rows, args.devices, args.days, args.frames, now))
            say(f"generated {args.rows:,} frame batches with keys and rollups", s)
        else:
            now = store.query("SELECT MAX(minute) + 60 FROM frame_rollups")[0][0]
        q = store.query
        n, parts = (
            q("SELECT COUNT(*) FROM frame_keys")[0][0],
            q("SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'frame_batches'::regclass")[0][0],
        )
        rr, nb = q("SELECT COUNT(*), AVG((SELECT COUNT(*) FROM jsonb_object_keys(e2e_hist))) FROM frame_rollups")[0]
        rr_runs = q("SELECT COUNT(*) FROM run_rollups")[0][0]
        size = q("SELECT pg_size_pretty(pg_database_size(current_database()))")[0][0]
        print(
            f"stored {n:,} frame batches in {parts} partitions; {rr:,} minute rollups, {rr_runs:,} run rollups,"
            f" {float(nb):.1f} e2e buckets per minute"
            f"; database {size}"
        )
        since = now - 7 * DAY
        for i in range(3):
            rows, s = timed(lambda: group_rows(store, since=since, rollups=True))
            frames = sum(r["frames"] for r in rows)
            say(f"report --since 7d --rollups (try {i + 1}): {len(rows)} groups, {frames:,} frames", s, 2)
        dash = Dashboard(store)
        for i in range(3):
            page, s = timed(lambda: dash.overview({}))
            say(f"dashboard overview (try {i + 1}): {len(page):,} bytes", s, 1)
        if not args.no_exact:
            rows, s = timed(lambda: group_rows(store, since=since))
            say(f"report --since 7d exact over raw frames: {sum(r['frames'] for r in rows):,} frames", s)
        store.close()
    finally:
        if args.keep or args.db:
            print(f"kept {url}")
        else:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
