"""A model across boards (``/model/<name>``): its per-frame runs per device, board, runtime
and delegate side by side, latency and throughput per board, and its runs."""

from __future__ import annotations

from typing import Any

from edgebench.collector.aggregate import group_rows, run_list
from edgebench.collector.views import charts
from edgebench.collector.views.pages.tables import fleet_table, latency_chart, runs_table
from edgebench.collector.views.templating import svg

#: a board's rows are split by thread count: boards compare at equal threads, and say so
_GROUP = ("device_id", "board", "runtime", "delegate", "threads")


def _bar_label(r: dict[str, Any]) -> str:
    """``pi-a, 4 thr``, with the delegate when there is one (``CPU fallback`` for a fallback)."""
    threads = "threads ?" if r.get("threads") is None else f"{r['threads']} thr"
    d = r.get("delegate")
    d = "CPU fallback" if d and d.startswith("CPU fallback") else d
    return ", ".join(x for x in (r["device_id"], threads, d) if x)


def model(store, name: str) -> tuple[str, dict[str, Any]]:
    rows = group_rows(store, _GROUP, where={"model": name})
    if not rows:
        raise LookupError(f"no model {name!r}")
    return "model.html", {
        "title": f"Model {name}",
        "model": name,
        "comparison": fleet_table(rows, _GROUP, tid="comparison"),
        "latency_chart": latency_chart(
            rows, (), f"{name}: latency per board (ms)", labels=[_bar_label(r) for r in rows]
        ),
        "throughput_chart": svg(
            charts.bar_chart(
                f"{name}: throughput per board",
                [_bar_label(r) for r in rows],
                {"FPS": [r["fps"] for r in rows]},
                "frames/s",
            )
        ),
        "runs": runs_table(run_list(store, model=name)),
    }
