"""Per-minute rollups of the stored frames (PostgreSQL): what the dashboard overview and
``report --rollups`` read over long windows instead of every raw frame.

``frame_rollups`` holds one row per (device_id, run_id, minute): the minute (epoch s, UTC)
of each frame batch's ``COALESCE(ts, received_at)``, the batches and frames stored, per
stage the count, sum, min and max of the per-frame latencies (exact), and for e2e and
inference a log-bucket histogram (jsonb ``{bucket: count}``, sparse) from which percentiles
are read. ``run_rollups`` holds the same per run (its first and last minute too): a window
reads a run wholly inside it as that one row and only the minutes of the runs straddling a
bound, so a report over days reads about one row per run, not one per minute. Runs carry
the model, runtime, delegate and threads, so any report grouping joins ``runs`` as the raw
report does.

The histogram: a value v (ms) above ``MIN_MS`` falls in bucket ``k = ceil(log_g(v / MIN_MS))``
with ``g = (1 + ALPHA) / (1 - ALPHA)``; the bucket stands for ``2 MIN_MS g^k / (g + 1)``, which
is within a relative ``ALPHA`` (2 %) of every value in it (DDSketch's mapping). Values at or
under ``MIN_MS`` (1 us) fall in bucket 0, read as 0. Histograms add bucket by bucket, so
minutes, runs and collectors merge exactly. A percentile interpolates linearly between the
two order statistics around its rank (the definition the exact report uses), each read from
its bucket, so it is within 2 % of the exact percentile (plus 1 us in absolute terms). Mean,
min and max are exact.

The rows are added in the transaction that stores the frame batches, from the batches that
transaction inserted (rollup_rows.py, with numpy), so a rollup holds exactly the frames
stored, never a duplicate; ``ctes`` below computes the same in SQL from frames already
stored (a database made before rollups, and the benchmark).
Retention keeps rollups: they are small (one row per run and minute) and the overview
covers all history; the raw frames go.
"""

from __future__ import annotations

import math

from edgebench.agent.wire.protocol import MAX_MS
from edgebench.collector.store.schema import ALL_STAGES

ALPHA = 0.02
GAMMA = (1 + ALPHA) / (1 - ALPHA)
MIN_MS = 0.001
#: how a rollup-based figure says its scope and method
METHOD = (
    "from 1-minute rollups: e2e and inference p50/p90/p99 from log histograms, error <= 2 %"
    " (other stages: mean only); means exact; window in whole minutes"
)

#: the stages whose percentiles rollups keep (a histogram each); every stage gets n, sum, min, max
HIST_STAGES = ("inference", "e2e")
_MERGE = {
    "n": "{t}.{c} + excluded.{c}",
    "sum": "{t}.{c} + excluded.{c}",
    "min": "LEAST({t}.{c}, excluded.{c})",
    "max": "GREATEST({t}.{c}, excluded.{c})",
    "hist": "eb_hist_add({t}.{c}, excluded.{c})",
}
_AGG = {"n": "SUM({c})", "sum": "SUM({c})", "min": "MIN({c})", "max": "MAX({c})", "hist": "eb_hist_sum({c})"}


def stage_columns() -> list[tuple[str, str]]:
    """(column, what it is: n, sum, min, max, hist) of every stage."""
    out = []
    for s in ALL_STAGES:
        out += [(f"{s}_{c}", c) for c in ("n", "sum", "min", "max")]
        if s in HIST_STAGES:
            out.append((f"{s}_hist", "hist"))
    return out


