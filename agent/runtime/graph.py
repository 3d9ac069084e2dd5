"""Which operator ran where: the op table of an allocated Interpreter.

Read from the graph AFTER ``allocate_tensors`` (when TFLite has applied XNNPACK and any
delegate), never from what was asked for: an emulated arm64 board without a CPU
description in ``/sys`` asks for XNNPACK and gets none, and only the graph tells.

``interpreter._get_ops_details()`` lists the model's operators (index 0..M-1) and, for
every partition a delegate took, one extra node whose ``op_name`` is ``DELEGATE``. A
delegate node's inputs and outputs bound its partition: walking back from its outputs
through the producing operators, stopping at its inputs, gives the operators it replaced
(:func:`_partition`). Every other operator ran on the runtime's built-in CPU kernels.

Which delegate a DELEGATE node belongs to is not in the API. Only one delegate can have
applied in the usual cases: XNNPACK (the default CPU delegate, no ``--delegate``) or the
external delegate with XNNPACK off. With both asked for, TFLite applies the external
delegate first and XNNPACK (lazily, at ``allocate_tensors``) on what is left, so the
partitions are named ``LIB or XNNPACK`` and the table says so in ``caveat``.

Hand-written: TFLite exposes no per-operator placement API in Python; this walk over
the private ``_get_ops_details()`` is the whole of it (tested on the bundled models).
"""

from __future__ import annotations

from typing import Any

#: what ran an operator no delegate took
CPU_KERNELS = "CPU (built-in kernels)"
XNNPACK = "XNNPACK"


def _partition(node: dict[str, Any], producers: dict[int, int], inputs_of: dict[int, list[int]]) -> list[int]:
    """The original operators a DELEGATE node replaced: walk back from its outputs to its inputs."""
    stop = {int(t) for t in node["inputs"]}
    seen: set[int] = set()
    todo = [int(t) for t in node["outputs"]]
    while todo:
        t = todo.pop()
        if t in stop or t not in producers:
            continue
        op = producers[t]
        if op in seen:
            continue
        seen.add(op)
        todo.extend(inputs_of[op])
    return sorted(seen)


def delegate_name(library: str | None, xnnpack_asked: bool) -> str:
    """The name a DELEGATE node gets (see the module docstring)."""
    if library and xnnpack_asked:
        return f"{library} or {XNNPACK}"
    return library or XNNPACK


def op_table(details: list[dict[str, Any]], library: str | None, xnnpack_asked: bool) -> dict[str, Any]:
    """The op table: every original operator with its type and backend, the delegate
    partitions, and the counts; ``details`` is ``_get_ops_details()`` after allocation."""
    originals = [d for d in details if d.get("op_name") != "DELEGATE"]
    nodes = [d for d in details if d.get("op_name") == "DELEGATE"]
    producers = {int(t): int(d["index"]) for d in originals for t in d["outputs"]}
    inputs_of = {int(d["index"]): [int(t) for t in d["inputs"] if int(t) >= 0] for d in originals}
    name = delegate_name(library, xnnpack_asked)
    backend = {int(d["index"]): CPU_KERNELS for d in originals}
    partitions = []
    for node in nodes:
        ops = _partition(node, producers, inputs_of)
        for i in ops:
            backend[i] = name
        partitions.append({"node": int(node["index"]), "backend": name, "ops": ops})
    delegated = sum(1 for b in backend.values() if b != CPU_KERNELS)
    table = {
        "source": "interpreter graph after allocate_tensors (_get_ops_details)",
        "total": len(originals),
        "delegated": delegated,
        "delegate": name if nodes else None,
        "summary": f"{delegated} of {len(originals)} operators on {name}"
        if nodes
        else f"0 of {len(originals)} operators delegated: all on the CPU's built-in kernels",
        "partitions": partitions,
        "ops": [
            {"index": int(d["index"]), "type": str(d["op_name"]), "backend": backend[int(d["index"])]}
            for d in originals
        ],
        "fallback": sorted({str(d["op_name"]) for d in originals if backend[int(d["index"])] == CPU_KERNELS}),
    }
    if library and xnnpack_asked and nodes:
        table["caveat"] = (
            "an external delegate and XNNPACK were both asked for: TFLite applies XNNPACK to what the delegate "
            "left, and the graph does not say which delegate took which partition"
        )
    return table
