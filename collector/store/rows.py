"""The rows each kind of message writes, inside the apply step's transaction.

Every writer takes the store (for its dialect: placeholders, array encoding), the open
cursor and the message; none commits. Devices: a status sets the state (never a newer
session's from an older one), info the agent version and inventory, telemetry the last
reading. Runs: meta fills the columns still empty (the summary is authoritative), a summary
sets its figures (fields.py). Command acks get a row each; frame batches one row per batch
with the per-frame latencies as arrays.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from edgebench.agent.wire.protocol import RESULT_SCHEMA
from edgebench.collector.ingest.validate import Message
from edgebench.collector.store.fields import KIND_OF_SCHEMA, num, run_fields, summary_fields, telemetry_fields
from edgebench.collector.store.schema import ALL_STAGES, FRAME_COLUMNS

#: ``frame_batches`` columns in the order frame_row gives them.
FRAME_BATCH_COLUMNS = [
    "device_id",
    "run_id",
    "first_frame",
    "n",
    "session",
    "seq",
    "ts",
    "received_at",
    "stored_at",
    "replayed",
    *FRAME_COLUMNS,
]


def write_status(store, cur, m: Message, now: float | None = None) -> None:
    b = m.body
    # A late will from an older session must not mark a newer session offline.
    cur.execute(
        store.sql(
            "UPDATE devices SET state = ?, session = ?, state_at = ? WHERE device_id = ?"
            " AND (session IS NULL OR session <= ?)"
        ),
        (b["state"], b["session"], num(b.get("ts")) or m.received_at, m.device_id, b["session"]),
    )


def write_info(store, cur, m: Message, now: float | None = None) -> None:
    b = m.body
    cur.execute(
        store.sql(
            "UPDATE devices SET agent_version = ?, inventory = ? WHERE device_id = ?"
            " AND (session IS NULL OR session <= ?)"
        ),
        (b["agent_version"], json.dumps(b.get("inventory", {})), m.device_id, b["session"]),
    )


def write_telemetry(store, cur, m: Message, now: float | None = None) -> None:
    """The device's last telemetry (as sent), and one row of its readings over time."""
    cur.execute(
        store.sql("UPDATE devices SET telemetry = ? WHERE device_id = ?"),
        (json.dumps(m.body)[:65536], m.device_id),
    )
    b = m.body
    cur.execute(
        store.sql(
            "INSERT INTO telemetry(device_id, session, seq, ts, cpu_pct, mem_used_pct, max_temp_c, power_w, cpu_mhz,"
            " throttled) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(device_id, session, seq) DO NOTHING"
        ),
        (m.device_id, b["session"], b["seq"], b["ts"], *telemetry_fields(b)),
    )


def write_cmd_ack(store, cur, m: Message, now: float | None = None) -> None:
    b = m.body
    cur.execute(
        store.sql(
            "INSERT INTO command_acks(device_id, cmd_id, state, run_id, reason, session, seq, received_at)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(device_id, session, seq) DO NOTHING"
        ),
        (
            m.device_id,
            b.get("cmd_id"),
            b["state"],
            b.get("run_id"),
            b.get("reason"),
            b["session"],
            b["seq"],
            m.received_at,
        ),
    )


def set_run(store, cur, m: Message, fields: dict[str, Any], only_null: bool = False) -> None:
    """UPDATE the run's columns; with ``only_null`` only those still NULL."""
    if not fields:
        return
    cols = sorted(fields)
    if only_null:  # meta fills gaps; the summary is authoritative
        sets = ", ".join(f"{c} = COALESCE({c}, ?)" for c in cols)
    else:
        sets = ", ".join(f"{c} = ?" for c in cols)
    cur.execute(
        store.sql(f"UPDATE runs SET {sets} WHERE device_id = ? AND run_id = ?"),
        (*(fields[c] for c in cols), m.device_id, m.run_id),
    )


def write_meta(store, cur, m: Message, now: float | None = None) -> None:
    b = m.body
    fields = run_fields(
        {
            "model": b["model"],
            "runtime": b["runtime"],
            "source": b["source"],
            "config": b.get("config"),
            "scenario": b.get("scenario"),
            "board": b.get("board"),
        }
    )
    # what the summary will carry; an agent before sweeps and scenarios sends only per-frame runs
    fields["kind"] = KIND_OF_SCHEMA.get(b.get("result_schema", RESULT_SCHEMA))
    if fields["kind"] == "sweep":
        fields["has_sweep"] = 1
    fields = {k: v for k, v in fields.items() if v is not None}
    fields["meta"] = json.dumps(b)
    set_run(store, cur, m, fields, only_null=True)


def write_summary(store, cur, m: Message, now: float | None = None) -> None:
    r = m.body["result"]
    fields = summary_fields(r)
    # energy is always written (NULL when the summary has none); other absent figures leave the column as it is
    fields = {k: v for k, v in fields.items() if v is not None or k in ("energy_mj_gross", "energy_mj_net")}
    fields["summary"] = json.dumps(r)
    fields["summary_at"] = m.received_at
    set_run(store, cur, m, fields)


#: The writer of each kind that is stored row by row (frame batches are inserted together:
#: frame_row and dedup.store_frames).
WRITERS: dict[str, Callable[..., None]] = {
    "status": write_status,
    "info": write_info,
    "telemetry": write_telemetry,
    "cmd_ack": write_cmd_ack,
    "meta": write_meta,
    "summary": write_summary,
}


def write(store, cur, m: Message, now: float) -> None:
    """Store one message that is not a frame batch."""
    WRITERS[m.kind](store, cur, m, now)


def frame_row(store, m: Message, now: float) -> tuple:
    """One ``frame_batches`` row (FRAME_BATCH_COLUMNS): a stage the batch lacks is NULL."""
    b = m.body
    lat = b["latency_ms"]
    return (
        m.device_id,
        m.run_id,
        b["first_frame"],
        b["n"],
        b["session"],
        b["seq"],
        num(b.get("ts")),
        m.received_at,
        now,
        int(bool(b.get("replayed"))),
        *(store.encode_array(lat[s]) if s in lat else None for s in ALL_STAGES),
    )
