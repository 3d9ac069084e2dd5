"""The answers pages: the capacity plan (``/plan``, a GET form whose answer is the same as
``edgebench-collector plan``: collector/aggregate/plan.py) and the regression watch
(``/regressions``: each baseline key's newest verdict, collector/aggregate/regressions.py)."""

from __future__ import annotations

from typing import Any

from edgebench.collector.aggregate.plan import _age, capacity_plan
from edgebench.collector.aggregate.regressions import regression_rows
from edgebench.collector.views.pages.cells import Link, Mark, Table, fmt

_FIELDS = (("model", "model (file name)", str), ("streams", "streams", int), ("fps", "FPS per stream", float),
           ("p99_ms", "p99 bound (ms)", float))  # fmt: skip


def _form(q: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    problems = []
    for key, label, kind in _FIELDS:
        text = (q.get(key) or "").strip()
        if not text:
            continue
        try:
            v = kind(text)
        except ValueError:
            problems.append(f"{label}: {text!r} is not a number")
            continue
        if kind is not str and not v > 0:
            problems.append(f"{label}: must be above 0")
            continue
        values[key] = v
    return values, problems


def _plan_table(plan: dict[str, Any]) -> Table:
    t = Table("plan", ["board", "answer", "inferences/s per board", "streams per board", "boards", "headroom %",
                       "W", "Wh per million", "rests on", "age"], left=2)  # fmt: skip
    for a in plan["boards"]:
        if "rests_on" not in a:
            t.rows.append([a["board"], Mark("failed", a["answer"]), "-", "-", "-", "-", "-", "-", "-", "-"])
            continue
        r = a["rests_on"]
        age = _age(r["age_s"])
        t.rows.append(
            [
                a["board"],
                a["answer"],
                fmt(a["capacity_inferences_per_s"], ".1f"),
                str(a["streams_per_board"]),
                str(a.get("boards_needed", "-")),
                fmt(a.get("headroom_pct"), ".1f"),
                fmt(a.get("mean_power_w"), ".2f"),
                fmt(a.get("energy_per_million_wh"), ".3f"),
                Link(f"/run/{r['device_id']}/{r['run_id']}", f"{r['device_id']}/{r['run_id']}: {r['what']}"),
                age,
            ]
        )
    return t


def plan(store, q: dict[str, str]) -> tuple[str, dict[str, Any]]:
    values, problems = _form(q)
    ctx: dict[str, Any] = {"title": "Capacity plan", "q": {k: q.get(k, "") for k, _, _ in _FIELDS},
                           "fields": [(k, label) for k, label, _ in _FIELDS], "problems": problems, "plan": None}  # fmt: skip
    if not problems and len(values) == len(_FIELDS):
        p = capacity_plan(store, values["model"], values["streams"], values["fps"], values["p99_ms"])
        ctx["plan"] = p
        ctx["table"] = _plan_table(p)
    return "plan.html", ctx


def regressions(store) -> tuple[str, dict[str, Any]]:
    t = Table("regressions", ["verdict", "run", "baseline", "board", "what changed (beyond noise)", "key"], left=6)
    for r in regression_rows(store):
        changed = "; ".join(
            f"{m['metric']} {m['change_pct']:+.1f} % (95% CI {m['ci95']})"
            for m in r["metrics"]
            if m.get("beyond_noise")
        )
        cls = {"slower": "failed", "faster": "VALID"}.get(r["verdict"], "stopped")
        t.rows.append(
            [
                Mark(cls, r["verdict"]),
                Link(f"/run/{r['run']}?baseline={r['baseline']}", r["run"]),
                Link(f"/run/{r['baseline']}", r["baseline"]),
                str(r["key"].get("board")),
                changed or "-",
                r["key_id"],
            ]
        )
    return "regressions.html", {"title": "Regressions", "table": t}
