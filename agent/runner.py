"""One benchmark run, from options to result: load, open, preprocess, measure, report."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from . import registry
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
    accuracy: str | None = None
    accuracy_floor: float | None = None
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


def run(opts: RunOptions) -> RunOutcome:
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
    known = registry.lookup(sha)  # a model the registry knows by its bytes
    if known is not None:
        if labels is None and registry.labels_file(known):
            labels = load_labels(registry.labels_file(known))
        if registry.latency_only(known):
            opts.notes.append(f"latency only: {known['name']} has untrained weights; its predictions mean nothing")
    norm = registry.normalization(known) if known is not None else None
    pre = Preprocessor(rt.inputs[0], normalization=norm, resize=opts.resize, color=opts.color)
    post = None
    if is_classifier(rt.outputs):
        post = Classifier(rt.outputs[0], labels=labels, k=opts.top_k)
    elif labels is not None:
        opts.notes.append("labels ignored: the model's output is not a [1, N] classification tensor")
    scorer, frames, labelled = None, opts.frames, None
    if opts.accuracy or opts.accuracy_floor is not None:
        from .accuracy import prepare

        labelled, scorer, frames = prepare(opts, post, opts.notes)

    notes = list(opts.notes)
    started = utc_now()
    with labelled or open_source(opts.source) as src:
        source_desc = src.describe()
        m = measure(rt, src, pre, post, frames=frames, warmup=opts.warmup)
    if m.ended_early:
        notes.append(
            f"source ended after {m.warmup_frames + m.frames} frames; {m.frames} measured of {frames} asked"
        )
    if m.frames == 0:
        raise UserError(
            f"no frames measured: the source {opts.source} ended during warmup "
            f"({m.warmup_frames} frames); lower --warmup or use a longer source",
            exit_code=4,
        )
    config = {k: v for k, v in asdict(opts).items() if k not in ("notes", "device_id", "run_id")}
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
    if known is not None:
        result["model"]["registry"] = registry.describe(known)
    if scorer is not None:
        result["accuracy"] = scorer.score(m.predictions, opts.accuracy_floor)
    return RunOutcome(result=result, measurement=m)
