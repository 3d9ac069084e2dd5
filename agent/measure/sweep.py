"""``edgebench sweep``: a grid of batch sizes x thread counts x concurrent instances.

Each point loads its own interpreters (one per instance, each at the point's
batch size and thread count), warms each of them up, then runs them together:

* instances as threads sharing this process (the interpreter releases the GIL
  in ``invoke()``), or as processes (``instance_mode: processes``), one
  interpreter per process;
* the measured window opens when every instance is warm and ready, and closes
  when the last instance finishes its last batch; throughput is the items
  completed in that window divided by its length;
* latency is per batch (``workload.BATCH_SCOPE``), pooled over the instances;
  per item it is the batch latency divided by the batch size.

A batch size the model cannot take is a point with ``status: unsupported`` and
the runtime's reason; any other failure of a point is ``status: failed`` with
its reason. Neither stops the sweep, and no point is dropped.

Energy: a point asks an optional ``power_window(t0_ns, t1_ns)`` callable (the
window on ``time.perf_counter_ns``, CLOCK_MONOTONIC) for the energy over its
measured window; without one the point says ``"power": null`` and why.
"""

from __future__ import annotations

import csv
import io
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from edgebench.agent import __version__
from edgebench.agent.errors import ModelError
from edgebench.agent.measure.result import default_device_id, new_run_id
from edgebench.agent.measure.workload import BatchWorker, Unsupported, WorkerSpec, batch_scope
from edgebench.agent.options.classes import ProbeOptions, SweepOptions, check_ranges
from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime.compiled import CompiledSpec
from edgebench.agent.wire import protocol
from edgebench.agent.wire.stats import histogram_ms, summarize_ns

log = logging.getLogger("edgebench.sweep")

#: Returns the power section for a window [t0_ns, t1_ns] on perf_counter_ns:
#: at least ``energy_j`` and ``mean_w``, plus what the source is; or raises/returns
#: None when it has no reading for that window.
PowerWindow = Callable[[int, int], "dict[str, Any] | None"]


PROBES = ProbeOptions()  # the defaults


class ProbePower:
    """A ``PowerWindow`` from the board's own power source (``edgebench.agent.probes``:
    INA3221, Pi 5 PMIC, RAPL, hwmon, a meter command...), sampled in the
    background at ``hz`` for as long as the context is open.

    ``available`` is False (with ``reason``) when there is no source; then use
    no window and record the reason. Energy over a window is the probes'
    integral (trapezoid over power readings, or a counter difference), clipped
    to the window's edges.
    """

    def __init__(self, spec: str = PROBES.power, hz: float = PROBES.sample_hz, root: str | None = None):
        self.spec, self.hz, self.root = spec, hz, root
        self.source = None
        self.sampler = None
        self.reason: str | None = None

    @property
    def available(self) -> bool:
        return self.sampler is not None

    def __enter__(self) -> "ProbePower":
        from edgebench.agent.probes import as_fs
        from edgebench.agent.probes.discover import discover_power
        from edgebench.agent.probes.sampler import Sampler

        check_ranges(ProbeOptions(power=self.spec, sample_hz=self.hz), "probes")
        disc = discover_power(self.spec, as_fs(self.root), interval_s=1.0 / self.hz)
        if disc.source is None:
            self.reason = f"power not measured: {disc.reason}"
            return self
        self.source = disc.source
        self.sampler = Sampler(power=disc.source, hz=self.hz).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.source is not None:
            self.source.close()

    def __call__(self, t0_ns: int, t1_ns: int) -> dict[str, Any] | None:
        from edgebench.agent.probes.sampler import summarize_power

        assert self.sampler is not None and self.source is not None
        # the integral needs a reading at or after the window's end
        deadline = time.perf_counter_ns() + int(5e9 / self.hz) + int(1e9)
        while time.perf_counter_ns() < deadline:
            snap = self.sampler.snapshot()
            if snap and snap[-1].t_ns >= t1_ns:
                break
            time.sleep(0.2 / self.hz)
        stats = self.sampler.stats()
        p = summarize_power(
            self.sampler.snapshot(), self.source, (t0_ns, t1_ns), 1, None, self.hz, span_s=stats.get("sampler_span_s")
        )
        keep = (
            "source",
            "method",
            "mean_w",
            "min_w",
            "max_w",
            "energy_j",
            "samples",
            "gaps",
            "window_s",
            "sampling_rate_hz",
            "note",
        )
        return {k: p[k] for k in keep if k in p}


