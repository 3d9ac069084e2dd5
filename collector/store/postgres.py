"""The PostgreSQL dialect (several collectors, large fleets): per-frame latencies as
``double precision[]`` (sent as array literals cast with ``::float8[]``), ``%s``
placeholders, psycopg 3 transactions, schema creation serialized by an advisory lock (several
collectors may start at once), and a batch retried on a deadlock or serialization failure
(collectors sharing a database write the same devices' rows)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import orjson

from edgebench.agent.errors import UserError
from edgebench.collector.store.base import Store
from edgebench.collector.store.schema import (
    SCHEMA_VERSION,
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

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise UserError("PostgreSQL storage needs psycopg 3: pip install 'edgebench[collector]'") from None
        self._create_schema(self.conn())
        check_version(self)

    def _create_schema(self, c) -> None:
        """Create the tables (if new) and upgrade a version-3 database in place, one collector at a time."""
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in ddl(**_TYPES).split(";"):
                if stmt.strip():
                    c.execute(stmt)
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
