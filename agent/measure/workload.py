"""What a sweep point or a scenario query runs: one interpreter at a batch size,
fed from a pool of samples prepared ahead of time.

Like MLPerf LoadGen's query sample library, the samples are loaded and
preprocessed before the timed part (image models: frames from the source run
through the model's Preprocessor; other models: seeded random tensors of the
exact shapes and dtypes). Which of the two, and the preprocessor's normalization,
resize and color order, are planned as for ``edgebench run``
(edgebench.agent.measure.plan), so the same image gives the same input tensor.
The timed unit, one *batch*, is: set every input tensor from a ready batch,
``interpreter.invoke()``, read the first output (``BATCH_SCOPE``).

A batch size the model cannot take (``resize_tensor_input`` refused, or
``allocate_tensors`` failing as XNNPACK does with "failed to prepare" on a
hard-coded Reshape) raises :class:`Unsupported` with the runtime's reason, so a
sweep can record the point and go on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgebench.agent.errors import ModelError, SourceError, UserError
from edgebench.agent.measure.plan import ModelFacts, plan_inputs, synthetic_samples
from edgebench.agent.runtime import compiled
from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime.interpreter import Runtime, _first_line, quiet_native_stderr

BATCH_SCOPE = (
    "one batch: set_tensor of every input from a ready batch (samples loaded and preprocessed "
    "before timing), interpreter.invoke(), get_tensor of the first output"
)


#: the timed unit when LiteRT's CompiledModel runs (--accelerator)
COMPILED_BATCH_SCOPE = (
    "one batch: TensorBuffer.write of every input from a ready batch (samples loaded and preprocessed "
    "before timing), CompiledModel.run_by_index(), TensorBuffer.read of the first output"
)


def batch_scope(runtime: dict[str, Any]) -> str:
    """What one timed batch covers, for the runtime API that ran (``runtime.api``)."""
    return COMPILED_BATCH_SCOPE if runtime.get("api") == "compiled_model" else BATCH_SCOPE


class Unsupported(Exception):
    """This model cannot run at this batch size (the reason is the runtime's own words)."""


@dataclass
class WorkerSpec:
    """Everything needed to build a worker; plain data, so it crosses into a subprocess,
    where the worker plans its inputs again from it (edgebench.agent.measure.plan)."""

    model: str
    batch: int = 1
    threads: int | None = None
    runtime: str = "auto"
    xnnpack: bool = True
    delegate: rtmod.DelegateSpec | None = None
    #: --accelerator: LiteRT's CompiledModel instead of the Interpreter
    compiled: compiled.CompiledSpec | None = None
    source: str = "synthetic"
    pool: int = 8
    seed: int = 0
    normalization: dict[str, list[float]] | None = None
    resize: str = "stretch"
    color: str = "RGB"
    extra: dict[str, Any] = field(default_factory=dict)


def batch_signature(rt: Runtime) -> list[int | None]:
    """The batch entry of each input's shape signature (-1 = resizable), None if unknown."""
    out: list[int | None] = []
    for d in rt.interpreter.get_input_details():
        sig = d.get("shape_signature")
        out.append(int(sig[0]) if sig is not None and len(sig) else None)
    return out


def load_samples(
    rt: Runtime, spec: WorkerSpec, facts: ModelFacts | None = None
) -> tuple[list[list[np.ndarray]], dict[str, Any]]:
    """``spec.pool`` samples, each a list of arrays (one per input) with batch 1, and a
    description of where they came from. The inputs are planned as ``edgebench run``
    plans them (edgebench.agent.measure.plan); ``facts`` are read from ``spec.model``
    when not given."""
    plan = plan_inputs(spec, rt.inputs, facts or ModelFacts.read(spec.model), per_sample=True)
    if plan.preprocessor is None:
        samples = synthetic_samples(plan.tensors, spec.pool, spec.seed)
        desc = {
            "kind": "synthetic-tensors",
            "uri": "synthetic",
            "samples": len(samples),
            "inputs": [t.to_dict() for t in plan.tensors],
        }
        return samples, desc
    from edgebench.agent.sources.open import open_source

    pre = plan.preprocessor
    samples = []
    with open_source(spec.source, default_size=(pre.width, pre.height)) as src:
        desc = src.describe()
        for _ in range(spec.pool):
            fr = src.read()
            if fr is None:
                break
            samples.append([pre(fr.image)])
    if not samples:
        raise SourceError(f"the source {spec.source} gave no frame to make samples from")
    return samples, {**desc, "samples": len(samples), "preprocess": pre.describe()}


def make_batches(samples: list[list[np.ndarray]], batch: int) -> list[tuple[np.ndarray, ...]]:
    """Ready batches cycling through the samples (enough of them that consecutive
    batches differ when the pool allows)."""
    n = len(samples)
    count = max(1, min(4, math.ceil(n / batch))) if n > 1 else 1
    out = []
    k = 0
    for _ in range(count):
        picks = [samples[(k + j) % n] for j in range(batch)]
        k += batch
        out.append(
            tuple(np.ascontiguousarray(np.concatenate([p[i] for p in picks], axis=0)) for i in range(len(samples[0])))
        )
    return out


class BatchWorker:
    """One interpreter at ``spec.batch``, ready to run batches.

    ``ModelError`` means the model cannot run at all (missing, corrupt, fails at
    batch 1); ``Unsupported`` means it cannot take this batch size.
    """

    def __init__(self, spec: WorkerSpec, samples: list[list[np.ndarray]] | None = None):
        if spec.batch < 1:
            raise UserError(f"batch size must be at least 1, got {spec.batch}")
        self.spec = spec
        self.batch = spec.batch
        if spec.compiled is not None:
            self.rt = compiled.load(spec.model, spec.compiled, runtime=spec.runtime, num_threads=spec.threads)
        else:
            self.rt = rtmod.load(
                spec.model, runtime=spec.runtime, num_threads=spec.threads, delegate=spec.delegate, xnnpack=spec.xnnpack
            )
        self.base_inputs = list(self.rt.inputs)
        self.signature = batch_signature(self.rt)
        self.resize_ms = 0.0
        if spec.batch != 1 or any(t.shape and t.shape[0] != 1 for t in self.rt.inputs):
            self._resize(spec.batch)
        self.samples_desc: dict[str, Any] | None = None
        #: what the model file says about itself; read only when this worker makes its own samples
        self.facts: ModelFacts | None = None
        if samples is None:
            self.facts = ModelFacts.read(spec.model)
            samples, self.samples_desc = load_samples(self.rt, spec, self.facts)
        self.samples = samples
        self.batches = make_batches(samples, spec.batch)
        self._set = self.rt.interpreter.set_tensor
        self._invoke = self.rt.interpreter.invoke
        self._get = self.rt.interpreter.get_tensor
        self._indices = tuple(t.index for t in self.rt.inputs)
        self._out = self.rt.outputs[0].index if self.rt.outputs else None
        self._k = 0
        # one checked run: a batch size that allocates but cannot invoke is unsupported too
        try:
            self.first_ms = self._timed_first()
        except Exception as e:
            msg = _first_line(e)
            if spec.batch != 1:
                raise Unsupported(f"invoke failed at batch {spec.batch}: {msg}") from None
            raise ModelError(f"{self.rt.name} failed to run {spec.model} (invoke): {msg}") from None

    def _resize(self, batch: int) -> None:
        interp = self.rt.interpreter
        for t in self.rt.inputs:
            if not t.shape:
                raise Unsupported(f"input {t.name!r} is a scalar: it has no batch dimension to resize")
        t0 = time.perf_counter_ns()
        with quiet_native_stderr():
            for t in self.rt.inputs:
                try:
                    interp.resize_tensor_input(t.index, [batch, *t.shape[1:]], strict=False)
                except Exception as e:
                    raise Unsupported(
                        f"resize_tensor_input refused batch {batch} for input {t.name!r}: {_first_line(e)}"
                    ) from None
            try:
                interp.allocate_tensors()
            except Exception as e:
                sig = ", ".join("?" if s is None else str(s) for s in self.signature)
                raise Unsupported(
                    f"allocate_tensors failed at batch {batch} (input batch signature {sig}; "
                    f"the model likely hard-codes batch 1): {_first_line(e)}"
                ) from None
        self.resize_ms = (time.perf_counter_ns() - t0) / 1e6
        self.rt.inputs = [rtmod._tensor_info(d) for d in interp.get_input_details()]
        self.rt.outputs = [rtmod._tensor_info(d) for d in interp.get_output_details()]

    def _timed_first(self) -> float:
        t0 = time.perf_counter_ns()
        self.run_batch()
        return (time.perf_counter_ns() - t0) / 1e6

    def run_batch(self) -> None:
        """Run one batch (the timed unit, see BATCH_SCOPE)."""
        b = self.batches[self._k % len(self.batches)]
        self._k += 1
        for i, x in zip(self._indices, b):
            self._set(i, x)
        self._invoke()
        if self._out is not None:
            self._get(self._out)

    def service(self, samples: int) -> None:
        """Run a query of ``samples`` samples: ceil(samples / batch) batches."""
        for _ in range(max(1, -(-samples // self.batch))):
            self.run_batch()

    def describe_model(self) -> dict[str, Any]:
        return {
            "path": self.rt.model_path,
            "inputs": [t.to_dict() for t in self.base_inputs],
            "outputs": [t.to_dict() for t in self.rt.outputs],
            "batch_signature": self.signature,
        }
