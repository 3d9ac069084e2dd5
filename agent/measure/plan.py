"""The run plan: what a benchmark feeds the model and how it reads the answers, decided once.

``edgebench run``, ``edgebench sweep`` and ``edgebench run --scenario`` all plan here,
so one image and one model give the same input tensor whichever command measures
them. From the options and the loaded runtime a plan decides, in this order:

1. **Model facts** (:class:`ModelFacts`): the file's sha256, its TFLite metadata (if
   it has any) and the registry entry its bytes match (models/registry.yaml, if any).
2. **Labels** (:func:`plan_labels`): the ``--labels`` file, else the labels packed in
   the metadata, else the registry entry's labels file (when it is on this machine).
   Notes say when the labels came from the metadata, and when the registry knows the
   weights as untrained (latency only).
3. **Inputs** (:func:`plan_inputs`): a model with one NHWC input of 1 or 3 channels is
   an image model and gets a :class:`Preprocessor` whose normalization comes from the
   config, else the metadata, else the registry, else the documented default
   (edgebench.agent.preprocess.image), with the options' resize mode and color order.
   Any other model is fed seeded random tensors of each input's exact shape and dtype
   (:func:`synthetic_samples`), and only on the synthetic source.
4. **Postprocess** (:func:`plan_output`): a classifier (one [1, N] output), an SSD
   detection head, or none (then given labels are ignored, with a note).

The per-frame run plans all four (:func:`plan_run`). A batch worker (a sweep point, a
scenario) prepares samples only, so it plans 1 and 3 (``per_sample``: at batch 1, as
the samples are stacked into batches later). Plans are made in the process that runs
the interpreter: a sweep instance process receives the plain ``WorkerSpec`` and plans
again from it; the same file and options give the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.preprocess.image import (
    Normalization,
    Preprocessor,
    default_normalization,
    image_layout,
    synthetic_input,
)
from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime import registry, tflite_meta
from edgebench.agent.runtime.interpreter import Runtime, TensorInfo
from edgebench.agent.runtime.postprocess import Classifier, Detector, detection_roles, is_classifier, load_labels


class InputOptions(Protocol):
    """What planning the inputs reads from the options (RunOptions and WorkerSpec both have it)."""

    model: str
    source: str
    normalization: dict[str, list[float]] | None
    resize: str
    color: str


@dataclass(frozen=True)
class ModelFacts:
    """What the model file says about itself: plain data (it pickles)."""

    path: str
    sha256: str
    meta: tflite_meta.ModelMeta | None
    known: dict[str, Any] | None  # the registry entry these bytes match

    @classmethod
    def read(cls, path: str) -> ModelFacts:
        """Read after the runtime has loaded the file (so a missing file is already a ModelError)."""
        sha = rtmod.file_sha256(path)
        return cls(path=path, sha256=sha, meta=tflite_meta.read(path), known=registry.lookup(sha))


def given_labels(opts: Any) -> list[str] | None:
    """The ``--labels`` file, read before the model loads so that a wrong path fails first."""
    return load_labels(opts.labels) if opts.labels else None


def plan_labels(given: list[str] | None, facts: ModelFacts) -> tuple[list[str] | None, list[str]]:
    """Labels: the given file, else the metadata's, else the registry's; and the notes."""
    labels, notes = given, []
    if labels is None and facts.meta is not None:
        labels = tflite_meta.embedded_labels(facts.path, facts.meta)
        if labels:
            notes.append(f"labels read from the model's metadata ({len(labels)})")
    known = facts.known
    if known is not None:
        if labels is None and registry.labels_file(known):
            labels = load_labels(registry.labels_file(known))
        if registry.latency_only(known):
            notes.append(f"latency only: {known['name']} has untrained weights; its predictions mean nothing")
    return labels, notes


def _metadata_normalization(meta: tflite_meta.ModelMeta | None) -> Normalization | None:
    if meta is None or not meta.inputs or not meta.inputs[0].mean or not meta.inputs[0].std:
        return None
    mean, std = meta.inputs[0].mean, meta.inputs[0].std
    return Normalization(mean * 3 if len(mean) == 1 else mean, std * 3 if len(std) == 1 else std, "metadata")


def resolve_normalization(config: dict[str, list[float]] | None, facts: ModelFacts, inp: TensorInfo) -> Normalization:
    """The config's, else the metadata's, else the registry's, else the documented default."""
    if config:
        return Normalization(config["mean"], config["std"], "config")
    found = _metadata_normalization(facts.meta)
    if found is None and facts.known is not None:
        found = registry.normalization(facts.known)
    return found or default_normalization(inp)