def ddl() -> list[str]:
    types = {
        "n": "BIGINT NOT NULL DEFAULT 0",
        "sum": "DOUBLE PRECISION NOT NULL DEFAULT 0",
        "min": "DOUBLE PRECISION",
        "max": "DOUBLE PRECISION",
        "hist": "JSONB",
    }
    stages = ", ".join(f"{c} {types[k]}" for c, k in stage_columns())
    return [
        "CREATE TABLE IF NOT EXISTS frame_rollups (device_id TEXT NOT NULL, run_id TEXT NOT NULL,"
        f" minute BIGINT NOT NULL, batches BIGINT NOT NULL, frames BIGINT NOT NULL, {stages},"
        " PRIMARY KEY (device_id, run_id, minute))",
        "CREATE INDEX IF NOT EXISTS frame_rollups_minute ON frame_rollups (minute)",
        # a run's whole history: first and last minute, the same figures (what a window holding
        # the whole run reads instead of its minutes)
        "CREATE TABLE IF NOT EXISTS run_rollups (device_id TEXT NOT NULL, run_id TEXT NOT NULL,"
        " first_minute BIGINT NOT NULL, last_minute BIGINT NOT NULL, batches BIGINT NOT NULL,"
        f" frames BIGINT NOT NULL, {stages}, PRIMARY KEY (device_id, run_id))",
        # merge two sparse histograms bucket by bucket (NULL is empty), and the aggregate of it
        "CREATE OR REPLACE FUNCTION eb_hist_add(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$"
        " SELECT jsonb_object_agg(k, s) FROM (SELECT k, SUM(v::bigint) AS s FROM ("
        " SELECT key AS k, value AS v FROM jsonb_each_text(COALESCE(a, '{}'::jsonb))"
        " UNION ALL SELECT key, value FROM jsonb_each_text(COALESCE(b, '{}'::jsonb))) x GROUP BY k) y $$",
        "CREATE OR REPLACE AGGREGATE eb_hist_sum(jsonb) (SFUNC = eb_hist_add, STYPE = jsonb)",
    ]


def bucket_sql(v: str) -> str:
    return f"(CASE WHEN {v} <= {MIN_MS} THEN 0 ELSE ceil(ln({v} / {MIN_MS}) / ln({GAMMA!r}))::int END)"


def _stage_cte(s: str) -> str:
    """Per (device, run, minute): one stage's n, sum, min, max (and histogram)."""
    v = f"LEAST(u.v, {MAX_MS})"
    if s not in HIST_STAGES:
        return (
            f"h_{s} AS (SELECT device_id, run_id, minute, COUNT(u.v) AS n, SUM({v}) AS total, MIN({v}) AS lo,"
            f" MAX({v}) AS hi FROM src CROSS JOIN LATERAL unnest(src.{s}_ms) AS u(v) GROUP BY 1, 2, 3)"
        )
    return (
        f"h_{s} AS (SELECT device_id, run_id, minute, SUM(c) AS n, SUM(t) AS total, MIN(lo) AS lo, MAX(hi) AS hi,"
        " jsonb_object_agg(k, c) AS hist FROM (SELECT device_id, run_id, minute,"
        f" {bucket_sql(v)} AS k, COUNT(*) AS c, SUM({v}) AS t, MIN({v}) AS lo, MAX({v}) AS hi"
        f" FROM src CROSS JOIN LATERAL unnest(src.{s}_ms) AS u(v) GROUP BY 1, 2, 3, 4) x GROUP BY 1, 2, 3)"
    )


def ctes(source: str) -> str:
    """CTEs that add the frame batches ``source`` (a FROM item with alias ``b``, e.g. ``ins b``
    or ``frame_batches b WHERE ...``) to ``frame_rollups`` and ``run_rollups``; to prefix a
    statement with WITH."""
    minute = "(floor(COALESCE(b.ts, b.received_at) / 60) * 60)::bigint"
    arrays = ", ".join(f"b.{s}_ms" for s in ALL_STAGES)
    parts = [
        f"src AS MATERIALIZED (SELECT b.device_id, b.run_id, {minute} AS minute, b.n, {arrays} FROM {source})",
        "base AS (SELECT device_id, run_id, minute, COUNT(*) AS batches, SUM(n) AS frames FROM src GROUP BY 1, 2, 3)",
        *(_stage_cte(s) for s in ALL_STAGES),
    ]
    cols = stage_columns()
    pick = {
        "n": "COALESCE(h_{s}.n, 0)",
        "sum": "COALESCE(h_{s}.total, 0)",
        "min": "h_{s}.lo",
        "max": "h_{s}.hi",
        "hist": "h_{s}.hist",
    }
    vals = ", ".join(pick[k].format(s=c.rsplit("_", 1)[0]) + f" AS {c}" for c, k in cols)
    joins = " ".join(f"LEFT JOIN h_{s} USING (device_id, run_id, minute)" for s in ALL_STAGES)
    names = ", ".join(c for c, _ in cols)
    parts.append(f"m AS MATERIALIZED (SELECT base.*, {vals} FROM base {joins})")

    def sets(t: str) -> str:
        return ", ".join(f"{c} = " + _MERGE[k].format(t=t, c=c) for c, k in [("batches", "n"), ("frames", "n"), *cols])

    # sorted, so collectors sharing a database lock rows in the same order
    parts.append(
        f"roll AS (INSERT INTO frame_rollups (device_id, run_id, minute, batches, frames, {names})"
        f" SELECT device_id, run_id, minute, batches, frames, {names} FROM m ORDER BY 1, 2, 3"
        f" ON CONFLICT (device_id, run_id, minute) DO UPDATE SET {sets('frame_rollups')})"
    )
    aggs = ", ".join(_AGG[k].format(c=c) for c, k in cols)
    parts.append(
        f"roll_run AS (INSERT INTO run_rollups (device_id, run_id, first_minute, last_minute, batches, frames, {names})"
        f" SELECT device_id, run_id, MIN(minute), MAX(minute), SUM(batches), SUM(frames), {aggs} FROM m"
        " GROUP BY 1, 2 ORDER BY 1, 2 ON CONFLICT (device_id, run_id) DO UPDATE SET"
        " first_minute = LEAST(run_rollups.first_minute, excluded.first_minute),"
        f" last_minute = GREATEST(run_rollups.last_minute, excluded.last_minute), {sets('run_rollups')})"
    )
    return ", ".join(parts)


