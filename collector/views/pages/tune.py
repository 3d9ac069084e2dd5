"""Tune searches on the dashboard (edgebench.tune/1, stored from a tune job): a device's
table of them (newest first: the bound, the winner and its figures, the verdict) and a
search's own page (every point measured, every configuration pruned with its reason, the
winner, the runner-up and the 95 % interval of their difference)."""

from __future__ import annotations

from typing import Any

from edgebench.collector.views.pages.cells import Link, Table, facts, fmt, run_href
from edgebench.collector.views.report import iso


def config_words(cfg: dict[str, Any] | None) -> str:
    """``xnnpack on, threads 2, batch 1, instances 1`` (the delegate when one ran)."""
    if not cfg:
        return "none meets the bound"
    return ", ".join(f"{k} {_on_off(v)}" for k, v in cfg.items() if v is not None)


def _on_off(v: Any) -> Any:
    """A switch in words (only a real boolean: 1 is a count, not "on")."""
    return "on" if v is True else "off" if v is False else v


def _interval(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        return f"{ci[0]:+.4g} to {ci[1]:+.4g}"
    return "-"


def tunes_table(rows: list[dict[str, Any]], limit: int = 200) -> Table:
    head = ["run", "device", "model", "bound p99 ms", "objective", "best configuration", "items/s", "p99 ms"]
    head += ["verdict", "measured", "pruned", "received"]
    return Table(
        "tunes",
        head,
        [
            [
                Link(run_href(r["device_id"], r["run_id"]), r["run_id"]),
                r["device_id"],
                fmt(r["model"]),
                fmt(r["bound_ms"], "g"),
                fmt(r["objective"]),
                config_words(r["best_config"]),
                fmt(r["best_items_per_s"], ".1f"),
                fmt(r["best_p99_ms"]),
                fmt(r["verdict"]),
                fmt(r["points"]),
                fmt(r["pruned"]),
                iso(r["received_at"]),
            ]
            for r in rows[:limit]
        ],
        left=9,
    )


def tune_page(info: list[tuple[str, Any]], doc: dict[str, Any]) -> dict[str, Any]:
    """The page of one stored search."""
    v = doc.get("verdict") or {}
    cmp_ = v.get("comparison") or {}
    best, ru = doc.get("best"), doc.get("runner_up")
    summary = [
        ("bound (p99 of a batch, ms)", fmt(doc.get("bound_ms"), "g")),
        ("objective", doc.get("objective")),
        ("best", config_words((best or {}).get("config"))),
        ("runner-up", config_words(ru["config"]) if ru else "-"),
        ("verdict", v.get("verdict")),
        ("why", v.get("why") or "-"),
        (
            f"95 % interval of the change ({cmp_.get('metric', '-')}, {cmp_.get('unit', '-')})",
            _interval(cmp_.get("ci95")),
        ),
        ("default configuration", config_words(((doc.get("default") or {}).get("config")))),
    ]
    points = [
        [
            config_words(p["config"]),
            p["status"],
            fmt(p.get("throughput_items_per_s"), ".1f"),
            fmt(p.get("batch_p50_ms")),
            fmt(p.get("batch_p99_ms")),
            {True: "yes", False: "no"}.get(p.get("meets_bound"), p.get("reason") or "-"),
        ]
        for p in doc.get("points") or []
    ]
    return {
        "info": facts("run-info", info),
        "summary": facts("tune-summary", summary),
        "points": Table("tune-points", ["configuration", "status", "items/s", "p50 ms", "p99 ms", "meets"], points),
        "pruned": Table(
            "tune-pruned",
            ["configuration", "why not measured"],
            [[config_words(p["config"]), p["reason"]] for p in doc.get("pruned") or []],
            left=2,
        ),
    }
