"""What ran where, read from the graph after allocate_tensors (issue 13, items 2 and 4)."""

import json

import pytest

from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime.cut import one_op_models
from edgebench.agent.runtime.graph import CPU_KERNELS, XNNPACK
from tests.support.paths import REFDATA, ROOT, run_cli

MOBILENET_INT8 = ROOT / "models" / "mobilenet_v2_0.35_96_int8_untrained.tflite"


def _xnnpack_takes_alone(tmp_path, index: int, model: bytes) -> bool:
    """Whether XNNPACK takes this operator when it is the whole model: an independent
    reading of the graph, operator by operator."""
    path = tmp_path / f"op{index}.tflite"
    path.write_bytes(model)
    return rtmod.load(str(path), num_threads=1).delegated_partitions > 0


@pytest.mark.parametrize(
    "model",
    [
        MOBILENET_INT8,
        pytest.param(
            REFDATA / "mobilenet_v2_1.0_224_quant.tflite",
            marks=pytest.mark.skipif(not REFDATA.is_dir(), reason=f"refdata not at {REFDATA}"),
        ),
    ],
    ids=["bundled-int8", "refdata-uint8"],
)
def test_op_table_under_xnnpack_agrees_with_each_operator_alone(tmp_path, model):
    rt = rtmod.load(str(model), num_threads=1)
    table = rt.ops
    alone = {i: _xnnpack_takes_alone(tmp_path, i, m) for i, _, m in one_op_models(str(model))}
    assert table["total"] == len(alone) == len(table["ops"])
    on_cpu = {op["index"] for op in table["ops"] if op["backend"] == CPU_KERNELS}
    assert on_cpu == {i for i, took in alone.items() if not took}
    assert {op["index"] for op in table["ops"] if op["backend"] == XNNPACK} == {i for i, t in alone.items() if t}
    assert table["delegated"] == table["total"] - len(on_cpu) > 0
    assert table["summary"] == f"{table['delegated']} of {table['total']} operators on XNNPACK"
    assert sorted(i for p in table["partitions"] for i in p["ops"]) == sorted(set(alone) - on_cpu)
    assert table["fallback"] == sorted({op["type"] for op in table["ops"] if op["index"] in on_cpu})
    assert rt.xnnpack is True and not rt.warnings


def test_with_xnnpack_off_no_operator_is_delegated_and_nothing_warns():
    rt = rtmod.load(str(MOBILENET_INT8), num_threads=1, xnnpack=False)
    assert rt.ops["delegated"] == 0 and rt.ops["partitions"] == [] and rt.ops["total"] > 0
    assert {op["backend"] for op in rt.ops["ops"]} == {CPU_KERNELS}
    d = rt.describe()
    assert d["xnnpack"] is False and d["xnnpack_requested"] is False and "warnings" not in d


@pytest.fixture
def softmax_only(tmp_path):
    """The int8 MobileNet's last operator (SOFTMAX) as a model of its own: XNNPACK does not take it."""
    (i, op, model) = one_op_models(str(MOBILENET_INT8))[-1]
    assert op == "SOFTMAX"
    path = tmp_path / "softmax_int8.tflite"
    path.write_bytes(model)
    return path


def test_xnnpack_asked_for_and_refused_is_reported_and_warned(softmax_only):
    rt = rtmod.load(str(softmax_only), num_threads=1)
    d = rt.describe()
    assert d["xnnpack_requested"] is True and d["xnnpack"] is False and d["delegated_partitions"] == 0
    assert len(d["warnings"]) == 1 and "XNNPACK was asked for but applied to no operator" in d["warnings"][0]


def test_run_says_xnnpack_did_not_apply_in_the_result_and_on_stderr(tmp_path, softmax_only):
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(softmax_only), "--frames", "5", "--warmup", "1", "--json", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["runtime"]["xnnpack"] is False and res["runtime"]["xnnpack_requested"] is True
    assert any("XNNPACK was asked for but applied to no operator" in w for w in res["warnings"])
    assert "XNNPACK was asked for but applied to no operator" in p.stderr
