"""Aggregations over the store.

Percentiles are computed from the stored per-frame latencies of the whole group
(exact), never averaged across runs: in PostgreSQL with ``percentile_cont`` over the
unnested arrays, in SQLite in Python with numpy; both use linear interpolation between
closest ranks, the definition agent/wire/stats.py uses (PERCENTILE_METHOD).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.wire.compare import compare_samples
from edgebench.agent.wire.protocol import STAGES, SWEEP_SCHEMA
from edgebench.agent.wire.stats import PERCENTILE_METHOD, pareto_frontier
from edgebench.collector.store import ALL_STAGES

REPORT_PCTS = (50, 90, 99)
PCT_KEYS = tuple(f"p{p}" for p in REPORT_PCTS)

#: What rows can be grouped by, and the runs column behind each.
GROUP_COLUMNS = {
    "device_id": "r.device_id",
    "model": "r.model_name",
    "runtime": "r.runtime",
    "delegate": "r.delegate",
    "scenario": "r.scenario",
    "board": "r.board",
    "run_id": "r.run_id",
}
DEFAULT_GROUP = ("device_id", "model")
#: A per-frame run (what the frame-based report covers); runs stored before sweeps and
#: scenarios were published have kind NULL only while their meta has not arrived.
PER_FRAME_RUN = "COALESCE(r.kind, 'run') = 'run'"


def _r(v: Any, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


def _stage_stats(a: np.ndarray) -> dict[str, float | None]:
    if a.size == 0:
        return {**{k: None for k in PCT_KEYS}, "mean": None}
    pct = np.percentile(a, REPORT_PCTS, method=PERCENTILE_METHOD)
    return {**{k: _r(v) for k, v in zip(PCT_KEYS, pct)}, "mean": _r(a.mean())}


def _filters(
    by_where: dict[str, Any] | None, since: float | None, until: float | None, time_col: str
) -> tuple[str, list[Any]]:
    where, params = ["1=1"], []
    for k, v in (by_where or {}).items():
        if k not in GROUP_COLUMNS:
            raise UserError(f"cannot filter on {k!r}: use one of {', '.join(GROUP_COLUMNS)}")
        if v is None:
            continue
        where.append(f"{GROUP_COLUMNS[k]} = ?")
        params.append(v)
    if since is not None:
        where.append(f"{time_col} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{time_col} < ?")
        params.append(until)
    return " AND ".join(where), params


def check_group(by: Iterable[str]) -> tuple[str, ...]:
    by = tuple(by)
    bad = [k for k in by if k not in GROUP_COLUMNS]
    if bad or not by:
        raise UserError(f"cannot group by {', '.join(bad) or 'nothing'}: use some of {', '.join(GROUP_COLUMNS)}")
    return by


def group_rows(
    store,
    by: Iterable[str] = DEFAULT_GROUP,
    *,
    since: float | None = None,
    until: float | None = None,
    where: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per group (default: device and model) with:

    runs, completed_runs; frames (stored per-frame samples in the window); fps (frames /
    measured time, summed over completed runs); latency_ms.<stage>.{p50,p90,p99,mean};
    energy_per_inference_mj.{gross,net} (frame-weighted over runs that measured power);
    throttled_runs of thermal_runs; temp_max_c; data quality: missing_frames (announced by
    summaries but never stored), duplicates, replayed (frame batches replayed from a spool).
    The window (since/until, epoch s) applies to when frames were measured (device clock,
    ``ts``) and to when a run's summary arrived.
    """
    by = check_group(by)
    keys = [GROUP_COLUMNS[k] for k in by]
    kl = ", ".join(keys)
    rw, rp = _filters(where, since, until, "COALESCE(r.summary_at, r.first_seen)")
    # per-frame runs only: sweeps and scenarios publish no frames (scenario_rows, sweep_rows)
    rw += f" AND {PER_FRAME_RUN}"
    done = "r.summary IS NOT NULL"
    runs = store.query(
        f"SELECT {kl}, COUNT(*), SUM(CASE WHEN {done} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {done} THEN r.frames END), SUM(CASE WHEN {done} AND r.frames IS NOT NULL THEN r.duration_s END),"
        " SUM(CASE WHEN r.energy_mj_gross IS NOT NULL THEN r.energy_mj_gross * r.frames END),"
        " SUM(CASE WHEN r.energy_mj_gross IS NOT NULL THEN r.frames END),"
        " SUM(CASE WHEN r.energy_mj_net IS NOT NULL THEN r.energy_mj_net * r.frames END),"
        " SUM(CASE WHEN r.energy_mj_net IS NOT NULL THEN r.frames END),"
        " SUM(CASE WHEN r.power_mean_w IS NOT NULL OR r.energy_mj_gross IS NOT NULL THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN r.throttled = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN r.throttled IS NOT NULL THEN 1 ELSE 0 END),"
        " MAX(r.temp_max_c),"
        f" SUM(CASE WHEN {done} AND r.frames > r.frames_stored THEN r.frames - r.frames_stored ELSE 0 END),"
        " SUM(r.duplicates), SUM(r.replayed), MAX(COALESCE(r.summary_at, r.first_seen))"
        f" FROM runs r WHERE {rw} GROUP BY {kl}",
        rp,
    )
    nk = len(by)
    out: dict[tuple, dict[str, Any]] = {}
    for row in runs:
        key = tuple(row[:nk])
        (
            n_runs,
            completed,
            sfr,
            sdur,
            eg,
            egf,
            en,
            enf,
            power_runs,
            thr,
            thr_known,
            tmax,
            missing,
            dups,
            repl,
            last,
        ) = row[nk:]
        out[key] = {
            **dict(zip(by, key)),
            "runs": int(n_runs),
            "completed_runs": int(completed or 0),
            "frames": 0,
            "fps": _r(sfr / sdur, 2) if sfr and sdur else None,
            "latency_ms": {s: _stage_stats(np.empty(0)) for s in STAGES},
            "energy_per_inference_mj": (
                {"gross": _r(eg / egf) if egf else None, "net": _r(en / enf) if enf else None} if egf or enf else None
            ),
            "power_runs": int(power_runs or 0),
            "throttled_runs": int(thr or 0) if thr_known else None,
            "thermal_runs": int(thr_known or 0),
            "temp_max_c": _r(tmax, 2),
            "missing_frames": int(missing or 0),
            "duplicates": int(dups or 0),
            "replayed": int(repl or 0),
            "last_at": last,
        }
    fw, fp = _filters(where, since, until, "COALESCE(b.ts, b.received_at)")
    if store.dialect == "postgresql":
        lat = _pg_latency(store, keys, fw, fp)
    else:
        lat = _py_latency(store, keys, fw, fp)
    for key, (frames, stats) in lat.items():
        row = out.get(key)
        if row is None:  # frames in the window of a run whose summary is outside it
            row = out[key] = {
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
        row["frames"] = frames
        row["latency_ms"] = stats
    return [out[k] for k in sorted(out, key=lambda k: tuple("" if v is None else str(v) for v in k))]


def _latency_dict(stats: dict[str, dict], present: dict[str, bool]) -> dict[str, dict]:
    """Every required stage; an optional stage (queue) only where the group has samples of it."""
    return {s: stats[s] for s in ALL_STAGES if s in STAGES or present.get(s)}


def _py_latency(store, keys, where, params) -> dict[tuple, tuple[int, dict]]:
    groups: dict[tuple, list] = defaultdict(list)
    for row in store.frame_samples(where, tuple(params), ALL_STAGES, keys=keys):
        groups[tuple(row[: len(keys)])].append(row[len(keys) + 1 :])
    out = {}
    for key, parts in groups.items():
        cols = {}
        for i, s in enumerate(ALL_STAGES):
            arrs = [p[i] for p in parts if p[i] is not None]
            cols[s] = np.concatenate(arrs) if arrs else np.empty(0)
        stats = {s: _stage_stats(c) for s, c in cols.items()}
        out[key] = (int(cols["e2e"].size), _latency_dict(stats, {s: cols[s].size > 0 for s in ALL_STAGES}))
    return out


def _pg_latency(store, keys, where, params) -> dict[tuple, tuple[int, dict]]:
    fr = ", ".join(str(p / 100) for p in REPORT_PCTS)
    cols = [f"s{i}" for i in range(len(ALL_STAGES))]
    aggs = ", ".join(
        f"percentile_cont(ARRAY[{fr}]) WITHIN GROUP (ORDER BY u.{c}), AVG(u.{c}), COUNT(u.{c})" for c in cols
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
            stats[s] = {**{k: _r(v) for k, v in zip(PCT_KEYS, pct or [None] * len(PCT_KEYS))}, "mean": _r(mean)}
            present[s] = bool(n)
        out[key] = (int(vals[3 * ALL_STAGES.index("e2e") + 2]), _latency_dict(stats, present))
    return out


# --------------------------------------------------------------------------- devices
def device_rows(store, now: float | None = None) -> list[dict[str, Any]]:
    """Every device: state (online/stopped/offline, from its retained status), last seen,
    agent version, runs, and data quality over its sessions (seq gaps, duplicates, replayed)."""
    now = time.time() if now is None else now
    q = store.query(
        "SELECT d.device_id, d.state, d.session, d.state_at, d.agent_version, d.inventory, d.first_seen,"
        " d.last_seen, (SELECT COUNT(*) FROM runs r WHERE r.device_id = d.device_id),"
        " (SELECT COUNT(*) FROM sessions s WHERE s.device_id = d.device_id),"
        " (SELECT SUM(CASE WHEN s.last_seq - s.first_seq + 1 > s.received THEN s.last_seq - s.first_seq + 1 - s.received ELSE 0 END) FROM sessions s WHERE s.device_id = d.device_id),"
        " (SELECT SUM(s.duplicates) FROM sessions s WHERE s.device_id = d.device_id),"
        " (SELECT SUM(s.replayed) FROM sessions s WHERE s.device_id = d.device_id)"
        " FROM devices d ORDER BY d.device_id"
    )
    rows = []
    for dev, state, session, state_at, agent, inv, first, last, runs, nsess, gaps, dups, repl in q:
        try:
            inventory = json.loads(inv) if inv else {}
        except ValueError:
            inventory = {}
        board = inventory.get("model") or inventory.get("board") or inventory.get("machine")
        if isinstance(board, dict):
            board = board.get("model") or board.get("name")
        rows.append(
            {
                "device_id": dev,
                "state": state or "unknown",
                "session": session,
                "agent_version": agent,
                "board": board,
                "last_seen": last,
                "last_seen_age_s": _r(now - last, 1) if last else None,
                "state_since": state_at,
                "first_seen": first,
                "runs": int(runs or 0),
                "sessions": int(nsess or 0),
                "seq_gaps": int(gaps or 0),
                "duplicates": int(dups or 0),
                "replayed": int(repl or 0),
                "inventory": inventory,
            }
        )
    return rows


def quarantine_counts(store) -> dict[str, int]:
    return {
        code: int(n) for code, n in store.query("SELECT code, COUNT(*) FROM quarantine GROUP BY code ORDER BY code")
    }


# --------------------------------------------------------------------------- runs
def run_list(store, device_id: str | None = None, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    where, params = _filters({"device_id": device_id, "model": model}, None, None, "")
    q = store.query(
        "SELECT r.device_id, r.run_id, r.model_name, r.runtime, r.delegate, r.num_threads, r.scenario, r.frames,"
        " r.frames_stored, r.fps, r.energy_mj_gross, r.throttled, r.has_sweep, r.summary_at, r.first_seen,"
        " r.started_at, r.source_kind, COALESCE(r.kind, 'run'), r.verdict, r.headline_metric, r.headline_value,"
        " r.headline_unit, r.within_bound"
        f" FROM runs r WHERE {where} ORDER BY COALESCE(r.summary_at, r.first_seen) DESC LIMIT {int(limit)}",
        params,
    )
    keys = [
        "device_id",
        "run_id",
        "model",
        "runtime",
        "delegate",
        "num_threads",
        "scenario",
        "frames",
        "frames_stored",
        "fps",
        "energy_mj_gross",
        "throttled",
        "has_sweep",
        "summary_at",
        "first_seen",
        "started_at",
        "source_kind",
        "kind",
        "verdict",
        "headline_metric",
        "headline_value",
        "headline_unit",
        "within_bound",
    ]
    return [dict(zip(keys, r)) for r in q]


def find_run(store, ref: str) -> tuple[str, str]:
    """``DEVICE/RUN_ID`` or a bare run id (when unique)."""
    if "/" in ref:
        dev, run = ref.split("/", 1)
        rows = store.query("SELECT device_id, run_id FROM runs WHERE device_id = ? AND run_id = ?", (dev, run))
    else:
        rows = store.query("SELECT device_id, run_id FROM runs WHERE run_id = ?", (ref,))
    if not rows:
        raise UserError(f"no run {ref!r} in the database (see `edgebench-collector report --by device_id,run_id`)")
    if len(rows) > 1:
        raise UserError(f"run id {ref!r} exists on several devices: write it as DEVICE/RUN_ID")
    return rows[0][0], rows[0][1]


def run_detail(store, device_id: str, run_id: str) -> dict[str, Any]:
    row = store.query(
        "SELECT r.model_name, r.runtime, r.runtime_version, r.delegate, r.num_threads, r.scenario, r.board,"
        " r.source_kind, r.frames, r.frames_stored, r.duration_s, r.fps, r.power_mean_w, r.energy_mj_gross,"
        " r.energy_mj_net, r.power_source, r.throttled, r.temp_max_c, r.summary, r.duplicates, r.replayed,"
        " r.started_at, r.session, COALESCE(r.kind, 'run'), r.verdict, r.headline_metric, r.headline_value,"
        " r.headline_unit, r.within_bound, r.latency_bound_ms, r.target_qps, r.meta"
        " FROM runs r WHERE r.device_id = ? AND r.run_id = ?",
        (device_id, run_id),
    )
    if not row:
        raise UserError(f"no run {device_id}/{run_id} in the database")
    keys = [
        "model",
        "runtime",
        "runtime_version",
        "delegate",
        "num_threads",
        "scenario",
        "board",
        "source_kind",
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
        "summary",
        "duplicates",
        "replayed",
        "started_at",
        "session",
        "kind",
        "verdict",
        "headline_metric",
        "headline_value",
        "headline_unit",
        "within_bound",
        "latency_bound_ms",
        "target_qps",
        "meta",
    ]
    d = dict(zip(keys, row[0]))
    d["summary"] = json.loads(d["summary"]) if d["summary"] else None
    d["meta"] = json.loads(d["meta"]) if d["meta"] else None
    d["device_id"], d["run_id"] = device_id, run_id
    samples = run_samples(store, device_id, run_id, ALL_STAGES)
    d["latency_ms"] = {s: _stage_stats(samples[s]) for s in ALL_STAGES if s in STAGES or samples[s].size}
    d["sweep"] = sweep_points(d["summary"])
    return d


def run_samples(store, device_id: str, run_id: str, stages: Iterable[str] = STAGES) -> dict[str, np.ndarray]:
    """The stored per-frame latencies (ms) of one run, in frame order."""
    stages = list(stages)
    rows = store.frame_samples("b.device_id = ? AND b.run_id = ?", (device_id, run_id), stages, keys=["b.first_frame"])
    rows.sort(key=lambda r: r[0])
    out = {}
    for i, s in enumerate(stages):
        arrs = [r[2 + i] for r in rows if r[2 + i] is not None]
        out[s] = np.concatenate(arrs) if arrs else np.empty(0)
    return out


def histogram(values: np.ndarray, bins: int = 40) -> dict[str, Any]:
    if values.size == 0:
        return {"counts": [], "edges": []}
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-3
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return {"counts": counts.tolist(), "edges": [round(float(e), 4) for e in edges]}


def sweep_points(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The points of a stored edgebench.sweep/1 document, every one (unsupported and failed
    ones too, with their reason), in the document's field names, each with its ``index``."""
    if not isinstance(doc, dict) or doc.get("schema") != SWEEP_SCHEMA:
        return []
    return [{"index": i, **p} for i, p in enumerate(doc["points"])]


def _point_label(p: dict[str, Any] | None) -> str | None:
    if not p:
        return None
    return f"batch {p['batch']}, threads {p['threads']}, instances {p['instances']}"


def sweep_overview(doc: dict[str, Any]) -> dict[str, Any]:
    """What a sweep came to: points by status, INVALID points, the best throughput and the
    lowest p99 (as the agent picked them: VALID points first) and the latency/throughput
    frontier (points no other point beats on both p99 latency and throughput)."""

    pts = doc["points"]
    ok = [p for p in pts if p["status"] == "ok"]
    best = doc.get("best") or {}
    return {
        "grid": doc["grid"],
        "points": len(pts),
        "counts": {s: sum(p["status"] == s for p in pts) for s in ("ok", "unsupported", "failed")},
        "invalid_points": sum(p.get("verdict") == "INVALID" for p in ok),
        "best_throughput_items_per_s": (best.get("throughput") or {}).get("throughput_items_per_s"),
        "best_throughput_at": _point_label(best.get("throughput")),
        "best_throughput_verdict": (best.get("throughput") or {}).get("verdict"),
        "lowest_p99_ms": (best.get("latency") or {}).get("p99_ms"),
        "lowest_p99_at": _point_label(best.get("latency")),
        "frontier": [
            {
                "batch": p["batch"],
                "threads": p["threads"],
                "instances": p["instances"],
                "p99_ms": p["latency_ms"]["p99"],
                "throughput_items_per_s": p["throughput_items_per_s"],
            }
            for p in pareto_frontier(ok)
        ],
        "unsupported_batches": sorted({p["batch"] for p in pts if p["status"] == "unsupported"}),
    }


def _document_runs(store, kind: str, since, until, where) -> list[tuple]:
    w, p = _filters(where, since, until, "COALESCE(r.summary_at, r.first_seen)")
    return store.query(
        "SELECT r.device_id, r.run_id, r.model_name, r.runtime, r.runtime_version, r.delegate, r.num_threads,"
        " r.board, r.scenario, r.verdict, r.headline_metric, r.headline_value, r.headline_unit, r.within_bound,"
        " r.latency_bound_ms, r.target_qps, r.duration_s, r.power_mean_w, r.summary, r.summary_at"
        f" FROM runs r WHERE r.kind = ? AND r.summary IS NOT NULL AND {w}"
        " ORDER BY r.summary_at DESC, r.device_id, r.run_id",
        [kind, *p],
    )


def scenario_rows(
    store, *, since: float | None = None, until: float | None = None, where: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per stored scenario result (newest first): its verdict and reasons, its
    headline (metric, value, unit: p90/p99 query latency in ms, offline samples/s, server p99
    in ms with whether it held the bound, find-max-qps the highest rate in queries/s), the
    offered and completed rate, the bound, queries and samples. The figures are the agent's,
    computed over every query of the run; no percentile is averaged across runs."""
    rows = []
    for (
        dev,
        run,
        model,
        rt,
        rtv,
        delegate,
        threads,
        board,
        scen,
        verdict,
        hm,
        hv,
        hu,
        within,
        bound,
        tqps,
        dur,
        pw,
        summary,
        at,
    ) in _document_runs(store, "scenario", since, until, where):
        doc = json.loads(summary)
        rows.append(
            {
                "device_id": dev,
                "run_id": run,
                "model": model,
                "runtime": rt,
                "runtime_version": rtv,
                "delegate": delegate,
                "num_threads": threads,
                "board": board,
                "scenario": scen,
                "batch": doc.get("batch"),
                "verdict": verdict,
                "reasons": doc.get("reasons", []),
                "headline": {"metric": hm, "value": hv, "unit": hu},
                "within_bound": None if within is None else bool(within),
                "latency_bound_ms": bound,
                "target_qps": tqps,
                "completed_qps": doc.get("completed_qps"),
                "max_qps": doc.get("max_qps"),
                "steps": len(doc["steps"]) if isinstance(doc.get("steps"), list) else None,
                "queries": doc.get("queries"),
                "samples": doc.get("samples"),
                "duration_s": dur,
                # absent for a find-max-qps search (each step is its own server run; see its steps)
                "latency_ms": {k: (doc.get("latency_ms") or {}).get(k) for k in ("p50", "p90", "p99", "mean")},
                "power_mean_w": pw,
                "received_at": at,
            }
        )
    return rows


def sweep_rows(
    store, *, since: float | None = None, until: float | None = None, where: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per stored sweep (newest first): the grid, points by status, INVALID points,
    the best throughput and the lowest p99 with the point that gave each."""
    rows = []
    for (
        dev,
        run,
        model,
        rt,
        rtv,
        delegate,
        _threads,
        board,
        _scen,
        _verdict,
        _hm,
        _hv,
        _hu,
        _w,
        _b,
        _q,
        _d,
        _pw,
        summary,
        at,
    ) in _document_runs(store, "sweep", since, until, where):
        doc = json.loads(summary)
        ov = sweep_overview(doc)
        rows.append(
            {
                "device_id": dev,
                "run_id": run,
                "model": model,
                "runtime": rt,
                "runtime_version": rtv,
                "delegate": delegate,
                "board": board,
                **{k: v for k, v in ov.items() if k != "frontier"},
                "frontier_points": len(ov["frontier"]),
                "received_at": at,
            }
        )
    return rows


# --------------------------------------------------------------------------- comparison
def compare_runs(store, run: tuple[str, str], baseline: tuple[str, str], stage: str = "e2e") -> dict[str, Any]:
    """A stored run against a chosen stored baseline, judged by the shared method
    (edgebench.agent.wire.compare.compare_samples) on the stored per-frame samples."""
    if stage not in ALL_STAGES:
        raise UserError(f"unknown stage {stage!r}: use one of {', '.join(ALL_STAGES)}")
    cand, base = run_detail(store, *run), run_detail(store, *baseline)
    out = compare_samples(
        run_samples(store, *run),
        run_samples(store, *baseline),
        stage=stage,
        fps=(cand["fps"], base["fps"]),
        energy_mj=(cand["energy_mj_gross"], base["energy_mj_gross"]),
    )
    return {"run": f"{run[0]}/{run[1]}", "baseline": f"{baseline[0]}/{baseline[1]}", **out}


# --------------------------------------------------------------------------- flat rows (CSV)
def flatten(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k == "latency_ms" and isinstance(v, dict) and all(isinstance(st, dict) for st in v.values()):
            for stage, st in v.items():
                for s, x in st.items():
                    out[f"{stage}_{s}_ms"] = x
        elif k == "energy_per_inference_mj":
            out["energy_per_inference_gross_mj"] = (v or {}).get("gross")
            out["energy_per_inference_net_mj"] = (v or {}).get("net")
        elif isinstance(v, dict) and all(not isinstance(x, (dict, list)) for x in v.values()):
            for s, x in v.items():  # e.g. headline -> headline_metric, headline_value, headline_unit
                out[f"{k}_{s}"] = x
        elif isinstance(v, (dict, list)):
            out[k] = json.dumps(v)
        else:
            out[k] = v
    return out


def fleet_rows(store) -> list[dict[str, Any]]:
    """The default report: one row per device and model."""
    return group_rows(store, DEFAULT_GROUP)
