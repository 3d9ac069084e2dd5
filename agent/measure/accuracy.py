"""Accuracy mode: time a classifier on labelled images and check it still answers right.

``edgebench run --accuracy DIR`` makes the labelled set the run's source: every image
goes through the same measured pipeline (capture, preprocess, invoke, top-k), and the
top-k of each image is compared with its label. Labels come from

* one sub-folder per class: ``DIR/<class>/<image>`` (``DIR/cat/001.jpg``), or
* a labels CSV, ``file,label`` per line (paths relative to the CSV's folder; a
  ``file,label`` header line is allowed): ``--accuracy labels.csv``, or a
  ``labels.csv`` inside DIR.

A class is named as the model's labels file names it (compared without case, with
``_`` and spaces alike); a model without labels is scored by output index (class
folders ``0``, ``1``, ...). With a floor (``--accuracy-floor``, config
``run.accuracy_floor``), a run whose top-1 is below it fails: a fast wrong model is
not a result.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Any

from edgebench.agent.errors import SourceError, UserError
from edgebench.agent.sources.base import IMAGE_EXTS, Frame, Source, imread

#: the floor applies to this metric
FLOOR_METRIC = "top1"
TOP_K = 5


class AccuracyError(UserError):
    """The model's accuracy on the labelled set is below the configured floor."""

    exit_code = 6


@dataclass
class LabelledSet:
    root: str
    labels_from: str  # "folders" or the CSV path
    items: list[tuple[str, str]]  # (path relative to root, true label)

    def __len__(self) -> int:
        return len(self.items)


def _key(label: str) -> str:
    return " ".join(label.replace("_", " ").split()).casefold()


def _from_csv(path: str) -> LabelledSet:
    root = os.path.dirname(os.path.abspath(path))
    items: list[tuple[str, str]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                    continue
                if n == 1 and [c.strip().lower() for c in row[:2]] == ["file", "label"]:
                    continue
                if len(row) < 2 or not row[0].strip() or not row[1].strip():
                    raise SourceError(f"labels CSV {path}, line {n}: expected `file,label`, got {','.join(row)!r}")
                rel = row[0].strip()
                if not os.path.isfile(os.path.join(root, rel)):
                    raise SourceError(f"labels CSV {path}, line {n}: image {rel} not found under {root}")
                items.append((rel, row[1].strip()))
    except FileNotFoundError:
        raise SourceError(f"labels CSV not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"cannot read labels CSV {path}: {e}") from None
    if not items:
        raise SourceError(f"labels CSV {path} lists no images")
    return LabelledSet(root, path, items)


def load_labelled(path: str) -> LabelledSet:
    """Read a labelled image set: a folder per class, or a labels CSV."""
    if not os.path.exists(path):
        raise SourceError(
            f"accuracy set not found: {path} (give a folder with one sub-folder per class, or a labels CSV)"
        )
    if os.path.isfile(path):
        if not path.lower().endswith(".csv"):
            raise SourceError(f"accuracy set {path} is a file but not a .csv of `file,label` lines")
        return _from_csv(path)
    csv_path = os.path.join(path, "labels.csv")
    if os.path.isfile(csv_path):
        return _from_csv(csv_path)
    items: list[tuple[str, str]] = []
    for cls in sorted(os.listdir(path)):
        d = os.path.join(path, cls)
        if not os.path.isdir(d) or cls.startswith("."):
            continue
        for r, _dirs, files in sorted(os.walk(d)):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTS):
                    items.append((os.path.relpath(os.path.join(r, f), path), cls))
    if not items:
        raise SourceError(
            f"no labelled images in {path}: put each class's images in a sub-folder named after the class "
            f"({', '.join(IMAGE_EXTS)}), or give a labels CSV of `file,label` lines"
        )
    return LabelledSet(os.path.abspath(path), "folders", items)


class LabelledSource(Source):
    """The labelled images in a fixed order, cycling; frame names are paths relative to the set."""

    kind = "labelled"

    def __init__(self, lset: LabelledSet):
        self.lset = lset
        self._i = 0

    def read(self) -> Frame:
        rel, _label = self.lset.items[self._i % len(self.lset.items)]
        self._i += 1
        return Frame(imread(os.path.join(self.lset.root, rel)), rel)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "uri": self.lset.root,
            "images": len(self.lset),
            "labels_from": self.lset.labels_from,
        }


