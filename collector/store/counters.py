"""The bookkeeping a batch adds besides its own rows: per-session sequence counters (first
and last seq, stored, duplicates, replayed: seq gaps are counted from them), devices' last
seen, the runs a batch sees first, and per-run frame, replay and duplicate counts.

Every statement here adds to what is stored (GREATEST/LEAST, sums) rather than overwriting
it, so batches may arrive in any order and several collectors may share a database; rows
are written in sorted key order so concurrent transactions take locks in the same order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from edgebench.collector.ingest.validate import Message
from edgebench.collector.store.schema import BUCKET_COLUMNS, LATENCY_BUCKET_STAGES, LATENCY_BUCKETS_S


class Tally:
    """Per (device, session): first and last seq, received, duplicates, replayed; per run:
    duplicates dropped."""

    def __init__(self) -> None:
        self.sessions: dict[tuple, dict[str, Any]] = {}
        self.run_duplicates: dict[tuple, int] = defaultdict(int)

    def _session(self, m: Message) -> dict[str, Any]:
        k = (m.device_id, m.body["session"])
        st = self.sessions.get(k)
        if st is None:
            seq = m.body["seq"]
            st = self.sessions[k] = {"first": seq, "last": seq, "received": 0, "duplicates": 0, "replayed": 0}
        return st

    @staticmethod
    def _arrived(st: dict[str, Any], seq: int) -> None:
        st["first"], st["last"] = min(st["first"], seq), max(st["last"], seq)
        st["received"] += 1

    def duplicate(self, m: Message) -> None:
        """The same message again (its seq was counted when it was first stored)."""
        self._session(m)["duplicates"] += 1
        if m.run_id:
            self.run_duplicates[(m.device_id, m.run_id)] += 1

    def content_duplicate(self, m: Message) -> None:
        """Frames already stored under another (session, seq): its seq did arrive, not a gap."""
        st = self._session(m)
        st["duplicates"] += 1
        self._arrived(st, m.body["seq"])
        self.run_duplicates[(m.device_id, m.run_id)] += 1

    def stored(self, m: Message) -> None:
        st = self._session(m)
        self._arrived(st, m.body["seq"])
        st["replayed"] += int(bool(m.body.get("replayed")))

    def write(self, store, cur, now: float) -> None:
        """Add the run duplicates and the session counters to what is stored."""
        for (dev, run_id), k in sorted(self.run_duplicates.items()):
            cur.execute(
                store.sql("UPDATE runs SET duplicates = duplicates + ? WHERE device_id = ? AND run_id = ?"),
                (k, dev, run_id),
            )
        for (dev, session), st in sorted(self.sessions.items()):
            cur.execute(
                store.sql(
                    "INSERT INTO sessions(device_id, session, first_seq, last_seq, received, duplicates, replayed,"
                    " first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(device_id, session) DO UPDATE SET"
                    f" first_seq = {store.least}(sessions.first_seq, excluded.first_seq),"
                    f" last_seq = {store.greatest}(sessions.last_seq, excluded.last_seq),"
                    " received = sessions.received + excluded.received,"
                    " duplicates = sessions.duplicates + excluded.duplicates,"
                    " replayed = sessions.replayed + excluded.replayed,"
                    " last_seen = excluded.last_seen"
                ),
                (dev, session, st["first"], st["last"], st["received"], st["duplicates"], st["replayed"], now, now),
            )


def touch_devices(store, cur, msgs: list[Message]) -> None:
    """A row per device heard from, with its last seen (the latest receipt, never earlier)."""
    touched: dict[str, float] = {}
    for m in msgs:
        touched[m.device_id] = max(touched.get(m.device_id, 0.0), m.received_at)
    for dev in sorted(touched):
        cur.execute(
            store.sql(
                "INSERT INTO devices(device_id, first_seen, last_seen) VALUES (?, ?, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET last_seen = "
                f"{store.greatest}(COALESCE(devices.last_seen, 0), excluded.last_seen)"
            ),
            (dev, touched[dev], touched[dev]),
        )


def open_runs(store, cur, fresh: list[Message]) -> None:
    """A row per run first seen in this batch (frames can arrive before meta on another
    subscription), with the session and receipt time of its first message."""
    first_of_run: dict[tuple, tuple] = {}
    for m in fresh:
        if m.run_id and (m.device_id, m.run_id) not in first_of_run:
            first_of_run[(m.device_id, m.run_id)] = (m.body["session"], m.received_at)
    for (dev, run_id), (session, t) in sorted(first_of_run.items()):
        cur.execute(
            store.sql(
                "INSERT INTO runs(device_id, run_id, session, first_seen) VALUES (?,?,?,?)"
                " ON CONFLICT(device_id, run_id) DO NOTHING"
            ),
            (dev, run_id, session, t),
        )


def count_frames(store, cur, fresh: list[Message]) -> None:
    """Add the batch's stored frames and replayed batches to each run's counts."""
    per_run: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for m in fresh:
        if m.kind == "frames":
            pr = per_run[(m.device_id, m.run_id)]
            pr[0] += m.body["n"]
            pr[1] += int(bool(m.body.get("replayed")))
    for (dev, run_id), (nf, nr) in sorted(per_run.items()):
        cur.execute(
            store.sql(
                "UPDATE runs SET frames_stored = frames_stored + ?, replayed = replayed + ?"
                " WHERE device_id = ? AND run_id = ?"
            ),
            (nf, nr, dev, run_id),
        )


_EDGES_MS = np.asarray(LATENCY_BUCKETS_S) * 1000.0


def count_latency(store, cur, fresh: list[Message]) -> None:
    """Add the stored frames' latencies to each run's histogram (``latency_buckets``): per
    stage, how many fell at or under each bound and above the last, their sum and count.
    Added with ``col = col + ?``, so concurrent collectors never lose a count."""
    values: dict[tuple, list[float]] = defaultdict(list)
    for m in fresh:  # one numpy pass per run and stage of the batch, not per message
        if m.kind == "frames":
            for stage in LATENCY_BUCKET_STAGES:
                values[(m.device_id, m.run_id, stage)].extend(m.body["latency_ms"][stage])
    per = {}
    for key, vals in values.items():
        v = np.asarray(vals, dtype=np.float64)
        counts = np.bincount(np.searchsorted(_EDGES_MS, v, side="left"), minlength=len(BUCKET_COLUMNS))
        per[key] = (counts, float(v.sum()), int(v.size))
    cols = ", ".join(BUCKET_COLUMNS)
    adds = ", ".join(f"{c} = latency_buckets.{c} + excluded.{c}" for c in [*BUCKET_COLUMNS, "sum_ms", "n"])
    marks = ",".join("?" * (len(BUCKET_COLUMNS) + 5))
    sql = store.sql(
        f"INSERT INTO latency_buckets(device_id, run_id, stage, {cols}, sum_ms, n) VALUES ({marks})"
        f" ON CONFLICT(device_id, run_id, stage) DO UPDATE SET {adds}"
    )
    for (dev, run_id, stage), (counts, total, n) in sorted(per.items()):
        cur.execute(sql, (dev, run_id, stage, *(int(c) for c in counts), total, n))
