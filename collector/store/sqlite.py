"""The SQLite dialect (the default: one file, WAL): per-frame latencies as little-endian
float64 BLOBs, ``?`` placeholders, ``BEGIN IMMEDIATE`` write transactions (one writer; a
second waits up to 30 s), and WAL checkpoints in a thread of their own."""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
from array import array
from contextlib import contextmanager

import numpy as np

from edgebench.collector.store.base import Store
from edgebench.collector.store.schema import (
    SCHEMA_VERSION,
    check_version,
    ddl,
    migrate_3_to_4,
    missing_v4_columns,
)

log = logging.getLogger("edgebench.store")

_BIG_ENDIAN = sys.byteorder == "big"  # frame arrays are stored little-endian
_TYPES = dict(real="REAL", big="INTEGER", arr="BLOB", blob="BLOB", autoid="INTEGER PRIMARY KEY AUTOINCREMENT")


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.url = path
        self._ckpt: threading.Thread | None = None
        self._create_schema(self.conn())
        check_version(self)

    def _create_schema(self, c) -> None:
        """Create the tables (if new) and upgrade a version-3 database in place."""
        c.execute("PRAGMA journal_mode=WAL")
        c.executescript(ddl(**_TYPES))
        c.execute("INSERT OR IGNORE INTO schema_info(key, value) VALUES ('version', ?)", (str(SCHEMA_VERSION),))
        v = c.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
        if not (v and v[0] == "3"):
            return
        have = {row[1] for row in c.execute("PRAGMA table_info(runs)")}
        c.execute("BEGIN IMMEDIATE")
        try:
            migrate_3_to_4(self, c, missing_v4_columns(have), _TYPES["real"])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _connect(self):
        c = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA busy_timeout=30000")
        # Checkpoints (copying the WAL into the database, with fsync) run in a thread of
        # their own, not inside the writer's commits, where they would stall ingest.
        c.execute("PRAGMA wal_autocheckpoint=0")
        return c

    def apply(self, messages):
        if self._ckpt is None:
            self._ckpt_stop = threading.Event()
            self._ckpt = threading.Thread(target=self._checkpoint_loop, name="edgebench-sqlite-checkpoint", daemon=True)
            self._ckpt.start()
        return super().apply(messages)

    def _checkpoint_loop(self, every_s: float = 1.0) -> None:
        c = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            while not self._ckpt_stop.wait(every_s):
                try:
                    c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:
                    log.warning("WAL checkpoint failed: %s", e)
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass
        finally:
            c.close()

    def close(self) -> None:
        if self._ckpt is not None:
            self._ckpt_stop.set()
            self._ckpt.join(30)
            self._ckpt = None
        super().close()

    def encode_array(self, values: list[float]) -> bytes:
        a = array("d", values)  # float64; several times faster than numpy for short lists
        if _BIG_ENDIAN:
            a.byteswap()
        return a.tobytes()

    def decode_array(self, value: bytes) -> np.ndarray:
        return np.frombuffer(value, dtype="<f8")

    @contextmanager
    def transaction(self):
        c = self.conn()
        cur = c.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
