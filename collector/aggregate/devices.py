"""Devices: each one's state (online/stopped/offline, from its retained status), when it was
last heard from, its agent and board, its runs, and data quality over its sessions; and the
rejected messages in quarantine, by reason."""

from __future__ import annotations

import json
import time
from typing import Any

from edgebench.collector.aggregate.common import rounded

_DEVICE_QUERY = (
    "SELECT d.device_id, d.state, d.session, d.state_at, d.agent_version, d.inventory, d.first_seen,"
    " d.last_seen, (SELECT COUNT(*) FROM runs r WHERE r.device_id = d.device_id),"
    " (SELECT COUNT(*) FROM sessions s WHERE s.device_id = d.device_id),"
    # summed as doubles: a device's sessions may each span up to 2^53 seq numbers, and
    # their sum must not overflow a 64-bit integer (SQLite's SUM raises, PostgreSQL's would not)
    " (SELECT SUM(CAST(CASE WHEN s.last_seq - s.first_seq + 1 > s.received"
    " THEN s.last_seq - s.first_seq + 1 - s.received ELSE 0 END AS DOUBLE PRECISION))"
    " FROM sessions s WHERE s.device_id = d.device_id),"
    " (SELECT SUM(s.duplicates) FROM sessions s WHERE s.device_id = d.device_id),"
    " (SELECT SUM(s.replayed) FROM sessions s WHERE s.device_id = d.device_id)"
    " FROM devices d ORDER BY d.device_id"
)


def device_rows(store, now: float | None = None) -> list[dict[str, Any]]:
    """Every device: state (online/stopped/offline, from its retained status), last seen,
    agent version, runs, and data quality over its sessions (seq gaps, duplicates, replayed)."""
    now = time.time() if now is None else now
    confirmation = _confirmation(store)
    rows = []
    for dev, state, session, state_at, agent, inv, first, last, runs, nsess, gaps, dups, repl in store.query(
        _DEVICE_QUERY
    ):
        inventory = _inventory(inv)
        rows.append(
            {
                "device_id": dev,
                "state": state or "unknown",
                "session": session,
                "agent_version": agent,
                "board": board_of(inventory),
                "last_seen": last,
                "last_seen_age_s": rounded(now - last, 1) if last else None,
                "state_since": state_at,
                "first_seen": first,
                "runs": int(runs or 0),
                "sessions": int(nsess or 0),
                "seq_gaps": int(gaps or 0),
                "duplicates": int(dups or 0),
                "replayed": int(repl or 0),
                "inventory": inventory,
                **confirmation.get(dev, _NO_CONFIRMATION),
            }
        )
    return rows


_NO_CONFIRMATION = {
    "stored_seq": None,
    "waiting_on_device": None,
    "unconfirmed_on_device": None,
    "confirmation": None,
    "outbox_damage": 0,
}


def _confirmation(store) -> dict[str, dict[str, Any]]:
    """Per device: the highest seq stored here (what collectors confirmed to it), and, from its
    last telemetry, what waits in its outbox (queued, of which sent but not yet confirmed) and
    how it sees confirmation (confirmed, waiting for a first one, broker-only), and how many
    damaged outboxes it replaced (each one lost what it held)."""
    out: dict[str, dict[str, Any]] = {}
    for dev, seq in store.query("SELECT device_id, MAX(last_seq) FROM sessions GROUP BY device_id"):
        out.setdefault(dev, dict(_NO_CONFIRMATION))["stored_seq"] = int(seq) if seq is not None else None
    for dev, text in store.query("SELECT device_id, telemetry FROM devices WHERE telemetry IS NOT NULL"):
        ob = _inventory(text).get("outbox")
        if not isinstance(ob, dict):
            continue
        row = out.setdefault(dev, dict(_NO_CONFIRMATION))
        for key, field in (("waiting_on_device", "queued_messages"), ("unconfirmed_on_device", "unconfirmed_messages")):
            v = ob.get(field)
            row[key] = v if type(v) is int and v >= 0 else None
        c = ob.get("confirmation")
        row["confirmation"] = c if c in ("confirmed", "waiting", "broker-only") else None
        damage = ob.get("damage")
        row["outbox_damage"] = len(damage) if isinstance(damage, list) else 0
    return out


def _inventory(text: str | None) -> dict[str, Any]:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def board_of(inventory: dict[str, Any]) -> Any:
    """The board an inventory names: its model, board or machine."""
    board = inventory.get("model") or inventory.get("board") or inventory.get("machine")
    if isinstance(board, dict):
        board = board.get("model") or board.get("name")
    return board


def quarantine_counts(store) -> dict[str, int]:
    return {
        code: int(n) for code, n in store.query("SELECT code, COUNT(*) FROM quarantine GROUP BY code ORDER BY code")
    }
