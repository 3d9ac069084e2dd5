"""One benchmark run, from options to result, as a sequence of named steps.

:func:`run` is those steps in order:

1. **plan** (:func:`_plan`): read the ``--labels`` file, load the runtime, and plan the
   run (edgebench.agent.measure.plan: model facts, labels, image model or not, input
   preparation, postprocess) -- the same plan the sweep and scenario workers make;
2. **source** (:func:`_source_step`): the accuracy set when scoring, else the source
   to open (frames through the plan's preprocessor, or seeded random tensors), and how
   inputs reach the interpreter;
3. **measure** (:func:`_measure_step`): the probes start (cool-down, soak and idle
   baseline come before the source opens, as a live source would drop frames), the
   source opens, the loop measures (edgebench.agent.measure.loop);
4. **check** (:func:`_check_frames`): notes on a source that ended early or dropped
   frames, and an error when no frame was measured;
5. **result** (:func:`_result_step`): the ``edgebench.result/1`` document.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Callable

from edgebench.agent.errors import SourceError, UserError
from edgebench.agent.measure.loop import FrameSink, LoopOptions, Measurement, Progress, measure
from edgebench.agent.measure.plan import RunPlan, given_labels, plan_run, synthetic_samples
from edgebench.agent.measure.result import build_result, default_device_id, new_run_id, utc_now
from edgebench.agent.options.classes import RunOptions
from edgebench.agent.options.table import SUSTAINED
from edgebench.agent.runtime import compiled, registry
from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime.interpreter import Runtime, TensorInfo
from edgebench.agent.runtime.postprocess import Detector, summarize_outputs
from edgebench.agent.sources.base import Frame, Source
from edgebench.agent.sources.open import open_source

log = logging.getLogger("edgebench.run")


@dataclass
class RunOutcome:
    result: dict[str, Any]
    measurement: Measurement
    #: the board over the measured window (edgebench.agent.probes.timeline), when the run was
    #: asked to keep its samples and the probes ran; for local pictures, not in the result
    timeline: dict[str, Any] | None = None


class TensorSource(Source):
    """Random inputs of each input tensor's exact shape and dtype (non-image models)."""

    kind = "synthetic-tensors"

    def __init__(self, inputs: list[TensorInfo], pool: int = 4, seed: int = 0):
        self.inputs = inputs
        self._pool = synthetic_samples(inputs, pool, seed)
        self._i = 0

    def read(self) -> Frame:
        k = self._i % len(self._pool)
        self._i += 1
        return Frame(self._pool[k], f"tensors-{k}")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": "synthetic", "inputs": [t.to_dict() for t in self.inputs]}


