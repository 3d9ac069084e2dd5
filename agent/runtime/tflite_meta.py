"""Read TFLite model metadata (normalization, color space, embedded labels).

Models produced with the TFLite Support metadata writer carry a
``TFLITE_METADATA`` buffer (a ``ModelMetadata`` flatbuffer, schema
tflite-support metadata_schema.fbs, file identifier "M001") and may append a
zip archive holding associated files such as the labels. Only the few fields
edgebench needs are read here, with the ``flatbuffers`` runtime library; the
field slots follow the schema's declaration order (a union takes two slots).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import flatbuffers
from flatbuffers.table import Table

# -- schema slots (vtable index = declaration order; unions use two) -------------
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2
_META_NAME, _META_BUFFER = 0, 1
_MM_SUBGRAPHS, _MM_ASSOCIATED = 3, 6
_SG_INPUTS, _SG_OUTPUTS = 2, 3
_TM_NAME, _TM_CONTENT, _TM_PROCESS_UNITS, _TM_ASSOCIATED = 0, 3, 4, 6
_CONTENT_PROPS_TYPE, _CONTENT_PROPS = 0, 1
_IMAGE_COLOR_SPACE = 0
_PU_OPTIONS_TYPE, _PU_OPTIONS = 0, 1
_NORM_MEAN, _NORM_STD = 0, 1
_AF_NAME, _AF_TYPE = 0, 2

_PROCESS_UNIT_NORMALIZATION = 1
_CONTENT_IMAGE = 2
_COLOR_SPACES = {1: "RGB", 2: "GRAYSCALE"}
_FILE_TYPES = {1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS", 3: "TENSOR_VALUE_LABELS", 5: "VOCABULARY"}


@dataclass
class TensorMeta:
    name: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    color_space: str | None = None
    files: list[tuple[str, str]] = field(default_factory=list)  # (name, type)


@dataclass
class ModelMeta:
    inputs: list[TensorMeta] = field(default_factory=list)
    outputs: list[TensorMeta] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)


def _table(buf: bytes, pos: int) -> Table:
    return Table(buf, pos)


def _field(t: Table, slot: int) -> int:
    return t.Offset(4 + 2 * slot)


def _sub(t: Table, slot: int) -> Table | None:
    o = _field(t, slot)
    return _table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _vec_tables(t: Table, slot: int) -> list[Table]:
    o = _field(t, slot)
    if not o:
        return []
    start, n = t.Vector(o), t.VectorLen(o)
    return [_table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(n)]


def _string(t: Table, slot: int) -> str | None:
    o = _field(t, slot)
    return t.String(o + t.Pos).decode("utf-8", "replace") if o else None


def _scalar(t: Table, slot: int, kind, default):
    o = _field(t, slot)
    return t.Get(kind, o + t.Pos) if o else default


def _floats(t: Table, slot: int) -> list[float] | None:
    o = _field(t, slot)
    if not o:
        return None
    start, n = t.Vector(o), t.VectorLen(o)
    return [t.Get(flatbuffers.number_types.Float32Flags, start + 4 * i) for i in range(n)]


def _bytes(t: Table, slot: int) -> bytes | None:
    o = _field(t, slot)
    if not o:
        return None
    start, n = t.Vector(o), t.VectorLen(o)
    return bytes(t.Bytes[start : start + n])


def _files(t: Table, slot: int) -> list[tuple[str, str]]:
    return [
        (
            _string(f, _AF_NAME) or "",
            _FILE_TYPES.get(_scalar(f, _AF_TYPE, flatbuffers.number_types.Int8Flags, 0), "UNKNOWN"),
        )
        for f in _vec_tables(t, slot)
    ]


def _tensor(t: Table) -> TensorMeta:
    m = TensorMeta(name=_string(t, _TM_NAME), files=_files(t, _TM_ASSOCIATED))
    content = _sub(t, _TM_CONTENT)
    if content is not None:
        ctype = _scalar(content, _CONTENT_PROPS_TYPE, flatbuffers.number_types.Uint8Flags, 0)
        props = _sub(content, _CONTENT_PROPS)
        if ctype == _CONTENT_IMAGE and props is not None:
            cs = _scalar(props, _IMAGE_COLOR_SPACE, flatbuffers.number_types.Int8Flags, 0)
            m.color_space = _COLOR_SPACES.get(cs)
    for pu in _vec_tables(t, _TM_PROCESS_UNITS):
        if _scalar(pu, _PU_OPTIONS_TYPE, flatbuffers.number_types.Uint8Flags, 0) == _PROCESS_UNIT_NORMALIZATION:
            opts = _sub(pu, _PU_OPTIONS)
            if opts is not None:
                m.mean, m.std = _floats(opts, _NORM_MEAN), _floats(opts, _NORM_STD)
    return m


def metadata_buffer(model: bytes) -> bytes | None:
    """The raw ``TFLITE_METADATA`` buffer of a model, if it has one."""
    root = _table(model, flatbuffers.encode.Get(flatbuffers.packer.uoffset, model, 0))
    buffers = _vec_tables(root, _MODEL_BUFFERS)
    for meta in _vec_tables(root, _MODEL_METADATA):
        if _string(meta, _META_NAME) != "TFLITE_METADATA":
            continue
        idx = _scalar(meta, _META_BUFFER, flatbuffers.number_types.Uint32Flags, 0)
        if idx >= len(buffers):
            return None
        b = buffers[idx]
        data = _bytes(b, _BUFFER_DATA)
        if data:
            return data
        off = _scalar(b, _BUFFER_OFFSET, flatbuffers.number_types.Uint64Flags, 0)
        size = _scalar(b, _BUFFER_SIZE, flatbuffers.number_types.Uint64Flags, 0)
        return bytes(model[off : off + size]) if off > 1 and size else None
    return None


def parse_metadata(meta: bytes) -> ModelMeta:
    root = _table(meta, flatbuffers.encode.Get(flatbuffers.packer.uoffset, meta, 0))
    out = ModelMeta(files=_files(root, _MM_ASSOCIATED))
    subgraphs = _vec_tables(root, _MM_SUBGRAPHS)
    if subgraphs:
        sg = subgraphs[0]
        out.inputs = [_tensor(t) for t in _vec_tables(sg, _SG_INPUTS)]
        out.outputs = [_tensor(t) for t in _vec_tables(sg, _SG_OUTPUTS)]
    return out


def read(path: str) -> ModelMeta | None:
    """Metadata of the model at ``path``, or None when it has none (or it is unreadable)."""
    with open(path, "rb") as f:
        model = f.read()
    try:
        buf = metadata_buffer(model)
        return parse_metadata(buf) if buf else None
    except Exception:  # a malformed metadata block must not stop a benchmark
        return None


def embedded_file(path: str, name: str) -> bytes | None:
    """An associated file packed into the model's trailing zip archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(open(path, "rb").read())) as z:
            return z.read(name)
    except (zipfile.BadZipFile, KeyError, OSError):
        return None


def embedded_labels(path: str, meta: ModelMeta) -> list[str] | None:
    """Labels from the first TENSOR_AXIS_LABELS file of the first output."""
    candidates = [f for t in meta.outputs for f in t.files] + meta.files
    for name, kind in candidates:
        if kind == "TENSOR_AXIS_LABELS":
            data = embedded_file(path, name)
            if data:
                return [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return None
