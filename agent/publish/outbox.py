"""The device's on-disk outbox: every message that must reach the collector goes
here first and leaves only when a collector has confirmed that it stored it
(``edgebench.ack/1`` on the device's ``ack`` topic), end to end: the broker's
PUBACK covers one hop only, and a broker that restarts without persistence
forgets what it acknowledged.

One SQLite file per device (WAL), one process at a time (an exclusive lock
file next to it). A message gets its ``seq`` here, in the same transaction that
stores it, so the numbering survives crashes and replays keep their number.

* **Order.** Two lanes, each sent in production order: lane 0 for small
  control messages (``info``, ``cmd_ack``), lane 1 for data (telemetry, run
  meta, frames, summaries); lane 0 goes first so a long backlog does not delay
  a command's acknowledgement.
* **Bound.** The payloads may take at most ``max_bytes``. Past it, the oldest
  messages of the lowest class go first: class 0 telemetry and old info
  records, class 1 frame batches, class 2 run meta, summaries and command
  acknowledgements. Messages in flight (handed to the broker, not yet
  acknowledged) are never dropped. Every drop is counted by kind and, for frame
  batches, per run with the exact frame ranges; a run's summary carries them
  (``dropped``), updated while the summary is still queued.
* **Confirmation.** A message the broker acknowledged stays here (``sent_at``
  set, not sent again) until a confirmation covers its ``seq``; several
  collectors each confirm what they stored, and the device needs only the union.
  What stays unconfirmed for ``resend_s`` is sent again, oldest first (the
  collector drops the duplicates). An outbox that has never seen a
  confirmation (nobody runs a collector, only watches the broker) switches to
  today's behaviour when a message waited ``confirm_wait_s`` unconfirmed: the
  broker's PUBACK deletes; it says so once, and the first confirmation that
  ever arrives switches back. Under the size bound, messages the broker
  acknowledged go first (counted as ``released_unconfirmed``: most likely
  stored, but no collector said so).
* **Full disk.** A message the disk has no room for is not kept, and counted
  exactly as the bound's drops are (by kind; frame batches per run with their
  frame ranges, in the run's summary), in memory while nothing can be written;
  its ``seq`` is used up, so the collector sees the hole. A reserve file
  (``<outbox>.reserve``, 256 KiB) is given up the first time a run's meta,
  summary or a command's answer does not fit, so that those still do; until
  messages leave the outbox, frame batches and telemetry are then refused
  outright, so that they do not take that room. One warning says it; no
  traceback. The reserve is made again when there is room.
* **Replayed.** A message is sent with ``"replayed": true`` unless it was
  produced while the very connection that sends it was up: it waited here
  through a broker outage, a lost connection or an agent restart.

The hot measurement loop never calls this module: it hands frame batches to a
queue (edgebench.agent.publish.publisher.RunStream) and a writer thread stores them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

from edgebench.agent.errors import UserError
from edgebench.agent.publish import damage
from edgebench.agent.wire import protocol

log = logging.getLogger("edgebench.outbox")

SCHEMA_VERSION = 2

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    lane        INTEGER NOT NULL,
    cls         INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    qos         INTEGER NOT NULL,
    retain      INTEGER NOT NULL,
    session     INTEGER NOT NULL,
    seq         INTEGER NOT NULL UNIQUE,
    run_id      TEXT,
    first_frame INTEGER,
    frames      INTEGER,
    produced_on TEXT,
    created_at  REAL    NOT NULL,
    bytes       INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    sent_at     REAL
);
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox(lane, id);
CREATE INDEX IF NOT EXISTS outbox_evict ON outbox(cls, id);
CREATE INDEX IF NOT EXISTS outbox_run ON outbox(run_id, kind);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS run_drops (
    run_id       TEXT PRIMARY KEY,
    messages     INTEGER NOT NULL,
    frames       INTEGER NOT NULL,
    frame_ranges TEXT    NOT NULL,
    updated_at   REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    rejected_at REAL NOT NULL,
    payload     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS damage (
    at        REAL NOT NULL,
    report    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_commands (
    cmd_id      TEXT PRIMARY KEY,
    received_at REAL NOT NULL
);
"""

