"""One benchmark run, from options to result: load, open, preprocess, measure, report."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from . import runtime as rtmod
from .errors import ModelError, UserError
from .measure import Measurement, measure
from .postprocess import Classifier, is_classifier, load_labels
from .preprocess import Preprocessor, image_layout
from .result import build_result, default_device_id, new_run_id, utc_now
from .sources import open_source

log = logging.getLogger("edgebench.run")


@dataclass
class RunOptions:
    model: str
    source: str = "synthetic"
    frames: int = 100
    warmup: int = 5
    threads: int | None = None
    runtime: str = "auto"
    labels: str | None = None
    top_k: int = 5
    resize: str = "stretch"
    color: str = "RGB"
    device_id: str | None = None
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.frames is None or self.frames < 1:
            raise UserError("--frames must be at least 1")
        if self.warmup < 0:
            raise UserError("--warmup must be 0 or more")
        if self.threads is not None and self.threads < 1:
            raise UserError("--threads must be at least 1")
        if not 1 <= self.top_k <= 100:
            raise UserError("--top-k must be between 1 and 100")


@dataclass
class RunOutcome:
    result: dict[str, Any]
    measurement: Measurement


def run(opts: RunOptions, stream=None) -> RunOutcome:
    """Run one benchmark. With a ``stream`` (agent.publish.RunStream), the run's
    meta is handed to it before the first frame and the measured frames while
    the run goes on (``stream.sink``)."""
    opts.validate()
    device_id = opts.device_id or default_device_id()
    run_id = opts.run_id or new_run_id()
    labels = load_labels(opts.labels) if opts.labels else None
    rt = rtmod.load(opts.model, runtime=opts.runtime, num_threads=opts.threads)
    sha = rtmod.file_sha256(opts.model)
    if len(rt.inputs) != 1 or image_layout(rt.inputs[0]) is None:
        raise ModelError(
            f"{opts.model} takes {len(rt.inputs)} input(s) of shape "
            f"{[t.shape for t in rt.inputs]}; only single image inputs (NHWC) are supported so far"
        )
    pre = Preprocessor(rt.inputs[0], resize=opts.resize, color=opts.color)
    post = None
    if is_classifier(rt.outputs):
        post = Classifier(rt.outputs[0], labels=labels, k=opts.top_k)
    elif labels is not None:
        opts.notes.append("labels ignored: the model's output is not a [1, N] classification tensor")

    notes = list(opts.notes)
    started = utc_now()
    config = {k: v for k, v in asdict(opts).items() if k not in ("notes", "device_id", "run_id")}
    with open_source(opts.source) as src:
        source_desc = src.describe()
        if stream is not None:
            stream.begin(device_id=device_id, run_id=run_id, rt=rt, model_sha256=sha, source=source_desc, config=config)
        m = measure(
            rt, src, pre, post, frames=opts.frames, warmup=opts.warmup, sink=None if stream is None else stream.sink
        )
    if m.ended_early:
        notes.append(
            f"source ended after {m.warmup_frames + m.frames} frames; {m.frames} measured of {opts.frames} asked"
        )
    if m.frames == 0:
        raise UserError(
            f"no frames measured: the source {opts.source} ended during warmup "
            f"({m.warmup_frames} frames); lower --warmup or use a longer source",
            exit_code=4,
        )
    result = build_result(
        device_id=device_id,
        run_id=run_id,
        rt=rt,
        model_sha256=sha,
        source=source_desc,
        preprocess=pre.describe(),
        m=m,
        started_at=started,
        config=config,
        notes=notes,
    )
    return RunOutcome(result=result, measurement=m)
