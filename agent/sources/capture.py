"""Sources OpenCV or GStreamer decode: video files, V4L2 cameras and network streams
through ``cv2.VideoCapture`` (``CaptureSource``), and GStreamer pipelines run by
``gst-launch-1.0`` writing raw frames to a pipe (``GstSource``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from typing import Any

import numpy as np

from edgebench.agent.errors import SourceError
from edgebench.agent.sources.base import Frame, Source


class CaptureSource(Source):
    """Anything OpenCV's VideoCapture opens: a video file, a camera, a network stream."""

    kind = "video"

    def __init__(self, target: Any, kind: str, uri: str, api: int | None = None, params: list[int] | None = None):
        import cv2

        self.kind, self.uri, self._target, self._api, self._params = kind, uri, target, api, params or []
        self.cap = self._open()
        if not self.cap.isOpened():
            raise SourceError(self._open_error())
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or None
        if self.fps is not None and not (0 < self.fps < 1000):
            self.fps = None  # some backends report 0 or nonsense for live streams
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self.width = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._i = 0

    def _open(self):
        import cv2

        if self._api is None:
            return cv2.VideoCapture(self._target)
        return cv2.VideoCapture(self._target, self._api, self._params)

    def _open_error(self) -> str:
        if self.kind == "camera":
            return f"cannot open camera {self.uri}: it exists but V4L2 refused it (busy, or no permission: add the user to the 'video' group)"
        if self.kind == "stream":
            return f"cannot open stream {self.uri}: no answer or no video there (check the address and that the stream is up)"
        return f"cannot open video {self.uri}: OpenCV has no decoder for it or it is corrupt"

    def reopen(self) -> bool:
        self.cap.release()
        self.cap = self._open()
        return self.cap.isOpened()

    def read(self) -> Frame | None:
        ok, img = self.cap.read()
        if not ok or img is None:
            return None
        self._i += 1
        return Frame(
            img, f"{os.path.basename(self.uri)}#{self._i - 1}" if self.kind == "video" else f"{self.kind}#{self._i - 1}"
        )

    def describe(self) -> dict[str, Any]:
        d = {"kind": self.kind, "uri": self.uri, "width": self.width, "height": self.height, "nominal_fps": self.fps}
        if self.kind == "video":
            d["frames_in_file"] = self.frame_count
        return d

    def close(self) -> None:
        self.cap.release()


def gst_frame_size(pipeline: str, default: tuple[int, int] = (640, 480)) -> tuple[int, int]:
    """Width and height from the last caps in a pipeline that states them."""
    w = re.findall(r"width=(?:\(int\))?(\d+)", pipeline)
    h = re.findall(r"height=(?:\(int\))?(\d+)", pipeline)
    return (int(w[-1]), int(h[-1])) if w and h else default


#: GStreamer sources that make frames as fast as they are read unless told ``is-live=true``
NON_LIVE_GST = ("videotestsrc", "filesrc", "multifilesrc")


def gst_not_live(pipeline: str) -> str | None:
    """Why a pipeline is not live (its source produces frames as fast as they are pulled,
    so the newest-frame rule would drop nearly all of them), or None for a live one."""
    first = pipeline.split("!", 1)[0].split()
    if not first or first[0] not in NON_LIVE_GST:
        return None
    if any(p.replace(" ", "").lower() in ("is-live=true", "is-live=1") for p in first[1:]):
        return None
    return (
        f"{first[0]} without is-live=true is not live: it makes frames as fast as they are read, so it is "
        "read as a file, every frame measured (add is-live=true to pace it as a camera)"
    )


class GstSource(Source):
    """A GStreamer pipeline run by gst-launch-1.0, raw BGR frames read from its stdout.

    The pip OpenCV wheels have no GStreamer support, so the pipeline runs in its own
    process (as on a board's camera stack: libcamerasrc, nvarguscamerasrc, v4l2src)
    and edgebench appends ``videoconvert ! videoscale ! BGR caps ! fdsink``.
    """

    kind = "gstreamer"

    def __init__(self, pipeline: str, not_live: str | None = None):
        #: why this pipeline is read as a file (gst_not_live), or None for a live one
        self.not_live = not_live
        exe = shutil.which("gst-launch-1.0")
        if exe is None:
            raise SourceError(
                "gst-launch-1.0 not found: install GStreamer (apt-get install gstreamer1.0-tools "
                "gstreamer1.0-plugins-base, plus your camera's plugin) to use a gst: source"
            )
        self.pipeline = pipeline
        self.width, self.height = gst_frame_size(pipeline)
        full = (
            f"{pipeline} ! videoconvert ! videoscale ! "
            f"video/x-raw,format=BGR,width={self.width},height={self.height} ! fdsink fd=1"
        )
        try:
            args = shlex.split(full)
        except ValueError as e:
            raise SourceError(f"bad GStreamer pipeline {pipeline!r}: {e}") from None
        self._size = self.width * self.height * 3
        self.proc = subprocess.Popen([exe, "-q", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._i = 0

    def _failure(self) -> str:
        self.proc.wait(timeout=5)
        err = (self.proc.stderr.read() or b"").decode(errors="replace").strip().splitlines()
        reason = next((ln for ln in err if ln.strip()), f"exit status {self.proc.returncode}")
        return f"GStreamer pipeline failed: {reason}"

    def read(self) -> Frame | None:
        buf = bytearray()
        while len(buf) < self._size:
            chunk = self.proc.stdout.read(self._size - len(buf))
            if not chunk:
                if self.proc.wait(timeout=5) != 0 and self._i == 0:
                    raise SourceError(self._failure())
                return None  # end of stream
            buf += chunk
        self._i += 1
        img = np.frombuffer(bytes(buf), np.uint8).reshape(self.height, self.width, 3)
        return Frame(img, f"gstreamer#{self._i - 1}")

    def describe(self) -> dict[str, Any]:
        d = {"kind": self.kind, "uri": self.pipeline, "width": self.width, "height": self.height}
        if self.not_live:
            d.update(live=False, not_live=self.not_live)
        return d

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
