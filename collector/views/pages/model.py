"""A model across boards (``/model/<name>``): its per-frame runs per device, board, runtime
and delegate side by side, latency and throughput per board, and its runs."""

from __future__ import annotations

from typing import Any

from edgebench.collector.aggregate import group_rows, run_list
from edgebench.collector.views import charts
from edgebench.collector.views.pages.tables import fleet_table, group_label, latency_chart, runs_table
from edgebench.collector.views.templating import svg

_GROUP = ("device_id", "board", "runtime", "delegate", "threads")


def model(store, name: str) -> tuple[str, dict[str, Any]]:
    rows = group_rows(store, _GROUP, where={"model": name})
    if not rows:
        raise LookupError(f"no model {name!r}")
    return "model.html", {
        "title": f"Model {name}",
        "model": name,
        "comparison": fleet_table(rows, _GROUP, tid="comparison"),
        "latency_chart": latency_chart(rows, ("device_id", "delegate", "threads"), f"{name}: latency per board (ms)"),
        "throughput_chart": svg(
            charts.bar_chart(
                f"{name}: throughput per board",
                [" / ".join(group_label(r, k) for k in ("device_id", "delegate", "threads")) for r in rows],
                {"FPS": [r["fps"] for r in rows]},
                "frames/s",
            )
        ),
        "runs": runs_table(run_list(store, model=name)),
    }
