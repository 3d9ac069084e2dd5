"""Aggregations over the store, one module per question:

  fleet       groups of per-frame runs (by device, model, runtime, ...): run figures and
              the exact latency percentiles over every stored frame of the group
  devices     every device's state, last seen, agent, board, data quality; quarantine counts
  runs        the run list, one run's detail, its per-frame samples, histograms
  documents   sweeps and scenario results, from their stored documents
  telemetry   each device's readings over time, and every device's newest
  comparison  a run against a baseline (the shared method in edgebench.agent.wire.compare)
  common      grouping columns, filters and time windows, per-stage statistics
  flat        flat rows for CSV and Parquet

Percentiles are computed from the stored per-frame latencies of the whole group
(exact), never averaged across runs: in PostgreSQL with ``percentile_cont`` over the
unnested arrays, in SQLite in Python with numpy; both use linear interpolation between
closest ranks, the definition agent/wire/stats.py uses (PERCENTILE_METHOD).
"""

from __future__ import annotations

from edgebench.collector.aggregate.common import (
    DEFAULT_GROUP,
    GROUP_COLUMNS,
    PCT_KEYS,
    PER_FRAME_RUN,
    REPORT_PCTS,
    check_group,
    filters,
)
from edgebench.collector.aggregate.comparison import compare_runs
from edgebench.collector.aggregate.devices import device_rows, quarantine_counts
from edgebench.collector.aggregate.documents import scenario_rows, sweep_overview, sweep_points, sweep_rows, tune_rows
from edgebench.collector.aggregate.flat import flatten
from edgebench.collector.aggregate.fleet import fleet_rows, group_rows
from edgebench.collector.aggregate.runs import find_run, histogram, placement_rows, run_detail, run_list, run_samples
from edgebench.collector.aggregate.telemetry import latest_telemetry, telemetry_series

__all__ = [
    "DEFAULT_GROUP",
    "GROUP_COLUMNS",
    "PCT_KEYS",
    "PER_FRAME_RUN",
    "REPORT_PCTS",
    "check_group",
    "compare_runs",
    "device_rows",
    "filters",
    "find_run",
    "flatten",
    "fleet_rows",
    "group_rows",
    "histogram",
    "latest_telemetry",
    "quarantine_counts",
    "placement_rows",
    "run_detail",
    "run_list",
    "run_samples",
    "scenario_rows",
    "tune_rows",
    "sweep_overview",
    "sweep_points",
    "sweep_rows",
    "telemetry_series",
]
