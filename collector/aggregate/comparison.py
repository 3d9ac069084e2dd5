"""Comparison: a stored run against a chosen stored baseline, judged by the shared method
(edgebench.agent.wire.compare.compare_samples, the agent's too) on the stored per-frame
samples: is the change beyond noise?"""

from __future__ import annotations

from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire.compare import compare_samples
from edgebench.collector.aggregate.runs import run_detail, run_samples
from edgebench.collector.store import ALL_STAGES


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
