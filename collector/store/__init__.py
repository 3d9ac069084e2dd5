"""Storage for what the fleet publishes: SQLite (WAL) by default, PostgreSQL for
several collectors and large fleets. One schema, written once (schema.py); only the
column types differ by dialect (a per-frame latency column is a float64 BLOB in
SQLite, a ``double precision[]`` in PostgreSQL).

Tables:
  devices        one row per device: state (online/stopped/offline) and its session,
                 agent version, inventory, last telemetry, first and last seen
  runs           one row per run: model, runtime, delegate, scenario, board; the summary
                 when it arrives, with FPS, energy per inference and throttling pulled out;
                 ``kind`` says what the summary carries: a per-frame run (``run``), a sweep
                 (``sweep``, edgebench.sweep/1) or a scenario result (``scenario``,
                 edgebench.scenario/1), with the verdict and the headline figure pulled out
  frame_batches  one row per frame-batch message: the per-frame latencies of every stage
                 (ms), so percentiles over any group of frames are exact; raw data that
                 the retention setting purges (runs and their summaries are kept)
  messages       (device_id, session, seq) of the other data messages (frame batches
                 carry theirs, unique): the dedup key
  sessions       per (device_id, session): first and last seq, stored, duplicates and
                 replayed counts, from which seq gaps are counted
  command_acks   what devices answered to remote commands (accepted, rejected, started,
                 done, failed), with the run they started or the reason they refused
  quarantine     rejected messages with their reason code and reason
  frame_keys     PostgreSQL, partitioned layout: each stored frame batch's dedup keys
                 (frame_batches is partitioned by day there; partitions.py)
  frame_rollups  PostgreSQL: per device, run and minute, counts, sums, min, max of the
                 per-frame latencies and log histograms of e2e and inference (rollups.py)
  run_rollups    PostgreSQL: the same per run, with its first and last minute

The modules, by what they do:
  schema      the DDL, its version, the migration from version 3
  base        the common Store: connections, one transaction per batch, retention, reading
  sqlite      the SQLite dialect; postgres: the PostgreSQL dialect
  apply       the apply step: a batch in one transaction, as short named steps
  dedup       what is already stored (keys in the batch and in the database, frame content)
  quarantine  rejected messages and reused keys kept aside
  fields      the ``runs`` columns a meta, summary, sweep or scenario document fills
  rows        the rows each kind of message writes
  counters    session sequence counters, devices' last seen, per-run counts
  partitions  PostgreSQL day partitions of frame batches, their dedup keys and retention
  rollups     PostgreSQL per-minute rollups and percentiles from their histograms
  urls        what a database argument names

Open one with ``open_store("fleet.db")`` or ``open_store("postgresql://...")``.
"""

from __future__ import annotations

import os
import sqlite3

from edgebench.agent.errors import UserError
from edgebench.collector.store.base import Store
from edgebench.collector.store.fields import KIND_OF_SCHEMA, document_fields, run_fields, summary_fields
from edgebench.collector.store.postgres import PostgresStore
from edgebench.collector.store.quarantine import QUARANTINE_KEEP_BYTES
from edgebench.collector.store.schema import (
    ALL_STAGES,
    FRAME_COLUMNS,
    RUNS_V4_COLUMNS,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    TABLES,
)
from edgebench.collector.store.sqlite import SQLiteStore
from edgebench.collector.store.urls import is_postgres_url, redact, sqlite_path

__all__ = [
    "ALL_STAGES",
    "FRAME_COLUMNS",
    "KIND_OF_SCHEMA",
    "QUARANTINE_KEEP_BYTES",
    "RUNS_V4_COLUMNS",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "TABLES",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "document_fields",
    "is_postgres_url",
    "open_store",
    "redact",
    "run_fields",
    "sqlite_path",
    "summary_fields",
]


def open_store(url_or_path: str) -> Store:
    """``postgresql://user@host/db`` opens PostgreSQL; anything else is a SQLite file
    (``sqlite:///path`` is accepted too)."""
    if is_postgres_url(url_or_path):
        return PostgresStore(url_or_path)
    path = sqlite_path(url_or_path)
    if "://" in path:
        raise UserError(f"unknown database URL {url_or_path!r}: use a file path or postgresql://USER@HOST/DB")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise UserError(f"cannot create database {path}: folder {d} does not exist")
    try:
        return SQLiteStore(path)
    except sqlite3.Error as e:  # not a database, locked, read-only
        raise UserError(f"cannot open database {path}: {e}") from None
