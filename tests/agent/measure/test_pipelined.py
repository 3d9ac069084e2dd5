"""--pipelined on a pulled source (a file, synthetic): the producer keeps one frame ready
ahead of the interpreter, so a frame waits at most about one inference, as a camera's
newest frame would; a warning says when waiting dominates e2e (issue 16, item 3). A fake
runtime whose invoke takes a known 20 ms makes the waits predictable."""

from __future__ import annotations

import time

import numpy as np

from edgebench.agent.measure.loop import LoopOptions, measure
from edgebench.agent.sources.base import SyntheticSource

INVOKE_S = 0.020


class _SlowInterpreter:
    def invoke(self) -> None:
        time.sleep(INVOKE_S)


class SlowRuntime:
    """What the loop uses of a Runtime, with an invoke that takes 20 ms."""

    name = "fake"
    model_path = "fake.tflite"
    outputs: list = []

    def __init__(self):
        self.interpreter = _SlowInterpreter()

    def set_input(self, x) -> None:
        pass

    def output_view(self):
        return np.zeros(4)

    def output(self, i: int = 0):
        return np.zeros(4)


def _run(pipelined: bool):
    src = SyntheticSource(64, 64)
    opts = LoopOptions(frames=25, warmup=3, pipelined=pipelined)
    return measure(SlowRuntime(), src, lambda img: img, None, opts)


def test_pipelined_file_frames_wait_at_most_about_one_inference():
    m = _run(True)
    lat = {s: m.stats[s].summary_ms() for s in m.stages}
    inf = lat["inference"]["p50"]
    assert inf >= INVOKE_S * 1000 * 0.9
    # one frame ahead: it waits for the frame being inferred, never for a queue of them
    assert lat["queue"]["p50"] <= 1.25 * inf, lat
    assert lat["e2e"]["p50"] <= 2.4 * inf, lat
    # and the pipeline still overlaps: about one frame per inference
    assert m.fps > 0.8 * 1000 / inf


def test_queueing_that_dominates_e2e_is_warned_with_what_it_bought():
    from edgebench.agent.measure.run import queue_warnings

    m = _run(True)
    warnings = queue_warnings(m)
    assert len(warnings) == 1, warnings
    w = warnings[0]
    assert "in the queue" in w and "--pipelined" in w and "% FPS over one frame at a time" in w
    # one frame at a time has no queue to warn about
    assert queue_warnings(_run(False)) == []
