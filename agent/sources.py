"""Frame sources. Each yields BGR uint8 frames (as OpenCV does) with a name.

``open_source(spec)`` understands:

* ``synthetic`` or ``synthetic:WxH``: a fixed pool of seeded random frames
  (default 640x480), so capture costs nothing and runs are reproducible;
* an image file: decoded once, the same frame every time (a still camera);
* a folder of images: read and decoded frame by frame (capture includes the
  decode), cycling when more frames are asked than there are images;
* a video file: decoded frame by frame until it ends.

``read()`` returns ``None`` when a finite source has ended.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SourceError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".mjpeg", ".mjpg", ".h264", ".ts")


@dataclass
class Frame:
    image: np.ndarray
    name: str


class Source(abc.ABC):
    kind = "source"
    #: True for sources that run out (video, folder in one pass)
    finite = False

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SyntheticSource(Source):
    kind = "synthetic"

    def __init__(self, width: int = 640, height: int = 480, pool: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        self._pool = [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(pool)]
        self._i = 0

    def read(self) -> Frame:
        img = self._pool[self._i % len(self._pool)]
        self._i += 1
        return Frame(img, f"synthetic-{(self._i - 1) % len(self._pool)}")

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
            raise SourceError(
                f"no images in folder {path} (looked for {', '.join(IMAGE_EXTS)})"
            )
        self._i = 0

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> Frame:
        path = self.files[self._i % len(self.files)]
        self._i += 1
        return Frame(_imread(path), os.path.relpath(path, self.path))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": self.path, "images": len(self.files)}


class VideoSource(Source):
    kind = "video"
    finite = True

    def __init__(self, path: str):
        import cv2

        self.path = path
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise SourceError(f"cannot open video {path}: OpenCV has no decoder for it or it is corrupt")
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or None
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        self.width = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._i = 0

    def read(self) -> Frame | None:
        ok, img = self.cap.read()
        if not ok or img is None:
            return None
        self._i += 1
        return Frame(img, f"{os.path.basename(self.path)}#{self._i - 1}")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "uri": self.path,
            "width": self.width,
            "height": self.height,
            "nominal_fps": self.fps,
            "frames_in_file": self.frame_count,
        }

    def close(self) -> None:
        self.cap.release()


def open_source(spec: str) -> Source:
    """Open a source from its command-line spelling; SourceError if we cannot."""
    if spec == "synthetic" or spec.startswith("synthetic:"):
        if spec == "synthetic":
            return SyntheticSource()
        try:
            w, h = (int(v) for v in spec.split(":", 1)[1].lower().split("x"))
            if w <= 0 or h <= 0:
                raise ValueError
        except ValueError:
            raise SourceError(f"bad synthetic source {spec!r}: write synthetic or synthetic:WIDTHxHEIGHT") from None
        return SyntheticSource(w, h)
    if not os.path.exists(spec):
        raise SourceError(
            f"source not found: {spec} (give 'synthetic', an image file, a folder of images or a video file)"
        )
    if os.path.isdir(spec):
        return FolderSource(spec)
    if spec.lower().endswith(IMAGE_EXTS):
        return ImageSource(spec)
    return VideoSource(spec)
