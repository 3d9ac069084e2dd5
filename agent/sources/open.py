"""Frame sources. Each yields BGR uint8 frames (as OpenCV does) with a name.

``open_source(spec)`` understands:

* ``synthetic`` or ``synthetic:WxH``: a fixed pool of seeded random frames (by
  default at the model's input size), so capture costs nothing and runs repeat;
* an image file (decoded once: a still camera), a folder of images (read and
  decoded frame by frame, cycling), a video file (decoded until it ends);
* a camera: ``camera:0``, ``camera:/dev/video2`` or ``/dev/video0`` (V4L2);
* a GStreamer pipeline: ``gst:libcamerasrc ! video/x-raw,width=640,height=480``
  (or any string containing `` ! ``), e.g. nvarguscamerasrc on Jetson;
* a network stream: ``rtsp://...``, ``http://...`` (MJPEG or anything FFmpeg reads).

Pacing: pulled sources (files, synthetic) run as fast as possible by default;
with ``fps`` (or ``pacing="realtime"`` at a video's own rate) they are played
as a camera would deliver them. Live sources (cameras, streams, GStreamer, and
paced files) are read by a thread that keeps only the newest frame: when
inference is slower, older frames are dropped and counted. A live source that
stops delivering for ``stall_timeout_s`` raises a SourceError; a network stream
that drops is reopened up to ``reconnects`` times; a source that ends stops
the run cleanly (``read()`` returns None).
"""

from __future__ import annotations

import abc
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench.agent.errors import SourceError, UserError
from edgebench.agent.options.table import default

# FFmpeg (inside OpenCV) logs stream hiccups straight to stderr; the agent reports
# what matters itself (ends, stalls, reconnects), in one line. `-v` users can
# set OPENCV_FFMPEG_LOGLEVEL themselves to see FFmpeg's view.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
clock = time.perf_counter_ns


@dataclass
class Frame:
    image: np.ndarray
    name: str
    #: perf_counter_ns when a live source received the frame (None for pulled sources)
    t_origin_ns: int | None = None