def _process_usage() -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds)."""
    t = os.times()
    return t.user + t.system, time.monotonic()


def _peak_rss_mb() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024.0 if sys.platform != "darwin" else ru / (1024.0 * 1024.0)


#: which rules the per-frame run's verdict applies
RUN_RULES = (
    "edgebench's check: at least {frames} frames over at least {seconds:g} s (--min-frames, --min-duration); "
    "not an MLPerf verdict (--scenario single-stream --mlperf loadgen)"
)


def validity(m: Measurement, opts: RunOptions) -> dict[str, Any]:
    """A LoadGen-style verdict: enough frames and enough time to trust the tails."""
    reasons = []
    if m.frames < opts.min_frames:
        reasons.append(f"only {m.frames} frames measured; at least {opts.min_frames} needed")
    if m.duration_s < opts.min_duration_s:
        reasons.append(f"measured for {m.duration_s:.3f} s; at least {opts.min_duration_s:g} s needed")
    return {
        "verdict": "INVALID" if reasons else "VALID",
        "reasons": reasons,
        "min_frames": opts.min_frames,
        "min_duration_s": opts.min_duration_s,
        "rules": RUN_RULES.format(frames=opts.min_frames, seconds=opts.min_duration_s),
    }


def variance_warnings(m: Measurement) -> list[str]:
    s = m.stats["inference"].summary_ms()
    out = []
    if s["mean"] and s["std"] is not None and m.frames >= 20:
        cov = s["std"] / s["mean"]
        if cov > 0.5 or (s["p50"] and s["p99"] > 5 * s["p50"]):
            out.append(
                f"inference latency varies a lot (CoV {cov:.2f}, p99/p50 {s['p99'] / s['p50']:.1f}): other load, "
                "throttling or power saving on this machine? The figures may not reproduce"
            )
    return out


#: queueing dominates e2e when the median frame waits more than this share of its median e2e
QUEUE_DOMINATES = 1 / 3


def queue_warnings(m: Measurement) -> list[str]:
    """A warning when frames spent a large share of their e2e waiting (the ``queue`` stage);
    for a pipelined run, with what the wait bought: the FPS against one frame at a time
    (estimated from the stages' means)."""
    if "queue" not in m.stages or m.frames < 2:
        return []
    ms = {s: m.stats[s].summary_ms() for s in m.stages}
    q, e2e = ms["queue"]["p50"], ms["e2e"]["p50"]
    if not q or not e2e or q <= QUEUE_DOMINATES * e2e:
        return []
    share = f"frames waited {q:.4g} ms of their {e2e:.4g} ms e2e (p50, {100 * q / e2e:.0f} %) in the queue"
    if m.mode != "pipelined":
        return [f"{share}: inference is slower than the source delivers frames"]
    alone = sum(ms[s]["mean"] or 0.0 for s in ("capture", "preprocess", "inference", "postprocess"))
    gain = f" for {100 * (m.fps * alone / 1000 - 1):+.0f} % FPS over one frame at a time" if m.fps and alone else ""
    return [
        f"{share}{gain}: with --pipelined the next frame is ready before the interpreter is free and waits "
        "for it, as a camera frame arriving while the interpreter is busy would; run without --pipelined "
        "for one frame's latency alone"
    ]


@dataclass
class _SourcePlan:
    """What the source step decided: what to open, how many frames, how inputs reach the interpreter."""

    open: Callable[[], Source]
    frames: int | None
    feed: Callable[[Any], None]
    preprocess: Callable[[Any], Any]
    scorer: Any = None  # accuracy.Scorer when the run scores a labelled set


@dataclass
class _Measured:
    """What the measure step saw."""

    m: Measurement
    started: float
    source: dict[str, Any]
    live: bool
    probes: Any  # the closed ProbeSession: its sections and notes go into the result
    cpu_s: float
    wall_s: float


def run(
    opts: RunOptions,
    *,
    sink_factory: Callable[[dict[str, Any]], FrameSink] | None = None,
    progress: Callable[[Progress], None] | None = None,
    keep_samples: bool = False,
) -> RunOutcome:
    """Run one benchmark: plan, open the source, measure with the probes, build the result.

    ``sink_factory(run_info)`` is called once the run is set up (with device_id,
    run_id, model, runtime, source) and returns a sink for frame batches, so a
    publisher can stream the run while it is measured. ``keep_samples`` keeps every
    frame's samples and end time (``measurement.kept``) and the board's timeline, for
    ``--csv`` and ``--plot``.
    """
    _validate(opts)
    ids = (opts.device_id or default_device_id(), opts.run_id or new_run_id())
    rt, plan = _plan(opts)
    notes = [*opts.notes, *plan.notes]
    src = _source_step(opts, rt, plan, notes)
    done = _measure_step(opts, rt, plan, src, ids, sink_factory, progress, keep_samples)
    _check_frames(opts, done, notes)
    m = done.m
    return RunOutcome(
        result=_result_step(opts, rt, plan, src, done, ids, notes),
        measurement=m,
        timeline=done.probes.timeline(m.start_ns, m.end_ns) if keep_samples else None,
    )


def _validate(opts: RunOptions) -> None:
    opts.validate()
    if opts.scenario not in (None, SUSTAINED) or opts.find_max_qps:  # sustained: this run, held long
        raise UserError(
            "these options ask for a scenario: run them with edgebench.agent.measure.scenario_run.run_scenario_opts"
        )


def _plan(opts: RunOptions) -> tuple[Runtime, RunPlan]:
    """The --labels file (first: a wrong path fails before a slow model load), the runtime, the plan."""
    given = given_labels(opts)
    rt = open_runtime(opts, opts.threads)
    return rt, plan_run(opts, rt, given)


def open_runtime(opts: Any, threads: int | None) -> Runtime:
    """The Interpreter, or LiteRT's CompiledModel when ``--accelerator`` is given."""
    spec = compiled.CompiledSpec.from_opts(opts)
    if spec is not None:
        return compiled.load(opts.model, spec, runtime=opts.runtime, num_threads=threads)
    delegate = (
        rtmod.DelegateSpec(opts.delegate, dict(opts.delegate_options), opts.cpu_fallback) if opts.delegate else None
    )
    return rtmod.load(opts.model, runtime=opts.runtime, num_threads=threads, delegate=delegate, xnnpack=opts.xnnpack)


def _feeders(rt: Runtime, plan: RunPlan) -> tuple[Callable[[Any], None], Callable[[Any], Any]]:
    """(feed, preprocess): an image goes through the preprocessor into the one input; random
    tensors go as they are, one into each input."""
    if plan.image:
        return rt.set_input, plan.inputs.preprocessor
    set_tensor, indices = rt.interpreter.set_tensor, tuple(t.index for t in plan.inputs.tensors)

    def feed(xs):
        for i, x in zip(indices, xs):
            set_tensor(i, x)

    def preprocess(xs):
        return xs

    return feed, preprocess


def _source_step(opts: RunOptions, rt: Runtime, plan: RunPlan, notes: list[str]) -> _SourcePlan:
    """The labelled set when the run scores accuracy, else the options' source (image
    models) or random tensors of the inputs' shapes (other models)."""
    feed, preprocess = _feeders(rt, plan)
    if opts.accuracy or opts.accuracy_floor is not None:
        from edgebench.agent.measure.accuracy import prepare

        labelled, scorer, frames = prepare(opts, plan.post if plan.image else None, notes)
        return _SourcePlan(lambda: labelled, frames, feed, preprocess, scorer)
    if plan.image:
        pre = plan.inputs.preprocessor
        opener = partial(
            open_source,
            opts.source,
            default_size=(pre.width, pre.height),
            pacing=opts.pacing,
            fps=opts.fps,
            stall_timeout_s=opts.stall_timeout_s,
            reconnects=opts.reconnects,
        )
        return _SourcePlan(opener, opts.frames, feed, preprocess)
    return _SourcePlan(partial(TensorSource, plan.inputs.tensors), opts.frames, feed, preprocess)


def _run_info(opts: RunOptions, rt: Runtime, plan: RunPlan, ids: tuple[str, str], source: dict) -> dict[str, Any]:
    """What a sink is told when the run starts."""
    return {
        "device_id": ids[0],
        "run_id": ids[1],
        "model": {
            "path": os.path.abspath(opts.model),
            "name": os.path.basename(opts.model),
            "sha256": plan.facts.sha256,
        },
        "runtime": rt.describe(),
        "source": source,
    }


def _measure_step(
    opts: RunOptions,
    rt: Runtime,
    plan: RunPlan,
    src: _SourcePlan,
    ids: tuple[str, str],
    sink_factory: Callable[[dict[str, Any]], FrameSink] | None,
    progress: Callable[[Progress], None] | None,
    keep_samples: bool = False,
) -> _Measured:
    """Probes around the measured frames: power, thermal, system. Their cool-down, soak and
    idle baseline come before the source opens (a live one would drop frames)."""
    from edgebench.agent.probes.session import ProbeSession

    with ProbeSession(opts.probes, workload=rt.invoke) as probes, src.open() as source:
        started = utc_now()
        cpu0, wall0 = _process_usage()
        desc = source.describe()
        sink = sink_factory(_run_info(opts, rt, plan, ids, desc)) if sink_factory else None
        loop = LoopOptions(
            frames=src.frames,
            duration_s=opts.duration_s,
            warmup=opts.warmup,
            warmup_s=opts.warmup_s,
            pipelined=opts.pipelined,
            sink=sink,
            progress=progress,
            prediction_key="detections" if isinstance(plan.post, Detector) else "top_k",
            format_prediction=plan.post.format if plan.post is not None else None,
            keep_samples=keep_samples,
        )
        m = measure(rt, source, src.preprocess, plan.post, loop, feed=src.feed)
        desc = {**desc, **source.counters()}
    cpu1, wall1 = _process_usage()
    return _Measured(m, started, desc, source.live, probes, cpu1 - cpu0, wall1 - wall0)


def _source_warnings(source: dict[str, Any]) -> list[str]:
    """Damaged images the source decoded anyway (a truncated JPEG runs, but not as a whole image)."""
    bad = source.get("damaged_images") or []
    if not bad:
        return []
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    return [f"{len(bad)} damaged image(s) measured: {'; '.join(bad[:3])}{more}"]


def _check_frames(opts: RunOptions, done: _Measured, notes: list[str]) -> None:
    """Notes on a source that ended early or dropped frames; no frame measured is an error."""
    m = done.m
    if m.ended_early:
        asked = f"{opts.frames} asked" if opts.frames else f"{opts.duration_s:g} s asked"
        notes.append(f"source ended after {m.warmup_frames + m.frames} frames; {m.frames} measured ({asked})")
    if done.source.get("not_live"):
        notes.append(done.source["not_live"])
    if done.source.get("kind") == "folder" and done.source.get("passes", 0) > 1:
        notes.append(
            f"the folder's {done.source['images']} images were read {done.source['images_read']} times "
            f"({done.source['passes']:g} passes, warmup included): a folder loops until --frames or --duration"
        )
    if m.frames == 0:
        raise SourceError(_ended_in_warmup(opts, m, done.source))
    if done.source.get("frames_dropped"):
        notes.append(
            f"{done.source['frames_dropped']} of {done.source['frames_captured']} frames from the live source were "
            "dropped because inference was slower than the source (only the newest frame is kept)"
        )


def _ended_in_warmup(opts: RunOptions, m: Measurement, source: dict[str, Any]) -> str:
    """Why no frame was measured, with what the newest-frame rule dropped, and what to do."""
    text = f"no frames measured: the source {opts.source} ended during warmup, after {m.warmup_frames} frames"
    dropped = source.get("frames_dropped")
    if not dropped:
        return text + "; lower --warmup or use a longer source"
    text += (
        f": {dropped} of its {source.get('frames_captured')} frames were dropped because inference was slower "
        "than the source (only the newest frame is kept)"
    )
    if source.get("kind") == "gstreamer" and "is-live" not in str(source.get("uri")):
        return text + "; if the pipeline's source is not live (a file, a test pattern), add is-live=true to it"
    return text + "; lower the source's frame rate or --warmup, or use a longer source"


def _process_section(done: _Measured) -> dict[str, Any]:
    return {
        "cpu_pct": round(100.0 * done.cpu_s / done.wall_s, 1) if done.wall_s > 0 else None,
        "cpu_s": round(done.cpu_s, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "scope": "the whole agent process over the run, warmup included; 100 = one core busy",
    }


def memory_section(rt: Runtime, m: Measurement) -> dict[str, Any]:
    """Resident memory after load, allocation (or compilation), the first inference, and the peak."""
    from edgebench.agent.runtime import memory

    seen = {**rt.memory, "after_first_inference_mb": m.rss_after_first_inference_mb, "after_run_mb": memory.rss_mb()}
    # the kernel's high-water mark lags the resident set a little: the peak is never below a reading
    peak = max([memory.peak_mb(), *(v for v in seen.values() if v is not None)])
    return {**seen, "peak_mb": peak, "scope": memory.SCOPE}


def ops_section(rt: Runtime, opts: RunOptions) -> dict[str, Any] | None:
    """The op table (edgebench.agent.runtime.optime): placement always, GPU compatibility and
    per-operator times with --ops; for a CompiledModel only what its API says."""
    from edgebench.agent.runtime import optime

    if getattr(rt, "fully_accelerated", None) is not None or rt.describe().get("api") == "compiled_model":
        return {
            "source": "CompiledModel.is_fully_accelerated() (no per-operator API)",
            "fully_accelerated": rt.fully_accelerated,
        }
    if not opts.ops:
        return rt.ops
    return optime.diagnose(rt, times=True)


def _result_step(
    opts: RunOptions,
    rt: Runtime,
    plan: RunPlan,
    src: _SourcePlan,
    done: _Measured,
    ids: tuple[str, str],
    notes: list[str],
) -> dict[str, Any]:
    """The ``edgebench.result/1`` document (edgebench.agent.measure.result) with what this run adds."""
    m = done.m
    result = build_result(
        device_id=ids[0],
        run_id=ids[1],
        rt=rt,
        model_sha256=plan.facts.sha256,
        task=plan.task,
        source=done.source,
        preprocess=plan.inputs.describe(),
        m=m,
        started_at=done.started,
        config={k: v for k, v in asdict(opts).items() if k not in ("notes", "device_id", "run_id")},
        notes=notes,
        validity=validity(m, opts),
        warnings=list(getattr(rt, "warnings", []))
        + variance_warnings(m)
        + queue_warnings(m)
        + _source_warnings(done.source),
        process=_process_section(done),
        pacing="realtime" if (opts.fps or opts.pacing == "realtime" or done.live) else "fast",
    )
    if plan.post is None and m.last_outputs is not None:
        result["outputs_summary"] = summarize_outputs(m.last_outputs, rt.outputs)
    if plan.facts.known is not None:
        result["model"]["registry"] = registry.describe(plan.facts.known)
    if src.scorer is not None:
        result["accuracy"] = src.scorer.score(m.predictions, opts.accuracy_floor)
    result["memory"] = memory_section(rt, m)
    ops = ops_section(rt, opts)
    if ops is not None:
        result["ops"] = ops
    result.update(done.probes.sections(m.start_ns, m.end_ns, m.frames, runtime=rt.describe()))
    result["notes"].extend(done.probes.notes)
    return result
