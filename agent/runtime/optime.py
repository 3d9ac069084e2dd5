"""Per-operator diagnostics: where each operator ran, whether the GPU could take it, and
how long it takes, on any board with only Python.

* **Placement** comes from the Interpreter's graph after ``allocate_tensors``
  (edgebench.agent.runtime.graph).
* **GPU compatibility** is the static check of the model analyzer shipped in the wheel
  (``ai_edge_litert._pywrap_analyzer_wrapper.ModelAnalyzer``, the engine behind TF's
  ``tf.lite.experimental.Analyzer``); its text report is parsed here (:func:`gpu_compat`):
  an operator is incompatible when a ``GPU COMPATIBILITY WARNING`` follows its ``Op#N`` line.
* **Time** (:func:`time_ops`, method ``isolated``): TFLite's Python API has no per-operator
  profiler, so each operator is cut from the flatbuffer into a one-operator model
  (edgebench.agent.runtime.cut) and its ``invoke()`` timed with the same runtime, threads
  and XNNPACK setting, on random inputs of its input tensors' shapes and dtypes (zeros for
  integer tensors that are not quantized activations: they are often indices). Each
  figure is the median of ``runs`` invokes after a warm-up. Known caveats, written into the
  result: every figure includes one ``invoke()``'s fixed overhead; operators that a delegate
  fuses in the whole graph are timed apart; caches are warm for that operator alone. The
  sum is compared with the whole model's median ``invoke()`` measured in the same call
  (``sum_vs_whole``), so the gap is never hidden.

Where the board has TFLite's ``benchmark_model`` (many vendor images ship it), its own op
profiler's figures are added beside them (``benchmark_model``: one entry per executed node,
edgebench.agent.runtime.benchmark_model), with their sum against the same whole invoke.
"""

from __future__ import annotations

import logging
import os
import re
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from edgebench.agent.runtime import interpreter as rtmod

METHOD = "isolated"
CAVEATS = (
    "each operator cut from the flatbuffer into a one-operator model and its invoke() timed alone "
    "(median of the runs): every figure includes one invoke()'s fixed overhead, operators a delegate "
    "fuses in the whole graph are timed apart, and caches are warm for that operator alone"
)

_OP_LINE = re.compile(r"^\s*Op#(\d+)\s")


def gpu_compat(path: str) -> dict[str, Any] | None:
    """``{"compatible": bool, "incompatible": {op index: reason}}`` from the wheel's analyzer,
    None when it is not importable."""
    try:
        from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer
    except Exception:
        return None
    text = analyzer.ModelAnalyzer(path, True, True)
    return parse_gpu_report(text)


def parse_gpu_report(text: str) -> dict[str, Any]:
    bad: dict[int, str] = {}
    current: int | None = None
    in_main = False
    for line in text.splitlines():
        if not line.strip():
            current = None  # a blank line ends an operator's block (the summary warnings follow one)
        if line.startswith("Subgraph#"):
            in_main = line.startswith("Subgraph#0")
            current = None
        m = _OP_LINE.match(line)
        if m and in_main:
            current = int(m.group(1))
        elif "GPU COMPATIBILITY WARNING" in line and current is not None:
            bad.setdefault(current, line.split("GPU COMPATIBILITY WARNING:", 1)[-1].strip())
    return {
        "compatible": "looks compatible with GPU delegate" in text and not bad,
        "incompatible": bad,
        "source": "ai_edge_litert model analyzer (static check)",
    }


def _inputs(rt: rtmod.Runtime, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for t in rt.inputs:
        dt = np.dtype(t.dtype)
        if dt.kind == "f":
            out.append(rng.standard_normal(t.shape).astype(dt))
        elif t.quantized:
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, info.max, size=t.shape, endpoint=True).astype(dt))
        else:
            out.append(np.zeros(t.shape, dt))
    return out


def _median_invoke_ms(rt: rtmod.Runtime, runs: int, warmup: int) -> float:
    for t, x in zip(rt.inputs, _inputs(rt, np.random.default_rng(0))):
        rt.interpreter.set_tensor(t.index, x)
    invoke, clock = rt.interpreter.invoke, time.perf_counter_ns
    for _ in range(warmup):
        invoke()
    laps = []
    for _ in range(runs):
        t0 = clock()
        invoke()
        laps.append(clock() - t0)
    return statistics.median(laps) / 1e6


def _quiet_load(path: str, threads: int, xnnpack: bool) -> rtmod.Runtime:
    """Load a one-operator model without its "XNNPACK applied to no operator" warning: the
    table says where each operator ran alone (``alone_on``)."""
    log = logging.getLogger("edgebench.runtime")
    was = log.disabled
    log.disabled = True
    try:
        return rtmod.load(path, num_threads=threads, xnnpack=xnnpack)
    finally:
        log.disabled = was


