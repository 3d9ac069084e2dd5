"""`edgebench run`, `edgebench sweep` and `edgebench run --scenario` feed the model the
same input tensor for the same image.

The three commands prepare inputs on different paths (a per-frame loop, a pool of
samples prepared ahead of time, batches of those samples), so the test catches what
each one actually hands the interpreter: ``set_tensor`` is wrapped on the runtime's
Interpreter class, in this process. The models cover each way the normalization is
decided: by the model's TFLite metadata, by the project's registry (a float and an
int8 model whose registry normalization differs from the default), and by the
documented default (a model neither knows). The image has every kind of pixel value,
so two normalizations that differ anywhere give different tensors.
"""

from __future__ import annotations

import multiprocessing as mp

import cv2
import numpy as np
import pytest

from edgebench import models
from edgebench.agent.measure.run import RunOptions, run
from edgebench.agent.measure.scenario_run import run_scenario_opts
from edgebench.agent.measure.sweep import SweepOptions, sweep, worker_spec
from edgebench.agent.measure.workload import WorkerSpec, load_samples
from edgebench.agent.probes.session import ProbeOptions
from edgebench.agent.runtime import interpreter as rtmod
from tests.support.paths import SHAPES_MODEL
from tests.support.tflite_builder import add_model, with_metadata

NO_PROBES = ProbeOptions(enabled=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A 80x60 colour image holding every pixel value 0..255 in each channel."""
    rng = np.random.default_rng(7)
    img = rng.permutation(np.resize(np.arange(256, dtype=np.uint8), 80 * 60 * 3)).reshape(60, 80, 3)
    p = tmp_path_factory.mktemp("img") / "every_value.png"
    cv2.imwrite(str(p), img)
    return str(p)


@pytest.fixture(scope="module")
def metadata_model(tmp_path_factory):
    """shapes-int8 with TFLite metadata asking for (p - 127.5) / 127.5: its bytes differ from
    the registry's entry, so only the metadata knows its normalization (not the default p - 128)."""
    p = tmp_path_factory.mktemp("models") / "shapes_meta.tflite"
    p.write_bytes(with_metadata(SHAPES_MODEL.read_bytes(), [127.5], [127.5]))
    return str(p)


@pytest.fixture(scope="module")
def unknown_model(tmp_path_factory):
    """shapes-dynamic-int8 (float input) with metadata that says nothing about normalization: its
    bytes differ from the registry's entry, so the documented default (p - 127.5) / 127.5 applies."""
    p = tmp_path_factory.mktemp("models") / "shapes_float_nonorm.tflite"
    p.write_bytes(with_metadata(models.path_of("shapes-dynamic-int8").read_bytes(), [], []))
    return str(p)


@pytest.fixture
def fed(monkeypatch):
    """Every array handed to the interpreter's set_tensor from now on, as (index, copy)."""
    cls = type(rtmod.load(str(SHAPES_MODEL)).interpreter)
    seen: list[tuple[int, np.ndarray]] = []
    real = cls.set_tensor

    def spy(self, index, value):
        seen.append((index, np.array(value, copy=True)))
        return real(self, index, value)

    monkeypatch.setattr(cls, "set_tensor", spy)
    return seen


def _distinct(seen: list[tuple[int, np.ndarray]]) -> list[tuple[int, str, tuple, bytes]]:
    return sorted({(i, a.dtype.str, a.shape, a.tobytes()) for i, a in seen})


def _per_command(fed, model: str, image: str) -> dict[str, tuple[list, str]]:
    """The distinct tensors each command fed, and the normalization source it recorded."""
    out = {}
    res = run(RunOptions(model=model, source=image, frames=3, warmup=1, probes=NO_PROBES, min_frames=1)).result
    out["run"] = (_distinct(fed), res["preprocess"]["normalization"]["source"])
    fed.clear()
    doc = sweep(SweepOptions(model=model, source=image, frames=3, warmup=1, threads=[1]))
    assert doc["counts"]["ok"] == 1, doc["points"]
    out["sweep"] = (_distinct(fed), doc["source"]["preprocess"]["normalization"]["source"])
    fed.clear()
    doc = run_scenario_opts(
        RunOptions(
            model=model,
            source=image,
            scenario="single-stream",
            frames=3,
            warmup=1,
            min_queries=1,
            min_duration_s=0.0,
            probes=NO_PROBES,
        )
    )
    out["scenario"] = (_distinct(fed), doc["source"]["preprocess"]["normalization"]["source"])
    fed.clear()
    return out


CASES = {
    "metadata": ("metadata_model", "metadata"),
    "registry-float": ("shapes-dynamic-int8", "registry"),
    "registry-int8": ("mobilenet-v2-0.35-96-int8-untrained", "registry"),
    "default": ("unknown_model", "default"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_run_sweep_and_scenario_feed_identical_tensors(case, fed, image, request):
    which, source = CASES[case]
    model = request.getfixturevalue(which) if which.endswith("_model") else str(models.path_of(which))
    got = _per_command(fed, model, image)
    tensors, recorded = got["run"]
    assert len(tensors) == 1, "one image: every frame of the run feeds the same tensor"
    assert recorded == source
    for command in ("sweep", "scenario"):
        assert got[command][0] == tensors, f"{command} fed a different tensor than run for the same image"
        assert got[command][1] == source, f"{command} recorded normalization from {got[command][1]}"


def _samples_in_a_child(spec: WorkerSpec):
    rt = rtmod.load(spec.model, runtime=spec.runtime, num_threads=spec.threads, xnnpack=spec.xnnpack)
    samples, desc = load_samples(rt, spec)
    return samples[0][0], desc["preprocess"]["normalization"]


def test_a_sweep_instance_process_prepares_the_same_samples(metadata_model, image):
    """`sweep --processes`: the spec crosses into a fresh process, which plans again from it."""
    spec = worker_spec(SweepOptions(model=metadata_model, source=image), 1, 1)
    here = _samples_in_a_child(spec)
    with mp.get_context("spawn").Pool(1) as pool:
        there = pool.apply(_samples_in_a_child, (spec,))
    assert there[1] == here[1] and here[1]["source"] == "metadata"
    assert there[0].dtype == here[0].dtype and np.array_equal(there[0], here[0])


def test_non_image_model_gets_the_same_synthetic_tensors(fed, tmp_path):
    """Non-image models: seeded random tensors, the same first samples on every path."""
    model = tmp_path / "add.tflite"
    model.write_bytes(add_model((1, 4, 4)))
    run(RunOptions(model=str(model), frames=4, warmup=0, probes=NO_PROBES, min_frames=1))
    ran = _distinct(fed)
    fed.clear()
    sweep(SweepOptions(model=str(model), frames=4, warmup=0, threads=[1]))
    swept = _distinct(fed)
    assert len(ran) == 8  # two inputs x four pooled samples
    assert set(ran) <= set(swept)
