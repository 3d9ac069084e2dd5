"""What is already stored: the dedup of a batch against itself and against the database.

Every data message carries a (device_id, session, seq) key. Frame batches keep theirs in
``frame_batches`` (unique there); every other data message's key is a row of ``messages``.
A message whose key is already stored is either the same message again (a duplicate:
QoS 1 redelivery, a replay from the device's spool, a retained message on resubscribe) or
another message under a used key: the device's session counter went back (lost state?),
which is quarantined as ``seq_reused``. Two collectors sharing a database may race for the
same key: the INSERT ... ON CONFLICT DO NOTHING RETURNING tells which one stored it.

Frame batches are also deduplicated by content, (device_id, run_id, first_frame): the same
frames resent under a new (session, seq) are stored once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from edgebench.collector.ingest.validate import Message
from edgebench.collector.store.fields import num
from edgebench.collector.store.rows import frame_row

#: ``messages`` columns of a stored data message's key.
MESSAGE_COLUMNS = ["device_id", "session", "seq", "kind", "run_id", "replayed", "ts", "received_at", "stored_at"]
KEY_COLUMNS = ["device_id", "session", "seq"]
#: seqs per lookup statement
_LOOKUP_CHUNK = 500


def ident(m: Message) -> tuple:
    """What a key holds: (kind, run_id, first_frame of a frame batch)."""
    return (m.kind, m.run_id, m.body.get("first_frame") if m.kind == "frames" else None)


def key(m: Message) -> tuple:
    return (m.device_id, m.body["session"], m.body["seq"])


@dataclass
class Sorted:
    """A batch sorted by what is already known about each message."""

    #: status, and info without seq: idempotent updates, stored as they come
    plain: list[Message] = field(default_factory=list)
    #: data messages whose key was not seen before in this batch
    candidates: list[Message] = field(default_factory=list)
    #: the same message again
    duplicates: list[Message] = field(default_factory=list)
    #: another message under a used key, with what holds the key
    reused: list[tuple[Message, str]] = field(default_factory=list)


def sort_batch(messages: list[Message]) -> Sorted:
    """Sort a batch against itself: the first message under each key is a candidate."""
    out = Sorted()
    seen: dict[tuple, Message] = {}
    for m in messages:
        if m.kind == "status" or not isinstance(m.body.get("seq"), int):
            out.plain.append(m)
            continue
        prev = seen.get(key(m))
        if prev is None:
            seen[key(m)] = m
            out.candidates.append(m)
        elif ident(prev) == ident(m):
            out.duplicates.append(m)
        else:
            out.reused.append((m, f"a {prev.kind} message of run {prev.run_id!r} in the same batch"))
    return out


def stored_keys(store, cur, msgs: list[Message]) -> dict[tuple, tuple]:
    """(device, session, seq) of msgs already stored -> what holds it: (kind, run_id, first_frame)."""
    by_sess: dict[tuple, list[int]] = defaultdict(list)
    for m in msgs:
        by_sess[(m.device_id, m.body["session"])].append(m.body["seq"])
    out: dict[tuple, tuple] = {}
    for (dev, session), seqs in sorted(by_sess.items()):
        for i in range(0, len(seqs), _LOOKUP_CHUNK):
            part = seqs[i : i + _LOOKUP_CHUNK]
            marks = ", ".join("?" * len(part))
            where = f"WHERE device_id = ? AND session = ? AND seq IN ({marks})"
            for seq, kind, run_id in cur.execute(
                store.sql(f"SELECT seq, kind, run_id FROM messages {where}"), (dev, session, *part)
            ).fetchall():
                out[(dev, session, seq)] = (kind, run_id, None)
            for seq, run_id, first in cur.execute(
                store.sql(f"SELECT seq, run_id, first_frame FROM {store.frame_keys_table} {where}"),
                (dev, session, *part),
            ).fetchall():
                out[(dev, session, seq)] = ("frames", run_id, first)
    return out


def against_stored(store, cur, batch: Sorted) -> tuple[list[Message], list[Message]]:
    """Sort the candidates against the keys already stored: duplicates and reused keys go
    to ``batch``; returns the new (frame batches, other data messages)."""
    old = stored_keys(store, cur, batch.candidates)
    new_frames: list[Message] = []
    new_other: list[Message] = []
    for m in batch.candidates:
        o = old.get(key(m))
        if o is None:
            (new_frames if m.kind == "frames" else new_other).append(m)
        elif o == ident(m):
            batch.duplicates.append(m)
        else:
            batch.reused.append((m, f"a {o[0]} message of run {o[1]!r}"))
    return new_frames, new_other


def claim_keys(store, cur, msgs: list[Message], now: float, batch: Sorted) -> list[Message]:
    """Insert the keys of new non-frame data messages into ``messages``; returns those this
    transaction stored. One that did not insert was stored meanwhile by another collector:
    a duplicate."""
    if not msgs:
        return []
    rows = sorted(
        (
            m.device_id,
            m.body["session"],
            m.body["seq"],
            m.kind,
            m.run_id,
            int(bool(m.body.get("replayed"))),
            num(m.body.get("ts")),
            m.received_at,
            now,
        )
        for m in msgs
    )
    new = store.insert_returning(cur, "messages", MESSAGE_COLUMNS, rows, KEY_COLUMNS)
    claimed: list[Message] = []
    for m in msgs:
        (claimed if key(m) in new else batch.duplicates).append(m)
    return claimed


@dataclass
class FramesStored:
    #: inserted by this transaction
    stored: list[Message]
    #: the same frames already stored (or twice in this batch) under another (session, seq)
    content_duplicates: list[Message]
    #: the same (session, seq) stored meanwhile by another collector
    raced: list[Message]


def store_frames(store, cur, frames: list[Message], now: float) -> FramesStored:
    """Insert frame batches (one row each, the per-frame latencies as arrays), once per
    (device, run, first_frame), and tell what happened to each."""
    by_content: dict[tuple, Message] = {}
    content_dups: list[Message] = []
    for m in sorted(frames, key=lambda m: (m.device_id, m.run_id, m.body["first_frame"])):
        k = (m.device_id, m.run_id, m.body["first_frame"])
        if k in by_content:
            content_dups.append(m)
        else:
            by_content[k] = m
    rows = [frame_row(store, m, now) for m in by_content.values()]
    new = store.insert_frames(cur, rows)
    out = FramesStored([], content_dups, [])
    for m in by_content.values():
        if key(m) in new:
            out.stored.append(m)
            continue
        got = cur.execute(
            store.sql(
                f"SELECT run_id, first_frame FROM {store.frame_keys_table}"
                " WHERE device_id = ? AND session = ? AND seq = ?"
            ),
            key(m),
        ).fetchone()
        same = got is not None and tuple(got) == (m.run_id, m.body["first_frame"])
        (out.raced if same else out.content_duplicates).append(m)
    store.add_rollups(cur, out.stored)
    return out
