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

_INSERT = "INSERT INTO quarantine(received_at, topic, code, reason, payload) VALUES (?,?,?,?,?)"


def keep(store, cur, items: list[tuple[float, str, str, str, bytes]]) -> None:
    """Rows for rejected messages: (received_at, topic, code, reason, payload)."""
    for t, topic, code, reason, payload in items:
        cur.execute(store.sql(_INSERT), (t, topic[:1024], code, reason[:1000], bytes(payload[:QUARANTINE_KEEP_BYTES])))


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
