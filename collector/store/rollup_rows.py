"""The rollup rows of a batch of stored frame batches, computed in the writer with numpy and
upserted (PostgreSQL): per (device, run, minute) and per run, what rollups.py describes.

The same figures as rollups.ctes (which rolls up frames already stored, in SQL): counts, sums,
min and max per stage, and for e2e and inference the log-bucket histogram (numpy's log and
PostgreSQL's ln may put a value on a bucket edge in the next bucket: within the stated bound
either way). Computing them here costs a few numpy passes per batch; in SQL it was most of
the insert's time (docs/scale-out.md)."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import orjson

from edgebench.agent.wire.protocol import MAX_MS
from edgebench.collector.store.fields import num
from edgebench.collector.store.rollups import _MERGE, GAMMA, HIST_STAGES, MIN_MS, stage_columns
from edgebench.collector.store.schema import ALL_STAGES

_LOG_G = float(np.log(GAMMA))


def _figures(values: list[np.ndarray], hist: bool) -> dict:
    v = np.minimum(np.concatenate(values), MAX_MS) if values else np.empty(0)
    out = {"n": int(v.size), "sum": float(v.sum()), "min": None, "max": None, "hist": None}
    if v.size:
        out["min"], out["max"] = float(v.min()), float(v.max())
    if hist and v.size:
        k = np.where(v <= MIN_MS, 0, np.ceil(np.log(np.maximum(v, MIN_MS) / MIN_MS) / _LOG_G)).astype(np.int64)
        ks, cs = np.unique(k, return_counts=True)
        out["hist"] = Counter(dict(zip(ks.tolist(), cs.tolist())))
    return out


def minute_rows(msgs) -> dict[tuple, dict]:
    """(device_id, run_id, minute) -> batches, frames and each stage's figures."""
    groups: dict[tuple, list] = defaultdict(list)
    for m in msgs:
        t = num(m.body.get("ts")) or m.received_at
        groups[(m.device_id, m.run_id, int(t // 60) * 60)].append(m.body)
    out = {}
    for key, bodies in groups.items():
        row = {"batches": len(bodies), "frames": sum(b["n"] for b in bodies)}
        for s in ALL_STAGES:
            vals = [np.asarray(b["latency_ms"][s], dtype=np.float64) for b in bodies if s in b["latency_ms"]]
            row[s] = _figures(vals, s in HIST_STAGES)
        out[key] = row
    return out


def _merge(a: dict, b: dict) -> dict:
    """Two rows' figures as one."""
    out = {"batches": a["batches"] + b["batches"], "frames": a["frames"] + b["frames"]}
    for s in ALL_STAGES:
        x, y = a[s], b[s]
        lo = [v for v in (x["min"], y["min"]) if v is not None]
        hi = [v for v in (x["max"], y["max"]) if v is not None]
        h = None if x["hist"] is None and y["hist"] is None else (x["hist"] or Counter()) + (y["hist"] or Counter())
        out[s] = {
            "n": x["n"] + y["n"],
            "sum": x["sum"] + y["sum"],
            "min": min(lo, default=None),
            "max": max(hi, default=None),
            "hist": h,
        }
    return out


def run_rows(minutes: dict[tuple, dict]) -> dict[tuple, dict]:
    """(device_id, run_id) -> first and last minute and the runs' summed figures."""
    out: dict[tuple, dict] = {}
    for (dev, run, minute), row in sorted(minutes.items()):
        prev = out.get((dev, run))
        if prev is None:
            out[(dev, run)] = {**row, "first": minute, "last": minute}
        else:
            out[(dev, run)] = {**_merge(prev, row), "first": prev["first"], "last": minute}
    return out


def _columns(rows: list[dict]) -> list:
    """The stage columns (stage_columns order) of rows: a list each, histograms one JSON array."""
    cols = []
    for c, k in stage_columns():
        s = c.rsplit("_", 1)[0]
        if k == "hist":  # one JSON array per column: psycopg escapes text arrays slowly, in Python
            hists = [None if r[s]["hist"] is None else {str(b): n for b, n in r[s]["hist"].items()} for r in rows]
            cols.append(orjson.dumps(hists).decode())
        else:
            cols.append([r[s][k] for r in rows])
    return cols


def _unnest(extra: list[tuple[str, str]]) -> tuple[str, str]:
    """(column names, SELECT list over unnest(...) AS u) for the key columns ``extra`` and the stages."""
    types = {"n": "bigint", "sum": "float8", "min": "float8", "max": "float8", "hist": "jsonb"}
    cols = [*extra, ("batches", "bigint"), ("frames", "bigint"), *((c, types[k]) for c, k in stage_columns())]
    names = ", ".join(c for c, _ in cols)
    arrays = ", ".join(
        "ARRAY(SELECT e FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS j(e, i) ORDER BY i)"
        if t == "jsonb"
        else f"%s::{t}[]"
        for _, t in cols
    )
    pick = ", ".join(f"NULLIF(u.{c}, 'null'::jsonb)" if c.endswith("_hist") else f"u.{c}" for c, _ in cols)
    return names, f"SELECT {pick} FROM unnest({arrays}) AS u({names})"


def _sets(t: str) -> str:
    pairs = [("batches", "n"), ("frames", "n"), *stage_columns()]
    return ", ".join(f"{c} = " + _MERGE[k].format(t=t, c=c) for c, k in pairs)


def upsert(cur, msgs) -> None:
    """Add the stored frame batches ``msgs`` to ``frame_rollups`` and ``run_rollups``."""
    minutes = minute_rows(msgs)
    if not minutes:
        return
    keys = sorted(minutes)  # sorted, so collectors sharing a database lock rows in the same order
    rows = [minutes[k] for k in keys]
    names, sel = _unnest([("device_id", "text"), ("run_id", "text"), ("minute", "bigint")])
    cur.execute(
        f"INSERT INTO frame_rollups ({names}) {sel} ON CONFLICT (device_id, run_id, minute)"
        f" DO UPDATE SET {_sets('frame_rollups')}",
        [
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [r["batches"] for r in rows],
            [r["frames"] for r in rows],
            *_columns(rows),
        ],
    )
    runs = run_rows(minutes)
    rkeys = sorted(runs)
    rrows = [runs[k] for k in rkeys]
    names, sel = _unnest(
        [("device_id", "text"), ("run_id", "text"), ("first_minute", "bigint"), ("last_minute", "bigint")]
    )
    cur.execute(
        f"INSERT INTO run_rollups ({names}) {sel} ON CONFLICT (device_id, run_id) DO UPDATE SET"
        " first_minute = LEAST(run_rollups.first_minute, excluded.first_minute),"
        f" last_minute = GREATEST(run_rollups.last_minute, excluded.last_minute), {_sets('run_rollups')}",
        [
            [k[0] for k in rkeys],
            [k[1] for k in rkeys],
            [r["first"] for r in rrows],
            [r["last"] for r in rrows],
            [r["batches"] for r in rrows],
            [r["frames"] for r in rrows],
            *_columns(rrows),
        ],
    )
