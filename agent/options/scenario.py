"""What a scenario run's options mean to the scenario logic: the ``ScenarioSettings``
they make, and the combinations a scenario cannot take (checked by RunOptions.validate
after the ranges of the table)."""

from __future__ import annotations

from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.measure.scenarios import MLPERF_LENGTHS, ScenarioSettings
from edgebench.agent.options.table import default

#: RunOptions fields that mean nothing to a scenario run (its samples are prepared ahead)
_NOT_FOR_SCENARIOS = {k: default("run", k) for k in ("pipelined", "fps", "pacing")}


def validate_scenario(opts: Any) -> None:
    """Check a RunOptions that asks for a scenario, after its ranges (RunOptions.validate):
    the combinations a scenario cannot take; every problem at once, one UserError line each."""
    problems = []
    if opts.find_max_qps:
        if opts.scenario not in (None, "server"):
            problems.append("--find-max-qps searches server rates: use it with --scenario server (or alone)")
        else:
            opts.scenario = "server"
        if opts.latency_bound_ms is None:
            problems.append("--find-max-qps needs --latency-bound-ms N (the p99 latency each rate must hold)")
    for k, unset in _NOT_FOR_SCENARIOS.items():
        if getattr(opts, k) != unset:
            problems.append(f"--{k} does not apply to --scenario (its samples are prepared before timing)")
    if opts.scenario is not None:
        for p in settings(opts).problems():
            searching = opts.find_max_qps and ("--target-qps" in p or "--latency-bound-ms" in p)
            if not searching:  # the search picks its own rates; its bound is checked above
                problems.append(p)
    if problems:
        raise UserError("\n".join(problems))


def settings(opts: Any) -> ScenarioSettings:
    """The scenario's settings; ``--mlperf`` raises the run lengths to MLPerf's
    (scenarios.MLPERF_LENGTHS) and names those rules in the verdict."""
    duration = opts.duration_s if opts.duration_s is not None else 2.0
    min_duration, min_queries = opts.min_duration_s, opts.min_queries
    if opts.mlperf:
        lengths = MLPERF_LENGTHS[opts.mlperf]
        min_duration = max(min_duration, lengths["min_duration_s"])
        min_queries = max(min_queries, lengths["min_queries"].get(opts.scenario or "server", 100))
        duration = max(duration, min_duration)
    return ScenarioSettings(
        scenario=opts.scenario,
        duration_s=duration,
        min_duration_s=min_duration,
        min_queries=min_queries,
        rules=opts.mlperf or "edgebench",
        max_duration_s=opts.max_duration_s,
        queries=opts.frames,
        samples_per_query=opts.samples_per_query,
        target_qps=opts.target_qps,
        latency_bound_ms=opts.latency_bound_ms,
        seed=opts.seed,
        batch=opts.batch,
    )
