"""PostgreSQL frame batches partitioned by day, and the key table that keeps their dedup exact.

A new PostgreSQL database gets ``frame_batches`` as a declaratively partitioned table,
``PARTITION BY RANGE (COALESCE(ts, received_at))``: when the frames were measured (the
device clock), else when they were received -- the very expression the fleet report's
window and the retention purge use, so both prune to the partitions they need. One
partition per UTC day (``frame_batches_pYYYYMMDD``) is created on demand before a batch
is stored (outside the batch's transaction, under an advisory lock so collectors sharing
the database do not race), and a default partition takes anything else, so no row is
ever refused.

Dedup. A unique constraint on a partitioned table must include the partition key, and a
message delivered twice has the same (device, session, seq) but another receipt time, so
neither of the old constraints -- (device_id, session, seq) and (device_id, run_id,
first_frame) -- can live on the partitioned table. They live on ``frame_keys`` instead,
an ordinary narrow table (the key, the run, the first frame and the row's partition time)
with both constraints: a frame batch is inserted into ``frame_batches`` only when its key
row was inserted by the same transaction (``INSERT ... ON CONFLICT DO NOTHING RETURNING``),
so dedup stays exact across partitions and across collectors, exactly as before.

Retention drops every day partition wholly older than the cutoff, deletes rows only in the
boundary partition (and the default one), and deletes the dropped rows' keys from
``frame_keys`` (whose row count is the number of frame batches purged).

Existing databases. A database whose ``frame_batches`` is an ordinary table (made before
partitioning) keeps it: the collector stores
and purges it as before (rows deleted), and everything else works; its frames are rolled up once when a collector
first opens it, and from then on as they are stored.
The schema version stays 4: a plain database and a partitioned one hold the same columns, and the layout is read from the catalog
(``pg_class.relkind`` of ``frame_batches``).
To move an old database to partitions, export what matters and start a new database.
"""

from __future__ import annotations

import calendar
import logging
import re
import time

from edgebench.collector.store.schema import SCHEMA_SQL

log = logging.getLogger("edgebench.store")

PLAIN = "plain"
PARTITIONED = "partitioned"
DAY_S = 86400
#: the partition key (and the expression readers filter on)
PART_KEY = "COALESCE(ts, received_at)"
#: the advisory lock that serializes partition creation and dropping across collectors
_PART_LOCK = 7207002
_NAME = re.compile(r"^frame_batches_p(\d{8})$")

KEYS_SQL = """
CREATE TABLE IF NOT EXISTS frame_keys (
    device_id   TEXT NOT NULL,
    session     BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    run_id      TEXT NOT NULL,
    first_frame BIGINT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, session, seq),
    UNIQUE (device_id, run_id, first_frame)
)"""
KEY_COLUMNS = ["device_id", "session", "seq", "run_id", "first_frame", "at"]


def frames_ddl(types: dict[str, str]) -> list[str]:
    """The partitioned ``frame_batches``, its default partition, its indexes and ``frame_keys``."""
    table = re.search(r"CREATE TABLE IF NOT EXISTS frame_batches \((.*?)\n\);", SCHEMA_SQL, re.S)
    assert table, "frame_batches is in SCHEMA_SQL"
    cols = [
        line for line in table.group(1).strip().splitlines() if not line.strip().startswith(("PRIMARY KEY", "UNIQUE"))
    ]
    body = "\n".join(cols).rstrip().rstrip(",").format(**types)
    return [
        f"CREATE TABLE IF NOT EXISTS frame_batches (\n{body}\n) PARTITION BY RANGE (({PART_KEY}))",
        "CREATE TABLE IF NOT EXISTS frame_batches_default PARTITION OF frame_batches DEFAULT",
        "CREATE INDEX IF NOT EXISTS frame_batches_run ON frame_batches (device_id, run_id, first_frame)",
        f"CREATE INDEX IF NOT EXISTS frame_batches_at ON frame_batches (({PART_KEY}))",
        KEYS_SQL,
        "CREATE INDEX IF NOT EXISTS frame_keys_at ON frame_keys (at)",
    ]


def existing_layout(c) -> str | None:
    """``plain`` or ``partitioned`` for an existing ``frame_batches``, None when there is none."""
    row = c.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = 'frame_batches' AND n.nspname = current_schema()"
    ).fetchone()
    if row is None:
        return None
    return PARTITIONED if row[0] == "p" else PLAIN


def day_of(t: float) -> int:
    """The UTC day start (epoch s) holding ``t``."""
    return int(t // DAY_S) * DAY_S


def name_of(day: int) -> str:
    return "frame_batches_p" + time.strftime("%Y%m%d", time.gmtime(day))


def day_partitions(c) -> dict[int, str]:
    """The day partitions that exist: day start -> name."""
    rows = c.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'frame_batches'::regclass"
    ).fetchall()
    out = {}
    for (name,) in rows:
        m = _NAME.match(name)
        if m:
            out[calendar.timegm(time.strptime(m.group(1), "%Y%m%d"))] = name
    return out


def ensure_days(c, days: set[int], known: set[int]) -> None:
    """Create the day partitions in ``days`` not in ``known`` (each in its own short
    transaction, under the partition lock); ``known`` gains them."""
    import psycopg

    for day in sorted(days - known):
        try:
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(%s)", (_PART_LOCK,))
                c.execute(
                    f"CREATE TABLE IF NOT EXISTS {name_of(day)} PARTITION OF frame_batches"
                    f" FOR VALUES FROM ({int(day)}) TO ({int(day) + DAY_S})"
                )
        except psycopg.errors.CheckViolation:
            # the default partition holds rows of that day (stored while another collector had
            # just dropped it): its rows keep going there, where the purge finds them too
            log.warning("day partition %s not made: the default partition holds rows of that day", name_of(day))
        known.add(day)


def purge_partitioned(c, older_than: float) -> int:
    """Drop the day partitions wholly before ``older_than``, delete the older rows of the
    boundary and default partitions, and their keys. Returns the frame batches purged."""
    with c.transaction():
        c.execute("SELECT pg_advisory_xact_lock(%s)", (_PART_LOCK,))
        for day, name in sorted(day_partitions(c).items()):
            if day + DAY_S <= older_than:
                c.execute(f"DROP TABLE {name}")
        c.execute(f"DELETE FROM frame_batches WHERE {PART_KEY} < %s", (older_than,))
        return c.execute("DELETE FROM frame_keys WHERE at < %s", (older_than,)).rowcount
