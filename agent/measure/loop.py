"""The measurement loop: capture -> preprocess -> invoke -> postprocess, per frame.

Each stage is timed with the monotonic nanosecond clock (``perf_counter_ns``):

* capture: ``source.read()`` (for live sources: the wait for a frame)
* preprocess: resize, color order, normalization/quantization and ``set_tensor``
* queue: how long a ready frame waited (live sources: since it arrived;
  pipelined: between preprocessing and invoke); only where frames can wait
* inference: ``interpreter.invoke()`` only (comparable to TFLite benchmark_model)
* postprocess: ``get_tensor`` and decoding (top-k)
* e2e: from the frame's origin (capture start; a live frame's arrival) to postprocess end

Two modes: sequential (one frame at a time) and pipelined (capture and
preprocess in their own thread, overlapping inference). Warmup frames (by
count and by time) go through the same pipeline and are excluded.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from edgebench.agent.errors import ModelError
from edgebench.agent.runtime.interpreter import Runtime, _first_line
from edgebench.agent.runtime.memory import rss_mb
from edgebench.agent.sources.base import Source
from edgebench.agent.wire.stats import StreamingStats

MAX_PREDICTIONS = 10_000
#: All recorded columns, in order; "queue" is reported only where frames wait.
COLUMNS = ("capture", "preprocess", "queue", "inference", "postprocess", "e2e")

#: A frame sink receives measured frames while the run goes on: the index of the
#: first frame in the batch and the per-stage samples in nanoseconds (int64
#: arrays keyed by stage; "queue" only where frames wait). It must be cheap
#: (hand off, not send).
FrameSink = Callable[[int, dict[str, np.ndarray]], None]


@dataclass
class Progress:
    phase: str  # "warmup" or "measure"
    frames: int
    elapsed_s: float
    fps: float | None
    p50_inference_ms: float | None


@dataclass
class LoopOptions:
    frames: int | None = 100
    duration_s: float | None = None
    warmup: int = 5
    warmup_s: float = 0.0
    pipelined: bool = False
    sink: FrameSink | None = None
    sink_every: int = 500
    sink_interval_s: float = 1.0
    progress: Callable[[Progress], None] | None = None
    progress_interval_s: float = 0.5
    exact_cap: int = 200_000
    #: key under which each frame's decoded output is kept ("top_k", "detections")
    prediction_key: str = "top_k"
    #: turns a kept per-frame decode into its reported form, after the run
    format_prediction: Callable[[Any], Any] | None = None
    #: keep every frame's stage samples and end time (``--csv``/``--plot`` of a run): one list
    #: append of a flushed batch's arrays, never a per-frame cost beyond the end-time append
    keep_samples: bool = False


@dataclass
class Measurement:
    stats: dict[str, StreamingStats]
    warmup_frames: int
    warmup_s: float
    first_inference_ms: float | None
    duration_s: float
    mode: str
    queued: bool
    ended_early: bool = False
    predictions: list[dict[str, Any]] = field(default_factory=list)
    predictions_truncated: bool = False
    last_outputs: list[np.ndarray] | None = None
    #: the measured window on the perf_counter_ns clock (what power is integrated over)
    start_ns: int = 0
    end_ns: int = 0
    #: with ``keep_samples``: every measured frame's stage samples (int64 ns, keyed by stage,
    #: "queue" only where frames wait) and ``end`` (its postprocess end, perf_counter_ns), in order
    kept: dict[str, np.ndarray] | None = None
    #: resident memory (MB) right after the first inference (edgebench.agent.runtime.memory)
    rss_after_first_inference_mb: float | None = None

    @property
    def frames(self) -> int:
        return self.stats["e2e"].n

    @property
    def fps(self) -> float | None:
        return self.frames / self.duration_s if self.duration_s > 0 and self.frames else None

    @property
    def stages(self) -> tuple[str, ...]:
        """Stages this run reports (queue only where frames waited)."""
        return tuple(c for c in COLUMNS if c != "queue" or self.queued)

    @property
    def samples_ns(self) -> dict[str, np.ndarray]:
        """Every sample per stage (exact runs only; long runs keep buckets)."""
        return {s: self.stats[s].samples_ns() for s in self.stages}


class _Recorder:
    """Per-frame stage samples: cheap list appends in the loop, numpy per batch."""

    def __init__(self, opts: LoopOptions, queued: bool):
        self.opts = opts
        self.queued = queued
        self.cols: list[list[int]] = [[] for _ in COLUMNS]
        self.ends: list[int] = []
        self.kept: list[dict[str, np.ndarray]] | None = [] if opts.keep_samples else None
        self.stats = {c: StreamingStats(opts.exact_cap) for c in COLUMNS}
        self.n = 0
        self.flushed = 0
        self.last_flush = time.perf_counter_ns()
        self.recent_inference: np.ndarray | None = None

    def add(self, cap: int, pre: int, q: int, inf: int, post: int, e2e: int, now: int) -> None:
        c = self.cols
        c[0].append(cap)
        c[1].append(pre)
        c[2].append(q)
        c[3].append(inf)
        c[4].append(post)
        c[5].append(e2e)
        if self.kept is not None:  # --csv/--plot only: a frame's end time costs nothing otherwise
            self.ends.append(now)
        self.n += 1
        if self.n - self.flushed >= self.opts.sink_every or now - self.last_flush >= self.opts.sink_interval_s * 1e9:
            self.flush(now)

    def flush(self, now: int) -> None:
        if self.n == self.flushed:
            return
        arrays = {name: np.asarray(col, dtype=np.int64) for name, col in zip(COLUMNS, self.cols)}
        for name, arr in arrays.items():
            self.stats[name].add(arr)
        self.recent_inference = arrays["inference"]
        if self.opts.sink is not None:
            out = {k: v for k, v in arrays.items() if k != "queue" or self.queued}
            self.opts.sink(self.flushed, out)
        if self.kept is not None:
            self.kept.append({**arrays, "end": np.asarray(self.ends, dtype=np.int64)})
        self.cols = [[] for _ in COLUMNS]
        self.ends = []
        self.flushed = self.n
        self.last_flush = now


def measure(
    rt: Runtime,
    source: Source,
    preprocess: Callable[[Any], Any],
    postprocess: Callable[[np.ndarray], Any] | None,
    opts: LoopOptions | None = None,
    feed: Callable[[Any], None] | None = None,
) -> Measurement:
    """Run warmup then measured frames and time every stage of the measured ones.

    ``feed(x)`` sets the model's inputs from the preprocessed frame (default:
    the first input). The run ends after ``opts.frames`` frames or
    ``opts.duration_s`` seconds, whichever comes first, or when the source ends.
    """
    opts = opts or LoopOptions()
    if opts.frames is None and opts.duration_s is None:
        raise ValueError("give frames or duration_s")
    queued = opts.pipelined or source.live
    rec = _Recorder(opts, queued)
    feed = feed or rt.set_input
    return (_pipelined if opts.pipelined else _sequential)(rt, source, preprocess, postprocess, opts, feed, rec)


class _Run:
    """Bookkeeping shared by both loops: warmup, stop condition, predictions, progress."""

    def __init__(self, opts: LoopOptions, rec: _Recorder):
        self.opts = opts
        self.rec = rec
        self.clock = time.perf_counter_ns
        self.t_begin = self.clock()
        self.warm = 0
        self.warming = opts.warmup > 0 or opts.warmup_s > 0
        self.warm_end = 0
        self.start = self.end = 0
        self.first_inference_ns: int | None = None
        self.rss_first_mb: float | None = None
        self.preds: dict[str, dict[str, Any]] = {}
        self.truncated = False
        self.last_progress = self.t_begin
        self.dur_ns = int(opts.duration_s * 1e9) if opts.duration_s else None

    def done(self) -> bool:
        if self.warming:
            return False
        r = self.rec
        if self.opts.frames is not None and r.n >= self.opts.frames:
            return True
        return self.dur_ns is not None and r.n > 0 and self.end - self.start >= self.dur_ns

    def record(
        self, name: str, origin: int, t0: int, cap: int, pre: int, q: int, t_inv: int, t_inv_end: int, t_end: int, pred
    ) -> None:
        if self.first_inference_ns is None:
            self.first_inference_ns = t_inv_end - t_inv
            self.rss_first_mb = rss_mb()  # once, between frames: in no stage
        if self.warming:
            self.warm += 1
            if self.warm >= self.opts.warmup and t_end - self.t_begin >= self.opts.warmup_s * 1e9:
                self.warming = False
                self.warm_end = t_end
            self._progress(t_end, "warmup")
            return
        if self.rec.n == 0:
            # measured time starts when the loop asked for its first measured frame
            # (for a live source that includes waiting for it, so N frames span N periods)
            self.start = min(origin, t0)
        self.end = t_end
        self.rec.add(cap, pre, q, t_inv_end - t_inv, t_end - t_inv_end, t_end - origin, t_end)
        if pred is not None:
            if name in self.preds or len(self.preds) < MAX_PREDICTIONS:
                self.preds[name] = {"source_name": name, self.opts.prediction_key: pred}
            else:
                self.truncated = True
        self._progress(t_end, "measure")

    def _progress(self, now: int, phase: str) -> None:
        cb = self.opts.progress
        if cb is None or now - self.last_progress < self.opts.progress_interval_s * 1e9:
            return
        self.last_progress = now
        r = self.rec
        if phase == "warmup":
            cb(Progress("warmup", self.warm, (now - self.t_begin) / 1e9, None, None))
            return
        el = (now - self.start) / 1e9
        recent = (
            r.cols[3][-200:] if r.cols[3] else (r.recent_inference[-200:] if r.recent_inference is not None else [])
        )
        p50 = float(np.median(recent)) / 1e6 if len(recent) else None
        cb(Progress("measure", r.n, el, r.n / el if el > 0 else None, p50))

    def _formatted(self) -> list[dict[str, Any]]:
        fmt, key = self.opts.format_prediction, self.opts.prediction_key
        if fmt is None:
            return list(self.preds.values())
        return [{"source_name": p["source_name"], key: fmt(p[key])} for p in self.preds.values()]

    def result(self, rec: _Recorder, mode: str, ended: bool, queued: bool) -> Measurement:
        rec.flush(self.clock())
        kept = None
        if rec.kept is not None:
            keys = [c for c in COLUMNS if c != "queue" or queued] + ["end"]
            kept = {k: np.concatenate([b[k] for b in rec.kept]) if rec.kept else np.zeros(0, np.int64) for k in keys}
        return Measurement(
            stats=rec.stats,
            warmup_frames=self.warm,
            warmup_s=((self.warm_end or self.clock()) - self.t_begin) / 1e9 if self.warm else 0.0,
            first_inference_ms=None if self.first_inference_ns is None else self.first_inference_ns / 1e6,
            rss_after_first_inference_mb=self.rss_first_mb,
            duration_s=(self.end - self.start) / 1e9 if rec.n else 0.0,
            mode=mode,
            queued=queued,
            ended_early=ended,
            predictions=self._formatted(),
            predictions_truncated=self.truncated,
            last_outputs=None,
            start_ns=self.start,
            end_ns=self.end,
            kept=kept,
        )


def _invoke_error(rt: Runtime, e: BaseException) -> ModelError:
    return ModelError(f"{rt.name} failed to run {rt.model_path} (invoke): {_first_line(e)}")


def _sequential(rt, source, preprocess, postprocess, opts, feed, rec) -> Measurement:
    run = _Run(opts, rec)
    clock = run.clock
    invoke, output = rt.interpreter.invoke, rt.output_view
    live = source.live
    ended = False
    while not run.done():
        t0 = clock()
        fr = source.read()
        t1 = clock()
        if fr is None:
            ended = True
            break
        feed(preprocess(fr.image))
        t2 = clock()
        try:
            invoke()
        except Exception as e:
            raise _invoke_error(rt, e) from None
        t3 = clock()
        raw = output()
        pred = postprocess(raw) if postprocess is not None else None
        raw = None  # a view into the interpreter: it must be gone before the next invoke
        t4 = clock()
        if live:
            origin = fr.t_origin_ns
            q = max(0, t1 - origin)
            run.record(fr.name, origin, t0, t1 - t0, t2 - t1, q, t2, t3, t4, pred)
        else:
            run.record(fr.name, t0, t0, t1 - t0, t2 - t1, 0, t2, t3, t4, pred)
    m = run.result(rec, "sequential", ended, live)
    m.last_outputs = _snapshot_outputs(rt)
    return m


_END = object()


def _pipelined(rt, source, preprocess, postprocess, opts, feed, rec) -> Measurement:
    """Capture+preprocess in a producer thread; invoke+postprocess here.

    The producer keeps at most ONE frame ready ahead of the interpreter (it starts the
    next frame when the interpreter takes the ready one): a deeper queue would fill from
    a file or synthetic source at once and every frame would wait for the frames ahead
    of it, so ``queue`` and ``e2e`` would measure the queue's depth, not what a camera's
    newest frame waits. ``queue_warnings`` (run.py) says when waiting still dominates."""
    run = _Run(opts, rec)
    clock = run.clock
    q: queue.Queue = queue.Queue(maxsize=1)
    ahead = threading.Semaphore(1)  # a token per frame the producer may have ready
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                if not ahead.acquire(timeout=0.1):
                    continue
                t0 = clock()
                fr = source.read()
                t1 = clock()
                if fr is None:
                    q.put(_END)
                    return
                x = preprocess(fr.image)
                t2 = clock()
                while not stop.is_set():
                    try:
                        q.put((fr, x, t0, t1, t2), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:
            q.put(e)

    producer = threading.Thread(target=produce, name="edgebench-producer", daemon=True)
    producer.start()
    invoke, output = rt.interpreter.invoke, rt.output_view
    ended = False
    try:
        while not run.done():
            item = q.get()
            t3 = clock()
            ahead.release()  # the producer may start the next frame now
            if item is _END:
                ended = True
                break
            if isinstance(item, BaseException):
                raise item
            fr, x, t0, t1, t2 = item
            feed(x)
            t3b = clock()
            try:
                invoke()
            except Exception as e:
                raise _invoke_error(rt, e) from None
            t4 = clock()
            raw = output()
            pred = postprocess(raw) if postprocess is not None else None
            raw = None  # a view into the interpreter: it must be gone before the next invoke
            t5 = clock()
            origin = fr.t_origin_ns if fr.t_origin_ns is not None else t0
            run.record(fr.name, origin, t0, t1 - t0, (t2 - t1) + (t3b - t3), t3 - t2, t3b, t4, t5, pred)
    finally:
        stop.set()
        try:  # unblock a producer waiting to put
            while True:
                q.get_nowait()
        except queue.Empty:
            pass
        producer.join(timeout=5)
    m = run.result(rec, "pipelined", ended, True)
    m.last_outputs = _snapshot_outputs(rt)
    return m


def _snapshot_outputs(rt: Runtime) -> list[np.ndarray] | None:
    try:
        return [np.array(rt.output(i)) for i in range(len(rt.outputs))]
    except Exception:
        return None
