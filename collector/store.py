"""Storage for what the fleet publishes. SQLite (WAL) by default.

Tables:
  devices     one row per device: state, session, agent version, inventory, last seen
  runs        one row per run: model, runtime, source, and the summary when it arrives
  frames      one row per measured frame: the five stage latencies in ms, so that
              percentiles over any group of frames are exact
  messages    (device_id, session, seq) of every data message: the dedup key
  command_acks what devices answered to commands (accepted, rejected, started, done, failed)
  quarantine  rejected messages with their reason
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Any, Iterable

from agent.protocol import STAGES

from .validate import Message

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY,
    state         TEXT,
    session       INTEGER,
    agent_version TEXT,
    inventory     TEXT,
    last_seen     REAL
);
CREATE TABLE IF NOT EXISTS runs (
    device_id       TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    session         INTEGER,
    model_name      TEXT,
    model_sha256    TEXT,
    runtime         TEXT,
    runtime_version TEXT,
    delegate        TEXT,
    num_threads     INTEGER,
    source_kind     TEXT,
    meta            TEXT,
    frames          INTEGER,
    duration_s      REAL,
    fps             REAL,
    summary         TEXT,
    received_at     REAL,
    PRIMARY KEY (device_id, run_id)
);
CREATE TABLE IF NOT EXISTS frames (
    device_id      TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    frame          INTEGER NOT NULL,
    capture_ms     REAL NOT NULL,
    preprocess_ms  REAL NOT NULL,
    inference_ms   REAL NOT NULL,
    postprocess_ms REAL NOT NULL,
    e2e_ms         REAL NOT NULL,
    PRIMARY KEY (device_id, run_id, frame)
);
CREATE TABLE IF NOT EXISTS messages (
    device_id   TEXT NOT NULL,
    session     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    replayed    INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    PRIMARY KEY (device_id, session, seq)
);
CREATE TABLE IF NOT EXISTS command_acks (
    device_id   TEXT NOT NULL,
    cmd_id      TEXT,
    state       TEXT NOT NULL,
    run_id      TEXT,
    reason      TEXT,
    session     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (device_id, session, seq)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     BLOB
);
"""

FRAME_COLUMNS = [f"{s}_ms" for s in STAGES]


class SQLiteStore:
    """Thread-safe enough for one writer thread plus readers (one connection, a lock)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA_SQL)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- writing ---------------------------------------------------------------
    def apply(self, messages: Iterable[Message]) -> dict[str, int]:
        """Store a batch in one transaction. Returns counts: stored, duplicates."""
        counts = {"stored": 0, "duplicates": 0}
        now = time.time()
        with self._lock:
            cur = self.db.cursor()
            cur.execute("BEGIN")
            try:
                for m in messages:
                    b = m.body
                    if "seq" in b and m.kind != "status":
                        cur.execute(
                            "INSERT OR IGNORE INTO messages(device_id, session, seq, kind, replayed, received_at)"
                            " VALUES (?,?,?,?,?,?)",
                            (m.device_id, b["session"], b["seq"], m.kind, int(bool(b.get("replayed"))), now),
                        )
                        if cur.rowcount == 0:
                            counts["duplicates"] += 1
                            continue
                    getattr(self, f"_store_{m.kind}")(cur, m, now)
                    counts["stored"] += 1
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return counts

    def _touch(self, cur, device_id: str, now: float) -> None:
        cur.execute(
            "INSERT INTO devices(device_id, last_seen) VALUES (?, ?)"
            " ON CONFLICT(device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (device_id, now),
        )

    def _store_status(self, cur, m: Message, now: float) -> None:
        b = m.body
        self._touch(cur, m.device_id, now)
        # A late will from an older session must not mark a newer session offline.
        cur.execute(
            "UPDATE devices SET state = ?, session = ? WHERE device_id = ? AND (session IS NULL OR session <= ?)",
            (b["state"], b["session"], m.device_id, b["session"]),
        )

    def _store_info(self, cur, m: Message, now: float) -> None:
        b = m.body
        self._touch(cur, m.device_id, now)
        cur.execute(
            "UPDATE devices SET agent_version = ?, inventory = ? WHERE device_id = ?",
            (b["agent_version"], json.dumps(b.get("inventory", {})), m.device_id),
        )

    def _store_telemetry(self, cur, m: Message, now: float) -> None:
        self._touch(cur, m.device_id, now)

    def _upsert_run(self, cur, m: Message, model: dict, runtime: dict, source: Any, now: float) -> None:
        cur.execute(
            "INSERT INTO runs(device_id, run_id, session, model_name, model_sha256, runtime, runtime_version,"
            " delegate, num_threads, source_kind, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(device_id, run_id) DO NOTHING",
            (
                m.device_id,
                m.run_id,
                m.body["session"],
                model.get("name") or str(model.get("path", "")).rsplit("/", 1)[-1],
                model.get("sha256"),
                runtime.get("name"),
                runtime.get("version"),
                runtime.get("delegate"),
                runtime.get("num_threads"),
                source.get("kind") if isinstance(source, dict) else str(source),
                now,
            ),
        )

    def _store_meta(self, cur, m: Message, now: float) -> None:
        b = m.body
        self._touch(cur, m.device_id, now)
        self._upsert_run(cur, m, b["model"], b["runtime"], b["source"], now)
        cur.execute(
            "UPDATE runs SET meta = ? WHERE device_id = ? AND run_id = ?",
            (json.dumps(b), m.device_id, m.run_id),
        )

    def _store_frames(self, cur, m: Message, now: float) -> None:
        b = m.body
        self._touch(cur, m.device_id, now)
        cols = b["latency_ms"]
        first = b["first_frame"]
        rows = zip(
            [m.device_id] * b["n"],
            [m.run_id] * b["n"],
            range(first, first + b["n"]),
            *(cols[s] for s in STAGES),
        )
        cur.executemany(
            f"INSERT OR IGNORE INTO frames(device_id, run_id, frame, {', '.join(FRAME_COLUMNS)})"
            " VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )

    def _store_summary(self, cur, m: Message, now: float) -> None:
        r = m.body["result"]
        self._touch(cur, m.device_id, now)
        self._upsert_run(cur, m, r["model"], r["runtime"], r["source"], now)
        cur.execute(
            "UPDATE runs SET frames = ?, duration_s = ?, fps = ?, summary = ? WHERE device_id = ? AND run_id = ?",
            (r["frames"], r["duration_s"], r["fps"], json.dumps(r), m.device_id, m.run_id),
        )

    def _store_cmd_ack(self, cur, m: Message, now: float) -> None:
        b = m.body
        self._touch(cur, m.device_id, now)
        cur.execute(
            "INSERT OR IGNORE INTO command_acks(device_id, cmd_id, state, run_id, reason, session, seq, received_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (m.device_id, b.get("cmd_id"), b["state"], b.get("run_id"), b.get("reason"), b["session"], b["seq"], now),
        )

    def quarantine(self, topic: str, reason: str, payload: bytes) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO quarantine(received_at, topic, reason, payload) VALUES (?,?,?,?)",
                (time.time(), topic, reason, payload[:65536]),
            )

    # -- reading ---------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()
