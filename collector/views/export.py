"""``edgebench-collector export``: per-frame samples, runs or the fleet report, as CSV
(standard library) or Parquet (pyarrow, from the ``parquet`` extra)."""

from __future__ import annotations

import csv
import sys
from typing import Any, Iterator

from edgebench.agent.errors import UserError
from edgebench.collector.aggregate import filters, flatten, group_rows
from edgebench.collector.store import ALL_STAGES

FRAME_COLS = [
    "device_id",
    "run_id",
    "model",
    "runtime",
    "delegate",
    "scenario",
    "session",
    "frame",
    "ts",
    "replayed",
    *(f"{s}_ms" for s in ALL_STAGES),
]


def frame_rows(store, since=None, until=None, where=None) -> Iterator[list[Any]]:
    """One row per stored frame (batches unpacked), ordered by device, run, frame."""
    w, p = filters(where, since, until, "COALESCE(b.ts, b.received_at)")
    rows = store.frame_samples(
        w + " ORDER BY b.device_id, b.run_id, b.first_frame",
        tuple(p),
        ALL_STAGES,
        keys=[
            "b.device_id",
            "b.run_id",
            "r.model_name",
            "r.runtime",
            "r.delegate",
            "r.scenario",
            "b.session",
            "b.first_frame",
            "b.ts",
            "b.replayed",
        ],
    )
    for row in rows:
        head = row[:10]
        n = row[10]
        arrays = row[11:]
        first = head[7]
        for i in range(n):
            yield [
                *head[:7],
                first + i,
                head[8],
                head[9],
                *(None if a is None or i >= a.size else float(a[i]) for a in arrays),
            ]


def run_rows(store, since=None, until=None, where=None) -> list[dict[str, Any]]:
    w, p = filters(where, since, until, "COALESCE(r.summary_at, r.first_seen)")
    cols = [
        "device_id",
        "run_id",
        "session",
        "model_name",
        "model_sha256",
        "runtime",
        "runtime_version",
        "delegate",
        "num_threads",
        "source_kind",
        "scenario",
        "board",
        "started_at",
        "frames",
        "frames_stored",
        "duration_s",
        "fps",
        "power_mean_w",
        "energy_mj_gross",
        "energy_mj_net",
        "power_source",
        "throttled",
        "temp_max_c",
        "has_sweep",
        "kind",
        "verdict",
        "headline_metric",
        "headline_value",
        "headline_unit",
        "within_bound",
        "latency_bound_ms",
        "target_qps",
        "duplicates",
        "replayed",
        "first_seen",
        "summary_at",
    ]
    q = store.query(
        f"SELECT {', '.join('r.' + c for c in cols)} FROM runs r WHERE {w} ORDER BY r.device_id, r.run_id", p
    )
    return [dict(zip(cols, r)) for r in q]


def export(store, what: str, fmt: str, out: str, since=None, until=None, where=None) -> int:
    if what == "frames":
        cols, rows = FRAME_COLS, frame_rows(store, since, until, where)
    elif what == "runs":
        rr = run_rows(store, since, until, where)
        cols = list(rr[0]) if rr else []
        rows = ([r[c] for c in cols] for r in rr)
    elif what == "fleet":
        fr = [
            flatten({k: v for k, v in r.items() if k != "last_at"})
            for r in group_rows(store, since=since, until=until, where=where)
        ]
        cols = []
        for r in fr:
            cols += [k for k in r if k not in cols]
        rows = ([r.get(c) for c in cols] for r in fr)
    else:
        raise UserError(f"cannot export {what!r}: use frames, runs or fleet")
    if fmt == "csv":
        return _csv(out, cols, rows)
    if fmt == "parquet":
        return _parquet(out, cols, rows)
    raise UserError(f"unknown export format {fmt!r}: use csv or parquet")


def _csv(out: str, cols, rows) -> int:
    try:
        f = sys.stdout if out == "-" else open(out, "w", newline="", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    n = 0
    try:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(r)
            n += 1
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        if f is not sys.stdout:
            f.close()
    return n


def _parquet(out: str, cols, rows) -> int:
    if out == "-":
        raise UserError("Parquet cannot go to stdout: give --out FILE.parquet")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(
            "Parquet export needs pyarrow: pip install 'edgebench[parquet]' (or use --format csv)"
        ) from None
    data = list(rows)
    table = pa.table({c: [r[i] for r in data] for i, c in enumerate(cols)}) if cols else pa.table({})
    try:
        pq.write_table(table, out)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e}") from None
    return len(data)