NO_POWER_REASON = "no power source was given to the sweep (see agent/probes for the board's power sensors)"


def worker_spec(opts: SweepOptions, batch: int, threads: int) -> WorkerSpec:
    """One point's interpreter: the sweep's model, runtime, delegate and samples at this batch and thread count."""
    delegate = (
        rtmod.DelegateSpec(opts.delegate, dict(opts.delegate_options), opts.cpu_fallback) if opts.delegate else None
    )
    return WorkerSpec(
        model=opts.model,
        batch=batch,
        threads=threads,
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


# --------------------------------------------------------------------------- one instance's loop
def _measure_loop(
    worker: BatchWorker, frames: int | None, deadline_ns: Callable[[], int | None]
) -> tuple[np.ndarray, int]:
    """Run batches until ``frames`` are done or the deadline passes; returns
    (per-batch latencies in ns, end time in ns)."""
    clock = time.perf_counter_ns
    run = worker.run_batch
    lat: list[int] = []
    dl = deadline_ns()
    end = clock()
    while True:
        if frames is not None and len(lat) >= frames:
            break
        t0 = clock()
        if dl is not None and t0 >= dl and lat:
            break
        run()
        end = clock()
        lat.append(end - t0)
    return np.asarray(lat, dtype=np.int64), end


def _warm(worker: BatchWorker, n: int) -> None:
    for _ in range(n):
        worker.run_batch()


@dataclass
class _InstanceResult:
    latencies_ns: np.ndarray
    end_ns: int
    cpu_s: float | None = None  # processes: the instance's own process CPU time in the window


# --------------------------------------------------------------------------- threads
def _run_threads(
    opts: SweepOptions, spec: WorkerSpec, instances: int, samples
) -> tuple[int, list[_InstanceResult], float]:
    workers = [BatchWorker(spec, samples) for _ in range(instances)]
    for w in workers:
        _warm(w, opts.warmup)
    start: dict[str, int] = {}
    dur = None if opts.duration_s is None else int(opts.duration_s * 1e9)
    cpu: dict[str, float] = {}

    def open_window() -> None:
        cpu["t0"] = time.process_time()
        start["t0"] = time.perf_counter_ns()

    barrier = threading.Barrier(instances, action=open_window)
    results: list[_InstanceResult | BaseException | None] = [None] * instances

    def deadline() -> int | None:
        return None if dur is None else start["t0"] + dur

    def body(i: int) -> None:
        try:
            barrier.wait()
            lat, end = _measure_loop(workers[i], opts.frames, deadline)
            results[i] = _InstanceResult(lat, end)
        except BaseException as e:  # reported by the caller
            results[i] = e
            barrier.abort()

    threads = [
        threading.Thread(target=body, args=(i,), name=f"edgebench-instance-{i}", daemon=True) for i in range(instances)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu_s = time.process_time() - cpu.get("t0", 0.0)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return start["t0"], [r for r in results if isinstance(r, _InstanceResult)], cpu_s


# --------------------------------------------------------------------------- processes
def _process_main(
    spec: WorkerSpec, warmup: int, frames: int | None, duration_s: float | None, t0_value, start_evt, out_q
) -> None:
    """One instance in its own process: build, warm up, say ready, wait, measure, report."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        worker = BatchWorker(spec)
        _warm(worker, warmup)
    except Unsupported as e:
        out_q.put(("unsupported", str(e)))
        return
    except Exception as e:  # ModelError, SourceError...
        out_q.put(("failed", str(e).splitlines()[0] if str(e) else type(e).__name__))
        return
    out_q.put(("ready", os.getpid()))
    if not start_evt.wait(600):
        return
    dur = None if duration_s is None else int(duration_s * 1e9)
    c0 = time.process_time()
    try:
        lat, end = _measure_loop(worker, frames, lambda: None if dur is None else t0_value.value + dur)
    except Exception as e:
        out_q.put(("failed", str(e).splitlines()[0] if str(e) else type(e).__name__))
        return
    out_q.put(("done", lat.tobytes(), end, time.process_time() - c0))


def _run_processes(opts: SweepOptions, spec: WorkerSpec, instances: int) -> tuple[int, list[_InstanceResult], float]:
    ctx = mp.get_context("spawn")
    t0_value = ctx.Value("q", 0)
    start_evt = ctx.Event()
    out_q = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_main,
            args=(spec, opts.warmup, opts.frames, opts.duration_s, t0_value, start_evt, out_q),
            daemon=True,
        )
        for _ in range(instances)
    ]
    for p in procs:
        p.start()
    try:
        ready = 0
        while ready < instances:
            try:
                msg = out_q.get(timeout=300)
            except queue.Empty:
                raise ModelError("an instance process did not become ready within 300 s") from None
            if msg[0] == "ready":
                ready += 1
            elif msg[0] == "unsupported":
                raise Unsupported(msg[1])
            else:
                raise _PointFailed(msg[1])
        t0_value.value = time.perf_counter_ns()
        t0 = t0_value.value
        start_evt.set()
        results = []
        cpu_s = 0.0
        while len(results) < instances:
            try:
                msg = out_q.get(timeout=max(600.0, 10 * (opts.duration_s or 0)))
            except queue.Empty:
                raise _PointFailed("an instance process did not finish in time") from None
            if msg[0] != "done":
                raise _PointFailed(msg[1])
            lat = np.frombuffer(msg[1], dtype=np.int64)
            results.append(_InstanceResult(lat, msg[2], msg[3]))
            cpu_s += msg[3]
        return t0, results, cpu_s
    finally:
        start_evt.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)


class _PointFailed(Exception):
    pass


# --------------------------------------------------------------------------- one point
def _point_key(batch: int, threads: int, instances: int) -> dict[str, int]:
    return {"batch": batch, "threads": threads, "instances": instances}


def run_point(
    opts: SweepOptions,
    batch: int,
    threads: int,
    instances: int,
    samples=None,
    power_window: PowerWindow | None = None,
    keep_latencies: bool = False,
) -> dict[str, Any]:
    """Measure one grid point; never raises for a point-level problem. ``keep_latencies``:
    the per-batch latencies (ns) under ``latencies_ns``, for the tune's noise verdicts."""
    mode = "processes" if opts.processes else "threads"
    point: dict[str, Any] = {**_point_key(batch, threads, instances), "instance_mode": mode}
    spec = worker_spec(opts, batch, threads)
    try:
        if opts.processes:
            t0, results, cpu_s = _run_processes(opts, spec, instances)
        else:
            t0, results, cpu_s = _run_threads(opts, spec, instances, samples)
    except Unsupported as e:
        return {**point, "status": "unsupported", "reason": str(e)}
    except (_PointFailed, ModelError) as e:
        return {**point, "status": "failed", "reason": str(e)}
    except threading.BrokenBarrierError:
        return {**point, "status": "failed", "reason": "an instance failed before the measurement started"}
    except Exception as e:  # an invoke failing mid-run, out of memory...
        return {
            **point,
            "status": "failed",
            "reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "),
        }
    t1 = max(r.end_ns for r in results)
    lat = np.concatenate([r.latencies_ns for r in results])
    window_s = (t1 - t0) / 1e9
    batches = int(lat.size)
    items = batches * batch
    summary = summarize_ns(lat)
    per_item = {
        k: (None if summary[k] is None else round(summary[k] / batch, 4)) for k in ("mean", "p50", "p90", "p99")
    }
    point.update(
        status="ok",
        batches=batches,
        items=items,
        batches_per_instance=[int(r.latencies_ns.size) for r in results],
        duration_s=round(window_s, 6),
        throughput_items_per_s=round(items / window_s, 3) if window_s > 0 else None,
        throughput_batches_per_s=round(batches / window_s, 3) if window_s > 0 else None,
        latency_ms=summary,
        latency_per_item_ms=per_item,
        latency_histogram_ms=histogram_ms(lat / 1e6),
        cpu_pct=round(100.0 * cpu_s / window_s, 1) if window_s > 0 else None,
    )
    point["cpu_scope"] = (
        "this process over the measured window, all instances and interpreter threads; 100 = one core busy"
        if mode == "threads"
        else "the instance processes over their measured loops, summed; 100 = one core busy"
    )
    point.update(_power(power_window, t0, t1, items))
    if keep_latencies:
        point["latencies_ns"] = lat
    reasons = []
    if batches < opts.min_frames:
        reasons.append(f"only {batches} batches measured; at least {opts.min_frames} needed for the tail percentiles")
    if window_s < opts.min_duration_s:
        reasons.append(f"measured for {window_s:.3f} s; at least {opts.min_duration_s:g} s needed")
    point["verdict"] = "INVALID" if reasons else "VALID"
    point["reasons"] = reasons
    return point


def _power(power_window: PowerWindow | None, t0: int, t1: int, items: int) -> dict[str, Any]:
    if power_window is None:
        return {"power": None, "power_reason": NO_POWER_REASON}
    try:
        p = power_window(t0, t1)
    except Exception as e:
        return {"power": None, "power_reason": f"the power source failed over this window: {e}"}
    if not p or p.get("energy_j") is None:
        reason = (p or {}).get("reason") or (p or {}).get("note") or "the power source had no reading over this window"
        return {"power": None, "power_reason": reason}
    p = dict(p)
    p["energy_per_item_mj"] = round(p["energy_j"] / items * 1000.0, 6) if items else None
    return {"power": p}


# --------------------------------------------------------------------------- the sweep
def _head(opts: SweepOptions) -> tuple[dict[str, Any], list]:
    """The document's head (model, runtime, source, grid, settings) and the prepared samples.
    The model must run at all (batch 1, the first thread count) or the sweep is a user error."""
    base = BatchWorker(worker_spec(opts, 1, opts.threads[0]))
    rt_desc = base.rt.describe()
    # each point records the threads it ran with (points[].threads)
    rt_desc.pop("num_threads", None)
    rt_desc["num_threads_from"] = opts.threads_from
    head = {
        "device_id": opts.device_id or default_device_id(),
        "run_id": opts.run_id or new_run_id(),
        "model": {
            "path": os.path.abspath(opts.model),
            "name": os.path.basename(opts.model),
            "sha256": base.facts.sha256,  # planned by the worker as it made the samples
            "size_bytes": os.path.getsize(opts.model),
            **{k: v for k, v in base.describe_model().items() if k != "path"},
        },
        "runtime": rt_desc,
        "source": base.samples_desc,
        "grid": {
            "batch": list(opts.batch),
            "threads": list(opts.threads),
            "instances": list(opts.instances),
            "instance_mode": "processes" if opts.processes else "threads",
        },
        "settings": {
            "duration_s": opts.duration_s,
            "frames": opts.frames,
            "frames_unit": "batches per instance",
            "warmup": opts.warmup,
            "warmup_unit": "batches per instance, before each point",
            "min_frames": opts.min_frames,
            "min_duration_s": opts.min_duration_s,
        },
    }
    return head, base.samples


def _run_grid(opts: SweepOptions, samples, power_window, power_reason, progress) -> tuple[list, dict[int, str]]:
    """Every point in grid order; a batch size refused once is not loaded again."""
    points: list[dict[str, Any]] = []
    grid = [(b, t, i) for b in opts.batch for t in opts.threads for i in opts.instances]
    unsupported_batch: dict[int, str] = {}
    for n, (b, t, i) in enumerate(grid):
        if b in unsupported_batch:
            # the same batch size was refused at load: the reason does not depend on threads/instances
            p = {
                **_point_key(b, t, i),
                "instance_mode": "processes" if opts.processes else "threads",
                "status": "unsupported",
                "reason": unsupported_batch[b],
                "note": f"not loaded again: batch {b} was already refused at another point of this sweep",
            }
        else:
            p = run_point(opts, b, t, i, samples=samples, power_window=power_window)
            if power_window is None and power_reason and p["status"] == "ok":
                p["power_reason"] = power_reason
            if p["status"] == "unsupported":
                unsupported_batch[b] = p["reason"]
        points.append(p)
        if progress is not None:
            progress(p, n + 1, len(grid))
    return points, unsupported_batch


def _sweep_notes(points: list[dict[str, Any]], unsupported_batch: dict[int, str]) -> list[str]:
    ok = [p for p in points if p["status"] == "ok"]
    notes = []
    if unsupported_batch:
        notes.append(
            f"batch size(s) {', '.join(map(str, sorted(unsupported_batch)))} unsupported by this model; "
            "the other points ran (concurrent instances remain a way to use more cores)"
        )
    if any(p["status"] == "failed" for p in points):
        notes.append(f"{sum(p['status'] == 'failed' for p in points)} point(s) failed; each says why")
    if ok and all(p.get("power") is None for p in ok):
        reason = ok[0].get("power_reason") or ""
        notes.append(reason if reason.startswith("power not measured") else f"power not measured: {reason}")
    return notes


def sweep(
    opts: SweepOptions,
    *,
    power_window: PowerWindow | None = None,
    power_reason: str | None = None,
    progress: Callable[[dict[str, Any], int, int], None] | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every point of the grid; returns the ``edgebench.sweep/1`` document.

    ``power_reason`` says why there is no ``power_window`` (recorded in each point).
    ``on_start(info)`` is called once the model is loaded, before the first point, with
    the document's head (``device_id``, ``run_id``, ``model``, ``runtime``, ``source``,
    ``grid``, ``settings``): the publisher queues the run's meta from it."""
    opts.validate()
    started = datetime.now(timezone.utc)
    head, samples = _head(opts)
    if on_start is not None:
        on_start(dict(head))
    points, unsupported_batch = _run_grid(opts, samples, power_window, power_reason, progress)
    ok = [p for p in points if p["status"] == "ok"]
    return {
        "schema": protocol.SWEEP_SCHEMA,
        "device_id": head["device_id"],
        "run_id": head["run_id"],
        "agent_version": __version__,
        "started_at": started.isoformat(timespec="milliseconds"),
        **{k: head[k] for k in ("model", "runtime", "source", "grid", "settings")},
        "latency_scope": batch_scope(head["runtime"]),
        "throughput_scope": "items (batch x batches) completed by all instances / the measured window (all instances ready -> last batch done)",
        "percentile_method": "linear",
        "points": points,
        "best": _best(ok),
        "counts": {s: sum(p["status"] == s for p in points) for s in ("ok", "unsupported", "failed")},
        # one reason per batch size the model cannot take (its points repeat it, as the schema asks)
        "unsupported_batches": {str(b): r for b, r in sorted(unsupported_batch.items())},
        "notes": _sweep_notes(points, unsupported_batch),
    }


def _best(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest-throughput and the lowest-p99 points, among the VALID ones when any."""
    valid = [p for p in ok if p.get("verdict") == "VALID"]
    ok = valid or ok
    if not ok:
        return {"throughput": None, "latency": None}
    top = max(ok, key=lambda p: p["throughput_items_per_s"] or 0)
    low = min(ok, key=lambda p: p["latency_ms"]["p99"] if p["latency_ms"]["p99"] is not None else float("inf"))
    pick = lambda p, k, v: {**_point_key(p["batch"], p["threads"], p["instances"]), k: v, "verdict": p["verdict"]}  # noqa: E731
    return {
        "throughput": pick(top, "throughput_items_per_s", top["throughput_items_per_s"]),
        "latency": pick(low, "p99_ms", low["latency_ms"]["p99"]),
    }


CSV_COLUMNS = (
    "batch",
    "threads",
    "instances",
    "instance_mode",
    "status",
    "verdict",
    "batches",
    "items",
    "duration_s",
    "throughput_items_per_s",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_per_item_mean_ms",
    "latency_per_item_p50_ms",
    "latency_per_item_p90_ms",
    "latency_per_item_p99_ms",
    "cpu_pct",
    "energy_j",
    "mean_power_w",
    "energy_per_item_mj",
    "reason",
)


def csv_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for p in doc["points"]:
        lat = p.get("latency_ms") or {}
        per = p.get("latency_per_item_ms") or {}
        pw = p.get("power") or {}
        reason = p.get("reason") or "; ".join(p.get("reasons") or [])
        rows.append(
            {
                "batch": p["batch"],
                "threads": p["threads"],
                "instances": p["instances"],
                "instance_mode": p["instance_mode"],
                "status": p["status"],
                "verdict": p.get("verdict", ""),
                "batches": p.get("batches", ""),
                "items": p.get("items", ""),
                "duration_s": p.get("duration_s", ""),
                "throughput_items_per_s": p.get("throughput_items_per_s", ""),
                **{f"latency_{k}_ms": lat.get(k, "") for k in ("mean", "p50", "p90", "p99")},
                **{f"latency_per_item_{k}_ms": per.get(k, "") for k in ("mean", "p50", "p90", "p99")},
                "cpu_pct": p.get("cpu_pct", ""),
                "energy_j": pw.get("energy_j", ""),
                "mean_power_w": pw.get("mean_w", ""),
                "energy_per_item_mj": pw.get("energy_per_item_mj", ""),
                "reason": reason,
            }
        )
    return rows


def to_csv(doc: dict[str, Any]) -> str:
    """One row per point, every point (unsupported and failed ones with their reason)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in csv_rows(doc):
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def write_csv(path: str, doc: dict[str, Any]) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(to_csv(doc))
    os.replace(tmp, path)
