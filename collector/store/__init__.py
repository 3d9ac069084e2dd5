"""Storage for what the fleet publishes: SQLite (WAL) by default, PostgreSQL for
several collectors and large fleets. One schema, written once below; only the
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

Open one with ``open_store("fleet.db")`` or ``open_store("postgresql://...")``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
import time
from array import array
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.wire.protocol import OPTIONAL_STAGES, RESULT_SCHEMA, SCENARIO_SCHEMA, STAGES, SWEEP_SCHEMA
from edgebench.collector.ingest.validate import Message

log = logging.getLogger("edgebench.store")

SCHEMA_VERSION = 4
_BIG_ENDIAN = sys.byteorder == "big"  # frame arrays are stored little-endian
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
    first_frame    INTEGER NOT NULL,
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
"""

TABLES = ("devices", "runs", "frame_batches", "messages", "sessions", "command_acks", "quarantine")

#: Stored quarantined payloads are cut to this many bytes.
QUARANTINE_KEEP_BYTES = 64 * 1024


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
#: ``runs.kind`` for each document a summary can carry.
KIND_OF_SCHEMA = {RESULT_SCHEMA: "run", SWEEP_SCHEMA: "sweep", SCENARIO_SCHEMA: "scenario"}


def _ident(m: Message) -> tuple:
    return (m.kind, m.run_id, m.body.get("first_frame") if m.kind == "frames" else None)


def _same(a: Message, b: Message) -> bool:
    return _ident(a) == _ident(b)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def run_fields(result: dict[str, Any]) -> dict[str, Any]:
    """The columns a summary (an ``edgebench.result/1`` document) fills in ``runs``.

    The power/thermal/throttling/board sections (issue 5) and the scenario and sweep
    (issue 4) are optional: absent sections leave NULLs, never made-up zeros.
    """
    model = result.get("model") or {}
    runtime = result.get("runtime") or {}
    source = result.get("source")
    config = result.get("config") if isinstance(result.get("config"), dict) else {}
    out: dict[str, Any] = {
        "model_name": model.get("name") or str(model.get("path", "")).rsplit("/", 1)[-1] or None,
        "model_sha256": model.get("sha256"),
        "runtime": runtime.get("name"),
        "runtime_version": runtime.get("version"),
        "delegate": runtime.get("delegate"),
        "num_threads": runtime.get("num_threads") if isinstance(runtime.get("num_threads"), int) else None,
        "source_kind": source.get("kind") if isinstance(source, dict) else (str(source) if source else None),
    }
    scen = result.get("scenario", config.get("scenario"))
    if isinstance(scen, dict):
        scen = scen.get("name") or scen.get("scenario")
    out["scenario"] = str(scen)[:64] if scen else None
    board = result.get("board")
    if isinstance(board, dict):
        board = board.get("model") or board.get("name")
    out["board"] = str(board)[:128] if board else None
    return out


def summary_fields(result: dict[str, Any]) -> dict[str, Any]:
    """The ``runs`` columns a summary's ``result`` fills: a per-frame run's figures, or a
    sweep's or scenario's (document_fields)."""
    if result.get("schema") in (SWEEP_SCHEMA, SCENARIO_SCHEMA):
        return document_fields(result)
    out = run_fields(result)
    out.update(
        kind="run",
        frames=result.get("frames"),
        duration_s=_num(result.get("duration_s")),
        fps=_num(result.get("fps")),
        started_at=str(result.get("started_at"))[:40] if result.get("started_at") else None,
    )
    validity = result.get("validity")
    if isinstance(validity, dict) and validity.get("verdict") in ("VALID", "INVALID"):
        out["verdict"] = validity["verdict"]
    power = result.get("power") if isinstance(result.get("power"), dict) else {}
    epi = power.get("energy_per_inference_mj")
    if isinstance(epi, dict):
        out["energy_mj_gross"], out["energy_mj_net"] = _num(epi.get("gross")), _num(epi.get("net"))
    else:
        out["energy_mj_gross"], out["energy_mj_net"] = _num(epi), None
    out["power_mean_w"] = _num(power.get("mean_w"))
    out["power_source"] = str(power.get("source"))[:64] if power.get("source") else None
    thr = result.get("throttling")
    throttled = None
    if isinstance(thr, bool):
        throttled = thr
    elif isinstance(thr, dict):
        if isinstance(thr.get("throttled"), bool):
            throttled = thr["throttled"]
        elif "flags" in thr:
            f = thr["flags"]
            throttled = bool(any(f.values()) if isinstance(f, dict) else f)
        else:
            throttled = any(v is True for v in thr.values())
    out["throttled"] = None if throttled is None else int(throttled)
    thermal = result.get("thermal") if isinstance(result.get("thermal"), dict) else {}
    temps = [_num(thermal.get(k)) for k in ("max_c", "peak_c")]
    temps = [t for t in temps if t is not None]
    if not temps:
        temps = [v for k, v in thermal.items() if k.endswith("_c") and _num(v) is not None]
    out["temp_max_c"] = max(temps) if temps else None
    out["has_sweep"] = 0
    return out