#: Send lane of each kind (0 goes first).
LANE = {"info": 0, "cmd_ack": 0, "telemetry": 1, "meta": 1, "frames": 1, "summary": 1}
#: Eviction class of each kind (0 is dropped first).
EVICTION_CLASS = {"telemetry": 0, "info": 0, "frames": 1, "meta": 2, "summary": 2, "cmd_ack": 2}
#: Drop ledgers older than this are forgotten.
RUN_DROPS_KEEP_S = 30 * 86400
#: Messages the broker refused, kept for inspection (the newest).
REJECTED_KEEP = 1000
#: Room kept on the disk for the messages that matter most when it fills (see "Full disk").
RESERVE_BYTES = 256 * 1024
#: With the disk full, try a real write again after this many seconds (someone may have made room).
FULL_RETRY_S = 10.0
#: Command ids remembered to refuse a redelivered command.
SEEN_COMMANDS_KEEP = 1000


class OutboxBusy(UserError):
    """Another process holds this outbox."""

    exit_code = 2


@dataclass
class Row:
    id: int
    kind: str
    topic: str
    qos: int
    retain: bool
    seq: int
    payload: bytes
    bytes: int
    produced_on: str | None


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def _merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    """Merge [first_frame, count] ranges that touch or overlap."""
    out: list[list[int]] = []
    for first, n in sorted(ranges):
        if out and first <= out[-1][0] + out[-1][1]:
            last = out[-1]
            last[1] = max(last[0] + last[1], first + n) - last[0]
        else:
            out.append([first, n])
    return out


def _disk_full(e: BaseException) -> bool:
    """SQLite's "database or disk is full" (ENOSPC, or a file-size limit)."""
    code = getattr(e, "sqlite_errorcode", None)
    return isinstance(e, sqlite3.OperationalError) and (code == 13 or "disk is full" in str(e))


def default_path(device_id: str) -> str:
    from edgebench.agent.publish.state import state_dir

    return str(state_dir() / f"outbox-{device_id}.db")


