"""Per-operator tables and times, and memory, in `edgebench models ops` and `run --ops` (issue 13, items 2-3)."""

import json

import fastjsonschema
import pytest

from edgebench.agent.runtime import interpreter as rtmod
from edgebench.agent.runtime.optime import parse_gpu_report
from edgebench.agent.wire.protocol import MEMORY_POINTS, RESULT_JSON_SCHEMA
from tests.support.paths import ROOT, run_cli

MOBILENET_INT8 = ROOT / "models" / "mobilenet_v2_0.35_96_int8_untrained.tflite"


def test_models_ops_gives_the_graphs_table_with_gpu_compatibility():
    p = run_cli("models", "ops", str(MOBILENET_INT8), "--json")
    assert p.returncode == 0, p.stderr
    table = json.loads(p.stdout)
    graph = rtmod.load(str(MOBILENET_INT8)).ops
    assert [(o["index"], o["type"], o["backend"]) for o in table["ops"]] == [
        (o["index"], o["type"], o["backend"]) for o in graph["ops"]
    ]
    assert table["summary"] == graph["summary"] and "times" not in table
    assert table["gpu_compatible"] is True and all(o["gpu_compatible"] is True for o in table["ops"])
    text = run_cli("models", "ops", str(MOBILENET_INT8)).stdout
    assert text.splitlines()[0].startswith(graph["summary"]) and len(text.splitlines()) == 2 + graph["total"]


def test_the_analyzers_warnings_mark_their_operators():
    report = (
        "Subgraph#0 main(T#0) -> [T#3]\n"
        "  Op#0 CONV_2D(T#0, T#1, T#2) -> [T#4]\n"
        "  Op#1 CUSTOM(T#4) -> [T#3]\n"
        "GPU COMPATIBILITY WARNING: Not supported custom op MyOp\n"
        "\nGPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 1\n"
    )
    got = parse_gpu_report(report)
    assert got["compatible"] is False and set(got["incompatible"]) == {1}
    assert "custom op MyOp" in got["incompatible"][1]


def test_run_ops_times_every_operator_and_says_how_far_they_add_up(tmp_path):
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(MOBILENET_INT8), "--frames", "5", "--threads", "1", "--ops", "--json", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    fastjsonschema.compile(RESULT_JSON_SCHEMA)(res)
    ops, times = res["ops"], res["ops"]["times"]
    assert len(ops["ops"]) == ops["total"] and all(o["ms"] > 0 for o in ops["ops"])
    assert times["method"] == "isolated" and "overhead" in times["caveats"] and times["threads"] == 1
    assert times["sum_ms"] == pytest.approx(sum(o["ms"] for o in ops["ops"]), abs=1e-3)
    assert times["sum_vs_whole"] == pytest.approx(times["sum_ms"] / times["whole_invoke_ms"], abs=2e-3)
    assert "sum of operators" in p.stdout and f"ran on: {ops['summary']}" in p.stdout
    assert "XNNPACK was asked for" not in p.stderr  # a one-operator SOFTMAX model is no warning of the run


@pytest.mark.parametrize("extra", [(), ("--accelerator", "cpu")], ids=["interpreter", "compiled_model"])
def test_memory_is_read_at_each_moment(tmp_path, extra):
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(MOBILENET_INT8), "--frames", "5", "--json", str(out), *extra)
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    fastjsonschema.compile(RESULT_JSON_SCHEMA)(res)
    mem = res["memory"]
    given = {k: mem[k] for k in MEMORY_POINTS if mem.get(k) is not None}
    expected = set(MEMORY_POINTS) - ({"after_load_mb"} if extra else set())
    assert set(given) == expected and all(v > 0 for v in given.values())
    assert mem["peak_mb"] >= max(given.values()) and mem["after_allocate_mb"] > mem["before_load_mb"]
    assert "memory (RSS MB): load" in p.stdout


def test_benchmark_models_op_profile_is_read_from_its_proto():
    """The proto TFLite's benchmark_model writes with --op_profiling_output_mode=proto, built with the
    wheel's own profiling_info_pb2 (no benchmark_model binary on this machine)."""
    from ai_edge_litert import profiling_info_pb2

    from edgebench.agent.runtime.benchmark_model import parse

    prof = profiling_info_pb2.BenchmarkProfilingData(model_name="m")
    sg = prof.runtime_profile.subgraph_profiles.add(subgraph_name="main", subgraph_index=0)
    for order, (name, kind, us) in enumerate([("softmax", "SOFTMAX", 12), ("xnn", "TfLiteXNNPackDelegate", 840)]):
        op = sg.per_op_profiles.add(name=name, node_type=kind, run_order=1 - order, times_called=50)
        op.inference_microseconds.avg = us
    other = prof.runtime_profile.subgraph_profiles.add(subgraph_name="cond", subgraph_index=1)
    other.per_op_profiles.add(name="ignored", node_type="WHILE")
    got = parse(prof.SerializeToString())
    assert got == [
        {"name": "xnn", "type": "TfLiteXNNPackDelegate", "ms": 0.84, "times_called": 50},
        {"name": "softmax", "type": "SOFTMAX", "ms": 0.012, "times_called": 50},
    ]


def test_benchmark_model_is_found_only_where_it_can_run(tmp_path, monkeypatch):
    from edgebench.agent.runtime.benchmark_model import find

    not_exec = tmp_path / "benchmark_model"
    not_exec.write_text("")
    monkeypatch.setenv("EDGEBENCH_BENCHMARK_MODEL", str(not_exec))
    assert find() is None
    not_exec.chmod(0o755)
    assert find() == str(not_exec)