def document_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``runs`` columns of a sweep (edgebench.sweep/1) or a scenario result
    (edgebench.scenario/1). No frames, no FPS: those columns stay NULL, so the per-frame
    report never mixes them in. The headline is the document's own figure:

    * sweep: the best throughput (``best.throughput``, VALID points first), items/s;
    * single-stream / multi-stream: p90 / p99 query latency, ms; offline: samples/s;
    * server: its p99 latency (ms), with ``within_bound`` the headline's yes/no;
    * find-max-qps: the highest rate whose p99 held the bound, queries/s.
    """
    out = run_fields(doc)
    out.update(
        kind=KIND_OF_SCHEMA[doc["schema"]],
        started_at=str(doc.get("started_at"))[:40] if doc.get("started_at") else None,
        frames=None,
        fps=None,
        energy_mj_gross=None,
        energy_mj_net=None,
    )
    if doc["schema"] == SWEEP_SCHEMA:
        best = (doc.get("best") or {}).get("throughput") or {}
        out.update(
            has_sweep=1,
            scenario=None,
            num_threads=None,
            headline_metric="best_throughput_items_per_s",
            headline_value=_num(best.get("throughput_items_per_s")),
            headline_unit="items/s",
            verdict=best.get("verdict") if best.get("verdict") in ("VALID", "INVALID") else None,
        )
        return out
    h = doc.get("headline") or {}
    out.update(
        has_sweep=0,
        verdict=doc.get("verdict"),
        duration_s=_num(doc.get("duration_s")),
        target_qps=_num(doc.get("target_qps")),
    )
    bound = doc.get("latency_bound_ms")
    if bound is None and isinstance(doc.get("settings"), dict):
        bound = doc["settings"].get("latency_bound_ms")
    out["latency_bound_ms"] = _num(bound)
    if doc.get("scenario") == "server":
        out.update(headline_metric="p99_latency_ms", headline_value=_num(h.get("p99_latency_ms")), headline_unit="ms")
    else:
        out.update(
            headline_metric=str(h.get("metric"))[:64] if h.get("metric") else None,
            headline_value=_num(h.get("value")),
            headline_unit=str(h.get("unit"))[:32] if h.get("unit") else None,
        )
    within = doc.get("within_bound")
    if isinstance(h.get("value"), bool):
        within = h["value"]
    out["within_bound"] = None if not isinstance(within, bool) else int(within)
    power = doc.get("power") if isinstance(doc.get("power"), dict) else {}
    out["power_mean_w"] = _num(power.get("mean_w"))
    out["power_source"] = str(power.get("source"))[:64] if power.get("source") else None
    return out


class Store:
    """Common code; subclasses fill in the dialect. Thread-safe: each thread gets its
    own connection (one writer thread plus any number of readers)."""

    dialect = "?"
    url = ""

    def __init__(self) -> None:
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()

    # -- dialect hooks -------------------------------------------------------------
    def _connect(self):  # pragma: no cover - abstract
        raise TypeError("use SQLiteStore or PostgresStore")

    def _sql(self, sql: str) -> str:
        return sql

    def encode_array(self, values: list[float]) -> Any:
        raise TypeError

    def decode_array(self, value: Any) -> np.ndarray:
        raise TypeError

    # -- connections ---------------------------------------------------------------
    def conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
            with self._conns_lock:
                self._conns.append(c)
        return c

    def close(self) -> None:
        with self._conns_lock:
            for c in self._conns:
                try:
                    c.close()
                except Exception:
                    pass
            self._conns.clear()
        self._local = threading.local()

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        cur = self.conn().execute(self._sql(sql), tuple(params))
        rows = cur.fetchall()
        return [tuple(r) for r in rows]

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        with self._tx() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return cur.rowcount

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        raise TypeError
        yield

    # -- writing -------------------------------------------------------------------
    def apply(self, messages: Iterable[Message]) -> dict[str, int]:
        """Store a batch in one transaction (retried on a PostgreSQL deadlock).

        Returns counts: stored, duplicates (same (device, session, seq), or frames already
        stored), retained_again (a retained message delivered again on resubscribe)."""
        messages = list(messages)
        for attempt in range(5):
            try:
                with self._tx() as cur:
                    return self._apply(cur, messages)
            except Exception as e:
                if attempt < 4 and self._retryable(e):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise
        raise AssertionError("unreachable")

    def _retryable(self, e: Exception) -> bool:
        return False

    def _apply(self, cur, messages: list[Message]) -> dict[str, int]:  # noqa: C901
        counts = {"stored": 0, "duplicates": 0, "retained_again": 0, "seq_reused": 0}
        now = time.time()
        seen: dict[tuple, Message] = {}
        plain: list[Message] = []  # status, and info without seq: idempotent updates
        cand: list[Message] = []  # data messages not seen in this batch
        dups: list[Message] = []
        reused: list[tuple[Message, str]] = []
        for m in messages:
            b = m.body
            if m.kind == "status" or not isinstance(b.get("seq"), int):
                plain.append(m)
                continue
            key = (m.device_id, b["session"], b["seq"])
            prev = seen.get(key)
            if prev is None:
                seen[key] = m
                cand.append(m)
            elif _same(prev, m):
                dups.append(m)
            else:
                reused.append((m, f"a {prev.kind} message of run {prev.run_id!r} in the same batch"))
        # Keys already stored: frame batches carry their own (session, seq) (unique), other
        # data messages are in `messages`. Same message again = duplicate; another message
        # under a used key = the device's session counter went back (lost state?).
        old = self._stored_keys(cur, cand)
        fresh_f: list[Message] = []
        fresh_o: list[Message] = []
        for m in cand:
            k = (m.device_id, m.body["session"], m.body["seq"])
            o = old.get(k)
            if o is None:
                (fresh_f if m.kind == "frames" else fresh_o).append(m)
            elif o == _ident(m):
                dups.append(m)
            else:
                reused.append((m, f"a {o[0]} message of run {o[1]!r}"))
        new_keys = (
            self._insert_returning(
                cur,
                "messages",
                ["device_id", "session", "seq", "kind", "run_id", "replayed", "ts", "received_at", "stored_at"],
                sorted(
                    (
                        m.device_id,
                        m.body["session"],
                        m.body["seq"],
                        m.kind,
                        m.run_id,
                        int(bool(m.body.get("replayed"))),
                        _num(m.body.get("ts")),
                        m.received_at,
                        now,
                    )
                    for m in fresh_o
                ),
                ["device_id", "session", "seq"],
            )
            if fresh_o
            else set()
        )
        fresh: list[Message] = []
        for m in fresh_o:  # not inserted: another collector stored it meanwhile
            (fresh if (m.device_id, m.body["session"], m.body["seq"]) in new_keys else dups).append(m)
        content_dups: list[Message] = []
        if fresh_f:
            stored_f, content_dups, raced = self._store_frames(cur, fresh_f, now)
            fresh += stored_f
            dups += raced
        for m, what in reused:
            counts["seq_reused"] += 1
            cur.execute(
                self._sql("INSERT INTO quarantine(received_at, topic, code, reason, payload) VALUES (?,?,?,?,?)"),
                (
                    m.received_at,
                    m.topic,
                    "seq_reused",
                    f"(session {m.body['session']}, seq {m.body['seq']}) already used by {what}: the device's session"
                    " counter went back (lost state?)",
                    json.dumps(m.body).encode()[:QUARANTINE_KEEP_BYTES],
                ),
            )

        sess: dict[tuple, dict[str, Any]] = {}
        run_dups: dict[tuple, int] = defaultdict(int)

        def sstat(m: Message) -> dict[str, Any]:
            k = (m.device_id, m.body["session"])
            st = sess.get(k)
            if st is None:
                st = sess[k] = {
                    "first": m.body["seq"],
                    "last": m.body["seq"],
                    "received": 0,
                    "duplicates": 0,
                    "replayed": 0,
                }
            return st

        for m in dups:
            if m.retained:
                counts["retained_again"] += 1
                continue
            counts["duplicates"] += 1
            sstat(m)["duplicates"] += 1
            if m.run_id:
                run_dups[(m.device_id, m.run_id)] += 1
        for m in content_dups:  # frames already stored under another (session, seq)
            counts["duplicates"] += 1
            st = sstat(m)
            st["duplicates"] += 1
            st["received"] += 1  # its seq did arrive: not a gap
            seq = m.body["seq"]
            st["first"], st["last"] = min(st["first"], seq), max(st["last"], seq)
            run_dups[(m.device_id, m.run_id)] += 1
        for m in fresh:
            st = sstat(m)
            seq = m.body["seq"]
            st["first"], st["last"] = min(st["first"], seq), max(st["last"], seq)
            st["received"] += 1
            st["replayed"] += int(bool(m.body.get("replayed")))

        touched: dict[str, float] = {}
        for m in plain + fresh:
            touched[m.device_id] = max(touched.get(m.device_id, 0.0), m.received_at)
        for dev in sorted(touched):
            cur.execute(
                self._sql(
                    "INSERT INTO devices(device_id, first_seen, last_seen) VALUES (?, ?, ?)"
                    " ON CONFLICT(device_id) DO UPDATE SET last_seen = "
                    f"{self._greatest}(COALESCE(devices.last_seen, 0), excluded.last_seen)"
                ),
                (dev, touched[dev], touched[dev]),
            )
        # Runs first seen in this batch (frames can arrive before meta on another subscription).
        first_of_run: dict[tuple, tuple] = {}
        for m in fresh:
            if m.run_id and (m.device_id, m.run_id) not in first_of_run:
                first_of_run[(m.device_id, m.run_id)] = (m.body["session"], m.received_at)
        for (dev, run_id), (session, t) in sorted(first_of_run.items()):
            cur.execute(
                self._sql(
                    "INSERT INTO runs(device_id, run_id, session, first_seen) VALUES (?,?,?,?)"
                    " ON CONFLICT(device_id, run_id) DO NOTHING"
                ),
                (dev, run_id, session, t),
            )
        for m in plain:
            if m.kind == "status":
                self._store_status(cur, m)
            else:
                self._store_info(cur, m)
        for m in fresh:
            if m.kind != "frames":
                getattr(self, f"_store_{m.kind}")(cur, m, now)
        counts["stored"] = len(plain) + len(fresh)
        per_run: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for m in fresh:
            if m.kind == "frames":
                pr = per_run[(m.device_id, m.run_id)]
                pr[0] += m.body["n"]
                pr[1] += int(bool(m.body.get("replayed")))
        for (dev, run_id), (nf, nr) in sorted(per_run.items()):
            cur.execute(
                self._sql(
                    "UPDATE runs SET frames_stored = frames_stored + ?, replayed = replayed + ?"
                    " WHERE device_id = ? AND run_id = ?"
                ),
                (nf, nr, dev, run_id),
            )
        for (dev, run_id), k in sorted(run_dups.items()):
            cur.execute(
                self._sql("UPDATE runs SET duplicates = duplicates + ? WHERE device_id = ? AND run_id = ?"),
                (k, dev, run_id),
            )
        for (dev, session), st in sorted(sess.items()):
            cur.execute(
                self._sql(
                    "INSERT INTO sessions(device_id, session, first_seq, last_seq, received, duplicates, replayed,"
                    " first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(device_id, session) DO UPDATE SET"
                    f" first_seq = {self._least}(sessions.first_seq, excluded.first_seq),"
                    f" last_seq = {self._greatest}(sessions.last_seq, excluded.last_seq),"
                    " received = sessions.received + excluded.received,"
                    " duplicates = sessions.duplicates + excluded.duplicates,"
                    " replayed = sessions.replayed + excluded.replayed,"
                    " last_seen = excluded.last_seen"
                ),
                (dev, session, st["first"], st["last"], st["received"], st["duplicates"], st["replayed"], now, now),
            )
        return counts

    def _stored_keys(self, cur, msgs: list[Message]) -> dict[tuple, tuple]:
        """(device, session, seq) of msgs already stored -> what holds it: (kind, run_id, first_frame)."""
        by_sess: dict[tuple, list[int]] = defaultdict(list)
        for m in msgs:
            by_sess[(m.device_id, m.body["session"])].append(m.body["seq"])
        out: dict[tuple, tuple] = {}
        for (dev, session), seqs in sorted(by_sess.items()):
            for i in range(0, len(seqs), 500):
                part = seqs[i : i + 500]
                marks = ", ".join("?" * len(part))
                for seq, kind, run_id in cur.execute(
                    self._sql(
                        f"SELECT seq, kind, run_id FROM messages WHERE device_id = ? AND session = ?"
                        f" AND seq IN ({marks})"
                    ),
                    (dev, session, *part),
                ).fetchall():
                    out[(dev, session, seq)] = (kind, run_id, None)
                for seq, run_id, first in cur.execute(
                    self._sql(
                        f"SELECT seq, run_id, first_frame FROM frame_batches WHERE device_id = ? AND session = ?"
                        f" AND seq IN ({marks})"
                    ),
                    (dev, session, *part),
                ).fetchall():
                    out[(dev, session, seq)] = ("frames", run_id, first)
        return out

    _least = "MIN"
    _greatest = "MAX"

    #: how one row's values are written (placeholders), and how many parameters a statement may carry
    _max_params = 30000

    def _row_placeholders(self, cols: list[str]) -> str:
        return "(" + ", ".join("?" * len(cols)) + ")"

    def _insert_returning(self, cur, table: str, cols: list[str], rows: list[tuple], key: list[str]) -> set[tuple]:
        """INSERT rows in multi-row statements, skipping conflicts; return the keys of the
        rows actually inserted."""
        new: set[tuple] = set()
        one = self._row_placeholders(cols)
        chunk = max(1, self._max_params // len(cols))
        for k in range(0, len(rows), chunk):
            part = rows[k : k + chunk]
            cur.execute(  # placeholders come from the dialect's _row_placeholders
                f"INSERT INTO {table}({', '.join(cols)}) VALUES {', '.join([one] * len(part))}"
                f" ON CONFLICT DO NOTHING RETURNING {', '.join(key)}",
                [v for r in part for v in r],
            )
            new.update(tuple(r) for r in cur.fetchall())
        return new

    def _store_status(self, cur, m: Message) -> None:
        b = m.body
        # A late will from an older session must not mark a newer session offline.
        cur.execute(
            self._sql(
                "UPDATE devices SET state = ?, session = ?, state_at = ? WHERE device_id = ?"
                " AND (session IS NULL OR session <= ?)"
            ),
            (b["state"], b["session"], _num(b.get("ts")) or m.received_at, m.device_id, b["session"]),
        )

    def _store_info(self, cur, m: Message, now: float | None = None) -> None:
        b = m.body
        cur.execute(
            self._sql(
                "UPDATE devices SET agent_version = ?, inventory = ? WHERE device_id = ?"
                " AND (session IS NULL OR session <= ?)"
            ),
            (b["agent_version"], json.dumps(b.get("inventory", {})), m.device_id, b["session"]),
        )

    def _store_telemetry(self, cur, m: Message, now: float) -> None:
        cur.execute(
            self._sql("UPDATE devices SET telemetry = ? WHERE device_id = ?"),
            (json.dumps(m.body)[:65536], m.device_id),
        )

    def _store_cmd_ack(self, cur, m: Message, now: float) -> None:
        b = m.body
        cur.execute(
            self._sql(
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

    def _set_run(self, cur, m: Message, fields: dict[str, Any], only_null: bool = False) -> None:
        if not fields:
            return
        cols = sorted(fields)
        if only_null:  # meta fills gaps; the summary is authoritative
            sets = ", ".join(f"{c} = COALESCE({c}, ?)" for c in cols)
        else:
            sets = ", ".join(f"{c} = ?" for c in cols)
        cur.execute(
            self._sql(f"UPDATE runs SET {sets} WHERE device_id = ? AND run_id = ?"),
            (*(fields[c] for c in cols), m.device_id, m.run_id),
        )

    def _store_meta(self, cur, m: Message, now: float) -> None:
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
        self._set_run(cur, m, fields, only_null=True)

    def _store_summary(self, cur, m: Message, now: float) -> None:
        r = m.body["result"]
        fields = summary_fields(r)
        fields = {k: v for k, v in fields.items() if v is not None or k in ("energy_mj_gross", "energy_mj_net")}
        fields["summary"] = json.dumps(r)
        fields["summary_at"] = m.received_at
        self._set_run(cur, m, fields)

    def _store_frames(self, cur, frames: list[Message], now: float):
        """Insert frame batches (one row each, the per-frame latencies as arrays). Returns
        (stored, content duplicates: the same frames already stored under another (session,
        seq), raced: the same (session, seq) stored meanwhile by another collector)."""
        cols = [
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
        rows = []
        by_content: dict[tuple, Message] = {}
        content_dups: list[Message] = []
        for m in sorted(frames, key=lambda m: (m.device_id, m.run_id, m.body["first_frame"])):
            b = m.body
            k = (m.device_id, m.run_id, b["first_frame"])
            if k in by_content:
                content_dups.append(m)
                continue
            by_content[k] = m
            lat = b["latency_ms"]
            rows.append(
                (
                    m.device_id,
                    m.run_id,
                    b["first_frame"],
                    b["n"],
                    b["session"],
                    b["seq"],
                    _num(b.get("ts")),
                    m.received_at,
                    now,
                    int(bool(b.get("replayed"))),
                    *(self.encode_array(lat[s]) if s in lat else None for s in ALL_STAGES),
                )
            )
        new = self._insert_returning(cur, "frame_batches", cols, rows, ["device_id", "session", "seq"])
        stored, raced = [], []
        for m in by_content.values():
            if (m.device_id, m.body["session"], m.body["seq"]) in new:
                stored.append(m)
                continue
            got = cur.execute(
                self._sql(
                    "SELECT run_id, first_frame FROM frame_batches WHERE device_id = ? AND session = ? AND seq = ?"
                ),
                (m.device_id, m.body["session"], m.body["seq"]),
            ).fetchone()
            (raced if got is not None and tuple(got) == (m.run_id, m.body["first_frame"]) else content_dups).append(m)
        return stored, content_dups, raced

    def quarantine(self, items: list[tuple[float, str, str, str, bytes]]) -> None:
        """Keep rejected messages aside: (received_at, topic, code, reason, payload)."""
        if not items:
            return
        with self._tx() as cur:
            for t, topic, code, reason, payload in items:
                cur.execute(
                    self._sql("INSERT INTO quarantine(received_at, topic, code, reason, payload) VALUES (?,?,?,?,?)"),
                    (t, topic[:1024], code, reason[:1000], bytes(payload[:QUARANTINE_KEEP_BYTES])),
                )

    def purge(self, older_than: float) -> dict[str, int]:
        """Retention: delete raw frame batches, dedup keys and quarantined messages received
        before ``older_than`` (epoch seconds). Runs, summaries, devices and session counters stay."""
        out = {}
        with self._tx() as cur:
            # by when the frames were measured (the indexed device clock), else when received
            cur.execute(
                self._sql("DELETE FROM frame_batches WHERE ts < ? OR (ts IS NULL AND received_at < ?)"),
                (older_than, older_than),
            )
            out["frame_batches"] = cur.rowcount
            for table in ("messages", "quarantine"):
                cur.execute(self._sql(f"DELETE FROM {table} WHERE received_at < ?"), (older_than,))
                out[table] = cur.rowcount
        return out

    # -- reading -------------------------------------------------------------------
    def frame_samples(
        self, where: str = "1=1", params: tuple = (), stages: Iterable[str] = STAGES, keys: Iterable[str] = ()
    ) -> list[tuple]:
        """Rows of (key values..., n, array per stage) for frame batches joined with their run
        (alias ``r``; frame batches are ``b``). An optional stage a batch lacks is None."""
        stages = list(stages)
        keys = list(keys)
        sel = ", ".join([*keys, "b.n", *(f"b.{s}_ms" for s in stages)])
        rows = self.query(
            f"SELECT {sel} FROM frame_batches b JOIN runs r ON r.device_id = b.device_id AND r.run_id = b.run_id"
            f" WHERE {where}",
            params,
        )
        k = len(keys)
        return [(*row[: k + 1], *(None if v is None else self.decode_array(v) for v in row[k + 1 :])) for row in rows]

    def counts(self) -> dict[str, int]:
        return {t: self.query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in TABLES}


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.url = path
        self._ckpt: threading.Thread | None = None
        c = self.conn()
        c.execute("PRAGMA journal_mode=WAL")
        c.executescript(
            SCHEMA_SQL.format(
                real="REAL", big="INTEGER", arr="BLOB", blob="BLOB", autoid="INTEGER PRIMARY KEY AUTOINCREMENT"
            )
        )
        c.execute("INSERT OR IGNORE INTO schema_info(key, value) VALUES ('version', ?)", (str(SCHEMA_VERSION),))
        v = c.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
        if v and v[0] == "3":
            have = {row[1] for row in c.execute("PRAGMA table_info(runs)")}
            c.execute("BEGIN IMMEDIATE")
            try:
                _migrate_3_to_4(self, c, [col for col in RUNS_V4_COLUMNS if col[0] not in have], "REAL")
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        _check_version(self)

    def _connect(self):
        c = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA busy_timeout=30000")
        # Checkpoints (copying the WAL into the database, with fsync) run in a thread of
        # their own, not inside the writer's commits, where they would stall ingest.
        c.execute("PRAGMA wal_autocheckpoint=0")
        return c

    def apply(self, messages):
        if self._ckpt is None:
            self._ckpt_stop = threading.Event()
            self._ckpt = threading.Thread(target=self._checkpoint_loop, name="edgebench-sqlite-checkpoint", daemon=True)
            self._ckpt.start()
        return super().apply(messages)

    def _checkpoint_loop(self, every_s: float = 1.0) -> None:
        c = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            while not self._ckpt_stop.wait(every_s):
                try:
                    c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:
                    log.warning("WAL checkpoint failed: %s", e)
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass
        finally:
            c.close()

    def close(self) -> None:
        if self._ckpt is not None:
            self._ckpt_stop.set()
            self._ckpt.join(30)
            self._ckpt = None
        super().close()

    def encode_array(self, values: list[float]) -> bytes:
        a = array("d", values)  # float64; several times faster than numpy for short lists
        if _BIG_ENDIAN:
            a.byteswap()
        return a.tobytes()

    def decode_array(self, value: bytes) -> np.ndarray:
        return np.frombuffer(value, dtype="<f8")

    @contextmanager
    def _tx(self):
        c = self.conn()
        cur = c.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


class PostgresStore(Store):
    dialect = "postgresql"
    _least = "LEAST"
    _greatest = "GREATEST"

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise UserError("PostgreSQL storage needs psycopg 3: pip install 'edgebench[collector]'") from None
        c = self.conn()
        ddl = SCHEMA_SQL.format(
            real="DOUBLE PRECISION",
            big="BIGINT",
            arr="DOUBLE PRECISION[]",
            blob="BYTEA",
            autoid="BIGSERIAL PRIMARY KEY",
        )
        with c.transaction():
            # Several collectors may start at once: serialize schema creation.
            c.execute("SELECT pg_advisory_xact_lock(7207001)")
            for stmt in ddl.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute(
                "INSERT INTO schema_info(key, value) VALUES ('version', %s) ON CONFLICT DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            v = c.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
            if v and v[0] == "3":
                have = {
                    r[0]
                    for r in c.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
                        " AND table_schema = current_schema()"
                    )
                }
                _migrate_3_to_4(self, c, [col for col in RUNS_V4_COLUMNS if col[0] not in have], "DOUBLE PRECISION")
        _check_version(self)

    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot connect to PostgreSQL at {redact(self.url)}: {first}") from None

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def encode_array(self, values) -> str:
        # An array literal, cast by ::float8[] in the INSERT (JSON gives ints and floats mixed).
        return "{" + ",".join(map(repr, values)) + "}"

    def decode_array(self, value) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)

    def _retryable(self, e: Exception) -> bool:
        import psycopg

        return isinstance(e, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))

    @contextmanager
    def _tx(self):
        c = self.conn()
        with c.transaction():
            with c.cursor() as cur:
                yield cur

    _max_params = 8000

    def _row_placeholders(self, cols: list[str]) -> str:
        return "(" + ", ".join("%s::float8[]" if c.endswith("_ms") else "%s" for c in cols) + ")"


def _migrate_3_to_4(store: Store, c, missing: list[tuple[str, str]], real: str) -> None:
    """Version 3 -> 4 (sweeps and scenarios): add the new ``runs`` columns; every run a
    version-3 collector stored was a per-frame run."""
    for name, typ in missing:
        c.execute(f"ALTER TABLE runs ADD COLUMN {name} {typ.format(real=real)}")
    c.execute("UPDATE runs SET kind = 'run' WHERE kind IS NULL")
    c.execute(store._sql("UPDATE schema_info SET value = ? WHERE key = 'version'"), (str(SCHEMA_VERSION),))
    log.info(
        "database %s upgraded from schema version 3 to %d (runs: %s)",
        redact(store.url),
        SCHEMA_VERSION,
        ", ".join(n for n, _ in missing) or "columns already there",
    )


def _check_version(store: Store) -> None:
    v = store.query("SELECT value FROM schema_info WHERE key = 'version'")
    if v and v[0][0] != str(SCHEMA_VERSION):
        raise UserError(
            f"database {redact(store.url)} has schema version {v[0][0]}; this collector uses {SCHEMA_VERSION}:"
            " use a new database (or export the old one first)"
        )


def redact(url: str) -> str:
    """A database URL without its password."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in cred else url
    return url


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url_or_path: str) -> Store:
    """``postgresql://user@host/db`` opens PostgreSQL; anything else is a SQLite file
    (``sqlite:///path`` is accepted too)."""
    if is_postgres_url(url_or_path):
        return PostgresStore(url_or_path)
    path = url_or_path[len("sqlite:///") :] if url_or_path.startswith("sqlite:///") else url_or_path
    if "://" in path:
        raise UserError(f"unknown database URL {url_or_path!r}: use a file path or postgresql://USER@HOST/DB")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise UserError(f"cannot create database {path}: folder {d} does not exist")
    try:
        return SQLiteStore(path)
    except sqlite3.Error as e:  # not a database, locked, read-only
        raise UserError(f"cannot open database {path}: {e}") from None