def time_ops(path: str, threads: int, xnnpack: bool = True, runs: int = 50, warmup: int = 5) -> dict[str, Any]:
    """Median invoke time of each operator alone and of the whole model (see the module docstring)."""
    from edgebench.agent.runtime.cut import one_op_models

    whole = rtmod.load(path, num_threads=threads, xnnpack=xnnpack)
    whole_ms = _median_invoke_ms(whole, runs, warmup)
    ops = []
    with tempfile.TemporaryDirectory(prefix="edgebench-ops-") as tmp:
        for index, kind, model in one_op_models(path):
            p = os.path.join(tmp, f"op{index}.tflite")
            with open(p, "wb") as f:
                f.write(model)
            rt = _quiet_load(p, threads, xnnpack)
            ms = _median_invoke_ms(rt, runs, warmup)
            ops.append({"index": index, "type": kind, "ms": round(ms, 4), "alone_on": rt.ops["ops"][0]["backend"]})
    total = sum(o["ms"] for o in ops)
    return {
        "method": METHOD,
        "caveats": CAVEATS,
        "runs": runs,
        "threads": threads,
        "ops": ops,
        "sum_ms": round(total, 4),
        "whole_invoke_ms": round(whole_ms, 4),
        "sum_vs_whole": round(total / whole_ms, 3) if whole_ms > 0 else None,
    }


def diagnose(rt: rtmod.Runtime, times: bool, runs: int = 50) -> dict[str, Any] | None:
    """The op table of a loaded Interpreter with GPU compatibility and (``times``) per-operator times."""
    if rt.ops is None:
        return None
    table = {**rt.ops, "ops": [dict(o) for o in rt.ops["ops"]]}
    gpu = gpu_compat(rt.model_path)
    if gpu is not None:
        table["gpu_compatible"] = gpu["compatible"]
        for o in table["ops"]:
            o["gpu_compatible"] = o["index"] not in gpu["incompatible"]
            if o["index"] in gpu["incompatible"]:
                o["gpu_reason"] = gpu["incompatible"][o["index"]]
    if times:
        t = time_ops(rt.model_path, rt.num_threads, rt.xnnpack_requested, runs=runs)
        by_index = {o["index"]: o for o in t.pop("ops")}
        for o in table["ops"]:
            o["ms"] = by_index[o["index"]]["ms"]
        table["times"] = t
        table.update(_benchmark_model(rt, runs, t["whole_invoke_ms"]))
    return table


def _benchmark_model(rt: rtmod.Runtime, runs: int, whole_ms: float) -> dict[str, Any]:
    """``{"benchmark_model": its profile}`` where the board has TFLite's tool, else nothing;
    a tool that fails is said in the profile, never fatal to the run."""
    from edgebench.agent.errors import ModelError
    from edgebench.agent.runtime import benchmark_model as bm

    binary = bm.find()
    if binary is None:
        return {}
    try:
        prof = bm.profile(binary, rt.model_path, rt.num_threads, rt.xnnpack_requested, runs)
    except ModelError as e:
        return {"benchmark_model": {"method": bm.METHOD, "binary": binary, "error": str(e)}}
    prof["sum_vs_whole"] = round(prof["sum_ms"] / whole_ms, 3) if whole_ms > 0 else None
    return {"benchmark_model": prof}


def format_table(table: dict[str, Any]) -> str:
    """The op table for a terminal: one line per operator, slowest first when timed."""
    ops = table["ops"]
    timed = "times" in table
    rows = sorted(ops, key=lambda o: -o["ms"]) if timed else ops
    lines = [table["summary"] + (f"; CPU fallback: {', '.join(table['fallback'])}" if table["fallback"] else "")]
    head = f"{'op':>4}  {'type':<24} {'backend':<24} {'GPU ok':<6}" + ("      ms" if timed else "")
    lines.append(head)
    for o in rows:
        gpu = {True: "yes", False: "no"}.get(o.get("gpu_compatible"), "?")
        line = f"{o['index']:>4}  {o['type']:<24} {o['backend']:<24} {gpu:<6}"
        lines.append((line + (f" {o['ms']:>8.4f}" if timed else "")).rstrip())
    bm = table.get("benchmark_model")
    if bm and bm.get("entries"):
        lines.append(f"benchmark_model ({bm['binary']}), {len(bm['entries'])} nodes, slowest first:")
        for e in sorted(bm["entries"], key=lambda e: -e["ms"]):
            lines.append(f"      {e['type']:<24} {e['name'][:40]:<40} {e['ms']:>8.4f}")
        lines.append(f"sum {bm['sum_ms']:.4g} ms = {bm['sum_vs_whole']:.2f}x the whole invoke ({bm['caveats']})")
    elif bm:
        lines.append(f"benchmark_model: {bm['error']}")
    if timed:
        t = table["times"]
        lines.append(
            f"sum of operators {t['sum_ms']:.4g} ms vs whole invoke {t['whole_invoke_ms']:.4g} ms "
            f"({t['sum_vs_whole']:.2f}x; method {t['method']}: {t['caveats']})"
        )
    return "\n".join(lines)
