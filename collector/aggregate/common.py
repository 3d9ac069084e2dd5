"""What every aggregation shares: the columns rows can be grouped and filtered by, the
reported percentiles and their per-stage statistics, and the WHERE clause of a filter and
time window."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.wire.stats import PERCENTILE_METHOD

REPORT_PCTS = (50, 90, 99)
PCT_KEYS = tuple(f"p{p}" for p in REPORT_PCTS)

#: What rows can be grouped by, and the runs column behind each.
GROUP_COLUMNS = {
    "device_id": "r.device_id",
    "model": "r.model_name",
    "runtime": "r.runtime",
    "delegate": "r.delegate",
    # the interpreter threads the runs used (runtime.num_threads): boards compare only at equal counts
    "threads": "r.num_threads",
    "scenario": "r.scenario",
    "board": "r.board",
    "run_id": "r.run_id",
}
DEFAULT_GROUP = ("device_id", "model", "threads")
#: A per-frame run (what the frame-based report covers); runs stored before sweeps and
#: scenarios were published have kind NULL only while their meta has not arrived.
PER_FRAME_RUN = "COALESCE(r.kind, 'run') = 'run'"


def rounded(v: Any, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


def stage_stats(a: np.ndarray) -> dict[str, float | None]:
    """p50, p90, p99 and mean of one stage's samples (ms); None for no samples."""
    if a.size == 0:
        return {**{k: None for k in PCT_KEYS}, "mean": None}
    pct = np.percentile(a, REPORT_PCTS, method=PERCENTILE_METHOD)
    return {**{k: rounded(v) for k, v in zip(PCT_KEYS, pct)}, "mean": rounded(a.mean())}


def filters(
    by_where: dict[str, Any] | None, since: float | None, until: float | None, time_col: str
) -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) for equality filters on GROUP_COLUMNS (None: no
    filter) and a window [since, until) on ``time_col``."""
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


def select(columns: list[tuple[str, str]]) -> str:
    """The SELECT list of (name, SQL expression) pairs."""
    return ", ".join(expr for _, expr in columns)


def named(columns: list[tuple[str, str]], row: tuple) -> dict[str, Any]:
    """A row of ``select(columns)`` as a dict by name."""
    return dict(zip((name for name, _ in columns), row))