class Source(abc.ABC):
    kind = "source"
    #: frames arrive on their own schedule (read by a thread, newest kept)
    live = False

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release what the source holds (files, devices, threads)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------------- pulled
class SyntheticSource(Source):
    kind = "synthetic"

    def __init__(self, width: int = 640, height: int = 480, pool: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        self._pool = [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(pool)]
        self._i = 0

    def read(self) -> Frame:
        k = self._i % len(self._pool)
        self._i += 1
        return Frame(self._pool[k], f"synthetic-{k}")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": "synthetic", "width": self.width, "height": self.height}


def _imread(path: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"cannot decode image {path}: not an image format OpenCV reads")
    return img


class ImageSource(Source):
    kind = "image"

    def __init__(self, path: str):
        self.path = path
        self.image = _imread(path)
        self.name = os.path.basename(path)

    def read(self) -> Frame:
        return Frame(self.image, self.name)

    def describe(self) -> dict[str, Any]:
        h, w = self.image.shape[:2]
        return {"kind": self.kind, "uri": self.path, "width": w, "height": h}


class FolderSource(Source):
    kind = "folder"

    def __init__(self, path: str):
        self.path = path
        self.files = sorted(
            os.path.join(root, f)
            for root, _dirs, files in os.walk(path)
            for f in files
            if f.lower().endswith(IMAGE_EXTS)
        )
        if not self.files:
            raise SourceError(f"no images in folder {path} (looked for {', '.join(IMAGE_EXTS)})")
        self._i = 0

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> Frame:
        path = self.files[self._i % len(self.files)]
        self._i += 1
        return Frame(_imread(path), os.path.relpath(path, self.path))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": self.path, "images": len(self.files)}


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


class GstSource(Source):
    """A GStreamer pipeline run by gst-launch-1.0, raw BGR frames read from its stdout.

    The pip OpenCV wheels have no GStreamer support, so the pipeline runs in its own
    process (as on a board's camera stack: libcamerasrc, nvarguscamerasrc, v4l2src)
    and edgebench appends ``videoconvert ! videoscale ! BGR caps ! fdsink``.
    """

    kind = "gstreamer"

    def __init__(self, pipeline: str):
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
        return {"kind": self.kind, "uri": self.pipeline, "width": self.width, "height": self.height}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


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

    def counters(self) -> dict[str, int]:
        with self._cv:
            return {
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


# ----------------------------------------------------------------------------- open
def _camera_target(spec: str) -> tuple[Any, str] | None:
    if spec.startswith("camera:"):
        rest = spec.split(":", 1)[1]
        return (int(rest), f"/dev/video{int(rest)}") if rest.isdigit() else (rest, rest)
    if re.fullmatch(r"/dev/video\d+", spec):
        return spec, spec
    return None


def open_source(  # noqa: C901
    spec: str,
    *,
    default_size: tuple[int, int] | None = None,
    pacing: str = "fast",
    fps: float | None = None,
    stall_timeout_s: float = default("run", "stall_timeout_s"),
    reconnects: int = default("run", "reconnects"),
) -> Source:
    """Open a source from its command-line spelling; SourceError if we cannot.

    ``default_size`` (width, height) sizes a bare ``synthetic`` source.
    """
    import cv2

    if pacing not in ("fast", "realtime"):
        raise UserError(f"pacing {pacing!r} must be fast or realtime")
    realtime = pacing == "realtime" or fps is not None

    if spec == "synthetic" or spec.startswith("synthetic:"):
        if spec == "synthetic":
            w, h = default_size or (640, 480)
        else:
            try:
                w, h = (int(v) for v in spec.split(":", 1)[1].lower().split("x"))
                if w <= 0 or h <= 0:
                    raise ValueError
            except ValueError:
                raise SourceError(f"bad synthetic source {spec!r}: write synthetic or synthetic:WIDTHxHEIGHT") from None
        src: Source = SyntheticSource(w, h)
        if realtime:
            return LiveSource(src, fps=fps or 30.0, stall_timeout_s=stall_timeout_s)
        return src

    if spec.lower().startswith(STREAM_SCHEMES):
        ms = int(stall_timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2 * ms]
        inner = CaptureSource(spec, "stream", spec, cv2.CAP_FFMPEG, params)
        return LiveSource(inner, stall_timeout_s=stall_timeout_s, reconnects=reconnects)

    cam = _camera_target(spec)
    if cam is not None:
        target, dev = cam
        if not os.path.exists(dev):
            raise SourceError(
                f"camera {dev} not found (is it connected and its driver loaded? `edgebench info` lists cameras)"
            )
        inner = CaptureSource(target, "camera", dev, cv2.CAP_V4L2)
        return LiveSource(inner, stall_timeout_s=stall_timeout_s)

    if spec.startswith("gst:") or " ! " in spec:
        inner = GstSource(spec[4:] if spec.startswith("gst:") else spec)
        return LiveSource(inner, stall_timeout_s=stall_timeout_s)

    if not os.path.exists(spec):
        raise SourceError(
            f"source not found: {spec} (give synthetic, an image, a folder, a video, camera:N, "
            "gst:PIPELINE or an rtsp:// / http:// stream)"
        )
    if os.path.isdir(spec):
        src = FolderSource(spec)
    elif spec.lower().endswith(IMAGE_EXTS):
        src = ImageSource(spec)
    else:
        src = CaptureSource(spec, "video", spec)
    if realtime:
        rate = fps or getattr(src, "fps", None)
        if not rate:
            raise UserError(f"real-time pacing of {spec} needs --fps N (it has no frame rate of its own)")
        return LiveSource(src, fps=rate, stall_timeout_s=stall_timeout_s)
    return src


def list_cameras(root: str = "/") -> list[dict[str, str]]:
    """V4L2 capture devices, for `edgebench info`."""
    base = os.path.join(root, "sys/class/video4linux")
    out = []
    try:
        names = sorted(os.listdir(base), key=lambda n: int(re.sub(r"\D", "", n) or 0))
    except OSError:
        return out
    for n in names:
        try:
            with open(os.path.join(base, n, "name")) as f:
                label = f.read().strip()
        except OSError:
            label = ""
        out.append({"device": f"/dev/{n}", "name": label})
    return out
