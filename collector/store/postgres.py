"""The PostgreSQL dialect (several collectors, large fleets): per-frame latencies as
``double precision[]`` (sent as array literals cast with ``::float8[]``), ``%s``
placeholders, psycopg 3 transactions, schema creation serialized by an advisory lock (several
collectors may start at once), and a batch retried on a deadlock or serialization failure
(collectors sharing a database write the same devices' rows).

History: in a new database ``frame_batches`` is partitioned by day with its dedup keys in
``frame_keys`` (partitions.py; a database made before keeps its plain table), and every
stored frame batch is added to the per-minute and per-run rollups in the same transaction
(rollups.py, rollup_rows.py)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import orjson

from edgebench.agent.errors import UserError
from edgebench.collector.store import partitions, rollup_rows, rollups
from edgebench.collector.store.base import Store
from edgebench.collector.store.fields import num
from edgebench.collector.store.rows import FRAME_BATCH_COLUMNS
from edgebench.collector.store.schema import (
    SCHEMA_VERSION,
    TABLES,
    check_version,
    ddl,
    migrate_3_to_4,
    missing_v4_columns,
)
from edgebench.collector.store.urls import redact

_TYPES = dict(
    real="DOUBLE PRECISION", big="BIGINT", arr="DOUBLE PRECISION[]", blob="BYTEA", autoid="BIGSERIAL PRIMARY KEY"
)
#: the advisory lock that serializes schema creation across collectors
_SCHEMA_LOCK = 7207001


class PostgresStore(Store):
    dialect = "postgresql"
    least = "LEAST"
    greatest = "GREATEST"
    max_params = 8000
    has_rollups = True
    layout = partitions.PLAIN

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise UserError("PostgreSQL storage needs psycopg 3: pip install 'edgebench[collector]'") from None
        self._create_schema(self.conn())
        check_version(self)
        self.layout = partitions.existing_layout(self.conn())
        if self.layout == partitions.PARTITIONED:
            self.frame_keys_table = "frame_keys"
            self._days = set(partitions.day_partitions(self.conn()))

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table of the store (TABLES and what only PostgreSQL keeps)."""
        extra = ("frame_keys",) if self.layout == partitions.PARTITIONED else ()
        return (*TABLES, *extra, "frame_rollups", "run_rollups")

    def prepare(self, messages) -> None:
        """Create the day partitions the batch's frame batches go to (before its transaction)."""
        if self.layout != partitions.PARTITIONED:
            return
        days = {
            partitions.day_of(num(m.body.get("ts")) or m.received_at)
            for m in messages
            if m.kind == "frames" and isinstance(m.body, dict)
        }
        partitions.ensure_days(self.conn(), days, self._days)

    def purge_frames(self, older_than: float) -> int:
        if self.layout != partitions.PARTITIONED:
            return super().purge_frames(older_than)
        n = partitions.purge_partitioned(self.conn(), older_than)
        self._days = set(partitions.day_partitions(self.conn()))
        return n

    def _create_schema(self, c) -> None:
        """Create the tables (if new; frame batches partitioned by day in a new database) and
        upgrade a version-3 database in place, one collector at a time."""
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            layout = partitions.existing_layout(c) or partitions.PARTITIONED
            had_rollups, had_runs = c.execute(
                "SELECT to_regclass('frame_rollups') IS NOT NULL, to_regclass('run_rollups') IS NOT NULL"
            ).fetchone()
            for stmt in ddl(**_TYPES).split(";"):
                if stmt.strip() and not (layout == partitions.PARTITIONED and "frame_batches" in stmt):
                    c.execute(stmt)
            if layout == partitions.PARTITIONED:
                for stmt in partitions.frames_ddl(_TYPES):
                    c.execute(stmt)
            for stmt in rollups.ddl():
                c.execute(stmt)
            if not had_rollups:  # a database made before rollups: roll up what it holds, once
                rollups.backfill(c)
            elif not had_runs:  # made before per-run rollups: sum its minutes
                rollups.runs_from_minutes(c)
            c.execute(
                "INSERT INTO schema_info(key, value) VALUES ('version', %s) ON CONFLICT DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            v = c.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
            if v and v[0] == "3":
                have = {
                    r[0]
                    for r in c.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
                        " AND table_schema = current_schema()"
                    )
                }
                migrate_3_to_4(self, c, missing_v4_columns(have), _TYPES["real"])

    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot connect to PostgreSQL at {redact(self.url)}: {first}") from None

    def sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def encode_array(self, values) -> str:
        # An array literal, cast by ::float8[] in the INSERT (JSON gives ints and floats mixed).
        # orjson writes the numbers (shortest round-trip, as repr) in C: the ``",".join(map(repr,
        # ...))`` it replaces was 15 % of a collector's time in a profile (issue 15).
        return "{" + orjson.dumps(values).decode()[1:-1] + "}"

    def decode_array(self, value) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)

    def retryable(self, e: Exception) -> bool:
        import psycopg

        return isinstance(e, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))

    @contextmanager
    def transaction(self):
        c = self.conn()
        with c.transaction():
            with c.cursor() as cur:
                yield cur

    def insert_returning(self, cur, table: str, cols: list[str], rows: list[tuple], key: list[str]) -> set[tuple]:
        """INSERT ... SELECT FROM unnest(one array per column): one short statement whatever the
        batch size. A multi-row VALUES list has a placeholder per value, and psycopg parses a
        statement of more than 50 parameters in Python at every execute (no cache): that parse
        was 40 % of a PostgreSQL collector's time in a profile (issue 15)."""
        if not rows:
            return set()
        types = self._column_types(cur, table)
        arrays = ", ".join(f"%s::{'text' if types[c] == 'ARRAY' else types[c]}[]" for c in cols)
        pick = ", ".join(f"u.{c}::float8[]" if types[c] == "ARRAY" else f"u.{c}" for c in cols)
        cur.execute(
            f"INSERT INTO {table}({', '.join(cols)}) SELECT {pick} FROM unnest({arrays}) AS u({', '.join(cols)})"
            f" ON CONFLICT DO NOTHING RETURNING {', '.join(key)}",
            [list(col) for col in zip(*rows)],
        )
        return {tuple(r) for r in cur.fetchall()}

    def insert_frames(self, cur, rows: list[tuple]) -> set[tuple]:
        """One statement: the new keys into ``frame_keys`` (partitioned) or the rows straight
        into ``frame_batches`` (plain), skipping stored keys; the rows whose key is new into
        ``frame_batches``. Returns the new keys (add_rollups adds those rows to the rollups)."""
        if not rows:
            return set()
        cols = FRAME_BATCH_COLUMNS
        types = self._column_types(cur, "frame_batches")
        arrays = ", ".join(f"%s::{'text' if types[c] == 'ARRAY' else types[c]}[]" for c in cols)
        pick = ", ".join(f"u.{c}::float8[] AS {c}" if types[c] == "ARRAY" else f"u.{c}" for c in cols)
        given = f"given AS MATERIALIZED (SELECT {pick} FROM unnest({arrays}) AS u({', '.join(cols)}))"
        into = f"INSERT INTO frame_batches({', '.join(cols)})"
        if self.layout == partitions.PARTITIONED:
            head = (
                f"{given}, k AS (INSERT INTO frame_keys({', '.join(partitions.KEY_COLUMNS)})"
                " SELECT device_id, session, seq, run_id, first_frame, COALESCE(ts, received_at) FROM given"
                " ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING RETURNING device_id, session, seq),"
                f" ins AS ({into} SELECT given.* FROM given JOIN k USING (device_id, session, seq) RETURNING *)"
            )
        else:
            head = f"{given}, ins AS ({into} SELECT * FROM given ON CONFLICT DO NOTHING RETURNING *)"
        cur.execute(f"WITH {head} SELECT device_id, session, seq FROM ins", [list(col) for col in zip(*rows)])
        return {tuple(r) for r in cur.fetchall()}

    def add_rollups(self, cur, stored) -> None:
        rollup_rows.upsert(cur, stored)

    def _column_types(self, cur, table: str) -> dict[str, str]:
        """Column name -> SQL type of ``table`` (ARRAY for the per-frame arrays), read once."""
        cache = self.__dict__.setdefault("_types", {})
        if table not in cache:
            cache[table] = dict(
                cur.execute(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_name = %s AND table_schema = current_schema()",
                    (table,),
                ).fetchall()
            )
        return cache[table]

    def row_placeholders(self, cols: list[str]) -> str:
        return "(" + ", ".join("%s::float8[]" if c.endswith("_ms") else "%s" for c in cols) + ")"
