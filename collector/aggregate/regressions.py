"""The regression watch: every stored per-frame run compared with the baseline of its key.

**The key** of a run: its board model (the run's ``board``, else the device's inventory,
else the device id), runtime name and version, delegate, model sha256, and the run's
settings that change what is measured (source kind, XNNPACK, pacing, rate, pipelining,
input preparation). The thread count is deliberately *not* in the key: it is a setting a
fleet owner changes (or a firmware update changes for them), and a change to it is what
the watch exists to catch ("2 threads -> 1 made it slower").

**The baseline** of a key: the one set by ``edgebench-collector baseline set``, else the
first run stored with that key (``how``: ``set`` or ``first``).

**The verdict**, stored in ``regressions`` when the run's summary is stored (the
collector's writer calls :func:`watch`): the project's block bootstrap over the stored
per-frame samples (edgebench.agent.wire.compare via collector.aggregate.comparison: p50
and p99 of e2e and inference, FPS, energy per inference): ``slower`` when any judged
figure is worse beyond noise by at least ``MIN_CHANGE_PCT``, ``faster`` when one is better
so and none worse, else ``within noise``; the comparison with its intervals is kept beside it. The alert
(:func:`alert_message`) goes to ``edgebench/v1/_fleet/alerts/<key id>``, retained, so a
subscriber sees each key's latest verdict whenever it connects.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire.protocol import PREFIX, RESULT_SCHEMA

ALERTS_TOPIC = f"{PREFIX}/_fleet/alerts"
#: the run settings that are part of a key (a run's meta ``config``)
KEY_SETTINGS = ("xnnpack", "pacing", "fps", "pipelined", "resize", "color", "normalization", "batch")
#: the gauge's value per verdict
GAUGE = {"faster": -1, "within noise": 0, "slower": 1}
#: a change smaller than this (percent of the baseline) is not a verdict even when beyond noise:
#: on a board that shares its cores, two runs minutes apart really differ by a few percent, and
#: an alert for every such difference would be ignored within a week
MIN_CHANGE_PCT = 10.0
#: a metric whose larger value is worse
_WORSE_IF_UP = ("p50", "p99", "energy")


def run_key(store, device_id: str, run_id: str) -> tuple[str, dict[str, Any]] | None:
    """(the key as text, its parts) of a stored per-frame run; None for a sweep or scenario."""
    rows = store.query(
        "SELECT kind, board, runtime, runtime_version, delegate, model_sha256, source_kind, meta"
        " FROM runs WHERE device_id = ? AND run_id = ?",
        (device_id, run_id),
    )
    if not rows:
        return None
    kind, board, runtime, version, delegate, sha, source_kind, meta = rows[0]
    if kind not in (None, "run"):
        return None
    if not board:
        inv = store.query("SELECT inventory FROM devices WHERE device_id = ?", (device_id,))
        board = (json.loads(inv[0][0]) if inv and inv[0][0] else {}).get("model") or f"device {device_id}"
    config = (json.loads(meta) if meta else {}).get("config") or {}
    parts = {
        "board": board,
        "runtime": f"{runtime} {version}",
        "delegate": delegate,
        "model_sha256": sha,
        "source": source_kind,
        **{k: config.get(k) for k in KEY_SETTINGS if config.get(k) is not None},
    }
    return json.dumps(parts, sort_keys=True), parts


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def baseline_of(store, key: str) -> tuple[str, str, str] | None:
    rows = store.query("SELECT device_id, run_id, how FROM baselines WHERE key = ?", (key,))
    return tuple(rows[0]) if rows else None


def set_baseline(store, device_id: str, run_id: str, how: str = "set") -> str:
    got = run_key(store, device_id, run_id)
    if got is None:
        raise UserError(f"no per-frame run {device_id}/{run_id} stored (sweeps and scenarios have no baseline)")
    key = got[0]
    with store.transaction() as cur:
        cur.execute(store.sql("DELETE FROM baselines WHERE key = ?"), (key,))
        cur.execute(
            store.sql("INSERT INTO baselines (key, device_id, run_id, set_at, how) VALUES (?, ?, ?, ?, ?)"),
            (key, device_id, run_id, time.time(), how),
        )
    return key


def clear_baselines(store, key_or_id: str | None) -> int:
    """Clear one baseline (its key id or key) or, with None, every one; how many went."""
    if key_or_id is None:
        return store.execute("DELETE FROM baselines")
    keys = [k for (k,) in store.query("SELECT key FROM baselines") if key_or_id in (k, key_id(k))]
    if not keys:
        raise UserError(f"no baseline with key {key_or_id!r} (see `edgebench-collector baseline list`)")
    return sum(store.execute("DELETE FROM baselines WHERE key = ?", (k,)) for k in keys)


def list_baselines(store) -> list[dict[str, Any]]:
    rows = store.query("SELECT key, device_id, run_id, set_at, how FROM baselines ORDER BY set_at")
    return [
        {"key_id": key_id(k), "key": json.loads(k), "baseline": f"{d}/{r}", "set_at": at, "how": how}
        for k, d, r, at, how in rows
    ]


def _verdict(metrics: list[dict[str, Any]]) -> str:
    worse = better = False
    for m in metrics:
        if not m.get("beyond_noise") or m.get("change") is None:
            continue
        if m.get("change_pct") is not None and abs(m["change_pct"]) < MIN_CHANGE_PCT:
            continue
        up = m["change"] > 0
        bad = up if any(w in m["metric"] for w in _WORSE_IF_UP) else not up
        worse, better = worse or bad, better or not bad
    return "slower" if worse else "faster" if better else "within noise"


def watch(store, device_id: str, run_id: str) -> dict[str, Any] | None:
    """Judge a just-stored run against its key's baseline (the first run of a key becomes
    it); store and return the verdict, or None when there is nothing to judge."""
    from edgebench.collector.aggregate.comparison import compare_runs

    got = run_key(store, device_id, run_id)
    if got is None:
        return None
    key, parts = got
    base = baseline_of(store, key)
    if base is None:
        set_baseline(store, device_id, run_id, how="first")
        return None
    if (base[0], base[1]) == (device_id, run_id):
        return None
    c = compare_runs(store, (device_id, run_id), (base[0], base[1]))
    verdict = _verdict(c["metrics"])
    now = time.time()
    with store.transaction() as cur:
        cur.execute(store.sql("DELETE FROM regressions WHERE device_id = ? AND run_id = ?"), (device_id, run_id))
        cur.execute(
            store.sql(
                "INSERT INTO regressions (device_id, run_id, key, baseline_device_id, baseline_run_id, verdict,"
                " comparison, judged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (device_id, run_id, key, base[0], base[1], verdict, json.dumps(c), now),
        )
    return {
        "key_id": key_id(key),
        "key": parts,
        "run": f"{device_id}/{run_id}",
        "baseline": f"{base[0]}/{base[1]}",
        "verdict": verdict,
        "metrics": [
            {k: m.get(k) for k in ("metric", "baseline", "run", "change_pct", "ci95", "beyond_noise")}
            for m in c["metrics"]
        ],
        "judged_at": now,
    }


def alert_message(v: dict[str, Any]) -> tuple[str, bytes]:
    """(topic, payload) of a verdict's alert, published retained per key."""
    return f"{ALERTS_TOPIC}/{v['key_id']}", json.dumps(v, sort_keys=True).encode()


def regression_rows(store, latest_only: bool = True) -> list[dict[str, Any]]:
    """The stored verdicts, newest first (``latest_only``: each key's newest)."""
    rows = store.query(
        "SELECT device_id, run_id, key, baseline_device_id, baseline_run_id, verdict, comparison, judged_at"
        " FROM regressions ORDER BY judged_at DESC"
    )
    out, seen = [], set()
    for dev, run, key, bdev, brun, verdict, comparison, at in rows:
        if latest_only and key in seen:
            continue
        seen.add(key)
        out.append(
            {
                "key_id": key_id(key),
                "key": json.loads(key),
                "run": f"{dev}/{run}",
                "baseline": f"{bdev}/{brun}",
                "verdict": verdict,
                "metrics": json.loads(comparison)["metrics"],
                "judged_at": at,
            }
        )
    return out


def is_run_summary(m: Any) -> bool:
    """Whether a stored message is a per-frame run's summary (what the watch judges)."""
    return m.kind == "summary" and (m.body.get("result") or {}).get("schema") == RESULT_SCHEMA
