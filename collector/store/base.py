"""The store's common code: per-thread connections, queries, the apply step in one
transaction (retried where the dialect says so), quarantine, retention, and reading frame
samples back. A dialect (sqlite.py, postgres.py) fills in the hooks below: how to connect,
open a transaction, write placeholders and arrays, and which errors to retry.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import numpy as np

from edgebench.agent.wire.protocol import STAGES
from edgebench.collector.ingest.validate import Message
from edgebench.collector.store import quarantine as quarantine_rows
from edgebench.collector.store.apply import apply_batch
from edgebench.collector.store.rows import FRAME_BATCH_COLUMNS
from edgebench.collector.store.schema import TABLES

#: How often a batch is tried when the dialect says an error is worth retrying.
APPLY_ATTEMPTS = 5
FRAME_KEY = ["device_id", "session", "seq"]


class Store:
    """Common code; subclasses fill in the dialect. Thread-safe: each thread gets its
    own connection (one writer thread plus any number of readers)."""

    dialect = "?"
    url = ""
    #: SQL names of the two-argument minimum and maximum
    least = "MIN"
    greatest = "MAX"
    #: how many parameters one statement may carry
    max_params = 30000
    #: the table holding each stored frame batch's (device_id, session, seq, run_id, first_frame)
    frame_keys_table = "frame_batches"
    #: whether per-minute rollups are kept (PostgreSQL: rollups.py)
    has_rollups = False

    def __init__(self) -> None:
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()

    # -- dialect hooks -------------------------------------------------------------
    def _connect(self):  # pragma: no cover - abstract
        raise TypeError("use SQLiteStore or PostgresStore")

    def sql(self, sql: str) -> str:
        """A statement written with ``?`` placeholders in the dialect's own."""
        return sql

    def encode_array(self, values: list[float]) -> Any:
        raise TypeError

    def decode_array(self, value: Any) -> np.ndarray:
        raise TypeError

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in a write transaction: committed when the block ends, rolled back on an error."""
        raise TypeError
        yield

    def retryable(self, e: Exception) -> bool:
        """Whether a failed batch is worth trying again (a deadlock, a serialization failure)."""
        return False

    def row_placeholders(self, cols: list[str]) -> str:
        """How one row's values are written in a multi-row INSERT."""
        return "(" + ", ".join("?" * len(cols)) + ")"

    # -- connections ---------------------------------------------------------------
    def conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
            with self._conns_lock:
                self._conns.append(c)
        return c

    def close(self) -> None:
        with self._conns_lock:
            for c in self._conns:
                try:
                    c.close()
                except Exception:
                    pass
            self._conns.clear()
        self._local = threading.local()

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        cur = self.conn().execute(self.sql(sql), tuple(params))
        rows = cur.fetchall()
        return [tuple(r) for r in rows]

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        with self.transaction() as cur:
            cur.execute(self.sql(sql), tuple(params))
            return cur.rowcount

    def insert_returning(self, cur, table: str, cols: list[str], rows: list[tuple], key: list[str]) -> set[tuple]:
        """INSERT rows in multi-row statements, skipping conflicts; return the keys of the
        rows actually inserted."""
        new: set[tuple] = set()
        one = self.row_placeholders(cols)
        chunk = max(1, self.max_params // len(cols))
        for k in range(0, len(rows), chunk):
            part = rows[k : k + chunk]
            cur.execute(  # placeholders come from the dialect's row_placeholders
                f"INSERT INTO {table}({', '.join(cols)}) VALUES {', '.join([one] * len(part))}"
                f" ON CONFLICT DO NOTHING RETURNING {', '.join(key)}",
                [v for r in part for v in r],
            )
            new.update(tuple(r) for r in cur.fetchall())
        return new

    def insert_frames(self, cur, rows: list[tuple]) -> set[tuple]:
        """Insert frame batch rows (rows.FRAME_BATCH_COLUMNS) unless their (device_id, session,
        seq) or (device_id, run_id, first_frame) is stored; return the keys inserted."""
        return self.insert_returning(cur, "frame_batches", FRAME_BATCH_COLUMNS, rows, FRAME_KEY)

    def add_rollups(self, cur, stored: list[Message]) -> None:
        """Add newly stored frame batches to the rollups (PostgreSQL: rollup_rows.py)."""

    def prepare(self, messages: list[Message]) -> None:
        """What must exist before a batch's transaction (PostgreSQL: its day partitions)."""

    # -- writing -------------------------------------------------------------------
    def apply(self, messages: Iterable[Message]) -> dict[str, int]:
        """Store a batch in one transaction (retried on a PostgreSQL deadlock).

        Returns counts: stored, duplicates (same (device, session, seq), or frames already
        stored), retained_again (a retained message delivered again on resubscribe)."""
        messages = list(messages)
        self.prepare(messages)
        for attempt in range(APPLY_ATTEMPTS):
            try:
                with self.transaction() as cur:
                    return apply_batch(self, cur, messages)
            except Exception as e:
                if attempt < APPLY_ATTEMPTS - 1 and self.retryable(e):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise
        raise AssertionError("unreachable")

    def quarantine(self, items: list[tuple[float, str, str, str, bytes]], once: bool = False) -> int:
        """Keep rejected messages aside: (received_at, topic, code, reason, payload); ``once``:
        skip those already kept (retained messages delivered again). Returns rows added."""
        if not items:
            return 0
        with self.transaction() as cur:
            return quarantine_rows.keep(self, cur, items, once)

    def purge(self, older_than: float) -> dict[str, int]:
        """Retention: delete raw frame batches, dedup keys, quarantined messages and telemetry
        readings from before ``older_than`` (epoch seconds). Runs, summaries, devices and session
        counters stay."""
        out = {"frame_batches": self.purge_frames(older_than)}
        with self.transaction() as cur:
            for table in ("messages", "quarantine"):
                cur.execute(self.sql(f"DELETE FROM {table} WHERE received_at < ?"), (older_than,))
                out[table] = cur.rowcount
            cur.execute(self.sql("DELETE FROM telemetry WHERE ts < ?"), (older_than,))
            out["telemetry"] = cur.rowcount
        return out

    def purge_frames(self, older_than: float) -> int:
        """Retention of the raw frame batches; returns how many went."""
        with self.transaction() as cur:
            # by when the frames were measured (the indexed device clock), else when received
            cur.execute(
                self.sql("DELETE FROM frame_batches WHERE ts < ? OR (ts IS NULL AND received_at < ?)"),
                (older_than, older_than),
            )
            return cur.rowcount

    # -- reading -------------------------------------------------------------------
    def frame_samples(
        self, where: str = "1=1", params: tuple = (), stages: Iterable[str] = STAGES, keys: Iterable[str] = ()
    ) -> list[tuple]:
        """Rows of (key values..., n, array per stage) for frame batches joined with their run
        (alias ``r``; frame batches are ``b``). An optional stage a batch lacks is None."""
        stages = list(stages)
        keys = list(keys)
        sel = ", ".join([*keys, "b.n", *(f"b.{s}_ms" for s in stages)])
        rows = self.query(
            f"SELECT {sel} FROM frame_batches b JOIN runs r ON r.device_id = b.device_id AND r.run_id = b.run_id"
            f" WHERE {where}",
            params,
        )
        k = len(keys)
        return [(*row[: k + 1], *(None if v is None else self.decode_array(v) for v in row[k + 1 :])) for row in rows]

    def counts(self) -> dict[str, int]:
        return {t: self.query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in TABLES}
