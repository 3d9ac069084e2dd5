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
