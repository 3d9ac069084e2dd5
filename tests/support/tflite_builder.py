"""Build small real TFLite flatbuffers in tests (no TensorFlow needed).

Uses the TFLite schema's generated object API that ships with ai-edge-litert,
and the flatbuffers library for the metadata block (schema of tflite-support's
metadata_schema.fbs). The models are run by the real interpreter.
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S


def _tensor(name: str, shape, ttype: int, buffer: int = 0, shape_signature=None, scale=None, zp=None):
    t = S.TensorT()
    t.name = name
    t.shape = list(shape)
    if shape_signature is not None:
        t.shapeSignature = list(shape_signature)
    t.type = ttype
    t.buffer = buffer
    if scale is not None:
        q = S.QuantizationParametersT()
        q.scale = [scale]
        q.zeroPoint = [zp]
        t.quantization = q
    return t


def _pack(model) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def add_model(shape=(1, 16), batch_resizable: bool = False) -> bytes:
    """Two float32 inputs of ``shape`` added element-wise: a non-image model."""
    m = S.ModelT()
    m.version = 3
    code = S.OperatorCodeT()
    code.builtinCode = S.BuiltinOperator.ADD
    code.deprecatedBuiltinCode = S.BuiltinOperator.ADD
    code.version = 1
    m.operatorCodes = [code]
    m.buffers = [S.BufferT()]
    sig = [-1, *shape[1:]] if batch_resizable else None
    sg = S.SubGraphT()
    sg.tensors = [
        _tensor("a", shape, S.TensorType.FLOAT32, shape_signature=sig),
        _tensor("b", shape, S.TensorType.FLOAT32, shape_signature=sig),
        _tensor("sum", shape, S.TensorType.FLOAT32, shape_signature=sig),
    ]
    sg.inputs, sg.outputs = [0, 1], [2]
    op = S.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = [0, 1], [2]
    op.builtinOptionsType = S.BuiltinOptions.AddOptions
    op.builtinOptions = S.AddOptionsT()
    sg.operators = [op]
    sg.name = "main"
    m.subgraphs = [sg]
    m.description = "edgebench test model: a + b"
    return _pack(m)


def _metadata(mean, std, labels_file: str | None, color_space: int) -> bytes:
    b = flatbuffers.Builder(256)

    def floats(values):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(float(v))
        return b.EndVector()

    def table_vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    mean_v, std_v = floats(mean), floats(std)
    b.StartObject(2)  # NormalizationOptions
    b.PrependUOffsetTRelativeSlot(0, mean_v, 0)
    b.PrependUOffsetTRelativeSlot(1, std_v, 0)
    norm = b.EndObject()
    b.StartObject(2)  # ProcessUnit {options_type, options}
    b.PrependUint8Slot(0, 1, 0)
    b.PrependUOffsetTRelativeSlot(1, norm, 0)
    pu = b.EndObject()
    b.StartObject(2)  # ImageProperties {color_space, default_size}
    b.PrependInt8Slot(0, color_space, 0)
    img = b.EndObject()
    b.StartObject(3)  # Content {content_properties_type, content_properties, range}
    b.PrependUint8Slot(0, 2, 0)
    b.PrependUOffsetTRelativeSlot(1, img, 0)
    content = b.EndObject()
    pus = table_vector([pu])
    in_name = b.CreateString("image")
    b.StartObject(7)  # TensorMetadata
    b.PrependUOffsetTRelativeSlot(0, in_name, 0)
    b.PrependUOffsetTRelativeSlot(3, content, 0)
    b.PrependUOffsetTRelativeSlot(4, pus, 0)
    t_in = b.EndObject()
    out_files = None
    if labels_file:
        fname = b.CreateString(labels_file)
        b.StartObject(5)  # AssociatedFile {name, description, type, locale, version}
        b.PrependUOffsetTRelativeSlot(0, fname, 0)
        b.PrependInt8Slot(2, 2, 0)  # TENSOR_AXIS_LABELS
        af = b.EndObject()
        out_files = table_vector([af])
    out_name = b.CreateString("probability")
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(0, out_name, 0)
    if out_files is not None:
        b.PrependUOffsetTRelativeSlot(6, out_files, 0)
    t_out = b.EndObject()
    ins, outs = table_vector([t_in]), table_vector([t_out])
    b.StartObject(9)  # SubGraphMetadata
    b.PrependUOffsetTRelativeSlot(2, ins, 0)
    b.PrependUOffsetTRelativeSlot(3, outs, 0)
    sg = b.EndObject()
    sgs = table_vector([sg])
    name = b.CreateString("edgebench test metadata")
    version = b.CreateString("1.0.0")
    b.StartObject(8)  # ModelMetadata
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(3, sgs, 0)
    b.PrependUOffsetTRelativeSlot(7, version, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def with_metadata(model: bytes, mean, std, labels: list[str] | None = None, color_space: int = 1) -> bytes:
    """The model with a TFLITE_METADATA buffer (normalization, color space, labels
    file reference) and, when labels are given, the labels packed in a trailing zip."""
    m = S.ModelT.InitFromPackedBuf(bytearray(model), 0)
    buf = S.BufferT()
    buf.data = np.frombuffer(_metadata(mean, std, "labels.txt" if labels else None, color_space), np.uint8)
    m.buffers.append(buf)
    meta = S.MetadataT()
    meta.name = "TFLITE_METADATA"
    meta.buffer = len(m.buffers) - 1
    m.metadata = list(m.metadata or []) + [meta]
    out = io.BytesIO(_pack(m))
    if labels:
        with zipfile.ZipFile(out, "a") as z:
            z.writestr("labels.txt", "\n".join(labels) + "\n")
    return out.getvalue()


def _buffer(data: np.ndarray | None = None):
    b = S.BufferT()
    if data is not None:
        b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    return b


def _opcode(builtin: int):
    code = S.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = builtin
    code.version = 1
    return code


def fc_model(
    features: int = 256,
    layers: int = 2,
    batch_resizable: bool = True,
    fixed_batch_reshape: bool = False,
    dtype: str = "float32",
    seed: int = 0,
) -> bytes:
    """A stack of ``layers`` fully-connected layers of ``features`` x ``features``
    (ReLU between them): input [1, features] -> output [1, features].

    The weights are random and real, so per-item cost grows with ``features``²;
    at batch 1 each layer is a matrix-vector product that streams all weights for
    one item, at batch B a matrix-matrix product that streams them once for B
    items, so items/s rises with the batch size.

    ``batch_resizable`` gives every activation a batch of -1 in its shape
    signature. ``fixed_batch_reshape`` appends a Reshape to a hard-coded
    [1, features] (as TF1 exports do), so resizing the batch fails at
    allocate_tensors ("failed to prepare" under XNNPACK). ``dtype`` is float32
    or int8 (full integer quantization: int8 activations and weights, int32 bias).
    """
    if dtype not in ("float32", "int8"):
        raise ValueError("dtype must be float32 or int8")
    rng = np.random.default_rng(seed)
    q = dtype == "int8"
    ttype = S.TensorType.INT8 if q else S.TensorType.FLOAT32
    m = S.ModelT()
    m.version = 3
    m.operatorCodes = [_opcode(S.BuiltinOperator.FULLY_CONNECTED), _opcode(S.BuiltinOperator.RESHAPE)]
    m.buffers = [_buffer()]
    shape = [1, features]
    sig = [-1, features] if batch_resizable else None
    act_scale, act_zp = 0.05, 0
    w_scale = 0.02 / np.sqrt(features)
    tensors = [
        _tensor("input", shape, ttype, shape_signature=sig, scale=act_scale if q else None, zp=act_zp if q else None)
    ]
    ops = []
    x = 0
    for i in range(layers):
        if q:
            w = rng.integers(-127, 128, size=(features, features), dtype=np.int8)
            bias = np.zeros(features, np.int32)
            w_t = _tensor(f"w{i}", [features, features], S.TensorType.INT8, len(m.buffers), scale=float(w_scale), zp=0)
            m.buffers.append(_buffer(w))
            b_t = _tensor(
                f"b{i}", [features], S.TensorType.INT32, len(m.buffers), scale=float(act_scale * w_scale), zp=0
            )
            m.buffers.append(_buffer(bias))
        else:
            w = (rng.standard_normal((features, features)) / np.sqrt(features)).astype(np.float32)
            bias = (rng.standard_normal(features) * 0.01).astype(np.float32)
            w_t = _tensor(f"w{i}", [features, features], S.TensorType.FLOAT32, len(m.buffers))
            m.buffers.append(_buffer(w))
            b_t = _tensor(f"b{i}", [features], S.TensorType.FLOAT32, len(m.buffers))
            m.buffers.append(_buffer(bias))
        tensors += [w_t, b_t]
        out = _tensor(
            f"fc{i}", shape, ttype, shape_signature=sig, scale=act_scale if q else None, zp=act_zp if q else None
        )
        tensors.append(out)
        op = S.OperatorT()
        op.opcodeIndex = 0
        op.inputs = [x, len(tensors) - 3, len(tensors) - 2]
        op.outputs = [len(tensors) - 1]
        op.builtinOptionsType = S.BuiltinOptions.FullyConnectedOptions
        opts = S.FullyConnectedOptionsT()
        opts.fusedActivationFunction = (
            S.ActivationFunctionType.RELU if i < layers - 1 else S.ActivationFunctionType.NONE
        )
        op.builtinOptions = opts
        ops.append(op)
        x = len(tensors) - 1
    if fixed_batch_reshape:
        tensors.append(_tensor("new_shape", [2], S.TensorType.INT32, len(m.buffers)))
        m.buffers.append(_buffer(np.array([1, features], np.int32)))
        tensors.append(
            _tensor("output", [1, features], ttype, scale=act_scale if q else None, zp=act_zp if q else None)
        )
        op = S.OperatorT()
        op.opcodeIndex = 1
        op.inputs = [x, len(tensors) - 2]
        op.outputs = [len(tensors) - 1]
        op.builtinOptionsType = S.BuiltinOptions.ReshapeOptions
        ro = S.ReshapeOptionsT()
        ro.newShape = [1, features]
        op.builtinOptions = ro
        ops.append(op)
        x = len(tensors) - 1
    sg = S.SubGraphT()
    sg.tensors = tensors
    sg.inputs, sg.outputs = [0], [x]
    sg.operators = ops
    sg.name = "main"
    m.subgraphs = [sg]
    m.description = f"edgebench test model: {layers} fully-connected layers of {features} ({dtype})"
    return _pack(m)
