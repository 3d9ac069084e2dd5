"""Decode model outputs: classification top-k with dequantized scores, else a summary."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.runtime.interpreter import TensorInfo


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
            raise UserError(f"labels file has {len(labels)} labels but the model outputs {self.n} classes")
        # A labels file without the 'background' entry of a 1001-class model.
        self._offset = 1 if labels is not None and len(labels) == self.n - 1 else 0

    def label(self, index: int) -> str | None:
        if self.labels is None:
            return None
        j = index - self._offset
        return self.labels[j] if 0 <= j < len(self.labels) else None

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The per-frame decode, kept lean: the top-k indices and their raw scores.
        ``format`` turns a kept prediction into labelled, dequantized entries later,
        outside the timed loop (it is reporting, not part of a deployed pipeline)."""
        scores = raw.reshape(-1)
        top = np.argpartition(scores, -self.k)[-self.k :]
        return top, scores[top]

    def format(self, pred: tuple[np.ndarray, np.ndarray]) -> list[dict[str, Any]]:
        top, raw_vals = pred
        order = np.argsort(raw_vals, kind="stable")[::-1]
        top, raw_vals = top[order], raw_vals[order]
        if self.out.quantized:
            vals = (raw_vals.astype(np.float64) - self.out.zero_point) * self.out.scale
        else:
            vals = raw_vals.astype(np.float64)
        return [{"index": int(i), "label": self.label(int(i)), "score": round(float(v), 6)} for i, v in zip(top, vals)]


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


_DETECTION_ROLES = ("boxes", "classes", "scores", "count")


def detection_roles(outputs: list[TensorInfo]) -> dict[str, int] | None:
    """Map an SSD-style detection head (boxes, classes, scores, count) to output
    indices, or None when the outputs are not of that shape.

    The TFLite_Detection_PostProcess op always emits boxes, classes, scores,
    count (tensor names ``...PostProcess``, ``:1``, ``:2``, ``:3``); exporters that
    reorder them name the tensors, so names decide when they can, shapes otherwise.
    """
    if len(outputs) != 4:
        return None
    boxes = [i for i, o in enumerate(outputs) if len(o.shape) == 3 and o.shape[-1] == 4]
    count = [i for i, o in enumerate(outputs) if o.shape in ([1], [])]
    pairs = [i for i, o in enumerate(outputs) if len(o.shape) == 2 and o.shape[0] == 1]
    if len(boxes) != 1 or len(count) != 1 or len(pairs) != 2:
        return None
    roles = {"boxes": boxes[0], "count": count[0]}
    names = {i: outputs[i].name.lower() for i in pairs}
    by_suffix = {}
    for i, n in names.items():
        if "postprocess" in n:
            suffix = n.rsplit(":", 1)[-1] if ":" in n else "0"
            by_suffix[i] = int(suffix) if suffix.isdigit() else -1
    if sorted(by_suffix.values()) == [1, 2]:
        roles["classes"] = min(by_suffix, key=by_suffix.get)
        roles["scores"] = max(by_suffix, key=by_suffix.get)
    elif any("score" in n for n in names.values()):
        roles["scores"] = next(i for i, n in names.items() if "score" in n)
        roles["classes"] = next(i for i in pairs if i != roles["scores"])
    else:  # boxes, classes, scores, count order
        roles["classes"], roles["scores"] = sorted(pairs)
    return roles


class Detector:
    """Decode SSD-style detections: dequantized boxes (ymin, xmin, ymax, xmax in
    0..1), class index and label, score; at most ``k`` above ``threshold``."""

    def __init__(self, rt, roles: dict[str, int], labels: list[str] | None = None, k: int = 10, threshold: float = 0.5):
        self.rt = rt
        self.roles = roles
        self.labels = labels
        self.k = k
        self.threshold = threshold
        self.outs = {role: rt.outputs[i] for role, i in roles.items()}

    def _get(self, role: str) -> np.ndarray:
        t = self.outs[role]
        a = self.rt.output(self.roles[role])
        if t.quantized:
            return (a.astype(np.float32) - t.zero_point) * t.scale
        return a

    @staticmethod
    def format(pred: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return pred

    def __call__(self, _first_output: np.ndarray) -> list[dict[str, Any]]:
        scores = self._get("scores").reshape(-1)
        classes = self._get("classes").reshape(-1)
        boxes = self._get("boxes").reshape(-1, 4)
        n = int(np.asarray(self._get("count")).reshape(-1)[0]) if self.outs["count"] else len(scores)
        n = max(0, min(n, len(scores)))
        keep = [i for i in np.argsort(scores[:n])[::-1] if scores[i] >= self.threshold][: self.k]
        out = []
        for i in keep:
            c = int(round(float(classes[i])))
            label = self.labels[c] if self.labels is not None and 0 <= c < len(self.labels) else None
            out.append(
                {
                    "index": c,
                    "label": label,
                    "score": round(float(scores[i]), 6),
                    "box": [round(float(v), 5) for v in boxes[i]],
                }
            )
        return out
