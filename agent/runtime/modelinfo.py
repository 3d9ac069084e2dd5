"""What is inside a .tflite file: inputs, outputs, quantization, operators, and which
operators an Edge TPU can take. Read from the flatbuffer itself with the schema
module that ships in ai-edge-litert (``ai_edge_litert.schema_py_generated``), so no
interpreter is created and nothing is run.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from typing import Any

from edgebench.agent.errors import ModelError, UserError
from edgebench.agent.runtime.interpreter import read_model_file

#: Operators the Edge TPU compiler can map, as listed in Coral's "TensorFlow models on
#: the Edge TPU", section "Supported operations" (coral.ai/docs/edgetpu/models-intro),
#: spelled as TFLite builtin operators. Every tensor must also be 8-bit quantized, and
#: each operator has limits the compiler checks (e.g. Softmax: 1-D, at most 16,000
#: elements; no fused activation on pooling): being listed means "can be mapped", and
#: the compiler decides.
EDGETPU_OPS = frozenset(
    {
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "EXPAND_DIMS",
        "FULLY_CONNECTED",
        "L2_NORMALIZATION",
        "LOGISTIC",
        "LSTM",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "MAXIMUM",
        "MAX_POOL_2D",
        "MEAN",
        "MINIMUM",
        "MUL",
        "PACK",
        "PAD",
        "PRELU",
        "QUANTIZE",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "RELU",
        "RELU6",
        "RELU_N1_TO_1",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "RSQRT",
        "SLICE",
        "SOFTMAX",
        "SPACE_TO_DEPTH",
        "SPLIT",
        "SQUARED_DIFFERENCE",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SUB",
        "SUM",
        "TANH",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
    }
)
EDGETPU_SOURCE = "coral.ai/docs/edgetpu/models-intro/#supported-operations"
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
_EIGHT_BIT = ("uint8", "int8")


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except Exception as e:  # not installed, or a build without the schema module
        raise UserError(
            f"cannot read .tflite files here: ai_edge_litert.schema_py_generated is not importable ({e}); "
            "pip install ai-edge-litert"
        ) from None
    return schema


def _enum_names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if k.isupper() and isinstance(v, int)}


def _s(b: Any) -> str | None:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def _list(a: Any) -> list:
    if a is None:
        return []
    return list(a.tolist()) if hasattr(a, "tolist") else list(a)


def read_model(path: str):
    """The unpacked flatbuffer (schema ModelT) and the raw bytes; ModelError if it is not one."""
    buf = read_model_file(path)
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as e:
        raise ModelError(
            f"{path} is a damaged TFLite flatbuffer: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    return model, buf


class FlatModel:
    """A parsed .tflite flatbuffer with the lookups every question about it needs:
    operator names, tensor dtypes, which tensors are constants (weights)."""

    def __init__(self, path: str):
        self.path = path
        self.model, self.buf = read_model(path)
        schema = _schema()
        self._op_names = _enum_names(schema.BuiltinOperator)
        self.type_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
        if not self.model.subgraphs:
            raise ModelError(f"{path} has no subgraphs")
        self.codes = [self._opname(c) for c in (self.model.operatorCodes or [])]
        self.buffers = self.model.buffers or []
        self.main = self.model.subgraphs[0]
        self.tensors = self.main.tensors or []
        self.ops = self.main.operators or []

    def _opname(self, code) -> str:
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        name = self._op_names.get(builtin, f"BUILTIN_{builtin}")
        return (_s(code.customCode) or "CUSTOM") if name == "CUSTOM" else name

    def op_name(self, op) -> str:
        return self.codes[op.opcodeIndex]

    def dtype(self, t) -> str:
        return self.type_names.get(t.type, str(t.type))

    def is_const(self, t) -> bool:
        bufs = self.buffers
        b = bufs[t.buffer] if t.buffer is not None and 0 <= t.buffer < len(bufs) else None
        return b is not None and ((b.data is not None and len(b.data) > 0) or bool(getattr(b, "size", 0)))

    def tensor_doc(self, t) -> dict[str, Any]:
        q = t.quantization
        scales = _list(getattr(q, "scale", None)) if q is not None else []
        zps = _list(getattr(q, "zeroPoint", None)) if q is not None else []
        doc: dict[str, Any] = {
            "name": _s(t.name),
            "shape": _list(t.shape),
            "shape_signature": _list(t.shapeSignature) or _list(t.shape),
            "dtype": self.dtype(t),
        }
        if len(scales) == 1:
            doc["scale"] = float(scales[0])
            doc["zero_point"] = int(zps[0]) if zps else 0
        elif len(scales) > 1:
            doc["per_channel_scales"] = len(scales)
        return doc

    def op_counts(self) -> Counter[str]:
        """Operators by name over every subgraph."""
        return Counter(self.codes[op.opcodeIndex] for sg in self.model.subgraphs for op in sg.operators or [])

    def dtype_census(self) -> tuple[Counter[str], Counter[str]]:
        """(weight bytes by dtype, activation tensors by dtype) of the main subgraph."""
        weight_bytes: Counter[str] = Counter()
        act_types: Counter[str] = Counter()
        for t in self.tensors:
            if self.is_const(t):
                b = self.buffers[t.buffer]
                weight_bytes[self.dtype(t)] += len(b.data) if b.data is not None else int(getattr(b, "size", 0) or 0)
            else:
                act_types[self.dtype(t)] += 1
        return weight_bytes, act_types

    def min_runtime_version(self) -> str | None:
        for m in self.model.metadata or []:
            if _s(m.name) == "min_runtime_version" and 0 <= m.buffer < len(self.buffers):
                data = self.buffers[m.buffer].data
                if data is not None:
                    return bytes(bytearray(data)).split(b"\0", 1)[0].decode("ascii", "replace")
        return None


def quantization_kind(weight_bytes: Counter[str], act_types: Counter[str], edgetpu_compiled: bool) -> str:
    """What kind of quantization the weights and activations say this is, in words."""
    float_acts = act_types.get("float32", 0) + act_types.get("float16", 0)
    if edgetpu_compiled:
        return "compiled for the Edge TPU (needs the Edge TPU delegate)"
    no_float_weights = weight_bytes.get("float32", 0) == 0 and weight_bytes.get("float16", 0) == 0
    if no_float_weights and not float_acts and (weight_bytes.get("int8") or weight_bytes.get("uint8")):
        return "full integer (8-bit weights and activations)"
    if weight_bytes.get("int8") and float_acts:
        return "dynamic range (int8 weights, float activations)"
    if weight_bytes.get("float16"):
        return "float16 weights"
    if weight_bytes.get("int16") or act_types.get("int16"):
        return "16-bit activations"
    return "float32 (not quantized)"


def _edgetpu_ok(fm: FlatModel, op) -> tuple[bool, str | None]:
    """Can the Edge TPU take this operator: listed, and all its tensors 8-bit (biases may be int32)?"""
    name = fm.op_name(op)
    if name not in EDGETPU_OPS:
        return False, f"{name} is not an Edge TPU operation"
    for i in list(_list(op.inputs)) + list(_list(op.outputs)):
        if i < 0:
            continue
        t = fm.tensors[i]
        dt = fm.dtype(t)
        if dt in _EIGHT_BIT or (dt == "int32" and fm.is_const(t)):
            continue
        return False, f"{name} has a {dt} tensor ({_s(t.name)}); the Edge TPU takes 8-bit quantized tensors only"
    return True, None


def edgetpu_report(fm: FlatModel, compiled: bool) -> dict[str, Any]:
    """Which operators the Edge TPU compiler could map. It maps ops in order and stops at
    the first it cannot take: everything after that runs on the CPU."""
    per_op = [_edgetpu_ok(fm, op) for op in fm.ops]
    first_bad = next((i for i, (ok, _) in enumerate(per_op) if not ok), None)
    not_taken = Counter(fm.op_name(fm.ops[i]) for i, (ok, _) in enumerate(per_op) if not ok)
    return {
        "source": EDGETPU_SOURCE,
        "compiled": compiled,
        "ops": len(fm.ops),
        "ops_supported": sum(1 for ok, _ in per_op if ok),
        "ops_before_first_unsupported": len(fm.ops) if first_bad is None else first_bad,
        "first_unsupported": None if first_bad is None else {"index": first_bad, "reason": per_op[first_bad][1]},
        "unsupported_by_op": dict(sorted(not_taken.items())),
    }


def inspect(path: str) -> dict[str, Any]:
    """Everything `edgebench models info` shows, as a JSON-able dict."""
    fm = FlatModel(path)
    counts = fm.op_counts()
    weight_bytes, act_types = fm.dtype_census()
    compiled = EDGETPU_CUSTOM_OP in counts
    return {
        "path": os.path.abspath(path),
        "size_bytes": len(fm.buf),
        "sha256": hashlib.sha256(fm.buf).hexdigest(),
        "schema_version": int(fm.model.version or 0),
        "description": _s(fm.model.description),
        "min_runtime_version": fm.min_runtime_version(),
        "metadata": [_s(m.name) for m in (fm.model.metadata or [])],
        "subgraphs": len(fm.model.subgraphs),
        "inputs": [fm.tensor_doc(fm.tensors[i]) for i in _list(fm.main.inputs)],
        "outputs": [fm.tensor_doc(fm.tensors[i]) for i in _list(fm.main.outputs)],
        "quantization": quantization_kind(weight_bytes, act_types, compiled),
        "weights_bytes_by_dtype": dict(sorted(weight_bytes.items())),
        "ops_total": sum(counts.values()),
        "ops_by_operator": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "edgetpu": edgetpu_report(fm, compiled),
    }


def _tensor_line(t: dict[str, Any]) -> str:
    shape = "x".join(str(v) for v in t["shape"]) or "scalar"
    sig = t["shape_signature"]
    dyn = f" (signature {sig})" if sig != t["shape"] else ""
    if "scale" in t:
        q = f", scale {t['scale']:.9g}, zero point {t['zero_point']}"
    elif "per_channel_scales" in t:
        q = f", per-channel quantization ({t['per_channel_scales']} scales)"
    else:
        q = ""
    return f"  {t['name']}: {t['dtype']} [{shape}]{dyn}{q}"


def format_info(info: dict[str, Any], registry: dict[str, Any] | None = None) -> str:
    lines = [
        f"{info['path']}",
        f"size {info['size_bytes']} bytes ({info['size_bytes'] / 1e6:.2f} MB), sha256 {info['sha256']}",
    ]
    if registry is not None:
        status = "trained" if registry.get("trained") else "LATENCY ONLY (untrained weights)"
        lines.append(f"registry: {registry['name']} ({registry.get('task', '?')}, {status})")
    else:
        lines.append("registry: not a known model (no registry entry has this sha256)")
    if info["min_runtime_version"]:
        lines.append(f"minimum runtime version: {info['min_runtime_version']}")
    lines.append(f"quantization: {info['quantization']}")
    wb = ", ".join(f"{k} {v} bytes" for k, v in info["weights_bytes_by_dtype"].items()) or "none"
    lines.append(f"constant tensors: {wb}")
    lines.append(f"inputs ({len(info['inputs'])}):")
    lines += [_tensor_line(t) for t in info["inputs"]]
    lines.append(f"outputs ({len(info['outputs'])}):")
    lines += [_tensor_line(t) for t in info["outputs"]]
    sub = f" in {info['subgraphs']} subgraphs" if info["subgraphs"] > 1 else ""
    lines.append(f"operators: {info['ops_total']}{sub}")
    for name, n in info["ops_by_operator"].items():
        mark = "edgetpu" if name in EDGETPU_OPS else ("compiled" if name == EDGETPU_CUSTOM_OP else "cpu only")
        lines.append(f"  {name:<28}{n:>5}   {mark}")
    e = info["edgetpu"]
    if e["compiled"]:
        lines.append(
            "edge tpu: already compiled for the Edge TPU (edgetpu-custom-op); run it with the Edge TPU delegate"
        )
    else:
        where = (
            "all of them can be mapped"
            if e["first_unsupported"] is None
            else f"the compiler maps the first {e['ops_before_first_unsupported']} and leaves the rest to the CPU"
        )
        lines.append(
            f"edge tpu: {e['ops_supported']} of {e['ops']} operators are Edge TPU operations on 8-bit tensors "
            f"({EDGETPU_SOURCE}); {where}"
        )
        if e["first_unsupported"]:
            lines.append(
                f"  first it cannot take: operator {e['first_unsupported']['index']}: {e['first_unsupported']['reason']}"
            )
    return "\n".join(lines)
