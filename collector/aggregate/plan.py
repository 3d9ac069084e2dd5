"""The capacity plan: how many boards of each type the fleet needs for N streams at F frames
per second with a p99 bound, from the measured curves stored, never from one average.

What a board can serve under the bound (inferences per second), per stored document of
the model:

* a max-QPS search (``edgebench.scenario/1``, ``find-max-qps``): the highest step whose
  measured p99 holds the bound asked here (a VALID step; a step may have passed a looser
  bound of its own and still miss this one) -- completed queries/s x the query's batch;
* a sweep (``edgebench.sweep/1``): the highest throughput among its VALID points whose p99
  of a batch holds the bound (a frame waits for its whole batch).

Per device the best of its documents counts (that device can be configured so); per board
type the *lowest* of its devices' (a plan must hold on the slowest board of the type), and
it names the run it rests on and its age. Board types are the devices' inventories
(``devices.inventory.model``, else the run's ``board``). Then: streams per board =
floor(capacity / fps), boards needed = ceil(streams / streams per board), headroom =
1 - demand / (boards x capacity); mean power and energy per million inferences when the
document measured them; cost when a price is given. A board type with no such document
says "not enough data" and what to run. Hand-written: a few lines of arithmetic over the
stored documents.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from edgebench.collector.aggregate.documents import point_label


def _board_types(store) -> dict[str, str]:
    """device id -> its board type (the inventory's model), for every device that has one."""
    out = {}
    for dev, inv in store.query("SELECT device_id, inventory FROM devices"):
        try:
            model = (json.loads(inv) if inv else {}).get("model")
        except (ValueError, AttributeError):
            model = None
        if model:
            out[dev] = model
    return out


def _documents(store, model: str) -> list[dict[str, Any]]:
    names = {model, os.path.basename(model)}
    rows = store.query(
        "SELECT device_id, run_id, kind, board, summary, summary_at FROM runs"
        " WHERE kind IN ('sweep', 'scenario') AND summary IS NOT NULL"
    )
    out = []
    for dev, run, kind, board, summary, at in rows:
        doc = json.loads(summary)
        if (doc.get("model") or {}).get("name") in names:
            out.append({"device_id": dev, "run_id": run, "kind": kind, "board": board, "doc": doc, "at": at})
    return out


def _from_max_qps(doc: dict[str, Any], p99_ms: float) -> tuple[float, str, dict] | None:
    batch = doc.get("batch") or 1
    steps = [
        s
        for s in doc.get("steps") or []
        if s.get("verdict") == "VALID" and s.get("p99_latency_ms") is not None and s["p99_latency_ms"] <= p99_ms
    ]
    if not steps:
        return None
    s = max(steps, key=lambda s: s.get("completed_qps") or s["target_qps"])
    qps = s.get("completed_qps") or s["target_qps"]
    what = f"max-QPS step {s['target_qps']:g} q/s (p99 {s['p99_latency_ms']:g} ms, batch {batch})"
    return qps * batch, what, doc.get("power") or {}


def _from_sweep(doc: dict[str, Any], p99_ms: float) -> tuple[float, str, dict] | None:
    pts = [
        p
        for p in doc.get("points") or []
        if p["status"] == "ok" and p.get("verdict") == "VALID" and p["latency_ms"]["p99"] <= p99_ms
    ]
    if not pts:
        return None
    p = max(pts, key=lambda p: p["throughput_items_per_s"])
    what = f"sweep point {point_label(p)} (p99 {p['latency_ms']['p99']:g} ms per batch)"
    return p["throughput_items_per_s"], what, p.get("power") or {}


def _capacity(d: dict[str, Any], p99_ms: float) -> dict[str, Any] | None:
    doc = d["doc"]
    if d["kind"] == "scenario" and doc.get("scenario") == "find-max-qps":
        got = _from_max_qps(doc, p99_ms)
    elif d["kind"] == "sweep":
        got = _from_sweep(doc, p99_ms)
    else:
        return None
    if got is None:
        return None
    cap, what, power = got
    e_mj = power.get("energy_per_item_mj")
    if e_mj is None and power.get("mean_w") is not None and cap:
        e_mj = power["mean_w"] / cap * 1000.0
    return {
        "capacity_per_s": cap,
        "device_id": d["device_id"],
        "run_id": d["run_id"],
        "what": what,
        "age_s": None if d["at"] is None else round(time.time() - d["at"], 1),
        "mean_power_w": power.get("mean_w"),
        "energy_per_item_mj": e_mj,
    }


def _answer(board: str, evidence: list[dict], streams: int, fps: float, price: float | None) -> dict[str, Any]:
    per_device: dict[str, dict] = {}
    for e in evidence:
        cur = per_device.get(e["device_id"])
        if cur is None or e["capacity_per_s"] > cur["capacity_per_s"]:
            per_device[e["device_id"]] = e
    basis = min(per_device.values(), key=lambda e: e["capacity_per_s"])
    cap = basis["capacity_per_s"]
    per_board = math.floor(cap / fps + 1e-9)
    out: dict[str, Any] = {
        "board": board,
        "devices": sorted(per_device),
        "capacity_inferences_per_s": round(cap, 3),
        "streams_per_board": per_board,
        "rests_on": basis,
        "others": [e for e in per_device.values() if e is not basis],
    }
    if per_board == 0:
        out["answer"] = f"one stream of {fps:g} FPS is more than its {cap:.4g} inferences/s under the bound"
        return out
    boards = math.ceil(streams / per_board)
    demand = streams * fps
    e_mj = basis["energy_per_item_mj"]
    out.update(
        boards_needed=boards,
        headroom_pct=round(100 * (1 - demand / (boards * cap)), 1),
        mean_power_w=basis["mean_power_w"],
        energy_per_million_wh=None if e_mj is None else round(e_mj * 1e6 / 1000 / 3600, 3),
        cost_eur=None if price is None else round(boards * price, 2),
        answer=f"{boards} board(s), {per_board} streams each",
    )
    return out


def capacity_plan(
    store, model: str, streams: int, fps: float, p99_ms: float, prices: dict[str, float] | None = None
) -> dict[str, Any]:
    """The plan: one answer per board type of the fleet (a type with no data says so)."""
    prices = prices or {}
    types = _board_types(store)
    evidence: dict[str, list[dict]] = {}
    seen_boards = set(types.values())
    for d in _documents(store, model):
        board = types.get(d["device_id"]) or d["board"] or f"unknown board ({d['device_id']})"
        seen_boards.add(board)
        c = _capacity(d, p99_ms)
        if c is not None:
            evidence.setdefault(board, []).append(c)
    answers = []
    for board in sorted(seen_boards):
        if board in evidence:
            answers.append(_answer(board, evidence[board], streams, fps, prices.get(board)))
        else:
            devs = sorted(d for d, b in types.items() if b == board) or [board]
            answers.append(
                {
                    "board": board,
                    "answer": f"not enough data: run `edgebench tune` or a `--find-max-qps` on {devs[0]} "
                    f"({board}) with --model {os.path.basename(model)} and a bound of {p99_ms:g} ms",
                }
            )
    unknown_prices = sorted(set(prices) - seen_boards)
    return {
        "model": model,
        "streams": streams,
        "fps": fps,
        "p99_ms": p99_ms,
        "demand_inferences_per_s": streams * fps,
        "boards": answers,
        "unknown_prices": unknown_prices,
    }


def _age(s: float | None) -> str:
    """How old a run is, for people (the plan's text and its page)."""
    if s is None:
        return "age unknown"
    if s < 3600:
        return f"{s / 60:.0f} min old"
    return f"{s / 3600:.1f} h old" if s < 172800 else f"{s / 86400:.0f} days old"


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan for people."""
    out = [
        f"{plan['streams']} streams x {plan['fps']:g} FPS = {plan['demand_inferences_per_s']:g} inferences/s of "
        f"{plan['model']}, p99 <= {plan['p99_ms']:g} ms"
    ]
    for a in plan["boards"]:
        if "rests_on" not in a:
            out.append(f"{a['board']}: {a['answer']}")
            continue
        r = a["rests_on"]
        age = _age(r["age_s"])
        line = f"{a['board']}: {a['answer']}; {a['capacity_inferences_per_s']:g} inferences/s per board"
        if "boards_needed" in a:
            line += f", headroom {a['headroom_pct']:g} %"
            if a["mean_power_w"] is not None:
                line += f", {a['mean_power_w']:g} W"
            if a["energy_per_million_wh"] is not None:
                line += f", {a['energy_per_million_wh']:g} Wh per million inferences"
            if a["cost_eur"] is not None:
                line += f", {a['cost_eur']:g} EUR"
        out.append(line)
        out.append(f"  rests on {r['device_id']} run {r['run_id']}: {r['what']}, {age}")
    for b in plan["unknown_prices"]:
        out.append(f"note: --price {b}=...: no board of that type in the fleet")
    return out
