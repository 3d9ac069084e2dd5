"""One benchmark run, from options to result: load, open, preprocess, measure, report."""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from edgebench.agent.errors import SourceError, UserError
from edgebench.agent.measure.loop import FrameSink, LoopOptions, Measurement, Progress, measure
from edgebench.agent.measure.result import build_result, default_device_id, new_run_id, utc_now
from edgebench.agent.options.classes import RunOptions
from edgebench.agent.preprocess.image import Normalization, Preprocessor, image_layout, synthetic_input
from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime import registry, tflite_meta
from edgebench.agent.runtime.postprocess import (
    Classifier,
    Detector,
    detection_roles,
    is_classifier,
    load_labels,
    summarize_outputs,
)
from edgebench.agent.sources.open import Frame, LiveSource, Source, open_source

log = logging.getLogger("edgebench.run")


@dataclass
class RunOutcome:
    result: dict[str, Any]
    measurement: Measurement


class TensorSource(Source):
    """Random inputs of each input tensor's exact shape and dtype (non-image models)."""

    kind = "synthetic-tensors"

    def __init__(self, inputs, pool: int = 4, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.inputs = inputs
        self._pool = [[synthetic_input(t, rng) for t in inputs] for _ in range(pool)]
        self._i = 0

    def read(self) -> Frame:
        k = self._i % len(self._pool)
        self._i += 1
        return Frame(self._pool[k], f"tensors-{k}")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": "synthetic", "inputs": [t.to_dict() for t in self.inputs]}


def _normalization(opts: RunOptions, meta) -> Normalization | None:
    if opts.normalization:
        return Normalization(opts.normalization["mean"], opts.normalization["std"], "config")
    if meta is not None and meta.inputs and meta.inputs[0].mean and meta.inputs[0].std:
        mean, std = meta.inputs[0].mean, meta.inputs[0].std
        return Normalization(
            (mean * 3)[:3] if len(mean) == 1 else mean, (std * 3)[:3] if len(std) == 1 else std, "metadata"
        )
    return None


def _process_usage() -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds)."""
    t = os.times()
    return t.user + t.system, time.monotonic()


def _peak_rss_mb() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024.0 if sys.platform != "darwin" else ru / (1024.0 * 1024.0)


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


def run(  # noqa: C901
    opts: RunOptions,
    *,
    sink_factory: Callable[[dict[str, Any]], FrameSink] | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> RunOutcome:
    """Run one benchmark.

    ``sink_factory(run_info)`` is called once the run is set up (with device_id,
    run_id, model, runtime, source) and returns a sink for frame batches, so a
    publisher can stream the run while it is measured.
    """
    opts.validate()
    if opts.scenario is not None or opts.find_max_qps:
        raise UserError(
            "these options ask for a scenario: run them with edgebench.agent.measure.scenario_run.run_scenario_opts"
        )
    device_id = opts.device_id or default_device_id()
    run_id = opts.run_id or new_run_id()
    labels = load_labels(opts.labels) if opts.labels else None
    delegate = (
        rtmod.DelegateSpec(opts.delegate, dict(opts.delegate_options), opts.cpu_fallback) if opts.delegate else None
    )
    rt = rtmod.load(opts.model, runtime=opts.runtime, num_threads=opts.threads, delegate=delegate, xnnpack=opts.xnnpack)
    sha = rtmod.file_sha256(opts.model)
    meta = tflite_meta.read(opts.model)
    notes = list(opts.notes)
    if labels is None and meta is not None:
        labels = tflite_meta.embedded_labels(opts.model, meta)
        if labels:
            notes.append(f"labels read from the model's metadata ({len(labels)})")
    known = registry.lookup(sha)  # a model the registry knows by its bytes
    if known is not None:
        if labels is None and registry.labels_file(known):
            labels = load_labels(registry.labels_file(known))
        if registry.latency_only(known):
            notes.append(f"latency only: {known['name']} has untrained weights; its predictions mean nothing")

    image_model = len(rt.inputs) == 1 and image_layout(rt.inputs[0]) is not None
    if image_model:
        norm = _normalization(opts, meta) or (registry.normalization(known) if known is not None else None)
        pre = Preprocessor(rt.inputs[0], normalization=norm, resize=opts.resize, color=opts.color)
        h, w = pre.height, pre.width
        feed = rt.set_input
        preprocess = pre
        pre_desc = pre.describe()
    else:
        if opts.source != "synthetic":
            raise UserError(
                f"{opts.model} is not an image model (inputs {[t.shape for t in rt.inputs]}); "
                "it runs on --source synthetic (random inputs of the right shape and dtype)"
            )
        inputs = rt.inputs
        set_tensor, indices = rt.interpreter.set_tensor, tuple(t.index for t in inputs)

        def feed(xs):
            for i, x in zip(indices, xs):
                set_tensor(i, x)

        def preprocess(xs):
            return xs

        pre_desc = {"synthetic_inputs": [t.to_dict() for t in inputs]}

    post = None
    task = "other"
    if is_classifier(rt.outputs):
        post = Classifier(rt.outputs[0], labels=labels, k=opts.top_k)
        task = "classification"
    else:
        roles = detection_roles(rt.outputs)
        if roles is not None:
            post = Detector(rt, roles, labels=labels, k=max(opts.top_k, 10))
            task = "detection"
        elif labels is not None:
            notes.append("labels ignored: the model's output is neither a [1, N] classifier nor an SSD detection head")

    frames, labelled, scorer = opts.frames, None, None
    if opts.accuracy or opts.accuracy_floor is not None:
        from edgebench.agent.measure.accuracy import prepare

        labelled, scorer, frames = prepare(opts, post if image_model else None, notes)
    if labelled is not None:
        open_src = lambda: labelled  # noqa: E731
    elif image_model:
        open_src = lambda: open_source(  # noqa: E731
            opts.source,
            default_size=(w, h),
            pacing=opts.pacing,
            fps=opts.fps,
            stall_timeout_s=opts.stall_timeout_s,
            reconnects=opts.reconnects,
        )
    else:
        open_src = lambda: TensorSource(rt.inputs)  # noqa: E731
    from edgebench.agent.probes.session import ProbeSession  # power, thermal, system sampled around the measured frames

    # the probes' cool-down, soak and idle baseline come before the source opens (a live one would drop frames)
    with ProbeSession(opts.probes, workload=rt.invoke) as probes, open_src() as src:
        started = utc_now()
        cpu0, wall0 = _process_usage()
        source_desc = src.describe()
        info = {
            "device_id": device_id,
            "run_id": run_id,
            "model": {"path": os.path.abspath(opts.model), "name": os.path.basename(opts.model), "sha256": sha},
            "runtime": rt.describe(),
            "source": source_desc,
        }
        sink = sink_factory(info) if sink_factory else None
        loop = LoopOptions(
            frames=frames,
            duration_s=opts.duration_s,
            warmup=opts.warmup,
            warmup_s=opts.warmup_s,
            pipelined=opts.pipelined,
            sink=sink,
            progress=progress,
            prediction_key="detections" if isinstance(post, Detector) else "top_k",
            format_prediction=post.format if post is not None else None,
        )
        m = measure(rt, src, preprocess, post, loop, feed=feed)
        if isinstance(src, LiveSource):
            source_desc = {**source_desc, **src.counters()}
    cpu1, wall1 = _process_usage()
    if m.ended_early:
        asked = f"{opts.frames} asked" if opts.frames else f"{opts.duration_s:g} s asked"
        notes.append(f"source ended after {m.warmup_frames + m.frames} frames; {m.frames} measured ({asked})")
    if m.frames == 0:
        raise SourceError(
            f"no frames measured: the source {opts.source} ended during warmup "
            f"({m.warmup_frames} frames); lower --warmup or use a longer source"
        )
    if source_desc.get("frames_dropped"):
        notes.append(
            f"{source_desc['frames_dropped']} of {source_desc['frames_captured']} frames from the live source were "
            "dropped because inference was slower than the source (only the newest frame is kept)"
        )
    config = {k: v for k, v in asdict(opts).items() if k not in ("notes", "device_id", "run_id")}
    process = {
        "cpu_pct": round(100.0 * (cpu1 - cpu0) / (wall1 - wall0), 1) if wall1 > wall0 else None,
        "cpu_s": round(cpu1 - cpu0, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "scope": "the whole agent process over the run, warmup included; 100 = one core busy",
    }
    result = build_result(
        device_id=device_id,
        run_id=run_id,
        rt=rt,
        model_sha256=sha,
        task=task,
        source=source_desc,
        preprocess=pre_desc,
        m=m,
        started_at=started,
        config=config,
        notes=notes,
        validity=validity(m, opts),
        warnings=variance_warnings(m),
        process=process,
        pacing="realtime" if (opts.fps or opts.pacing == "realtime" or src.live) else "fast",
    )
    if post is None and m.last_outputs is not None:
        result["outputs_summary"] = summarize_outputs(m.last_outputs, rt.outputs)
    if known is not None:
        result["model"]["registry"] = registry.describe(known)
    if scorer is not None:
        result["accuracy"] = scorer.score(m.predictions, opts.accuracy_floor)
    result.update(probes.sections(m.start_ns, m.end_ns, m.frames, runtime=rt.describe()))
    result["notes"].extend(probes.notes)
    return RunOutcome(result=result, measurement=m)
