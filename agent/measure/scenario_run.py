"""``edgebench run --scenario ...``: the LoadGen-style scenarios on the real interpreter.

The service is a :class:`workload.BatchWorker`: samples are loaded and
preprocessed before timing (LoadGen's query sample library), and a query of n
samples runs ceil(n / batch) batches (set_tensor, invoke, get_tensor). The
result is an ``edgebench.scenario/1`` document in the run result's vocabulary.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from edgebench.agent import __version__
from edgebench.agent.errors import ModelError, UserError
from edgebench.agent.measure.result import default_device_id, new_run_id
from edgebench.agent.measure.scenarios import (
    RealClock,
    ScenarioSettings,
    SearchSettings,
    find_max_qps,
    rules_text,
    run_scenario,
    server_at,
)
from edgebench.agent.measure.workload import BatchWorker, Unsupported, WorkerSpec, batch_scope
from edgebench.agent.options.scenario import settings
from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime.compiled import CompiledSpec
from edgebench.agent.runtime.interpreter import fallback_text
from edgebench.agent.runtime.threads import describe as describe_threads
from edgebench.agent.wire import protocol
from edgebench.agent.wire.figures import people, text_table


def _warm(worker: BatchWorker, n: int, min_s: float) -> np.ndarray:
    """Warmup batches (not measured); returns their service times in ns."""
    out = []
    t_begin = time.perf_counter_ns()
    while len(out) < n or (time.perf_counter_ns() - t_begin) < min_s * 1e9:
        t0 = time.perf_counter_ns()
        worker.run_batch()
        out.append(time.perf_counter_ns() - t0)
    return np.asarray(out, dtype=np.int64)


class ScenarioStopped(UserError):
    """``should_stop`` said stop (the agent service is stopping): the scenario ends early."""


def _stoppable(serve: Callable[[int], Any], should_stop: Callable[[], bool]) -> Callable[[int], None]:
    def service(n: int) -> None:
        if should_stop():
            raise ScenarioStopped("the agent is stopping: scenario ended early")
        serve(n)

    return service


def _worker(opts: Any) -> BatchWorker:
    """The scenario's interpreter at ``--batch``, its samples prepared (the run plan)."""
    delegate = (
        rtmod.DelegateSpec(opts.delegate, dict(opts.delegate_options), opts.cpu_fallback) if opts.delegate else None
    )
    spec = WorkerSpec(
        model=opts.model,
        batch=opts.batch,
        threads=opts.threads,
        runtime=opts.runtime,
        xnnpack=opts.xnnpack,
        delegate=delegate,
        compiled=CompiledSpec.from_opts(opts),
        source=opts.source,
        seed=opts.seed,
        normalization=opts.normalization,
        resize=opts.resize,
        color=opts.color,
    )
    try:
        return BatchWorker(spec)
    except Unsupported as e:
        raise ModelError(f"--batch {opts.batch}: the model cannot take it: {e}; use --batch 1") from None


def _model_doc(opts: Any, worker: BatchWorker) -> dict[str, Any]:
    return {
        "path": os.path.abspath(opts.model),
        "name": os.path.basename(opts.model),
        "sha256": worker.facts.sha256,  # planned by the worker as it made the samples
        "size_bytes": os.path.getsize(opts.model),
        **{k: v for k, v in worker.describe_model().items() if k != "path"},
    }


def _batch_notes(opts: Any, s: ScenarioSettings) -> list[str]:
    notes = []
    if opts.batch > 1 and s.scenario in ("single-stream", "server"):
        notes.append(f"{s.scenario} queries hold one sample; each runs a whole batch of {opts.batch}")
    if s.scenario == "multi-stream" and s.samples_per_query % opts.batch:
        notes.append(
            f"{s.samples_per_query} samples per query in batches of {opts.batch}: the last batch is partly filled"
        )
    return notes


