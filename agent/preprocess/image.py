"""Turn a BGR uint8 frame into exactly what the model's input tensor wants.

Everything comes from the model: size, layout, dtype and quantization. The
mapping from a pixel value p (0..255) to the tensor value is

    real = (p - mean) / std              # the model's normalization
    q    = round(real / scale) + zero_point   (quantized inputs)

and because p has only 256 values, the whole mapping is a lookup table per
channel, built once: exact for any scale/zero point, and cheap per frame.

Normalization (mean/std) comes, in order, from the config, from the model's
TFLite metadata or the project's registry, or from a documented default:
quantized inputs take raw pixels onto their integer range (uint8: q = p,
int8: q = p - 128), float inputs take (p - 127.5) / 127.5. The result records
which one was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench.agent.errors import ModelError, UserError
from edgebench.agent.runtime.interpreter import TensorInfo

RESIZE_MODES = ("stretch", "crop", "letterbox")
_NP_DTYPES = {"uint8": np.uint8, "int8": np.int8, "int16": np.int16, "float32": np.float32, "float16": np.float16}


@dataclass
class Normalization:
    mean: list[float]
    std: list[float]
    source: str  # "config", "metadata", "registry", "default"

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "source": self.source}


def default_normalization(inp: TensorInfo) -> Normalization:
    if inp.quantized:
        # q = p + qmin  <=>  real = scale * (p + qmin - zp)  <=>  mean/std below
        qmin = int(np.iinfo(_NP_DTYPES[inp.dtype]).min)
        std = 1.0 / inp.scale
        mean = float(inp.zero_point - qmin)
        return Normalization([mean] * 3, [std] * 3, "default")
    return Normalization([127.5] * 3, [127.5] * 3, "default")


def image_layout(inp: TensorInfo) -> tuple[int, int, int] | None:
    """(height, width, channels) for an NHWC image input, else None."""
    shape = inp.shape
    if len(shape) == 4 and shape[3] in (1, 3):
        return shape[1], shape[2], shape[3]
    if len(shape) == 3 and shape[2] in (1, 3):
        return shape[0], shape[1], shape[2]
    return None


class Preprocessor:
    """Callable: BGR uint8 frame -> input tensor array (with batch dimension)."""

    def __init__(
        self,
        inp: TensorInfo,
        normalization: Normalization | None = None,
        resize: str = "stretch",
        color: str = "RGB",
    ):
        layout = image_layout(inp)
        if layout is None:
            raise ModelError(
                f"input {inp.name!r} has shape {inp.shape}, not an image (NHWC with 1 or 3 channels); "
                "use the synthetic source for non-image models"
            )
        if inp.dtype not in _NP_DTYPES:
            raise ModelError(f"input {inp.name!r} has dtype {inp.dtype}, which edgebench cannot feed")
        if resize not in RESIZE_MODES:
            raise UserError(f"resize mode {resize!r} is not one of {', '.join(RESIZE_MODES)}")
        if color not in ("RGB", "BGR"):
            raise UserError(f"color order {color!r} must be RGB or BGR")
        self.inp = inp
        self.height, self.width, self.channels = layout
        self.resize = resize
        self.color = color
        self.norm = normalization or default_normalization(inp)
        self.dtype = _NP_DTYPES[inp.dtype]
        self.batch_shape = tuple(inp.shape) if len(inp.shape) == 4 else (1, *inp.shape)
        self._lut = self._build_lut()
        self._mode, self._cv_table = self._plan()

    # -- the lookup table -------------------------------------------------------
    def _build_lut(self) -> np.ndarray | None:
        p = np.arange(256, dtype=np.float64)
        mean = np.asarray(self.norm.mean, np.float64)[: self.channels]
        std = np.asarray(self.norm.std, np.float64)[: self.channels]
        if np.any(std == 0):
            raise UserError("normalization std must not be zero")
        real = (p[None, :] - mean[:, None]) / std[:, None]  # (C, 256)
        if self.inp.quantized:
            info = np.iinfo(self.dtype)
            q = np.round(real / self.inp.scale) + self.inp.zero_point
            lut = np.clip(q, info.min, info.max).astype(self.dtype)
        else:
            lut = real.astype(self.dtype)
        if self.dtype == np.uint8 and np.all(lut == np.arange(256, dtype=np.uint8)[None, :]):
            return None  # raw pixels: no per-pixel work at all
        return lut

    def _plan(self) -> tuple[str, np.ndarray | None]:
        """How the table is applied per frame, cheapest first: not at all (raw uint8
        pixels), a sign-bit flip (int8 ``q = p - 128``, the usual full-int8 export), or
        OpenCV's vectorised LUT (any table, per channel)."""
        if self._lut is None:
            return "identity", None
        flip = (np.arange(256) - 128).astype(np.int8)
        if self.dtype == np.int8 and np.all(self._lut == flip[None, :]):
            return "xor128", None
        same = self.channels == 1 or bool(np.all(self._lut == self._lut[:1]))
        table = self._lut[0] if same else np.ascontiguousarray(self._lut.T).reshape(1, 256, self.channels)
        if table.dtype in (np.int8,):
            table = table.view(np.uint8)  # OpenCV's LUT writes bytes; read back as int8
        if table.dtype not in (np.uint8, np.float32):
            return "numpy", None  # int16 / float16 inputs: numpy indexing
        return "cv2", np.ascontiguousarray(table)

    def describe(self) -> dict[str, Any]:
        return {
            "size": [self.height, self.width],
            "channels": self.channels,
            "dtype": self.inp.dtype,
            "resize": self.resize,
            "color": self.color,
            "normalization": self.norm.to_dict(),
        }

    # -- per frame --------------------------------------------------------------
    def _resized(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        h, w = frame.shape[:2]
        th, tw = self.height, self.width
        if self.resize == "crop":
            s = min(h / th, w / tw)
            ch, cw = int(round(th * s)), int(round(tw * s))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            frame = frame[y0 : y0 + ch, x0 : x0 + cw]
        elif self.resize == "letterbox":
            s = min(th / h, tw / w)
            nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
            small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
            out = np.zeros((th, tw, frame.shape[2]), np.uint8)
            y0, x0 = (th - nh) // 2, (tw - nw) // 2
            out[y0 : y0 + nh, x0 : x0 + nw] = small
            return out
        if frame.shape[0] != th or frame.shape[1] != tw:
            frame = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_LINEAR)
        return frame

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        if frame.ndim == 2:
            frame = frame[:, :, None]
        if frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if self.channels == 1:
            if frame.shape[2] == 3:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[:, :, None]
        elif frame.shape[2] == 1:
            frame = np.repeat(frame, 3, axis=2)
        elif self.color == "RGB":
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        img = self._resized(frame)
        if img.ndim == 2:
            img = img[:, :, None]
        mode = self._mode
        if mode == "identity":
            out = img
        elif mode == "xor128":
            out = np.bitwise_xor(img, 0x80).view(np.int8)
        elif mode == "cv2":
            out = cv2.LUT(np.ascontiguousarray(img), self._cv_table)
            if out.ndim == 2:
                out = out[:, :, None]
            if self.dtype == np.int8:
                out = out.view(np.int8)
        elif self.channels == 1 or np.all(self._lut == self._lut[:1]):
            out = self._lut[0][img]
        else:
            out = np.empty(img.shape, self.dtype)
            for c in range(self.channels):
                out[..., c] = self._lut[c][img[..., c]]
        return np.ascontiguousarray(out).reshape(self.batch_shape)


def synthetic_input(inp: TensorInfo, rng: np.random.Generator) -> np.ndarray:
    """Random data of the input's exact shape and dtype (non-image models)."""
    dtype = _NP_DTYPES.get(inp.dtype)
    if dtype is None:
        if inp.dtype in ("int32", "int64", "bool"):
            return np.zeros(inp.shape, dtype=inp.dtype)
        raise ModelError(f"input {inp.name!r} has dtype {inp.dtype}, which edgebench cannot feed")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=inp.shape, dtype=dtype)
    return rng.standard_normal(inp.shape).astype(dtype)
