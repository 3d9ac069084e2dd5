"""The one schema both databases share: the DDL (column types filled in per dialect), its
version, and the in-place migration from the version before.

``SCHEMA_SQL`` is written once; ``{real} {big} {arr} {blob} {autoid}`` are the only
differences between SQLite and PostgreSQL (a per-frame latency column is a float64 BLOB in
SQLite, a ``double precision[]`` in PostgreSQL). A database made by another schema version
is upgraded when a known migration exists (3 -> 4: sweeps and scenarios) and refused
otherwise, with a one-line error that says what to do.
"""

from __future__ import annotations

import logging
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire.protocol import OPTIONAL_STAGES, STAGES
from edgebench.collector.store.urls import redact

log = logging.getLogger("edgebench.store")

SCHEMA_VERSION = 4
#: Every stage a frame batch can carry; the optional ones (queue: live sources and
#: pipelined runs) are NULL in batches without them.
ALL_STAGES = STAGES + OPTIONAL_STAGES
FRAME_COLUMNS = [f"{s}_ms" for s in ALL_STAGES]

# {real} {big} {arr} {blob} {autoid} are filled in per dialect.
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS schema_info (
    key   TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY,
    state         TEXT,
    session       {big},
    state_at      {real},
    agent_version TEXT,
    inventory     TEXT,
    telemetry     TEXT,
    first_seen    {real},
    last_seen     {real}
);
CREATE TABLE IF NOT EXISTS runs (
    device_id       TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    session         {big},
    model_name      TEXT,
    model_sha256    TEXT,
    runtime         TEXT,
    runtime_version TEXT,
    delegate        TEXT,
    num_threads     INTEGER,
    source_kind     TEXT,
    scenario        TEXT,
    board           TEXT,
    started_at      TEXT,
    meta            TEXT,
    frames          INTEGER,
    duration_s      {real},
    fps             {real},
    power_mean_w    {real},
    energy_mj_gross {real},
    energy_mj_net   {real},
    power_source    TEXT,
    throttled       INTEGER,
    temp_max_c      {real},
    has_sweep       INTEGER NOT NULL DEFAULT 0,
    kind            TEXT,
    verdict         TEXT,
    headline_metric TEXT,
    headline_value  {real},
    headline_unit   TEXT,
    within_bound    INTEGER,
    latency_bound_ms {real},
    target_qps      {real},
    summary         TEXT,
    frames_stored   INTEGER NOT NULL DEFAULT 0,
    duplicates      INTEGER NOT NULL DEFAULT 0,
    replayed        INTEGER NOT NULL DEFAULT 0,
    first_seen      {real},
    summary_at      {real},
    PRIMARY KEY (device_id, run_id)
);
CREATE TABLE IF NOT EXISTS frame_batches (
    device_id      TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    first_frame    {big} NOT NULL,
    n              INTEGER NOT NULL,
    session        {big} NOT NULL,
    seq            {big} NOT NULL,
    ts             {real},
    received_at    {real} NOT NULL,
    stored_at      {real} NOT NULL,
    replayed       INTEGER NOT NULL DEFAULT 0,
    capture_ms     {arr} NOT NULL,
    preprocess_ms  {arr} NOT NULL,
    inference_ms   {arr} NOT NULL,
    postprocess_ms {arr} NOT NULL,
    e2e_ms         {arr} NOT NULL,
    queue_ms       {arr},
    PRIMARY KEY (device_id, run_id, first_frame),
    UNIQUE (device_id, session, seq)
);
CREATE INDEX IF NOT EXISTS frame_batches_ts ON frame_batches (ts);
CREATE TABLE IF NOT EXISTS messages (
    device_id   TEXT NOT NULL,
    session     {big} NOT NULL,
    seq         {big} NOT NULL,
    kind        TEXT NOT NULL,
    run_id      TEXT,
    replayed    INTEGER NOT NULL DEFAULT 0,
    ts          {real},
    received_at {real} NOT NULL,
    stored_at   {real} NOT NULL,
    PRIMARY KEY (device_id, session, seq)
);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);
CREATE TABLE IF NOT EXISTS sessions (
    device_id  TEXT NOT NULL,
    session    {big} NOT NULL,
    first_seq  {big} NOT NULL,
    last_seq   {big} NOT NULL,
    received   {big} NOT NULL DEFAULT 0,
    duplicates {big} NOT NULL DEFAULT 0,
    replayed   {big} NOT NULL DEFAULT 0,
    first_seen {real},
    last_seen  {real},
    PRIMARY KEY (device_id, session)
);
CREATE TABLE IF NOT EXISTS command_acks (
    device_id   TEXT NOT NULL,
    cmd_id      TEXT,
    state       TEXT NOT NULL,
    run_id      TEXT,
    reason      TEXT,
    session     {big} NOT NULL,
    seq         {big} NOT NULL,
    received_at {real} NOT NULL,
    PRIMARY KEY (device_id, session, seq)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id          {autoid},
    received_at {real} NOT NULL,
    topic       TEXT NOT NULL,
    code        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     {blob}
);
CREATE INDEX IF NOT EXISTS quarantine_received ON quarantine (received_at);
CREATE TABLE IF NOT EXISTS telemetry (
    device_id   TEXT NOT NULL,
    session     {big} NOT NULL,
    seq         {big} NOT NULL,
    ts          {real} NOT NULL,
    cpu_pct     {real},
    mem_used_pct {real},
    max_temp_c  {real},
    power_w     {real},
    cpu_mhz     {real},
    throttled   INTEGER,
    PRIMARY KEY (device_id, session, seq)
);
CREATE INDEX IF NOT EXISTS telemetry_device_ts ON telemetry (device_id, ts);
CREATE TABLE IF NOT EXISTS baselines (
    key         TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    set_at      {real} NOT NULL,
    how         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS regressions (
    device_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    baseline_device_id TEXT NOT NULL,
    baseline_run_id    TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    comparison  TEXT NOT NULL,
    judged_at   {real} NOT NULL,
    PRIMARY KEY (device_id, run_id)
);
CREATE TABLE IF NOT EXISTS schedules (
    name        TEXT PRIMARY KEY,
    devices     TEXT NOT NULL,
    job         TEXT NOT NULL,
    every_s     {real} NOT NULL,
    next_at     {real} NOT NULL,
    created_at  {real} NOT NULL,
    last_sent_at {real},
    last_result TEXT
);
CREATE TABLE IF NOT EXISTS latency_buckets (
    device_id TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    stage     TEXT NOT NULL,
    {buckets},
    sum_ms    {real} NOT NULL DEFAULT 0,
    n         {big} NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, run_id, stage)
);
"""

TABLES = (
    "devices",
    "runs",
    "frame_batches",
    "messages",
    "sessions",
    "command_acks",
    "quarantine",
    "telemetry",
    "latency_buckets",
    "baselines",
    "regressions",
    "schedules",
)
#: ``telemetry`` (each device's readings over time, for its page and /metrics) and
#: ``latency_buckets`` (the cumulative latency histogram /metrics serves) are tables a
#: version-4 database gains when a collector opens it (CREATE TABLE IF NOT EXISTS): nothing
#: in the other tables changes, so the schema version stays 4 and an older collector that
#: opens the database simply does not read them. ``baselines`` and ``regressions`` (the
#: regression watch, collector/aggregate/regressions.py) are added the same way, and so is
#: ``schedules`` (recurring jobs, collector/broker/schedules.py).

#: Columns added to ``runs`` by schema version 4 (sweeps and scenarios), added in place to a
#: version-3 database when a collector opens it.
RUNS_V4_COLUMNS = (
    ("kind", "TEXT"),
    ("verdict", "TEXT"),
    ("headline_metric", "TEXT"),
    ("headline_value", "{real}"),
    ("headline_unit", "TEXT"),
    ("within_bound", "INTEGER"),
    ("latency_bound_ms", "{real}"),
    ("target_qps", "{real}"),
)


#: Latency histogram bucket upper bounds, seconds (0.1 ms .. 5 s), and the stages counted:
#: ``latency_buckets`` holds, per run and stage, how many stored frames fell in each bucket
#: (``b0``.. one column per bound, then ``binf`` above the last), added to as frame batches
#: are stored. Only ever added to (retention deletes frames, not these counts), so /metrics
#: serves a histogram that only goes up.
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKET_STAGES = ("inference", "e2e")
BUCKET_COLUMNS = [f"b{i}" for i in range(len(LATENCY_BUCKETS_S))] + ["binf"]


def ddl(*, real: str, big: str, arr: str, blob: str, autoid: str) -> str:
    """The schema's statements with one dialect's column types."""
    buckets = ",\n    ".join(f"{c} {big} NOT NULL DEFAULT 0" for c in BUCKET_COLUMNS)
    return SCHEMA_SQL.format(real=real, big=big, arr=arr, blob=blob, autoid=autoid, buckets=buckets)


def missing_v4_columns(have: set[str]) -> list[tuple[str, str]]:
    """The version-4 ``runs`` columns a table with columns ``have`` lacks."""
    return [col for col in RUNS_V4_COLUMNS if col[0] not in have]


def migrate_3_to_4(store: Any, c: Any, missing: list[tuple[str, str]], real: str) -> None:
    """Version 3 -> 4 (sweeps and scenarios): add the new ``runs`` columns; every run a
    version-3 collector stored was a per-frame run. Runs inside the caller's transaction."""
    for name, typ in missing:
        c.execute(f"ALTER TABLE runs ADD COLUMN {name} {typ.format(real=real)}")
    c.execute("UPDATE runs SET kind = 'run' WHERE kind IS NULL")
    c.execute(store.sql("UPDATE schema_info SET value = ? WHERE key = 'version'"), (str(SCHEMA_VERSION),))
    log.info(
        "database %s upgraded from schema version 3 to %d (runs: %s)",
        redact(store.url),
        SCHEMA_VERSION,
        ", ".join(n for n, _ in missing) or "columns already there",
    )


def check_version(store: Any) -> None:
    """Refuse a database of another schema version (after any migration ran)."""
    v = store.query("SELECT value FROM schema_info WHERE key = 'version'")
    if v and v[0][0] != str(SCHEMA_VERSION):
        raise UserError(
            f"database {redact(store.url)} has schema version {v[0][0]}; this collector uses {SCHEMA_VERSION}:"
            " use a new database (or export the old one first)"
        )