def backfill(c, where: str = "TRUE", params: tuple = ()) -> None:
    """Roll up the frame batches already stored (``where`` over ``frame_batches b``): once for a
    database made before rollups, and by the benchmark after generating its rows."""
    c.execute(f"WITH {ctes('frame_batches b WHERE ' + where)} SELECT 1", params)


def runs_from_minutes(c) -> None:
    """Fill ``run_rollups`` from ``frame_rollups`` (a database made before per-run rollups)."""
    cols = stage_columns()
    names = ", ".join(c for c, _ in cols)
    aggs = ", ".join(_AGG[k].format(c=c) for c, k in cols)
    c.execute(
        f"INSERT INTO run_rollups (device_id, run_id, first_minute, last_minute, batches, frames, {names})"
        f" SELECT device_id, run_id, MIN(minute), MAX(minute), SUM(batches), SUM(frames), {aggs}"
        " FROM frame_rollups GROUP BY 1, 2"
    )


#: a rollup row's figures for readers: batches, frames, every stage's n and sum, the histograms
READ_COLUMNS = [
    "batches",
    "frames",
    *(f"{s}_{c}" for s in ALL_STAGES for c in ("n", "sum")),
    *(f"{s}_hist" for s in HIST_STAGES),
]


def window_sql(since: float | None, until: float | None) -> tuple[str, list]:
    """A FROM item ``x`` (device_id, run_id, READ_COLUMNS) holding the frames of the minutes in
    [since, until): a run wholly inside as its one ``run_rollups`` row, the minutes of the
    others (straddling a bound) from ``frame_rollups``."""
    lo = -1e18 if since is None else since
    hi = 1e18 if until is None else until
    cols = ", ".join(READ_COLUMNS)
    fcols = ", ".join(f"f.{c}" for c in READ_COLUMNS)
    inside = "rr.first_minute >= %s AND rr.last_minute < %s"
    sql = (
        f"(SELECT device_id, run_id, {cols} FROM run_rollups rr WHERE {inside}"
        f" UNION ALL SELECT f.device_id, f.run_id, {fcols} FROM run_rollups rr"
        " JOIN frame_rollups f ON f.device_id = rr.device_id AND f.run_id = rr.run_id"
        f" WHERE NOT ({inside}) AND rr.last_minute >= %s AND rr.first_minute < %s"
        " AND f.minute >= %s AND f.minute < %s) x"
    )
    return sql, [lo, hi, lo, hi, lo, hi, lo, hi]


def value_of(k: int) -> float:
    """What bucket ``k`` stands for (ms)."""
    return 0.0 if k <= 0 else 2 * MIN_MS * GAMMA**k / (GAMMA + 1)


def quantiles(hist: dict[int, int], qs: tuple[float, ...]) -> list[float | None]:
    """Quantiles (0..1) of a histogram, interpolating linearly between the order statistics
    around rank q (n - 1), as numpy's default and the exact report do."""
    n = sum(hist.values())
    if n == 0:
        return [None for _ in qs]
    keys = sorted(hist)
    cum, total = [], 0
    for k in keys:
        total += hist[k]
        cum.append(total)

    def order_stat(i: int) -> float:  # the i-th smallest value (0-based), as its bucket's value
        lo, hi = 0, len(cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cum[mid] > i:
                hi = mid
            else:
                lo = mid + 1
        return value_of(keys[lo])

    out: list[float | None] = []
    for q in qs:
        r = q * (n - 1)
        lo = math.floor(r)
        a, b = order_stat(lo), order_stat(min(lo + 1, n - 1))
        out.append(a + (b - a) * (r - lo))
    return out
