"""A damaged outbox, found when it is opened: moved aside, reported, replaced.

An outbox file can be damaged behind the agent's back (a bad SD card, a power cut on
a file system that lies about fsync, a person's ``truncate``). Left alone, random
bytes inside it made every send fail (a reconnect loop with tracebacks that never
sent anything), and a file truncated to 0 bytes opened as a valid empty outbox: what
it held was lost without a word. So before opening it:

* a file of 0 bytes, or none at all, beside a lock file an earlier process wrote its
  pid into (every process that opened the outbox did): the outbox was emptied or
  removed; what it held is unknown;
* a file SQLite cannot read, or whose ``PRAGMA quick_check`` is not ``ok``: moved aside
  (with its WAL) to ``<outbox>.damaged-<UTC time>``, what can still be read of it
  counted (messages, frames, the highest seq), and a fresh outbox starts.

Either way the report is kept in the fresh outbox (table ``damage``), logged as one
warning, and sent to the collector in the device's ``info`` (``outbox_damage``) and every
``telemetry.outbox`` (``damage``). ``quick_check`` reads the whole file once per open:
about a second per 100 MB on an SD card, at the start of a run or of the service.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any


def inspect(path: str, opened_before: bool) -> dict[str, Any] | None:
    """The damage found in the outbox file at ``path`` (moved aside), or None if it is sound."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        if not opened_before:
            return None  # a new outbox
        what = "removed" if not os.path.exists(path) else "emptied (0 bytes)"
        return _report(f"the outbox file was {what} since it was last used", None, {})
    problem = _check(path)
    if problem is None:
        return None
    salvage = _salvage(path)
    moved = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, moved + suffix)
    return _report(problem, moved, salvage)


def _report(reason: str, moved_to: str | None, salvage: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": time.time(),
        "reason": reason,
        "moved_to": moved_to,
        "messages": salvage.get("messages"),
        "frames": salvage.get("frames"),
        "last_seq": salvage.get("last_seq"),
    }


def _check(path: str) -> str | None:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("PRAGMA quick_check").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        return f"SQLite cannot read it ({e})"
    if rows != [("ok",)]:
        return f"SQLite's quick_check found damage ({'; '.join(str(r[0]) for r in rows[:3])[:200]})"
    return None


def _salvage(path: str) -> dict[str, Any]:
    """What can still be read of a damaged outbox (each figure None if not)."""
    out: dict[str, Any] = {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError:
        return out
    for key, sql in (
        ("messages", "SELECT COUNT(*) FROM outbox"),
        ("frames", "SELECT COALESCE(SUM(frames), 0) FROM outbox"),
        ("last_seq", "SELECT value FROM counters WHERE name = 'seq'"),
    ):
        try:
            row = db.execute(sql).fetchone()
            out[key] = int(row[0]) if row else None
        except (sqlite3.DatabaseError, TypeError, ValueError):
            out[key] = None
    db.close()
    return out


def describe(d: dict[str, Any]) -> str:
    """One line for the log."""
    lost = (
        f"{d['messages']} message(s) ({d['frames']} frames) it held are lost"
        if d.get("messages") is not None
        else "what it held is lost (how much is unknown)"
    )
    where = f"; moved aside to {d['moved_to']}" if d.get("moved_to") else ""
    return f"{d['reason']}{where}; a fresh outbox starts; {lost}"