class Scorer:
    """Maps true labels onto the model's classes and scores top-1/top-5 from predictions."""

    def __init__(self, lset: LabelledSet, n_classes: int, labels: list[str] | None, offset: int = 0):
        self.lset = lset
        self.n = n_classes
        self.truth: dict[str, int] = {}
        if labels:
            index = {}
            for j, name in enumerate(labels):
                index.setdefault(_key(name), j + offset)
            for rel, label in lset.items:
                if _key(label) not in index:
                    raise UserError(
                        f"class {label!r} of the accuracy set is not one of the model's {len(labels)} labels "
                        f"(e.g. {', '.join(repr(x) for x in labels[:3])}); name classes as the labels file does"
                    )
                self.truth[rel] = index[_key(label)]
        else:
            for rel, label in lset.items:
                if not label.isdigit() or int(label) >= n_classes:
                    raise UserError(
                        f"class {label!r} of the accuracy set cannot be matched: the model has no labels, so name "
                        f"classes by output index (0..{n_classes - 1}) or give --labels FILE"
                    )
                self.truth[rel] = int(label)

    def score(self, predictions: list[dict[str, Any]], floor: float | None) -> dict[str, Any]:
        by_name = {p["source_name"]: p["top_k"] for p in predictions}
        missing = [rel for rel in self.truth if rel not in by_name]
        if missing:
            raise UserError(f"{len(missing)} labelled image(s) were not scored (first: {missing[0]}); raise --frames")
        top1 = top5 = 0
        per_class: dict[str, list[int]] = {}
        for rel, label in self.lset.items:
            idx = [p["index"] for p in by_name[rel]]
            hit1 = bool(idx) and idx[0] == self.truth[rel]
            hit5 = self.truth[rel] in idx[:TOP_K]
            top1 += hit1
            top5 += hit5
            c = per_class.setdefault(label, [0, 0])
            c[0] += hit1
            c[1] += 1
        n = len(self.lset)
        t1 = top1 / n
        return {
            "top1": round(t1, 6),
            "top5": round(top5 / n, 6),
            "unit": "fraction of images",
            "images": n,
            "correct_top1": top1,
            "correct_top5": top5,
            "top5_k": min(TOP_K, self.n),
            "per_class_top1": {k: round(v[0] / v[1], 6) for k, v in sorted(per_class.items())},
            "dataset": self.lset.root,
            "labels_from": self.lset.labels_from,
            "floor": floor,
            "floor_metric": FLOOR_METRIC,
            "below_floor": floor is not None and t1 < floor,
        }


def summary_line(acc: dict[str, Any]) -> str:
    floor = ""
    if acc.get("floor") is not None:
        floor = f"; floor {acc['floor']:.3f}: {'BELOW' if acc['below_floor'] else 'met'}"
    return (
        f"accuracy over {acc['images']} labelled images: top-1 {acc['top1']:.3f} ({acc['correct_top1']}), "
        f"top-{acc['top5_k']} {acc['top5']:.3f} ({acc['correct_top5']}){floor}"
    )


def check_floor(result: dict[str, Any]) -> None:
    """Raise AccuracyError (one line) if the run's top-1 is below its floor."""
    acc = result.get("accuracy")
    if not acc or not acc.get("below_floor"):
        return
    raise AccuracyError(
        f"top-1 accuracy {acc['top1']:.3f} over {acc['images']} images of {acc['dataset']} is below the floor "
        f"{acc['floor']:.3f}: the model (or its preprocessing or labels) gives wrong answers, so this run is not "
        "a result and was not published"
    )


def prepare(opts: Any, post: Any, notes: list[str]) -> tuple[LabelledSource, Scorer, int]:
    """For a run with --accuracy: the labelled source, its scorer, and the frame count that
    scores every image once. `post` is the run's Classifier (None if the model is not one)."""
    from edgebench.agent.measure.loop import MAX_PREDICTIONS
    from edgebench.agent.runtime.postprocess import Classifier

    if not opts.accuracy:
        raise UserError("--accuracy-floor needs --accuracy DIR (the labelled images to score)")
    if not isinstance(post, Classifier):
        raise UserError("--accuracy needs an image classification model (one [1, N] output); this model is not one")
    if opts.duration_s is not None:
        raise UserError("--accuracy scores every labelled image once, counted in frames: drop --duration")
    if opts.source not in ("synthetic", opts.accuracy):
        raise UserError(f"--accuracy {opts.accuracy} is the source of the run; drop --source {opts.source}")
    lset = load_labelled(opts.accuracy)
    if len(lset) > MAX_PREDICTIONS:
        raise UserError(f"the accuracy set has {len(lset)} images; at most {MAX_PREDICTIONS} can be scored in one run")
    post.k = max(post.k, min(TOP_K, post.n))
    scorer = Scorer(lset, post.n, post.labels, offset=getattr(post, "_offset", 0))
    frames = opts.frames
    if frames < len(lset):
        notes.append(f"frames raised from {frames} to {len(lset)} so that every labelled image is scored once")
        frames = len(lset)
    return LabelledSource(lset), scorer, frames
