"""Still images: one image decoded once (a still camera), or a folder of images read and
decoded frame by frame, cycling (the summary says how many passes it made).
"""

from __future__ import annotations

import os
from typing import Any

from edgebench.agent.errors import SourceError
from edgebench.agent.sources.base import IMAGE_EXTS, Frame, Source, damage, imread


class ImageSource(Source):
    kind = "image"

    def __init__(self, path: str):
        self.path = path
        self.image = imread(path)
        self.name = os.path.basename(path)
        why = damage(path)
        self.damaged = [why] if why else []

    def read(self) -> Frame:
        return Frame(self.image, self.name)

    def describe(self) -> dict[str, Any]:
        h, w = self.image.shape[:2]
        return {"kind": self.kind, "uri": self.path, "width": w, "height": h}

    def counters(self) -> dict[str, Any]:
        """The image's damage, if any (the result's warnings say it too)."""
        return {"damaged_images": self.damaged} if self.damaged else {}


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
        #: per file read: why it is damaged, or None (checked once per file)
        self._damage: dict[str, str | None] = {}

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> Frame:
        path = self.files[self._i % len(self.files)]
        self._i += 1
        img = imread(path)
        if path not in self._damage:
            self._damage[path] = damage(path)
        return Frame(img, os.path.relpath(path, self.path))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": self.path, "images": len(self.files)}

    def counters(self) -> dict[str, Any]:
        """Images read, and passes over the folder (a folder loops until the run ends)."""
        out: dict[str, Any] = {"images_read": self._i, "passes": round(self._i / len(self.files), 2)}
        damaged = [why for why in self._damage.values() if why]
        if damaged:
            out["damaged_images"] = damaged
        return out
