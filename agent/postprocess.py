"""Decode model outputs: classification top-k with dequantized scores, else a summary."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UserError
from .runtime import TensorInfo


def load_labels(path: str) -> list[str]:
    """One label per line; a leading 'N label' or 'N: label' index is stripped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [ln.rstrip("\n") for ln in f]
    except FileNotFoundError:
        raise UserError(f"labels file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read labels file {path}: {e}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    labels = []
    for ln in lines:
        head, _, rest = ln.strip().partition(" ")
        head = head.rstrip(":")
        labels.append(rest.strip() if head.isdigit() and rest.strip() else ln.strip())
    return labels


def is_classifier(outputs: list[TensorInfo]) -> bool:
    if len(outputs) != 1:
        return False
    shape = outputs[0].shape
    return len(shape) == 2 and shape[0] == 1 and shape[1] > 1


class Classifier:
    """Top-k over a [1, N] score tensor, dequantized with the output's own scale/zero point."""

    def __init__(self, out: TensorInfo, labels: list[str] | None = None, k: int = 5):
        self.out = out
        self.n = out.shape[1]
        self.k = max(1, min(k, self.n))
        self.labels = labels
        if labels is not None and len(labels) not in (self.n, self.n - 1):
            raise UserError(
                f"labels file has {len(labels)} labels but the model outputs {self.n} classes"
            )
        # A labels file without the 'background' entry of a 1001-class model.
        self._offset = 1 if labels is not None and len(labels) == self.n - 1 else 0

    def label(self, index: int) -> str | None:
        if self.labels is None:
            return None
        j = index - self._offset
        return self.labels[j] if 0 <= j < len(self.labels) else None

    def __call__(self, raw: np.ndarray) -> list[dict[str, Any]]:
        scores = raw.reshape(-1)
        top = np.argpartition(scores, -self.k)[-self.k :]
        top = top[np.argsort(scores[top])[::-1]]
        if self.out.quantized:
            vals = (scores[top].astype(np.float64) - self.out.zero_point) * self.out.scale
        else:
            vals = scores[top].astype(np.float64)
        return [
            {"index": int(i), "label": self.label(int(i)), "score": round(float(v), 6)}
            for i, v in zip(top, vals)
        ]


def summarize_outputs(arrays: list[np.ndarray], outs: list[TensorInfo]) -> list[dict[str, Any]]:
    """For models that are not classifiers: shape, dtype and value range of each output."""
    res = []
    for a, o in zip(arrays, outs):
        res.append(
            {
                "name": o.name,
                "shape": list(a.shape),
                "dtype": str(a.dtype),
                "min": float(a.min()) if a.size else None,
                "max": float(a.max()) if a.size else None,
            }
        )
    return res
