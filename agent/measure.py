"""The measurement loop: capture -> preprocess -> invoke -> postprocess, per frame.

Each stage is timed with the monotonic nanosecond clock (``perf_counter_ns``):

* capture: ``source.read()``
* preprocess: resize, color order, normalization/quantization and ``set_tensor``
* inference: ``interpreter.invoke()`` only (comparable to TFLite benchmark_model)
* postprocess: ``get_tensor`` and decoding (top-k)
* e2e: from capture start to postprocess end

Warmup frames go through the same pipeline and are excluded from the samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import ModelError
from .protocol import STAGES
from .runtime import Runtime, _first_line
from .sources import Source

MAX_PREDICTIONS = 10_000

#: A frame sink receives measured frames while the run goes on: the index of the
#: first frame in the batch and the per-stage samples in nanoseconds (int64
#: arrays, one per stage in STAGES order). It must be cheap (hand off, not send).
FrameSink = Callable[[int, dict[str, np.ndarray]], None]


@dataclass
class Measurement:
    samples_ns: dict[str, np.ndarray]
    warmup_frames: int
    first_inference_ms: float | None
    duration_s: float
    ended_early: bool = False
    predictions: list[dict[str, Any]] = field(default_factory=list)
    predictions_truncated: bool = False
    #: the measured window on the perf_counter_ns clock: first measured frame's
    #: capture start to the last one's postprocess end (what power is integrated over)
    start_ns: int = 0
    end_ns: int = 0

    @property
    def frames(self) -> int:
        return int(self.samples_ns["e2e"].size)

    @property
    def fps(self) -> float | None:
        return self.frames / self.duration_s if self.duration_s > 0 and self.frames else None


def measure(
    rt: Runtime,
    source: Source,
    preprocess: Callable[[np.ndarray], np.ndarray],
    postprocess: Callable[[np.ndarray], Any] | None,
    frames: int,
    warmup: int = 5,
    sink: FrameSink | None = None,
    sink_every: int = 500,
    sink_interval_s: float = 1.0,
) -> Measurement:
    """Run ``warmup + frames`` frames and time every stage of the measured ones.

    With a ``sink``, measured frames are also handed over in batches of at most
    ``sink_every`` frames or every ``sink_interval_s`` seconds, whichever comes
    first, and the remainder at the end.
    """
    clock = time.perf_counter_ns
    total = warmup + frames
    cols = np.zeros((5, frames), dtype=np.int64)  # t0..t4 deltas per measured frame
    preds: dict[str, dict[str, Any]] = {}
    truncated = False
    first_inference_ns = None
    start_ns = end_ns = 0
    n = warm = 0
    ended = False
    set_input, invoke, output = rt.set_input, rt.interpreter.invoke, rt.output
    sent = 0
    sink_ns = int(sink_interval_s * 1e9)
    last_sink = clock()

    def hand_over(upto: int) -> None:
        sink(sent, {stage: cols[j, sent:upto].copy() for j, stage in enumerate(STAGES)})

    for i in range(total):
        t0 = clock()
        fr = source.read()
        t1 = clock()
        if fr is None:
            ended = True
            break
        set_input(preprocess(fr.image))
        t2 = clock()
        try:
            invoke()
        except Exception as e:
            raise ModelError(f"{rt.name} failed to run {rt.model_path} (invoke): {_first_line(e)}") from None
        t3 = clock()
        raw = output()
        pred = postprocess(raw) if postprocess is not None else None
        t4 = clock()
        if first_inference_ns is None:
            first_inference_ns = t3 - t2
        if i < warmup:
            warm += 1
            continue
        if n == 0:
            start_ns = t0
        end_ns = t4
        c = cols[:, n]
        c[0] = t1 - t0
        c[1] = t2 - t1
        c[2] = t3 - t2
        c[3] = t4 - t3
        c[4] = t4 - t0
        n += 1
        if sink is not None and (n - sent >= sink_every or t4 - last_sink >= sink_ns):
            hand_over(n)
            sent = n
            last_sink = t4
        if pred is not None:
            if fr.name in preds or len(preds) < MAX_PREDICTIONS:
                preds[fr.name] = {"source_name": fr.name, "top_k": pred}
            else:
                truncated = True
    if sink is not None and n > sent:
        hand_over(n)
    samples = {stage: cols[j, :n].copy() for j, stage in enumerate(STAGES)}
    return Measurement(
        samples_ns=samples,
        warmup_frames=warm,
        first_inference_ms=None if first_inference_ns is None else first_inference_ns / 1e6,
        duration_s=(end_ns - start_ns) / 1e9 if n else 0.0,
        ended_early=ended,
        predictions=list(preds.values()),
        predictions_truncated=truncated,
        start_ns=start_ns,
        end_ns=end_ns,
    )
