"""Per-operator times from TFLite's own ``benchmark_model``, where the board has it.

Many vendor board images ship the C++ tool (NXP's BSP under
``/usr/bin/tensorflow-lite-*/examples/``). Run with ``--enable_op_profiling=true
--op_profiling_output_mode=proto --op_profiling_output_file=F`` it writes a
``tflite.profiling.BenchmarkProfilingData`` protobuf, read here with the
``profiling_info_pb2`` module that ships in the ai-edge-litert wheel. Its figures are the
runtime's own profiler: one entry per node of the executed graph, so a delegate's
partition is ONE entry (its fused operators are not split), and the per-node averages are
over the tool's runs.

Found as ``$EDGEBENCH_BENCHMARK_MODEL``, else ``benchmark_model`` on ``PATH``, else the NXP
BSP's location. Not found: edgebench.agent.runtime.optime times operators itself.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from typing import Any

from edgebench.agent.errors import ModelError

METHOD = "benchmark_model"
CAVEATS = (
    "TFLite benchmark_model's op profiler (average per node over its runs): a delegate's partition is one "
    "entry, its fused operators are not split"
)


def find() -> str | None:
    """The ``benchmark_model`` binary, or None."""
    given = os.environ.get("EDGEBENCH_BENCHMARK_MODEL")
    if given:
        return given if os.access(given, os.X_OK) else None
    found = shutil.which("benchmark_model")
    if found:
        return found
    bsp = sorted(glob.glob("/usr/bin/tensorflow-lite-*/examples/benchmark_model"))
    return bsp[-1] if bsp else None


def parse(data: bytes) -> list[dict[str, Any]]:
    """The runtime profile's entries of the main subgraph: name, node type, average ms, runs."""
    from ai_edge_litert import profiling_info_pb2

    prof = profiling_info_pb2.BenchmarkProfilingData()
    prof.ParseFromString(data)
    out = []
    rt = prof.runtime_profile
    for sg in rt.subgraph_profiles:
        if sg.subgraph_index != 0:
            continue
        for op in sorted(sg.per_op_profiles, key=lambda o: o.run_order):
            out.append(
                {
                    "name": op.name,
                    "type": op.node_type,
                    "ms": round(op.inference_microseconds.avg / 1000.0, 4),
                    "times_called": int(op.times_called),
                }
            )
    return out


def profile(binary: str, path: str, threads: int, xnnpack: bool, runs: int = 50) -> dict[str, Any]:
    """Run ``benchmark_model`` on ``path`` with op profiling; its entries, their sum, method and caveats."""
    with tempfile.TemporaryDirectory(prefix="edgebench-bm-") as tmp:
        out = os.path.join(tmp, "ops.pb")
        cmd = [
            binary,
            f"--graph={path}",
            f"--num_threads={threads}",
            f"--num_runs={runs}",
            f"--use_xnnpack={'true' if xnnpack else 'false'}",
            "--enable_op_profiling=true",
            "--op_profiling_output_mode=proto",
            f"--op_profiling_output_file={out}",
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0 or not os.path.exists(out):
            last = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelError(f"{binary} failed on {path} (exit {p.returncode}): {last[0]}")
        with open(out, "rb") as f:
            entries = parse(f.read())
    return {
        "method": METHOD,
        "caveats": CAVEATS,
        "binary": binary,
        "runs": runs,
        "threads": threads,
        "entries": entries,
        "sum_ms": round(sum(e["ms"] for e in entries), 4),
    }
