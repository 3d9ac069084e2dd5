"""What a frame source is: ``Source`` (``read()`` gives a ``Frame`` or None at the end,
``describe()`` says what it is, ``live`` says whether frames arrive on their own clock),
the seeded ``SyntheticSource``, and the image file types the other sources read.
"""

from __future__ import annotations

import abc
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench.agent.errors import SourceError

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

    def counters(self) -> dict[str, Any]:
        """What the source counted while it was read (added to the result's source section)."""
        return {}

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


#: How far from its end an image file's end marker may be (some writers pad after it).
_TAIL_BYTES = 4096


def damage(path: str) -> str | None:
    """Why an image file OpenCV decoded anyway is damaged, or None: a JPEG without its end
    marker or a PNG without its IEND chunk was cut short, and OpenCV decodes what is there
    (grey below) with no more than a libjpeg message on stderr."""
    low = path.lower()
    marker = b"\xff\xd9" if low.endswith((".jpg", ".jpeg")) else b"IEND" if low.endswith(".png") else None
    if marker is None:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL_BYTES))
            tail = f.read()
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    if marker not in tail:
        kind = "JPEG" if marker == b"\xff\xd9" else "PNG"
        return f"{path} is a truncated {kind} (no end marker): decoded only in part"
    return None


def imread(path: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"cannot decode image {path}: not an image format OpenCV reads")
    return img
