"""Quarantine: rejected messages kept aside with a reason code and a one-line reason, so a
person can see what a device sent and why it was refused. Payloads are cut to
QUARANTINE_KEEP_BYTES; the retention purge deletes them with the raw frames.

Two sources: messages the ingest step rejected (bad topic, not JSON, invalid, ...) and
messages the apply step finds under a (session, seq) another message already holds
(``seq_reused``: the device's session counter went back).
"""

from __future__ import annotations

import json

from edgebench.collector.ingest.validate import Message

#: Stored quarantined payloads are cut to this many bytes.
QUARANTINE_KEEP_BYTES = 64 * 1024

_KEPT = "SELECT 1 FROM quarantine WHERE topic = ? AND payload = ? LIMIT 1"
_INSERT = "INSERT INTO quarantine(received_at, topic, code, reason, payload) VALUES (?,?,?,?,?)"


def _text(s: str) -> str:
    """Text any database holds: PostgreSQL text cannot contain NUL, and a quarantine must
    keep whatever came (the payload itself is kept as bytes)."""
    return s.replace("\x00", "\\x00")


def keep(store, cur, items: list[tuple[float, str, str, str, bytes]], once: bool = False) -> int:
    """Rows for rejected messages: (received_at, topic, code, reason, payload). ``once``: not
    when the same payload on the same topic is already kept (a retained message, delivered
    again on every restart). Returns how many rows were added."""
    added = 0
    for t, topic, code, reason, payload in items:
        row = (_text(topic[:1024]), bytes(payload[:QUARANTINE_KEEP_BYTES]))
        if once and cur.execute(store.sql(_KEPT), row).fetchall():
            continue
        cur.execute(store.sql(_INSERT), (t, row[0], code, _text(reason[:1000]), row[1]))
        added += 1
    return added


def keep_reused(store, cur, reused: list[tuple[Message, str]]) -> int:
    """Rows for messages under a (session, seq) already used by ``what``; returns how many."""
    for m, what in reused:
        cur.execute(
            store.sql(_INSERT),
            (
                m.received_at,
                m.topic,
                "seq_reused",
                f"(session {m.body['session']}, seq {m.body['seq']}) already used by {what}: the device's session"
                " counter went back (lost state?)",
                json.dumps(m.body).encode()[:QUARANTINE_KEEP_BYTES],
            ),
        )
    return len(reused)