def at_batch_one(t: TensorInfo) -> TensorInfo:
    """The tensor with batch 1 (a scalar stays a scalar)."""
    return TensorInfo(**{**t.__dict__, "shape": [1, *t.shape[1:]] if t.shape else []})


@dataclass
class InputPlan:
    """How inputs are made: a preprocessor for image models, else seeded random tensors."""

    preprocessor: Preprocessor | None
    tensors: list[TensorInfo]  # what is fed: the image input, or every input

    @property
    def image(self) -> bool:
        return self.preprocessor is not None

    def describe(self) -> dict[str, Any]:
        """The run result's ``preprocess`` section."""
        if self.preprocessor is not None:
            return self.preprocessor.describe()
        return {"synthetic_inputs": [t.to_dict() for t in self.tensors]}


def synthetic_samples(tensors: list[TensorInfo], count: int, seed: int) -> list[list[np.ndarray]]:
    """``count`` samples, each one random array per tensor; the same seed gives the same samples."""
    rng = np.random.default_rng(seed)
    return [[synthetic_input(t, rng) for t in tensors] for _ in range(count)]


def plan_inputs(opts: InputOptions, inputs: list[TensorInfo], facts: ModelFacts, per_sample: bool = False) -> InputPlan:
    """Image model or not, and how its inputs are made (``per_sample``: at batch 1)."""
    if len(inputs) == 1 and image_layout(inputs[0]) is not None:
        inp = at_batch_one(inputs[0]) if per_sample and len(inputs[0].shape) == 4 else inputs[0]
        norm = resolve_normalization(opts.normalization, facts, inp)
        return InputPlan(Preprocessor(inp, normalization=norm, resize=opts.resize, color=opts.color), [inp])
    if opts.source != "synthetic":
        raise UserError(
            f"{opts.model} is not an image model (inputs {[t.shape for t in inputs]}); "
            "it runs on --source synthetic (random inputs of the right shape and dtype)"
        )
    return InputPlan(None, [at_batch_one(t) for t in inputs] if per_sample else list(inputs))


def plan_output(
    rt: Runtime, labels: list[str] | None, top_k: int
) -> tuple[Classifier | Detector | None, str, list[str]]:
    """(postprocess, task, notes): a classifier, a detector, or none."""
    if is_classifier(rt.outputs):
        return Classifier(rt.outputs[0], labels=labels, k=top_k), "classification", []
    roles = detection_roles(rt.outputs)
    if roles is not None:
        return Detector(rt, roles, labels=labels, k=max(top_k, 10)), "detection", []
    if labels is not None:
        return (
            None,
            "other",
            ["labels ignored: the model's output is neither a [1, N] classifier nor an SSD detection head"],
        )
    return None, "other", []


@dataclass
class RunPlan:
    """Everything a per-frame run decided before it opens its source."""

    facts: ModelFacts
    labels: list[str] | None
    inputs: InputPlan
    post: Classifier | Detector | None
    task: str  # "classification", "detection" or "other"
    notes: list[str]

    @property
    def image(self) -> bool:
        return self.inputs.image


def plan_run(opts: Any, rt: Runtime, given: list[str] | None = None) -> RunPlan:
    """Plan a per-frame run of ``opts`` (a RunOptions) on the loaded ``rt``; ``given``
    are the labels read from ``--labels`` (:func:`given_labels`)."""
    facts = ModelFacts.read(opts.model)
    labels, notes = plan_labels(given, facts)
    inputs = plan_inputs(opts, rt.inputs, facts)
    post, task, more = plan_output(rt, labels, opts.top_k)
    return RunPlan(facts=facts, labels=labels, inputs=inputs, post=post, task=task, notes=notes + more)
