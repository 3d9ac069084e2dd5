"""Cut operators out of a .tflite flatbuffer into a model of their own.

Used by the Python-only per-operator timing (edgebench.agent.runtime.optime): each
operator of the main subgraph becomes a one-operator model, with the same weights,
quantization and options, that any TFLite runtime can load and time on any board.

The model is unpacked with the object API of the schema module that ships in
ai-edge-litert (``schema_py_generated``, as edgebench.agent.runtime.modelinfo reads it),
its main subgraph's operators, inputs and outputs replaced, and packed again with the
``flatbuffers`` library. Signature definitions refer to the original inputs and outputs,
so they are dropped. Buffers other operators use are emptied in the copy (restored after packing).
"""

from __future__ import annotations

from typing import Any

from edgebench.agent.errors import ModelError
from edgebench.agent.runtime.modelinfo import FlatModel, _list, _schema


def _produced(ops: list[Any]) -> set[int]:
    return {int(t) for op in ops for t in _list(op.outputs) if int(t) >= 0}


def cut(fm: FlatModel, first: int, last: int) -> bytes:
    """The flatbuffer of operators ``first..last`` (inclusive) of ``fm``'s main subgraph:
    its inputs are the tensors those operators read that none of them writes and that are
    not weights; its outputs are what they write that none of them reads."""
    ops = fm.ops[first : last + 1]
    if not ops:
        raise ModelError(f"no operators {first}..{last} in {fm.path} ({len(fm.ops)} operators)")
    produced = _produced(ops)
    read = [int(t) for op in ops for t in _list(op.inputs) if int(t) >= 0]
    inputs = list(dict.fromkeys(t for t in read if t not in produced and not fm.is_const(fm.tensors[t])))
    outputs = [t for t in dict.fromkeys(t for op in ops for t in _list(op.outputs) if int(t) >= 0) if t not in read]
    main = fm.main
    kept = {fm.tensors[t].buffer for op in ops for t in _list(op.inputs) if int(t) >= 0}
    dropped = {i: b.data for i, b in enumerate(fm.buffers) if i not in kept and b.data is not None}
    for i in dropped:  # weights of other operators: not packed (restored below)
        fm.buffers[i].data = None
    saved = (main.operators, main.inputs, main.outputs, fm.model.signatureDefs, fm.model.subgraphs)
    main.operators, main.inputs, main.outputs = ops, inputs, outputs or [int(_list(ops[-1].outputs)[0])]
    fm.model.signatureDefs = None
    fm.model.subgraphs = [main]
    try:
        import flatbuffers

        b = flatbuffers.Builder(max(1024, len(fm.buf) + 4096))
        b.Finish(fm.model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
    finally:
        main.operators, main.inputs, main.outputs, fm.model.signatureDefs, fm.model.subgraphs = saved
        for i, data in dropped.items():
            fm.buffers[i].data = data


def one_op_models(path: str) -> list[tuple[int, str, bytes]]:
    """``(index, operator type, flatbuffer)`` for every operator of ``path``'s main subgraph."""
    _schema()
    fm = FlatModel(path)
    return [(i, fm.op_name(op), cut(fm, i, i)) for i, op in enumerate(fm.ops)]