class Outbox:
    """Thread-safe (one connection, one lock). See the module docstring."""

    def __init__(
        self,
        path: str,
        max_bytes: int = 256 * 1024 * 1024,
        synchronous: str = "full",
        *,
        resend_s: float = 30.0,
        confirm_wait_s: float = 10.0,
    ):
        if synchronous not in ("full", "normal"):
            raise ValueError("synchronous must be full or normal")
        self.path = os.path.abspath(path)
        self.max_bytes = int(max_bytes)
        self.resend_s = float(resend_s)
        self.confirm_wait_s = float(confirm_wait_s)
        self._sync = synchronous.upper()
        d = os.path.dirname(self.path)
        try:
            os.makedirs(d, exist_ok=True)
            self._lockf = open(self.path + ".lock", "a+")
        except OSError as e:
            raise UserError(f"cannot create the outbox {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockf.seek(0)
            holder = self._lockf.read().strip() or "?"
            self._lockf.close()
            raise OutboxBusy(
                f"the outbox {self.path} is in use by another edgebench process (pid {holder}); "
                "stop it, or give this run another device id"
            ) from None
        self._lockf.seek(0)
        opened_before = bool(self._lockf.read().strip())  # every process that opened it wrote its pid
        try:
            self._lockf.seek(0)
            self._lockf.truncate()
            self._lockf.write(str(os.getpid()))
            self._lockf.flush()
        except OSError:  # a full disk: the lock (flock) holds without the pid in it
            pass
        try:
            found = damage.inspect(self.path, opened_before)
        except OSError as e:
            self._release_lock()
            raise UserError(f"cannot check the outbox {self.path}: {e.strerror or e}") from None
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={self._sync}")
            self.db.execute("PRAGMA busy_timeout=5000")
            # Checkpoint every 128 pages (512 KiB) and keep the WAL file at most 1 MiB: at SQLite's
            # default (1000 pages) the WAL alone took 2.7 MB during a 60 s outage at 50 FPS, 18 x the
            # payload it held (tests/benchmarks/bench_ack.py), and filled a small disk first.
            self.db.execute("PRAGMA wal_autocheckpoint=128")
            self.db.execute(f"PRAGMA journal_size_limit={1024 * 1024}")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version == 1:  # before confirmations: nothing was sent and kept
                self.db.execute("ALTER TABLE outbox ADD COLUMN sent_at REAL")
                version = SCHEMA_VERSION
            if version not in (0, SCHEMA_VERSION):
                raise UserError(
                    f"the outbox {self.path} was written by another edgebench version (schema {version}); "
                    "send it with that version or move it away"
                )
            self.db.executescript(SCHEMA_SQL)
            if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            self._release_lock()
            raise UserError(f"cannot open the outbox {self.path}: {e}") from None
        if found is not None:
            self._record_damage(found)
        self._bytes = self.db.execute("SELECT COALESCE(SUM(bytes), 0) FROM outbox").fetchone()[0]
        self._seq = self._counter("seq")
        #: No collector ever confirmed and a message waited confirm_wait_s: PUBACK deletes.
        self._no_collector = self._counter("no_collector") > 0
        self._confirmed_ever = self._counter("confirmed") > 0
        self.last_confirmed_at: float | None = None
        #: Not kept for want of disk space (see "Full disk"): counts by kind, and per run.
        self._lost: dict[str, int] = {}
        self._lost_runs: dict[str, list] = {}
        self._disk_full = False
        self._full_at = 0.0
        self._full_warned = False
        self._make_reserve()
        #: When the broker first acknowledged a message while no collector had ever confirmed one.
        self._waiting_since: float | None = None
        self._inflight: dict[int, Row] = {}
        self._cursor = {0: 0, 1: 0}
        #: The session stamped on new messages (the link sets it at each connect).
        self.session = 0
        #: Token of the connection that is up, or None (see ``begin_connection``).
        self._conn_token: str | None = None
        self.closed = False
        #: Called (without arguments) after every put: how the link is woken up.
        self.listeners: list = []

    # -- small helpers -------------------------------------------------------------
    def _counter(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _bump(self, name: str, by: int = 1) -> None:
        self.db.execute(
            "INSERT INTO counters(name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _record_damage(self, found: dict[str, Any]) -> None:
        """Keep the report; a fresh outbox goes on numbering after the damaged one's last seq."""
        log.warning("outbox %s: %s", self.path, damage.describe(found))
        self.db.execute("INSERT INTO damage(at, report) VALUES (?, ?)", (found["at"], json.dumps(found)))
        if found.get("last_seq") and self._counter("seq") < found["last_seq"]:
            self.db.execute(
                "INSERT INTO counters(name, value) VALUES ('seq', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (found["last_seq"],),
            )

    def damage_reports(self) -> list[dict[str, Any]]:
        """The damaged outboxes this one replaced (newest last, at most 10)."""
        with self._lock:
            if self.closed:
                return []
            rows = self.db.execute("SELECT report FROM damage ORDER BY at DESC LIMIT 10").fetchall()
        return [json.loads(r[0]) for r in reversed(rows)]

    def _release_lock(self) -> None:
        try:
            fcntl.flock(self._lockf, fcntl.LOCK_UN)
            self._lockf.close()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                pass
            self.db.close()
            self._release_lock()
            self.changed.notify_all()

    # -- producing -----------------------------------------------------------------
    def put(
        self,
        kind: str,
        topic: str,
        body: dict[str, Any],
        *,
        retain: bool | None = None,
        qos: int = 1,
        run_id: str | None = None,
        first_frame: int | None = None,
        frames: int | None = None,
    ) -> int:
        """Store one message; stamp its ``session`` and ``seq``; return the seq.

        Past the bound, older messages are dropped (see the module docstring)."""
        if kind not in LANE:
            raise ValueError(f"{kind!r} messages do not go through the outbox")
        if retain is None:
            retain = kind in protocol.RETAINED_KINDS
        with self._lock:
            if self.closed:
                raise RuntimeError("the outbox is closed")
            seq = self._seq + 1
            if self._disk_full and time.monotonic() - self._full_at > FULL_RETRY_S:
                self._room_again()  # someone may have made room: try again
            if self._disk_full and EVICTION_CLASS[kind] < 2:  # keep the room for what matters most
                self._not_kept(kind, seq, run_id, first_frame, frames)
                return seq
            body["session"] = self.session
            body["seq"] = seq
            if kind == "summary" and run_id is not None:
                body["dropped"] = self._run_drops(run_id)
            payload = _dumps(body)
            now = time.time()
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT INTO outbox(lane, cls, kind, topic, qos, retain, session, seq, run_id, first_frame,"
                    " frames, produced_on, created_at, bytes, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        LANE[kind],
                        EVICTION_CLASS[kind],
                        kind,
                        topic,
                        qos,
                        int(retain),
                        self.session,
                        seq,
                        run_id,
                        first_frame,
                        frames,
                        self._conn_token,
                        now,
                        len(payload),
                        payload,
                    ),
                )
                cur.execute(
                    "INSERT INTO counters(name, value) VALUES ('seq', ?)"
                    " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (seq,),
                )
                self._bytes += len(payload)
                if self._bytes > self.max_bytes:
                    self._evict(cur, now)
                cur.execute("COMMIT")
            except BaseException as e:
                if self.db.in_transaction:
                    cur.execute("ROLLBACK")
                self._bytes = self.db.execute("SELECT COALESCE(SUM(bytes), 0) FROM outbox").fetchone()[0]
                if not _disk_full(e):
                    raise
                return self._full(
                    kind,
                    topic,
                    body,
                    seq,
                    dict(retain=retain, qos=qos, run_id=run_id, first_frame=first_frame, frames=frames),
                )
            self._seq = seq
            self.changed.notify_all()
        for wake in self.listeners:
            wake()
        return seq

    def _full(self, kind: str, topic: str, body: dict[str, Any], seq: int, kw: dict[str, Any]) -> int:
        """The disk had no room for this message: give up the reserve once for a message
        that matters most and try again, else count it as not kept."""
        self._disk_full = True
        self._full_at = time.monotonic()
        if not self._full_warned:
            self._full_warned = True
            log.warning(
                "the disk holding the outbox %s is full: messages it cannot keep are counted and reported "
                "(frames per run in the run's summary) until there is room again",
                self.path,
            )
        if EVICTION_CLASS[kind] == 2 and self._drop_reserve():
            return self.put(kind, topic, body, **kw)
        self._not_kept(kind, seq, kw["run_id"], kw["first_frame"], kw["frames"])
        return seq

    def _not_kept(self, kind: str, seq: int, run_id: str | None, first: int | None, nframes: int | None) -> None:
        self._seq = seq  # used up: the collector sees the hole
        self._lost[kind] = self._lost.get(kind, 0) + 1
        if kind == "frames" and run_id is not None:
            r = self._lost_runs.setdefault(run_id, [0, 0, []])
            r[0] += 1
            r[1] += nframes or 0
            r[2] = _merge_ranges(r[2] + [[first or 0, nframes or 0]])

    def _write_failed(self, e: BaseException) -> None:
        """Roll back; a full disk is noted (the write is tried again later), anything else raised."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        if not _disk_full(e):
            raise e
        if not self._disk_full:
            self._disk_full = True
            self._full_at = time.monotonic()
            log.warning("the disk holding the outbox %s is full: bookkeeping waits for room", self.path)

    def _reserve_path(self) -> str:
        return self.path + ".reserve"

    def _make_reserve(self) -> None:
        try:
            if not os.path.exists(self._reserve_path()):
                with open(self._reserve_path(), "wb") as f:
                    f.write(b"\0" * RESERVE_BYTES)
        except OSError:
            try:
                os.unlink(self._reserve_path())
            except OSError:
                pass

    def _drop_reserve(self) -> bool:
        try:
            os.unlink(self._reserve_path())
            return True
        except OSError:
            return False

    def _room_again(self) -> None:
        """Messages left the outbox: their pages are free for new ones."""
        if self._disk_full:
            self._disk_full = False
            self._make_reserve()

    def _run_drops(self, run_id: str) -> dict[str, Any]:
        """What the bound dropped of a run (stored) plus what a full disk did not keep."""
        d = self._run_drops_stored(run_id)
        lost = self._lost_runs.get(run_id)
        if lost:
            d = {
                "messages": d["messages"] + lost[0],
                "frames": d["frames"] + lost[1],
                "frame_ranges": _merge_ranges(d["frame_ranges"] + lost[2]),
            }
        return d

    def _run_drops_stored(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT messages, frames, frame_ranges FROM run_drops WHERE run_id = ?", (run_id,)
        ).fetchone()
        if not row:
            return {"messages": 0, "frames": 0, "frame_ranges": []}
        return {"messages": row[0], "frames": row[1], "frame_ranges": json.loads(row[2])}

    def _evict(self, cur: sqlite3.Cursor, now: float) -> None:
        """Drop the oldest messages of the lowest class until under the bound."""
        runs: dict[str, list] = {}
        released = 0
        while self._bytes > self.max_bytes:
            exclude = list(self._inflight)
            where = f"WHERE id NOT IN ({','.join('?' * len(exclude))})" if exclude else ""
            victims = cur.execute(
                f"SELECT id, kind, bytes, run_id, first_frame, frames, sent_at FROM outbox {where}"
                " ORDER BY sent_at IS NULL, cls, id LIMIT 256",
                exclude,
            ).fetchall()
            if not victims:
                break  # everything left is in flight
            for vid, kind, nbytes, run_id, first, nframes, sent_at in victims:
                if self._bytes <= self.max_bytes:
                    break
                cur.execute("DELETE FROM outbox WHERE id = ?", (vid,))
                self._bytes -= nbytes
                if sent_at is not None:  # the broker has it; no collector confirmed it yet
                    self._bump("released_unconfirmed")
                    released += 1
                    continue
                self._bump(f"dropped:{kind}")
                if kind == "frames" and run_id is not None:
                    self._bump("dropped_frames", nframes or 0)
                    r = runs.setdefault(run_id, [0, 0, []])
                    r[0] += 1
                    r[1] += nframes or 0
                    r[2].append([first or 0, nframes or 0])
        for run_id, (msgs, nframes, ranges) in runs.items():
            old = self._run_drops_stored(run_id)
            merged = {
                "messages": old["messages"] + msgs,
                "frames": old["frames"] + nframes,
                "frame_ranges": _merge_ranges(old["frame_ranges"] + ranges),
            }
            cur.execute(
                "INSERT INTO run_drops(run_id, messages, frames, frame_ranges, updated_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT(run_id) DO UPDATE SET messages = excluded.messages, frames = excluded.frames,"
                " frame_ranges = excluded.frame_ranges, updated_at = excluded.updated_at",
                (run_id, merged["messages"], merged["frames"], json.dumps(merged["frame_ranges"]), now),
            )
            # A summary still queued learns what its run lost since it was written.
            for sid, spayload in cur.execute(
                "SELECT id, payload FROM outbox WHERE run_id = ? AND kind = 'summary'", (run_id,)
            ).fetchall():
                if sid in self._inflight:
                    continue
                body = json.loads(spayload)
                body["dropped"] = merged
                new = _dumps(body)
                cur.execute("UPDATE outbox SET payload = ?, bytes = ? WHERE id = ?", (new, len(new), sid))
                self._bytes += len(new) - len(spayload)
        cur.execute("DELETE FROM run_drops WHERE updated_at < ?", (now - RUN_DROPS_KEEP_S,))
        if released:
            log.warning(
                "outbox %s is full (%d bytes max): let go of %d message(s) the broker acknowledged but no "
                "collector has confirmed yet",
                self.path,
                self.max_bytes,
                released,
            )
        if runs:
            log.warning(
                "outbox %s is full (%d bytes max): dropped frame batches of run(s) %s",
                self.path,
                self.max_bytes,
                ", ".join(sorted(runs)),
            )

    # -- sending (the link's side) -------------------------------------------------
    def begin_connection(self, token: str) -> None:
        """A connection is up: everything not yet acknowledged is to be sent again,
        and messages produced from now on count as live on ``token``."""
        with self._lock:
            self._inflight.clear()
            self._cursor = {0: 0, 1: 0}
            self._conn_token = token
            self.changed.notify_all()

    def end_connection(self) -> None:
        """The connection is gone: nothing is in flight any more."""
        with self._lock:
            self._inflight.clear()
            self._cursor = {0: 0, 1: 0}
            self._conn_token = None
            self.changed.notify_all()

    def claim(self, limit: int) -> list[Row]:
        """The next messages to send (control lane first, each lane in order),
        marked in flight until ``ack``/``release``."""
        out: list[Row] = []
        with self._lock:
            if self.closed:
                return out
            for lane in (0, 1):
                while len(out) < limit:
                    rows = self.db.execute(
                        "SELECT id, kind, topic, qos, retain, seq, payload, bytes, produced_on FROM outbox"
                        " WHERE lane = ? AND id > ? AND sent_at IS NULL ORDER BY id LIMIT ?",
                        (lane, self._cursor[lane], limit - len(out) + len(self._inflight)),
                    ).fetchall()
                    if not rows:
                        break
                    for r in rows:
                        self._cursor[lane] = r[0]
                        if r[0] in self._inflight:
                            continue
                        row = Row(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8])
                        self._inflight[row.id] = row
                        out.append(row)
                        if len(out) >= limit:
                            break
        return out

    def is_replay(self, row: Row) -> bool:
        return row.produced_on is None or row.produced_on != self._conn_token

    @property
    def keeping(self) -> bool:
        """True while a message the broker acknowledged stays until a collector confirms it."""
        return not self._no_collector

    def ack(self, ids: Iterable[int]) -> int:
        """The broker acknowledged these: keep them until confirmed (``keeping``), else
        delete them. Returns how many there were."""
        ids = [i for i in ids]
        if not ids:
            return 0
        with self._lock:
            if self.closed:
                return 0
            rows = [self._inflight.pop(i) for i in ids if i in self._inflight]
            if not rows:
                return 0
            cur = self.db.cursor()
            # A lost delete only means a resend the collector drops as a duplicate:
            # no need to sync the disk for it.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("BEGIN IMMEDIATE")
            try:
                if self.keeping:
                    now = time.time()
                    if not self._confirmed_ever and self._waiting_since is None:
                        self._waiting_since = now
                    cur.executemany("UPDATE outbox SET sent_at = ? WHERE id = ?", [(now, r.id) for r in rows])
                else:
                    cur.executemany("DELETE FROM outbox WHERE id = ?", [(r.id,) for r in rows])
                self._bump("acked", len(rows))
                replays = sum(1 for r in rows if self.is_replay(r))
                if replays:
                    self._bump("replayed", replays)
                cur.execute("COMMIT")
            except BaseException as e:
                self._write_failed(e)
                return 0
            finally:
                cur.execute(f"PRAGMA synchronous={self._sync}")
            if not self.keeping:
                self._bytes -= sum(r.bytes for r in rows)
                self._room_again()
            self.changed.notify_all()
            return len(rows)

    # -- confirmations (a collector's ``ack``) -------------------------------------------
    def confirm(self, ranges: Iterable[Iterable[int]]) -> int:
        """A collector stored these seqs ([first, last] ranges): they leave the outbox,
        sent or not, in flight or not. Returns how many messages left."""
        ranges = [(int(a), int(b)) for a, b in ranges]
        with self._lock:
            if self.closed:
                return 0
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                gone = []
                for a, b in ranges:
                    gone += cur.execute(
                        "SELECT id, bytes, created_at, seq FROM outbox WHERE seq BETWEEN ? AND ?", (a, b)
                    ).fetchall()
                cur.executemany("DELETE FROM outbox WHERE id = ?", [(g[0],) for g in gone])
                self._bump("confirmed", len(gone))
                if self._no_collector:
                    cur.execute("UPDATE counters SET value = 0 WHERE name = 'no_collector'")
                cur.execute("COMMIT")
            except BaseException as e:
                self._write_failed(e)
                return 0
            if self._no_collector:
                log.info("a collector confirms this device's messages: they stay in the outbox until confirmed")
            self._no_collector = False
            self._confirmed_ever = True
            self.last_confirmed_at = time.time()
            for i, *_ in gone:
                self._inflight.pop(i, None)
            self._bytes -= sum(g[1] for g in gone)
            if gone:
                self._room_again()
            waited = [g for g in gone if self.last_confirmed_at - g[2] > self.resend_s]
            if waited:
                log.warning(
                    "a collector confirmed %d message(s) (seq %d-%d) that had waited up to %.0f s",
                    len(waited),
                    min(g[3] for g in waited),
                    max(g[3] for g in waited),
                    self.last_confirmed_at - min(g[2] for g in waited),
                )
            self.changed.notify_all()
            return len(gone)

    def tick(self, now: float | None = None) -> int:
        """Called by the link while connected: with no collector ever, give up waiting
        after ``confirm_wait_s``; else queue again what waited ``resend_s`` unconfirmed.
        Returns how many messages were queued again."""
        now = time.time() if now is None else now
        with self._lock:
            if self.closed or not self.keeping:
                return 0
            oldest = self.db.execute("SELECT MIN(sent_at) FROM outbox WHERE sent_at IS NOT NULL").fetchone()[0]
            if oldest is None:
                return 0
            since = self._waiting_since if self._waiting_since is not None else oldest
            if not self._confirmed_ever and now - since > self.confirm_wait_s:
                self._give_up_confirmation()
                return 0
            if now - oldest <= self.resend_s:
                return 0
            stale = self.db.execute(
                "SELECT lane, MIN(id), COUNT(*), MIN(seq) FROM outbox WHERE sent_at < ? GROUP BY lane",
                (now - self.resend_s,),
            ).fetchall()
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "UPDATE outbox SET sent_at = NULL, produced_on = NULL WHERE sent_at < ?", (now - self.resend_s,)
                )
                n = sum(r[2] for r in stale)
                self._bump("resent", n)
                cur.execute("COMMIT")
            except BaseException as e:
                self._write_failed(e)
                return 0
            for lane, first_id, _, _ in stale:
                self._cursor[lane] = min(self._cursor[lane], first_id - 1)
            log.warning(
                "sending %d message(s) again (from seq %d): no collector confirmed them within %g s",
                n,
                min(r[3] for r in stale),
                self.resend_s,
            )
            self.changed.notify_all()
        for wake in self.listeners:
            wake()
        return n

    def _give_up_confirmation(self) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            gone = cur.execute(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox WHERE sent_at IS NOT NULL"
            ).fetchone()
            cur.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL")
            cur.execute(
                "INSERT INTO counters(name, value) VALUES ('no_collector', 1) ON CONFLICT(name) DO UPDATE SET value = 1"
            )
            cur.execute("COMMIT")
        except BaseException as e:
            self._write_failed(e)
            return
        self._bytes -= gone[1]
        self._no_collector = True
        log.warning(
            "no collector has ever confirmed a message of this device (waited %g s): messages now leave the "
            "outbox %s when the broker acknowledges them, as without a collector; the first confirmation "
            "switches this back",
            self.confirm_wait_s,
            self.path,
        )
        self.changed.notify_all()

    def unconfirmed(self) -> int:
        """Messages the broker acknowledged that no collector has confirmed yet."""
        with self._lock:
            if self.closed:
                return 0
            return self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").fetchone()[0]

    def unsent(self) -> int:
        """Messages the broker has not acknowledged yet."""
        with self._lock:
            if self.closed:
                return 0
            return self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]

    def wait_sent(self, timeout: float) -> bool:
        """Wait until the broker acknowledged everything queued (confirmed or not)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.unsent():
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return False
                self.changed.wait(min(left, 0.5))
        return True

    def reject(self, row_id: int, reason: str) -> None:
        """The broker refused this message (PUBACK reason >= 0x80): keep it aside,
        never resend it."""
        with self._lock:
            row = self._inflight.pop(row_id, None)
            if row is None or self.closed:
                return
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT OR REPLACE INTO rejected(seq, kind, topic, reason, rejected_at, payload) VALUES (?,?,?,?,?,?)",
                    (row.seq, row.kind, row.topic, reason, time.time(), row.payload),
                )
                cur.execute("DELETE FROM outbox WHERE id = ?", (row.id,))
                cur.execute(
                    "DELETE FROM rejected WHERE seq NOT IN (SELECT seq FROM rejected ORDER BY seq DESC LIMIT ?)",
                    (REJECTED_KEEP,),
                )
                self._bump("rejected")
                cur.execute("COMMIT")
            except BaseException as e:
                self._write_failed(e)
                return
            self._bytes -= row.bytes
            self.changed.notify_all()

    def release(self, ids: Iterable[int]) -> None:
        """Put in-flight messages back in the queue (to be sent again)."""
        with self._lock:
            for i in ids:
                row = self._inflight.pop(i, None)
                if row is not None:
                    lane = LANE[row.kind]
                    self._cursor[lane] = min(self._cursor[lane], row.id - 1)
            self.changed.notify_all()

    # -- commands seen (a redelivered command must not run twice) ---------------------
    def first_sight(self, cmd_id: str) -> bool:
        """Record a command id; False if it was seen before."""
        with self._lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO seen_commands(cmd_id, received_at) VALUES (?, ?)", (cmd_id, time.time())
            )
            if cur.rowcount == 0:
                return False
            self.db.execute(
                "DELETE FROM seen_commands WHERE cmd_id NOT IN"
                " (SELECT cmd_id FROM seen_commands ORDER BY received_at DESC LIMIT ?)",
                (SEEN_COMMANDS_KEEP,),
            )
            return True

    # -- reading -------------------------------------------------------------------
    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def pending(self) -> int:
        """Messages not yet confirmed (queued, in flight, or acknowledged by the broker only)."""
        with self._lock:
            if self.closed:
                return 0
            return self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.pending():
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return False
                self.changed.wait(min(left, 0.5))
        return True

    def run_drops(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            return self._run_drops(run_id)

    def stats(self) -> dict[str, Any]:
        """Queued now, and cumulative counters since the outbox file was created."""
        with self._lock:
            if self.closed:
                return {}
            q = self.db.execute("SELECT COUNT(*), COALESCE(SUM(frames), 0) FROM outbox").fetchone()
            u = self.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(frames), 0) FROM outbox WHERE sent_at IS NOT NULL"
            ).fetchone()
            counters = dict(self.db.execute("SELECT name, value FROM counters").fetchall())
        by_kind = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("dropped:")}
        return {
            "queued_messages": q[0],
            "queued_frames": q[1],
            "queued_bytes": self._bytes,
            "max_bytes": self.max_bytes,
            "last_seq": counters.get("seq", 0),
            "acked_messages": counters.get("acked", 0),
            "replayed_messages": counters.get("replayed", 0),
            "rejected_messages": counters.get("rejected", 0),
            "dropped_messages": sum(by_kind.values()) + sum(self._lost.values()),
            "dropped_frames": counters.get("dropped_frames", 0) + sum(r[1] for r in self._lost_runs.values()),
            "dropped_by_kind": {k: by_kind.get(k, 0) + self._lost.get(k, 0) for k in {*by_kind, *self._lost}},
            "not_kept_disk_full": dict(self._lost),
            "unconfirmed_messages": u[0],
            "unconfirmed_frames": u[1],
            "confirmed_messages": counters.get("confirmed", 0),
            "resent_messages": counters.get("resent", 0),
            "released_unconfirmed": counters.get("released_unconfirmed", 0),
            "confirmation": self.confirmation_state(),
            **({"damage": damaged} if (damaged := self.damage_reports()) else {}),
        }

    def confirmation_state(self) -> str:
        """``confirmed`` (a collector confirms), ``waiting`` (none yet, still waiting) or
        ``broker-only`` (no collector ever confirmed: the broker's PUBACK deletes)."""
        if self._no_collector:
            return "broker-only"
        return "confirmed" if self._confirmed_ever else "waiting"