def _search_max_qps(opts: Any, s: ScenarioSettings, service: Callable, warm: np.ndarray, clock) -> dict[str, Any]:
    """The max-QPS search, starting from --target-qps or from half the back-to-back rate
    the warmup measured (its p99 is the floor no rate can beat)."""
    tail = warm[len(warm) // 2 :] if warm.size >= 4 else warm
    per_query_ms = float(np.median(tail)) / 1e6 if tail.size else None
    floor = float(np.percentile(tail, 99)) / 1e6 if tail.size else None
    start = opts.target_qps or (0.5 * 1000.0 / per_query_ms if per_query_ms else 1.0)
    search = SearchSettings(
        latency_bound_ms=opts.latency_bound_ms, start_qps=start, max_steps=opts.max_qps_steps, floor_latency_ms=floor
    )
    body = find_max_qps(server_at(service, replace(s, scenario="server"), clock), search)
    body["search"]["start_from"] = (
        "--target-qps" if opts.target_qps else "half the back-to-back rate measured in warmup"
    )
    body["search"]["warmup_service_ms"] = {
        "p50": None if per_query_ms is None else round(per_query_ms, 4),
        "p99": None if floor is None else round(floor, 4),
    }
    body["settings"] = s.to_dict()
    body["rules"] = "each step: " + rules_text(replace(s, scenario="server"))
    return body


def _measure(
    opts: Any, s: ScenarioSettings, service: Callable, warm: np.ndarray
) -> tuple[dict[str, Any], float | None]:
    """The scenario (or search) with the board's power sampled around it; (body, CPU %)."""
    probes = opts.probes
    with contextlib.ExitStack() as stack:
        power = None
        if not opts.find_max_qps and (probes is None or probes.enabled):
            from edgebench.agent.measure.sweep import ProbePower

            power = stack.enter_context(
                ProbePower(
                    probes.power if probes else "auto",
                    probes.sample_hz if probes else 10.0,
                    probes.root if probes else None,
                )
            )
        cpu0, wall0 = time.process_time(), time.monotonic()
        if opts.find_max_qps:
            body = _search_max_qps(opts, s, service, warm, RealClock())
        else:
            body = run_scenario(service, s, RealClock())
        body["power"] = _power_section(body, power, opts)
    cpu1, wall1 = time.process_time(), time.monotonic()
    return body, (round(100.0 * (cpu1 - cpu0) / (wall1 - wall0), 1) if wall1 > wall0 else None)


def run_scenario_opts(
    opts: Any,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run the scenario (or the max-QPS search) that ``opts`` (a RunOptions) asks for.

    ``on_start(info)`` is called once the model is loaded, before warmup, with the
    document's head (``device_id``, ``run_id``, ``scenario``, ``model``, ``runtime``,
    ``source``, ``config``): the publisher queues the run's meta from it.
    ``should_stop()`` is asked before every query; True ends the run with ScenarioStopped."""
    opts.validate()
    s = settings(opts)
    started = datetime.now(timezone.utc)
    worker = _worker(opts)
    head = {
        "device_id": opts.device_id or default_device_id(),
        "run_id": opts.run_id or new_run_id(),
        "model": _model_doc(opts, worker),
        "runtime": worker.rt.describe(),
        "source": worker.samples_desc,
        "config": {k: v for k, v in asdict(opts).items() if k not in ("notes", "device_id", "run_id")},
    }
    if on_start is not None:
        on_start({**head, "scenario": "find-max-qps" if opts.find_max_qps else s.scenario})
    service = worker.service if should_stop is None else _stoppable(worker.service, should_stop)
    notes = list(opts.notes) + _batch_notes(opts, s)
    warm = _warm(worker, max(opts.warmup, 10 if opts.find_max_qps else opts.warmup), opts.warmup_s)
    body, cpu_pct = _measure(opts, s, service, warm)
    notes += body.pop("notes", [])
    return {
        "schema": protocol.SCENARIO_SCHEMA,
        "device_id": head["device_id"],
        "run_id": head["run_id"],
        "agent_version": __version__,
        "started_at": started.isoformat(timespec="milliseconds"),
        "model": head["model"],
        "runtime": head["runtime"],
        "source": head["source"],
        "batch": opts.batch,
        "config": head["config"],
        "warmup_batches": int(warm.size),
        "service_scope": f"a query of n samples runs ceil(n / {opts.batch}) batches; {batch_scope(head['runtime'])}",
        "percentile_method": "linear",
        **body,
        "process": {
            "cpu_pct": cpu_pct,
            "scope": "the whole agent process over the scenario (warmup excluded); 100 = one core busy",
        },
        "notes": notes,
    }


def _power_section(body: dict[str, Any], power: Any, opts: Any) -> dict[str, Any]:
    """Energy over the measured scenario window: per query and per sample (as MLPerf
    reports single/multi-stream), with the mean power (as it reports offline/server)."""
    window = body.pop("_window_ns", None)
    if opts.find_max_qps:
        return {"available": False, "reason": "not measured for a max-QPS search (each step is its own run)"}
    if power is None:
        return {"available": False, "reason": "probes turned off (--no-probes)"}
    if not power.available:
        return {"available": False, "reason": power.reason}
    out = {"available": True, **(power(*window) or {})}
    e = out.get("energy_j")
    if e is not None:
        q, n = body.get("queries") or 0, body.get("samples") or body.get("queries") or 0
        out["energy_per_query_mj"] = round(e / q * 1000, 6) if q else None
        out["energy_per_sample_mj"] = round(e / n * 1000, 6) if n else None
        out["scope"] = "the measured scenario window (first query issued to last query done), warmup excluded"
    return out


def print_scenario(doc: dict[str, Any], out) -> None:
    """The scenario's report for people: figures rounded (people()), the JSON keeps them exact."""
    w = out.write
    rt = doc["runtime"]
    threads = describe_threads(rt.get("num_threads"), rt.get("num_threads_from"))
    w(
        f"model {doc['model']['name']} on {rt['name']} {rt['version']}{fallback_text(rt)}, {threads}, "
        f"batch {doc['batch']}: {doc['scenario']}\n"
    )
    if doc["scenario"] == "find-max-qps":
        _print_search(doc, w)
    else:
        _print_headline(doc, w)
        lat = doc["latency_ms"]
        w("latency (ms)  " + "  ".join(f"{k} {people(lat[k])}" for k in ("mean", "p50", "p90", "p99", "max")) + "\n")
        if doc.get("waiting_ms"):
            wt = doc["waiting_ms"]
            w(
                f"still waiting at the stop: {doc['queries_waiting']} queries (not in the latency above), waited "
                f"{people(wt['p50'])} ms p50, {people(wt['max'])} ms max\n"
            )
    w(f"result: {doc['verdict']}" + (f" by {doc['rules']}" if doc.get("rules") else "") + "\n")
    for r in doc["reasons"]:
        w(f"  reason: {r}\n")
    for warning in doc.get("warnings", []):
        w(f"warning: {warning}\n")
    for note in doc.get("notes", []):
        w(f"note: {note}\n")


def _print_search(doc: dict[str, Any], w: Callable[[str], Any]) -> None:
    rows = [
        [
            str(i),
            st["phase"],
            people(st["target_qps"]),
            people(st["p99_latency_ms"]),
            people(st["completed_qps"]),
            "pass" if st["passed"] else "fail",
        ]
        for i, st in enumerate(doc["steps"], 1)
    ]
    for line in text_table(["step", "phase", "target qps", "p99 ms", "done qps", "verdict"], rows, left=2):
        w(line + "\n")
    if doc["max_qps"] is not None:
        w(f"max QPS with p99 <= {doc['latency_bound_ms']:g} ms: {people(doc['max_qps'])}\n")


def _print_headline(doc: dict[str, Any], w: Callable[[str], Any]) -> None:
    h = doc["headline"]
    if doc["scenario"] == "server":
        w(
            f"{doc['queries']} queries at {doc['target_qps']:g} qps target ({people(doc['completed_qps'])} "
            f"completed/s) in {people(doc['duration_s'])} s: p99 {people(h['p99_latency_ms'])} ms, bound "
            f"{doc['latency_bound_ms']:g} ms: {'within' if h['value'] else 'NOT within'}\n"
        )
    elif doc["scenario"] == "offline":
        w(f"{doc['samples']} samples in {people(doc['duration_s'])} s: {people(h['value'])} samples/s\n")
    else:
        w(
            f"{doc['queries']} queries in {people(doc['duration_s'])} s ({people(doc['qps'])} qps): "
            f"{h['metric']} {people(h['value'])} ms\n"
        )
