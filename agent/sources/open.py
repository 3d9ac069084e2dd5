"""Frame sources. Each yields BGR uint8 frames (as OpenCV does) with a name.

``open_source(spec)`` understands:

* ``synthetic`` or ``synthetic:WxH``: a fixed pool of seeded random frames (by
  default at the model's input size), so capture costs nothing and runs repeat;
* an image file (decoded once: a still camera), a folder of images (read and
  decoded frame by frame, cycling), a video file (decoded until it ends);
* a camera: ``camera:0``, ``camera:/dev/video2`` or ``/dev/video0`` (V4L2);
* a GStreamer pipeline: ``gst:libcamerasrc ! video/x-raw,width=640,height=480``
  (or any string containing `` ! ``), e.g. nvarguscamerasrc on Jetson; a pipeline whose
  source is not live (``videotestsrc``, ``filesrc`` without ``is-live=true``) is read as
  a file, every frame measured (``gst_not_live``);
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

import os
import re
from typing import Any

from edgebench.agent.errors import SourceError, UserError
from edgebench.agent.options.table import default
from edgebench.agent.sources.base import IMAGE_EXTS, STREAM_SCHEMES, Source, SyntheticSource
from edgebench.agent.sources.capture import CaptureSource, GstSource, gst_not_live
from edgebench.agent.sources.files import FolderSource, ImageSource
from edgebench.agent.sources.live import LiveSource


# ----------------------------------------------------------------------------- open
def _camera_target(spec: str) -> tuple[Any, str] | None:
    if spec.startswith("camera:"):
        rest = spec.split(":", 1)[1]
        return (int(rest), f"/dev/video{int(rest)}") if rest.isdigit() else (rest, rest)
    if re.fullmatch(r"/dev/video\d+", spec):
        return spec, spec
    return None


def _synthetic(spec: str, default_size: tuple[int, int] | None) -> Source:
    if spec == "synthetic":
        w, h = default_size or (640, 480)
        return SyntheticSource(w, h)
    try:
        w, h = (int(v) for v in spec.split(":", 1)[1].lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise SourceError(f"bad synthetic source {spec!r}: write synthetic or synthetic:WIDTHxHEIGHT") from None
    return SyntheticSource(w, h)


def _stream(spec: str, stall_timeout_s: float, reconnects: int) -> Source:
    import cv2

    ms = int(stall_timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2 * ms]
    inner = CaptureSource(spec, "stream", spec, cv2.CAP_FFMPEG, params)
    return LiveSource(inner, stall_timeout_s=stall_timeout_s, reconnects=reconnects)


def _camera(target: Any, dev: str, stall_timeout_s: float) -> Source:
    import cv2

    if not os.path.exists(dev):
        raise SourceError(
            f"camera {dev} not found (is it connected and its driver loaded? `edgebench info` lists cameras)"
        )
    return LiveSource(CaptureSource(target, "camera", dev, cv2.CAP_V4L2), stall_timeout_s=stall_timeout_s)


def _file(spec: str) -> Source:
    if not os.path.exists(spec):
        raise SourceError(
            f"source not found: {spec} (give synthetic, an image, a folder, a video, camera:N, "
            "gst:PIPELINE or an rtsp:// / http:// stream)"
        )
    if os.path.isdir(spec):
        return FolderSource(spec)
    if spec.lower().endswith(IMAGE_EXTS):
        return ImageSource(spec)
    return CaptureSource(spec, "video", spec)


def open_source(
    spec: str,
    *,
    default_size: tuple[int, int] | None = None,
    pacing: str = "fast",
    fps: float | None = None,
    stall_timeout_s: float = default("run", "stall_timeout_s"),
    reconnects: int = default("run", "reconnects"),
) -> Source:
    """Open a source from its command-line spelling; SourceError if we cannot.

    ``default_size`` (width, height) sizes a bare ``synthetic`` source. Pulled sources
    (synthetic, files) become live, paced ones when ``fps`` or real-time pacing is asked.
    """
    if pacing not in ("fast", "realtime"):
        raise UserError(f"pacing {pacing!r} must be fast or realtime")
    if spec.lower().startswith(STREAM_SCHEMES):
        return _stream(spec, stall_timeout_s, reconnects)
    cam = _camera_target(spec)
    if cam is not None:
        return _camera(*cam, stall_timeout_s)
    synthetic = spec == "synthetic" or spec.startswith("synthetic:")
    if spec.startswith("gst:") or " ! " in spec:
        pipeline = spec[4:] if spec.startswith("gst:") else spec
        if gst_not_live(pipeline) is None:
            return LiveSource(GstSource(pipeline), stall_timeout_s=stall_timeout_s)
        src: Source = GstSource(pipeline, not_live=gst_not_live(pipeline))  # pulled, as a file
    else:
        src = _synthetic(spec, default_size) if synthetic else _file(spec)
    if pacing == "fast" and fps is None:
        return src
    rate = fps or (30.0 if synthetic else getattr(src, "fps", None))
    if not rate:
        raise UserError(f"real-time pacing of {spec} needs --fps N (it has no frame rate of its own)")
    return LiveSource(src, fps=rate, stall_timeout_s=stall_timeout_s)


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
