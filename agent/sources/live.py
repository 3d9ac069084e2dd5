"""Live delivery: ``LiveSource`` reads another source from a thread at its own pace (a
camera's, a stream's, or a paced file's) and keeps only the newest frame, counting the
frames it drops while inference is slower; it detects stalls and reopens dropped
network streams.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from edgebench.agent.errors import SourceError, UserError
from edgebench.agent.options.table import default
from edgebench.agent.sources.base import Frame, Source, clock
from edgebench.agent.sources.capture import GstSource


# ----------------------------------------------------------------------------- live
class LiveSource(Source):
    """Reads ``inner`` in a thread, keeps only the newest frame, counts drops.

    With ``fps`` the inner (pulled) source is paced to that rate, as a camera
    would deliver it. ``reconnect`` reopens a dropped network stream.
    """

    live = True

    def __init__(
        self,
        inner: Source,
        *,
        fps: float | None = None,
        stall_timeout_s: float = default("run", "stall_timeout_s"),
        reconnects: int = 0,
    ):
        self.inner = inner
        self.kind = inner.kind
        self.fps = fps
        self.stall_timeout_s = stall_timeout_s
        self.max_reconnects = reconnects
        self.reconnects = 0
        self.captured = 0
        self.delivered = 0
        self.dropped = 0
        self._slot: Frame | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"edgebench-{self.kind}-reader", daemon=True)
        self._thread.start()

    def _next_inner(self) -> Frame | None:
        fr = self.inner.read()
        while fr is None and self.reconnects < self.max_reconnects and not self._stop.is_set():
            self.reconnects += 1
            time.sleep(min(2.0, 0.25 * 2**self.reconnects))
            reopen = getattr(self.inner, "reopen", None)
            if reopen is None or not reopen():
                continue
            fr = self.inner.read()
        return fr

    def _run(self) -> None:
        period = int(1e9 / self.fps) if self.fps else 0
        t_next = clock()
        try:
            while not self._stop.is_set():
                fr = self._next_inner()
                if fr is None:
                    break
                if period:
                    now = clock()
                    if t_next > now:
                        time.sleep((t_next - now) / 1e9)
                        t_next += period
                    else:  # decoding is slower than the pace: no catch-up burst
                        t_next = now + period
                fr.t_origin_ns = clock()
                with self._cv:
                    self.captured += 1
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = fr
                    self._cv.notify()
        except BaseException as e:  # surfaced to the consumer by read()
            with self._cv:
                self._error = e
                self._cv.notify()
            return
        with self._cv:
            self._ended = True
            self._cv.notify()

    def read(self) -> Frame | None:
        deadline = time.monotonic() + self.stall_timeout_s
        with self._cv:
            while self._slot is None:
                if self._error is not None:
                    err = self._error
                    raise err if isinstance(err, UserError) else SourceError(f"{self.kind} source failed: {err}")
                if self._ended:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SourceError(
                        f"{self.kind} source {self.describe().get('uri')} stalled: no frame for "
                        f"{self.stall_timeout_s:g} s (raise stall_timeout_s if it is just slow)"
                    )
                self._cv.wait(left)
            fr, self._slot = self._slot, None
            self.delivered += 1
            return fr

    def describe(self) -> dict[str, Any]:
        d = dict(self.inner.describe())
        d["live"] = True
        if self.fps:
            d["paced_fps"] = self.fps
        return d

    def counters(self) -> dict[str, Any]:
        with self._cv:
            return {
                **self.inner.counters(),
                "frames_captured": self.captured,
                "frames_delivered": self.delivered,
                "frames_dropped": self.dropped,
                "reconnects": self.reconnects,
            }

    def close(self) -> None:
        self._stop.set()
        if isinstance(self.inner, GstSource):
            self.inner.close()  # unblocks the reader
        self._thread.join(timeout=2.0)
        if not self._thread.is_alive():
            self.inner.close()
