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


def inspect(path: str) -> dict[str, Any]:  # noqa: C901
    """Everything `edgebench models info` shows, as a JSON-able dict."""
    model, buf = read_model(path)
    schema = _schema()
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}

    def opname(code) -> str:
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            return _s(code.customCode) or "CUSTOM"
        return name

    codes = [opname(c) for c in (model.operatorCodes or [])]
    if not model.subgraphs:
        raise ModelError(f"{path} has no subgraphs")
    buffers = model.buffers or []

    def is_const(t) -> bool:
        b = buffers[t.buffer] if t.buffer is not None and 0 <= t.buffer < len(buffers) else None
        return b is not None and ((b.data is not None and len(b.data) > 0) or bool(getattr(b, "size", 0)))

    def tensor_doc(t) -> dict[str, Any]:
        q = t.quantization
        scales = _list(getattr(q, "scale", None)) if q is not None else []
        zps = _list(getattr(q, "zeroPoint", None)) if q is not None else []
        doc: dict[str, Any] = {
            "name": _s(t.name),
            "shape": _list(t.shape),
            "shape_signature": _list(t.shapeSignature) or _list(t.shape),
            "dtype": type_names.get(t.type, str(t.type)),
        }
        if len(scales) == 1:
            doc["scale"] = float(scales[0])
            doc["zero_point"] = int(zps[0]) if zps else 0
        elif len(scales) > 1:
            doc["per_channel_scales"] = len(scales)
        return doc

    main = model.subgraphs[0]
    tensors = main.tensors or []
    ops = main.operators or []
    counts: Counter[str] = Counter()
    for sg in model.subgraphs:
        for op in sg.operators or []:
            counts[codes[op.opcodeIndex]] += 1

    # Weights and activations by dtype, to say what kind of quantization this is.
    weight_bytes: Counter[str] = Counter()
    act_types: Counter[str] = Counter()
    for t in tensors:
        dt = type_names.get(t.type, str(t.type))
        if is_const(t):
            b = buffers[t.buffer]
            weight_bytes[dt] += len(b.data) if b.data is not None else int(getattr(b, "size", 0) or 0)
        else:
            act_types[dt] += 1
    compiled_for_edgetpu = EDGETPU_CUSTOM_OP in counts
    float_acts = act_types.get("float32", 0) + act_types.get("float16", 0)
    if compiled_for_edgetpu:
        kind = "compiled for the Edge TPU (needs the Edge TPU delegate)"
    elif (
        weight_bytes.get("float32", 0) == 0
        and weight_bytes.get("float16", 0) == 0
        and not float_acts
        and (weight_bytes.get("int8") or weight_bytes.get("uint8"))
    ):
        kind = "full integer (8-bit weights and activations)"
    elif weight_bytes.get("int8") and float_acts:
        kind = "dynamic range (int8 weights, float activations)"
    elif weight_bytes.get("float16"):
        kind = "float16 weights"
    elif weight_bytes.get("int16") or act_types.get("int16"):
        kind = "16-bit activations"
    else:
        kind = "float32 (not quantized)"

    # Edge TPU: an operator can be taken if it is listed and all its tensors are 8-bit
    # (biases may be int32). The compiler maps ops in order and stops at the first it
    # cannot take: everything after that runs on the CPU.
    def edgetpu_ok(op) -> tuple[bool, str | None]:
        name = codes[op.opcodeIndex]
        if name not in EDGETPU_OPS:
            return False, f"{name} is not an Edge TPU operation"
        for i in list(_list(op.inputs)) + list(_list(op.outputs)):
            if i < 0:
                continue
            t = tensors[i]
            dt = type_names.get(t.type, str(t.type))
            if dt in _EIGHT_BIT or (dt == "int32" and is_const(t)):
                continue
            return False, f"{name} has a {dt} tensor ({_s(t.name)}); the Edge TPU takes 8-bit quantized tensors only"
        return True, None

    per_op = [edgetpu_ok(op) for op in ops]
    first_bad = next((i for i, (ok, _) in enumerate(per_op) if not ok), None)
    not_taken = Counter(codes[ops[i].opcodeIndex] for i, (ok, _) in enumerate(per_op) if not ok)
    edgetpu: dict[str, Any] = {
        "source": EDGETPU_SOURCE,
        "compiled": compiled_for_edgetpu,
        "ops": len(ops),
        "ops_supported": sum(1 for ok, _ in per_op if ok),
        "ops_before_first_unsupported": len(ops) if first_bad is None else first_bad,
        "first_unsupported": None if first_bad is None else {"index": first_bad, "reason": per_op[first_bad][1]},
        "unsupported_by_op": dict(sorted(not_taken.items())),
    }

    meta = [_s(m.name) for m in (model.metadata or [])]
    min_runtime = None
    for m in model.metadata or []:
        if _s(m.name) == "min_runtime_version" and 0 <= m.buffer < len(buffers) and buffers[m.buffer].data is not None:
            min_runtime = bytes(bytearray(buffers[m.buffer].data)).split(b"\0", 1)[0].decode("ascii", "replace")
    return {
        "path": os.path.abspath(path),
        "size_bytes": len(buf),
        "sha256": hashlib.sha256(buf).hexdigest(),
        "schema_version": int(model.version or 0),
        "description": _s(model.description),
        "min_runtime_version": min_runtime,
        "metadata": meta,
        "subgraphs": len(model.subgraphs),
        "inputs": [tensor_doc(tensors[i]) for i in _list(main.inputs)],
        "outputs": [tensor_doc(tensors[i]) for i in _list(main.outputs)],
        "quantization": kind,
        "weights_bytes_by_dtype": dict(sorted(weight_bytes.items())),
        "ops_total": sum(counts.values()),
        "ops_by_operator": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "edgetpu": edgetpu,
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
