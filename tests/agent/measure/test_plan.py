"""The run plan's decisions in their documented order (edgebench.agent.measure.plan)."""

from __future__ import annotations

import pickle

import pytest

from edgebench import models
from edgebench.agent.errors import UserError
from edgebench.agent.measure.plan import ModelFacts, plan_inputs, resolve_normalization
from edgebench.agent.measure.workload import WorkerSpec
from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime import registry
from edgebench.agent.runtime.interpreter import TensorInfo
from edgebench.agent.runtime.tflite_meta import ModelMeta, TensorMeta
from tests.support.tflite_builder import add_model

FLOAT_IMAGE = TensorInfo("image", 0, [1, 8, 8, 3], "float32", 0.0, 0)
META = ModelMeta(inputs=[TensorMeta(mean=[10.0], std=[20.0])])
KNOWN = {"name": "x", "normalization": {"mean": 30.0, "std": 40.0}}


def _facts(meta=None, known=None) -> ModelFacts:
    return ModelFacts(path="m.tflite", sha256="0" * 64, meta=meta, known=known)


@pytest.mark.parametrize(
    ("config", "meta", "known", "expect"),
    [
        ({"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0]}, META, KNOWN, ([1.0, 2.0, 3.0], "config")),
        (None, META, KNOWN, ([10.0] * 3, "metadata")),
        (None, ModelMeta(inputs=[TensorMeta()]), KNOWN, ([30.0] * 3, "registry")),
        (None, None, {"name": "x"}, ([127.5] * 3, "default")),
    ],
    ids=["config", "metadata", "registry", "default"],
)
def test_normalization_comes_from_config_then_metadata_then_registry_then_default(config, meta, known, expect):
    n = resolve_normalization(config, _facts(meta, known), FLOAT_IMAGE)
    assert (n.mean, n.source) == expect


def test_model_facts_of_a_registry_model_pickle():
    path = str(models.path_of("shapes-dynamic-int8"))
    facts = ModelFacts.read(path)
    assert facts.known is not None and facts.known["name"] == "shapes-dynamic-int8"
    assert facts.sha256 == rtmod.file_sha256(path)
    assert pickle.loads(pickle.dumps(facts)) == facts
    assert registry.normalization(facts.known).source == "registry"


def test_per_sample_inputs_are_planned_at_batch_one(tmp_path):
    model = tmp_path / "add.tflite"
    model.write_bytes(add_model((1, 4, 4), batch_resizable=True))
    spec = WorkerSpec(model=str(model))
    batch4 = [TensorInfo(**{**t.__dict__, "shape": [4, 4, 4]}) for t in rtmod.load(str(model)).inputs]
    facts = ModelFacts.read(str(model))
    plan = plan_inputs(spec, batch4, facts, per_sample=True)
    assert not plan.image and [t.shape for t in plan.tensors] == [[1, 4, 4], [1, 4, 4]]
    assert [t.shape for t in plan_inputs(spec, batch4, facts).tensors] == [[4, 4, 4], [4, 4, 4]]
    spec.source = "photo.jpg"
    with pytest.raises(UserError, match=r"not an image model \(inputs \[\[4, 4, 4\], \[4, 4, 4\]\]\)"):
        plan_inputs(spec, batch4, facts, per_sample=True)
