"""``edgebench tune``: the best configuration of this board for one model under a latency bound.

The search space is :data:`DIMENSIONS`, a list of :class:`Dimension` in the one place it is
declared: each names a setting (a key of the ``run``/``sweep`` settings), the values this
board really has (:class:`Board`: its cores, the delegate given), whether a larger value
only lengthens a batch's latency (``monotone``), and what is pruned without measuring. An
accelerator (LiteRT's CompiledModel ``--accelerator``) is one more entry of that list, with
its values from what ``edgebench info`` finds; nothing else in the search changes.

The search is a coordinate descent from the default configuration, dimension by dimension
in the list's order, each value measured at the best values found so far of the others:

* **pruned without measuring**, each with its reason in ``pruned``: a thread count above
  the cores (or threads x instances above them: the same cores measured twice); a value of
  a ``monotone`` dimension above one that already missed the bound (a dominated region is
  not refined); a batch the model refused (the runtime's reason, not loaded again); a
  configuration already measured; what the budget left unmeasured;
* **the objective** among the points meeting the bound: throughput (items/s), latency
  (p99 of a batch) or energy (mJ per item; needs a power source). A frame waits for its
  whole batch, so the bound applies to the p99 of a batch's latency;
* **noise**: the leader and the runner-up are measured again and compared with the
  project's block bootstrap (edgebench.agent.wire.compare ``judge``): throughput through
  each batch's time per item of throughput (batch latency / (batch x instances)), p99
  through the batch latencies. Within noise is a tie, and a tie goes to the cheaper
  configuration (fewer cores busy, then the smaller batch), and says so.

The measuring itself is a callable ``measure(config, duration_s) -> Measured`` (the real
one runs a sweep point, edgebench.agent.measure.sweep ``run_point``), so the search is
tested with a fake runtime of known service times. Hand-written: the space is a handful
of discrete settings with known structure (cores, monotone batch), where a generic
optimizer (Bayesian, Hyperband) would spend the budget learning what is known here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.wire.compare import judge, percentile_stat

OBJECTIVES = ("throughput", "latency", "energy")
#: how long one point is measured, at most and at least, whatever the budget
POINT_S_RANGE = (0.3, 3.0)


@dataclass(frozen=True)
class Board:
    """What the space depends on: the cores this process may use, the delegate asked for."""

    cores: int
    delegate: str | None = None
    max_batch: int = 8


@dataclass(frozen=True)
class Dimension:
    """One setting the search varies."""

    key: str
    values: Callable[[Board], list[Any]]
    default: Callable[[Board], Any]
    #: a larger value only lengthens a batch's latency: once one misses the bound, larger ones are dominated
    monotone: bool = False


def _powers_to(n: int) -> list[int]:
    out = [v for v in (1, 2, 4, 8, 16, 32, 64) if v <= n]
    return out if n in out else [*out, n]


#: thread and instance counts considered on any board; those above its cores are pruned, with the reason
_CANDIDATES = [1, 2, 4, 8]

#: The search space, in search order. An accelerator dimension is one entry here, e.g.
#: ``Dimension("accelerator", lambda b: b.accelerators, lambda b: "cpu")``.
DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("delegate", lambda b: [None, b.delegate] if b.delegate else [None], lambda b: None),
    Dimension("xnnpack", lambda b: [True, False], lambda b: True),
    Dimension("threads", lambda b: _CANDIDATES, lambda b: b.cores),
    Dimension("batch", lambda b: _powers_to(b.max_batch), lambda b: 1, monotone=True),
    Dimension("instances", lambda b: _CANDIDATES, lambda b: 1, monotone=True),
)


@dataclass
class Measured:
    """One measurement of a configuration: per-batch latencies (ns) and the items done."""

    status: str = "ok"  # ok | unsupported | failed
    reason: str | None = None
    latencies_ns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    items: int = 0
    window_s: float = 0.0
    energy_per_item_mj: float | None = None


Measure = Callable[[dict[str, Any], float], Measured]


def _key(cfg: dict[str, Any]) -> tuple:
    return tuple(sorted(cfg.items(), key=lambda kv: kv[0]))


def _point(cfg: dict[str, Any], m: Measured, bound_ms: float) -> dict[str, Any]:
    p: dict[str, Any] = {"config": dict(cfg), "status": m.status}
    if m.status != "ok":
        p["reason"] = m.reason
        return p
    lat_ms = m.latencies_ns / 1e6
    p99 = float(np.percentile(lat_ms, 99))
    p.update(
        throughput_items_per_s=round(m.items / m.window_s, 3) if m.window_s > 0 else None,
        batch_p50_ms=round(float(np.percentile(lat_ms, 50)), 4),
        batch_p99_ms=round(p99, 4),
        batches=int(lat_ms.size),
        energy_per_item_mj=m.energy_per_item_mj,
        meets_bound=p99 <= bound_ms,
    )
    return p


def _score(p: dict[str, Any], objective: str) -> float:
    """Larger is better."""
    if objective == "throughput":
        return p["throughput_items_per_s"] or 0.0
    if objective == "latency":
        return -p["batch_p99_ms"]
    e = p.get("energy_per_item_mj")
    return -e if e is not None else float("-inf")


def _cost(cfg: dict[str, Any]) -> tuple:
    """The cheaper of two tied configurations: fewer cores busy, then the smaller batch."""
    return (cfg.get("threads", 1) * cfg.get("instances", 1), cfg.get("batch", 1), cfg.get("delegate") is not None)


class _Search:
    def __init__(self, board: Board, measure: Measure, bound_ms: float, objective: str, budget_s: float, point_s):
        self.board, self.measure, self.bound, self.objective = board, measure, bound_ms, objective
        self.deadline = time.monotonic() + budget_s
        self.point_s = point_s
        self.points: list[dict[str, Any]] = []
        self.raw: dict[tuple, Measured] = {}
        self.pruned: list[dict[str, Any]] = []
        self.refused_batch: dict[Any, str] = {}

    def prune(self, cfg: dict[str, Any], why: str) -> None:
        self.pruned.append({"config": dict(cfg), "reason": why})

    def why_not(self, cfg: dict[str, Any]) -> str | None:
        cores = self.board.cores
        if cfg["threads"] > cores:
            return f"{cfg['threads']} threads on {cores} cores: the same cores measured twice"
        if cfg["threads"] * cfg["instances"] > cores:
            return f"{cfg['threads']} threads x {cfg['instances']} instances oversubscribe the {cores} cores"
        if cfg["batch"] in self.refused_batch:
            return f"batch {cfg['batch']} refused by the model: {self.refused_batch[cfg['batch']]}"
        return None

    def run(self, cfg: dict[str, Any]) -> dict[str, Any] | None:
        k = _key(cfg)
        if k in self.raw:
            return next(p for p in self.points if _key(p["config"]) == k)
        why = self.why_not(cfg)
        if why:
            self.prune(cfg, why)
            return None
        if time.monotonic() > self.deadline:
            self.prune(cfg, "not measured: the --budget-s ran out")
            return None
        m = self.measure(cfg, self.point_s)
        if m.status == "unsupported":
            self.refused_batch[cfg["batch"]] = m.reason or "unsupported"
        self.raw[k] = m
        p = _point(cfg, m, self.bound)
        self.points.append(p)
        return p

    def best(self, pool: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        ok = [p for p in (pool if pool is not None else self.points) if p["status"] == "ok"]
        meeting = [p for p in ok if p["meets_bound"]]
        if meeting:
            return max(meeting, key=lambda p: (_score(p, self.objective), [-c for c in _cost(p["config"])]))
        return min(ok, key=lambda p: p["batch_p99_ms"]) if ok else None

    def descend(self, start: dict[str, Any]) -> dict[str, Any]:
        cur = dict(start)
        for dim in DIMENSIONS:
            missed_at = None
            for v in dim.values(self.board):
                cfg = {**cur, dim.key: v}
                if missed_at is not None and self.why_not(cfg) is None:
                    self.prune(
                        cfg,
                        f"dominated: {dim.key} {missed_at} already missed the bound; a larger one only waits longer",
                    )
                    continue
                p = self.run(cfg)
                if dim.monotone and p is not None and p["status"] == "ok" and not p["meets_bound"]:
                    missed_at = v
            b = self.best()
            if b is not None:
                cur = dict(b["config"])
        return cur


def _verdict(s: _Search, lead: dict[str, Any], second: dict[str, Any], point_s: float) -> dict[str, Any]:
    """Measure both again and judge their difference by the block bootstrap."""
    again = {}
    for p in (lead, second):
        m = s.measure(p["config"], point_s)
        if m.status != "ok":
            return {"verdict": "unconfirmed", "why": f"the re-measurement failed: {m.reason}"}
        again[_key(p["config"])] = (p["config"], m)
    (ca, ma), (cb, mb) = again.values()

    def per_item(cfg, m):
        return m.latencies_ns / 1e6 / (cfg.get("batch", 1) * cfg.get("instances", 1))

    if s.objective == "latency":
        a, b = ma.latencies_ns / 1e6, mb.latencies_ns / 1e6
        met = judge("batch p99", "ms", percentile_stat(99), a, b, np.percentile(a, 99), np.percentile(b, 99), 99)
        leader_better = met["change"] is not None and met["change"] < 0
    else:
        a, b = per_item(ca, ma), per_item(cb, mb)
        tput = lambda x, axis: 1000.0 / x.mean(axis=axis)  # noqa: E731
        met = judge("throughput", "items/s", tput, a, b, 1000 / a.mean(), 1000 / b.mean())
        leader_better = met["change"] is not None and met["change"] > 0
    if met["beyond_noise"] and leader_better:
        return {"verdict": "beyond noise", "comparison": met}
    if met["beyond_noise"]:
        return {"verdict": "runner-up better on re-measurement", "comparison": met}
    return {"verdict": "tie", "comparison": met}


def tune(
    board: Board,
    measure: Measure,
    bound_ms: float,
    objective: str = "throughput",
    budget_s: float = 300.0,
    point_s: float | None = None,
) -> dict[str, Any]:
    """The search; returns the ``tune`` document (points, pruned, best, runner-up, verdict)."""
    if objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    n = len(DIMENSIONS) * 3 + 2
    point_s = point_s or min(max(budget_s / (n * 1.5), POINT_S_RANGE[0]), POINT_S_RANGE[1])
    s = _Search(board, measure, bound_ms, objective, budget_s, point_s)
    default = {d.key: d.default(board) for d in DIMENSIONS}
    default_point = s.run(default)
    s.descend(default)
    ranked = sorted(
        (p for p in s.points if p["status"] == "ok" and p["meets_bound"]),
        key=lambda p: (_score(p, objective), [-c for c in _cost(p["config"])]),
        reverse=True,
    )
    doc: dict[str, Any] = {
        "bound_ms": bound_ms,
        "objective": objective,
        "board": {"cores": board.cores, "delegate": board.delegate},
        "space": [d.key for d in DIMENSIONS],
        "point_s": round(point_s, 3),
        "default": default_point,
        "points": s.points,
        "pruned": s.pruned,
        "best": ranked[0] if ranked else None,
        "runner_up": ranked[1] if len(ranked) > 1 else None,
    }
    if not ranked:
        near = s.best()
        doc["verdict"] = {
            "verdict": "none meets the bound",
            "why": f"the lowest batch p99 measured is {near['batch_p99_ms']} ms" if near else "no point ran",
        }
        return doc
    if len(ranked) == 1:
        doc["verdict"] = {"verdict": "only one configuration meets the bound"}
        return doc
    v = _verdict(s, ranked[0], ranked[1], point_s)
    if v["verdict"] == "tie" and _cost(ranked[1]["config"]) < _cost(ranked[0]["config"]):
        doc["best"], doc["runner_up"] = ranked[1], ranked[0]
        v["why"] = "within noise: the cheaper configuration (fewer cores busy, smaller batch) wins"
    elif v["verdict"] == "tie":
        v["why"] = "within noise; the leader is also the cheaper configuration"
    elif v["verdict"] == "runner-up better on re-measurement":
        doc["best"], doc["runner_up"] = ranked[1], ranked[0]
    doc["verdict"] = v
    return doc


def run_section(doc: dict[str, Any], model: str) -> dict[str, Any]:
    """The ``run:`` section of an agent config that runs the winner."""
    cfg = doc["best"]["config"]
    run: dict[str, Any] = {"model": os.path.abspath(model), "threads": cfg["threads"], "xnnpack": cfg["xnnpack"]}
    if cfg.get("delegate"):
        run["delegate"] = cfg["delegate"]
    return {"run": run}


def config_notes(cfg: dict[str, Any]) -> list[str]:
    """What of the winner a per-frame ``run:`` section cannot hold (batch and instances)."""
    notes = []
    if cfg.get("batch", 1) > 1:
        notes.append(
            f"the best batch is {cfg['batch']}: a per-frame run takes one frame at a time; "
            f"`--scenario offline --batch {cfg['batch']}` (or a sweep) runs it batched"
        )
    if cfg.get("instances", 1) > 1:
        notes.append(f"the best ran {cfg['instances']} instances: run that many agents (or sweep --instances)")
    return notes


def with_config(base: Any, cfg: dict[str, Any]) -> Any:
    """A SweepOptions at one configuration (the real measure's options)."""
    return replace(base, xnnpack=cfg["xnnpack"], delegate=cfg.get("delegate"))


def real_measure(base: Any, samples: Any = None, power_window: Any = None) -> Measure:
    """``measure`` over the real runtime: a sweep point (edgebench.agent.measure.sweep
    ``run_point``) at the configuration, for ``duration_s``, its latencies kept."""
    from edgebench.agent.measure.sweep import run_point

    def measure(cfg: dict[str, Any], duration_s: float) -> Measured:
        opts = replace(with_config(base, cfg), duration_s=duration_s, frames=None)
        p = run_point(
            opts,
            cfg["batch"],
            cfg["threads"],
            cfg["instances"],
            samples=samples,
            power_window=power_window,
            keep_latencies=True,
        )
        if p["status"] != "ok":
            return Measured(status=p["status"], reason=p.get("reason"))
        power = p.get("power") or {}
        return Measured(
            latencies_ns=p["latencies_ns"],
            items=p["items"],
            window_s=p["duration_s"],
            energy_per_item_mj=power.get("energy_per_item_mj"),
        )

    return measure


#: a job's keys that are the search's own (the ``tune`` section's; the rest are the run's)
JOB_TUNE_KEYS = ("latency_bound_ms", "objective", "budget_s", "max_batch")


def tune_job(values: dict[str, Any], device_id: str, run_id: str, on_start: Callable | None = None) -> dict[str, Any]:
    """The search as an agent job (``tune: true``): the ``edgebench.tune/1`` document, with
    the head of a sweep's (device, run id, model with its sha256, runtime, samples) and the
    ``run:`` section of the winner. ``on_start(head)`` once the model is loaded (the
    publisher queues the run's meta). UserError when the job cannot run."""
    from datetime import datetime, timezone

    from edgebench.agent import __version__
    from edgebench.agent.measure.sweep import ProbePower, _head
    from edgebench.agent.options.classes import SweepOptions
    from edgebench.agent.runtime.threads import available_cores
    from edgebench.agent.wire import protocol

    if values.get("latency_bound_ms") is None:
        raise UserError("a tune job needs latency_bound_ms (the p99 a batch must hold)")
    from edgebench.agent.options.table import default

    v = {k: values.get(k, default("tune", k)) for k in JOB_TUNE_KEYS}
    keep = ("runtime", "delegate", "delegate_options", "cpu_fallback", "normalization", "resize", "color")
    base = SweepOptions(
        model=values["model"],
        threads=[1],
        duration_s=1.0,
        device_id=device_id,
        run_id=run_id,
        **{k: values[k] for k in keep if k in values},
    )
    base.validate()
    started = datetime.now(timezone.utc)
    head, samples = _head(base)  # the model runs at all, or a user error now
    if on_start is not None:
        on_start({**head, "config": {"tune": v}})
    board = Board(cores=available_cores(), delegate=base.delegate, max_batch=v["max_batch"])
    with ProbePower() as power:
        if v["objective"] == "energy" and not power.available:
            raise UserError(f"objective energy needs a power source: {power.reason}")
        doc = tune(board, real_measure(base, samples, power if power.available else None), **_search_args(v))
    doc["run_section"] = run_section(doc, base.model)["run"] if doc["best"] else None
    return {
        "schema": protocol.TUNE_SCHEMA,
        "device_id": head["device_id"],
        "run_id": head["run_id"],
        "agent_version": __version__,
        "started_at": started.isoformat(timespec="milliseconds"),
        **{k: head[k] for k in ("model", "runtime", "source")},
        "budget_s": v["budget_s"],
        **doc,
    }


def _search_args(v: dict[str, Any]) -> dict[str, Any]:
    return {"bound_ms": v["latency_bound_ms"], "objective": v["objective"], "budget_s": v["budget_s"]}
