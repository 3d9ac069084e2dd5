"""Fleet groups: one row per group of per-frame runs (default: device and model) with its
run figures and the exact latency percentiles over every stored frame of the group.

Percentiles are computed from the stored per-frame latencies of the whole group, never
averaged across runs: in PostgreSQL with ``percentile_cont`` over the unnested arrays, in
SQLite in Python with numpy; both interpolate linearly between closest ranks, the
definition agent/wire/stats.py uses (PERCENTILE_METHOD).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from edgebench.agent.wire.protocol import MAX_MS, STAGES
from edgebench.collector.aggregate.common import (
    DEFAULT_GROUP,
    GROUP_COLUMNS,
    PCT_KEYS,
    PER_FRAME_RUN,
    REPORT_PCTS,
    check_group,
    filters,
    named,
    rounded,
    select,
    stage_stats,
)
from edgebench.collector.store import ALL_STAGES
from edgebench.collector.store.rollups import HIST_STAGES, quantiles, window_sql
from edgebench.collector.store.rollups import METHOD as ROLLUP_METHOD

_DONE = "r.summary IS NOT NULL"
#: The per-group run figures: (name, SQL aggregate over the group's runs).
_RUN_FIGURES = [
    ("runs", "COUNT(*)"),
    ("completed", f"SUM(CASE WHEN {_DONE} THEN 1 ELSE 0 END)"),
    ("frames_done", f"SUM(CASE WHEN {_DONE} THEN r.frames END)"),
    ("duration", f"SUM(CASE WHEN {_DONE} AND r.frames IS NOT NULL THEN r.duration_s END)"),
    ("gross_mj", "SUM(CASE WHEN r.energy_mj_gross IS NOT NULL THEN r.energy_mj_gross * r.frames END)"),
    ("gross_frames", "SUM(CASE WHEN r.energy_mj_gross IS NOT NULL THEN r.frames END)"),
    ("net_mj", "SUM(CASE WHEN r.energy_mj_net IS NOT NULL THEN r.energy_mj_net * r.frames END)"),
    ("net_frames", "SUM(CASE WHEN r.energy_mj_net IS NOT NULL THEN r.frames END)"),
    ("power_runs", "SUM(CASE WHEN r.power_mean_w IS NOT NULL OR r.energy_mj_gross IS NOT NULL THEN 1 ELSE 0 END)"),
    ("throttled", "SUM(CASE WHEN r.throttled = 1 THEN 1 ELSE 0 END)"),
    ("thermal", "SUM(CASE WHEN r.throttled IS NOT NULL THEN 1 ELSE 0 END)"),
    ("temp_max", "MAX(r.temp_max_c)"),
    ("missing", f"SUM(CASE WHEN {_DONE} AND r.frames > r.frames_stored THEN r.frames - r.frames_stored ELSE 0 END)"),
    ("duplicates", "SUM(r.duplicates)"),
    ("replayed", "SUM(r.replayed)"),
    ("last", "MAX(COALESCE(r.summary_at, r.first_seen))"),
]


def group_rows(
    store,
    by: Iterable[str] = DEFAULT_GROUP,
    *,
    since: float | None = None,
    until: float | None = None,
    where: dict[str, Any] | None = None,
    rollups: bool = False,
) -> list[dict[str, Any]]:
    """One row per group (default: device and model) with:

    runs, completed_runs; frames (stored per-frame samples in the window); fps (frames /
    measured time, summed over completed runs); latency_ms.<stage>.{p50,p90,p99,mean};
    energy_per_inference_mj.{gross,net} (frame-weighted over runs that measured power);
    throttled_runs of thermal_runs; temp_max_c; data quality: missing_frames (announced by
    summaries but never stored), duplicates, replayed (frame batches replayed from a spool).
    The window (since/until, epoch s) applies to when frames were measured (device clock,
    ``ts``) and to when a run's summary arrived.

    ``rollups`` (PostgreSQL): frames and latency from the per-minute rollups instead of the
    raw frames (store/rollups.py): mean exact, e2e and inference percentiles within 2 % (the
    other stages' None), the window in whole minutes; each row then says so under
    ``latency_method``. Elsewhere it is ignored.
    """
    by = check_group(by)
    keys = [GROUP_COLUMNS[k] for k in by]
    out = _run_groups(store, by, keys, since, until, where)
    if rollups and store.has_rollups:
        fw, fp = filters(where, None, None, "")
        found = _rollup_latency(store, keys, fw, fp, since, until)
    else:
        rollups = False
        fw, fp = filters(where, since, until, "COALESCE(b.ts, b.received_at)")
        latency = _pg_latency if store.dialect == "postgresql" else _py_latency
        found = latency(store, keys, fw, fp)
    for key, (frames, stats) in found.items():
        row = out.get(key)
        if row is None:  # frames in the window of a run whose summary is outside it
            row = out[key] = _group_without_runs(by, key)
        row["frames"] = frames
        row["latency_ms"] = stats
    for row in out.values() if rollups else ():
        row["latency_method"] = ROLLUP_METHOD
    return [out[k] for k in sorted(out, key=lambda k: tuple("" if v is None else str(v) for v in k))]


def fleet_rows(store) -> list[dict[str, Any]]:
    """The default report: one row per device and model."""
    return group_rows(store, DEFAULT_GROUP)


def _run_groups(store, by, keys, since, until, where) -> dict[tuple, dict[str, Any]]:
    """The run figures of each group whose runs are in the window (summary, else first seen)."""
    kl = ", ".join(keys)
    rw, rp = filters(where, since, until, "COALESCE(r.summary_at, r.first_seen)")
    # per-frame runs only: sweeps and scenarios publish no frames (scenario_rows, sweep_rows)
    rw += f" AND {PER_FRAME_RUN}"
    rows = store.query(f"SELECT {kl}, {select(_RUN_FIGURES)} FROM runs r WHERE {rw} GROUP BY {kl}", rp)
    nk = len(by)
    return {tuple(row[:nk]): _group(by, tuple(row[:nk]), named(_RUN_FIGURES, row[nk:])) for row in rows}


def _group(by: tuple[str, ...], key: tuple, f: dict[str, Any]) -> dict[str, Any]:
    """A group's row from its run figures; frames and latency come from the frames."""
    gross, net = f["gross_frames"], f["net_frames"]
    return {
        **dict(zip(by, key)),
        "runs": int(f["runs"]),
        "completed_runs": int(f["completed"] or 0),
        "frames": 0,
        "fps": rounded(f["frames_done"] / f["duration"], 2) if f["frames_done"] and f["duration"] else None,
        "latency_ms": {s: stage_stats(np.empty(0)) for s in STAGES},
        "energy_per_inference_mj": (
            {
                "gross": rounded(f["gross_mj"] / gross) if gross else None,
                "net": rounded(f["net_mj"] / net) if net else None,
            }
            if gross or net
            else None
        ),
        "power_runs": int(f["power_runs"] or 0),
        "throttled_runs": int(f["throttled"] or 0) if f["thermal"] else None,
        "thermal_runs": int(f["thermal"] or 0),
        "temp_max_c": rounded(f["temp_max"], 2),
        "missing_frames": int(f["missing"] or 0),
        "duplicates": int(f["duplicates"] or 0),
        "replayed": int(f["replayed"] or 0),
        "last_at": f["last"],
    }


def _group_without_runs(by: tuple[str, ...], key: tuple) -> dict[str, Any]:
    return {
        **dict(zip(by, key)),
        "runs": 0,
        "completed_runs": 0,
        "fps": None,
        "energy_per_inference_mj": None,
        "power_runs": 0,
        "throttled_runs": None,
        "thermal_runs": 0,
        "temp_max_c": None,
        "missing_frames": 0,
        "duplicates": 0,
        "replayed": 0,
        "last_at": None,
    }


def _latency_dict(stats: dict[str, dict], present: dict[str, bool]) -> dict[str, dict]:
    """Every required stage; an optional stage (queue) only where the group has samples of it."""
    return {s: stats[s] for s in ALL_STAGES if s in STAGES or present.get(s)}


def _py_latency(store, keys, where, params) -> dict[tuple, tuple[int, dict]]:
    """Per group: (frames, latency stats per stage), from the arrays with numpy."""
    groups: dict[tuple, list] = defaultdict(list)
    for row in store.frame_samples(where, tuple(params), ALL_STAGES, keys=keys):
        groups[tuple(row[: len(keys)])].append(row[len(keys) + 1 :])
    out = {}
    for key, parts in groups.items():
        cols = {}
        for i, s in enumerate(ALL_STAGES):
            arrs = [p[i] for p in parts if p[i] is not None]
            cols[s] = np.concatenate(arrs) if arrs else np.empty(0)
        stats = {s: stage_stats(c) for s, c in cols.items()}
        out[key] = (int(cols["e2e"].size), _latency_dict(stats, {s: cols[s].size > 0 for s in ALL_STAGES}))
    return out


def _pg_latency(store, keys, where, params) -> dict[tuple, tuple[int, dict]]:
    """Per group: (frames, latency stats per stage), computed in PostgreSQL."""
    fr = ", ".join(str(p / 100) for p in REPORT_PCTS)
    cols = [f"s{i}" for i in range(len(ALL_STAGES))]
    # A value beyond the protocol's bound (only in a store written before there was one)
    # counts as the bound: PostgreSQL's float aggregates raise on an overflow.
    v = {c: f"(CASE WHEN u.{c} > {MAX_MS} THEN {MAX_MS} ELSE u.{c} END)" for c in cols}
    aggs = ", ".join(
        f"percentile_cont(ARRAY[{fr}]) WITHIN GROUP (ORDER BY {v[c]}), AVG({v[c]}), COUNT(u.{c})" for c in cols
    )
    arrays = ", ".join(f"b.{s}_ms" for s in ALL_STAGES)
    kl = ", ".join(keys)
    # unnest() of several arrays pads the shorter (or NULL) ones with NULLs, which the
    # aggregates skip: an optional stage counts only where it was measured.
    rows = store.query(
        f"SELECT {kl}, {aggs} FROM frame_batches b"
        " JOIN runs r ON r.device_id = b.device_id AND r.run_id = b.run_id"
        f" CROSS JOIN LATERAL unnest({arrays}) AS u({', '.join(cols)}) WHERE {where} GROUP BY {kl}",
        params,
    )
    out = {}
    nk = len(keys)
    for row in rows:
        key = tuple(row[:nk])
        vals = row[nk:]
        stats, present = {}, {}
        for j, s in enumerate(ALL_STAGES):
            pct, mean, n = vals[3 * j], vals[3 * j + 1], vals[3 * j + 2]
            stats[s] = {
                **{k: rounded(v) for k, v in zip(PCT_KEYS, pct or [None] * len(PCT_KEYS))},
                "mean": rounded(mean),
            }
            present[s] = bool(n)
        out[key] = (int(vals[3 * ALL_STAGES.index("e2e") + 2]), _latency_dict(stats, present))
    return out


def _rollup_latency(store, keys, where, params, since, until) -> dict[tuple, tuple[int, dict]]:
    """Per group: (frames, latency stats per stage), from the rollups of the minutes in the
    window (rollups.window_sql): counts and sums add up (mean exact), histograms merge bucket
    by bucket (e2e and inference percentiles within 2 %; the other stages' are None)."""
    kl = ", ".join(keys)
    nk = len(keys)
    x, xp = window_sql(since, until)
    frm = f"FROM {x} JOIN runs r ON r.device_id = x.device_id AND r.run_id = x.run_id"
    sums = ", ".join(f"SUM(x.{s}_n), SUM(x.{s}_sum)" for s in ALL_STAGES)
    totals = {
        tuple(r[:nk]): r[nk:]
        for r in store.query(f"SELECT {kl}, {sums} {frm} WHERE {where} GROUP BY {kl}", [*xp, *params])
    }
    hist_sql = " UNION ALL ".join(
        f"SELECT {kl}, {ALL_STAGES.index(s)} AS stage, h.key::int AS k, SUM(h.value::bigint) AS c {frm}"
        f" CROSS JOIN LATERAL jsonb_each_text(x.{s}_hist) AS h WHERE {where} GROUP BY {kl}, h.key"
        for s in HIST_STAGES
    )
    hists: dict[tuple, dict[int, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in store.query(hist_sql, [*xp, *params] * len(HIST_STAGES)):
        hists[tuple(row[:nk])][row[nk]][row[nk + 1]] = int(row[nk + 2])
    out = {}
    for key, vals in totals.items():
        stats, present = {}, {}
        for j, s in enumerate(ALL_STAGES):
            n, total = int(vals[2 * j] or 0), vals[2 * j + 1]
            pct = quantiles(hists[key][j], tuple(p / 100 for p in REPORT_PCTS))
            stats[s] = {**{k: rounded(v) for k, v in zip(PCT_KEYS, pct)}, "mean": rounded(total / n) if n else None}
            present[s] = n > 0
        out[key] = (int(vals[2 * ALL_STAGES.index("e2e")] or 0), _latency_dict(stats, present))
    return out
