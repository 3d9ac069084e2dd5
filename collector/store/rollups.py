"""Per-minute rollups of the stored frames (PostgreSQL): what the dashboard overview and
``report --rollups`` read over long windows instead of every raw frame.

``frame_rollups`` holds one row per (device_id, run_id, minute): the minute (epoch s, UTC)
of each frame batch's ``COALESCE(ts, received_at)``, the batches and frames stored, and per
stage the count, sum, min and max of the per-frame latencies (exact) and a log-bucket
histogram (jsonb ``{bucket: count}``, sparse) from which percentiles are read. Runs carry
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

The rows are written in the same statement that inserts the frame batches (a data-modifying
CTE over the inserted rows), so a rollup holds exactly the frames stored, never a duplicate.
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
METHOD = "from 1-minute rollups: p50/p90/p99 from log histograms, error <= 2 %; mean exact; window in whole minutes"

KEY = ["device_id", "run_id", "minute"]
_STAGE_COLS = ("n", "sum", "min", "max", "hist")


def ddl() -> list[str]:
    stages = ",\n    ".join(
        f"{s}_n BIGINT NOT NULL DEFAULT 0, {s}_sum DOUBLE PRECISION NOT NULL DEFAULT 0,"
        f" {s}_min DOUBLE PRECISION, {s}_max DOUBLE PRECISION, {s}_hist JSONB"
        for s in ALL_STAGES
    )
    return [
        "CREATE TABLE IF NOT EXISTS frame_rollups (\n    device_id TEXT NOT NULL,\n    run_id TEXT NOT NULL,\n"
        "    minute BIGINT NOT NULL,\n    batches BIGINT NOT NULL,\n    frames BIGINT NOT NULL,\n"
        f"    {stages},\n    PRIMARY KEY (device_id, run_id, minute)\n)",
        "CREATE INDEX IF NOT EXISTS frame_rollups_minute ON frame_rollups (minute)",
        # merge two sparse histograms bucket by bucket (NULL is empty)
        "CREATE OR REPLACE FUNCTION eb_hist_add(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$"
        " SELECT jsonb_object_agg(k, s) FROM (SELECT k, SUM(v::bigint) AS s FROM ("
        " SELECT key AS k, value AS v FROM jsonb_each_text(COALESCE(a, '{}'::jsonb))"
        " UNION ALL SELECT key, value FROM jsonb_each_text(COALESCE(b, '{}'::jsonb))) x GROUP BY k) y $$",
    ]


def bucket_sql(v: str) -> str:
    return f"(CASE WHEN {v} <= {MIN_MS} THEN 0 ELSE ceil(ln({v} / {MIN_MS}) / ln({GAMMA!r}))::int END)"


def ctes(source: str) -> str:
    """CTEs that add the frame batches ``source`` (a FROM item with alias ``b``, e.g. ``ins b``
    or ``frame_batches b WHERE ...``) to ``frame_rollups``; to prefix a statement with WITH."""
    minute = "(floor(COALESCE(b.ts, b.received_at) / 60) * 60)::bigint"
    arrays = ", ".join(f"b.{s}_ms" for s in ALL_STAGES)
    parts = [
        f"src AS MATERIALIZED (SELECT b.device_id, b.run_id, {minute} AS minute, b.n, {arrays} FROM {source})",
        "base AS (SELECT device_id, run_id, minute, COUNT(*) AS batches, SUM(n) AS frames FROM src GROUP BY 1, 2, 3)",
    ]
    for s in ALL_STAGES:
        v = f"LEAST(u.v, {MAX_MS})"
        parts.append(
            f"h_{s} AS (SELECT device_id, run_id, minute, SUM(c) AS n, SUM(t) AS total, MIN(lo) AS lo, MAX(hi) AS hi,"
            " jsonb_object_agg(k, c) AS hist FROM (SELECT device_id, run_id, minute,"
            f" {bucket_sql(v)} AS k, COUNT(*) AS c, SUM({v}) AS t, MIN({v}) AS lo, MAX({v}) AS hi"
            f" FROM src CROSS JOIN LATERAL unnest(src.{s}_ms) AS u(v) GROUP BY 1, 2, 3, 4) x GROUP BY 1, 2, 3)"
        )
    cols = ", ".join(f"{s}_{c}" for s in ALL_STAGES for c in _STAGE_COLS)
    vals = ", ".join(
        f"COALESCE(h_{s}.n, 0), COALESCE(h_{s}.total, 0), h_{s}.lo, h_{s}.hi, h_{s}.hist" for s in ALL_STAGES
    )
    joins = " ".join(f"LEFT JOIN h_{s} USING (device_id, run_id, minute)" for s in ALL_STAGES)
    sets = ["batches = frame_rollups.batches + excluded.batches", "frames = frame_rollups.frames + excluded.frames"]
    for s in ALL_STAGES:
        sets += [
            f"{s}_n = frame_rollups.{s}_n + excluded.{s}_n",
            f"{s}_sum = frame_rollups.{s}_sum + excluded.{s}_sum",
            f"{s}_min = LEAST(frame_rollups.{s}_min, excluded.{s}_min)",
            f"{s}_max = GREATEST(frame_rollups.{s}_max, excluded.{s}_max)",
            f"{s}_hist = eb_hist_add(frame_rollups.{s}_hist, excluded.{s}_hist)",
        ]
    parts.append(
        f"roll AS (INSERT INTO frame_rollups (device_id, run_id, minute, batches, frames, {cols})"
        f" SELECT base.device_id, base.run_id, base.minute, base.batches, base.frames, {vals} FROM base {joins}"
        # sorted, so collectors sharing a database lock rows in the same order
        f" ORDER BY 1, 2, 3 ON CONFLICT (device_id, run_id, minute) DO UPDATE SET {', '.join(sets)})"
    )
    return ", ".join(parts)


def backfill(c, where: str = "TRUE", params: tuple = ()) -> None:
    """Roll up the frame batches already stored (``where`` over ``frame_batches b``): once for a
    database made before rollups, and by the benchmark after generating its rows."""
    c.execute(f"WITH {ctes('frame_batches b WHERE ' + where)} SELECT 1", params)


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
