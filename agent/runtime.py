"""TFLite runtimes behind one small adapter.

Order of preference: ai-edge-litert, tflite-runtime, tensorflow.lite. The
adapter is deliberately flat (after pycoral): load, allocate, set input,
invoke, read output. Every failure a user can cause becomes a ModelError with
one line saying what is wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelError, UserError

log = logging.getLogger("edgebench.runtime")

#: name -> (module holding Interpreter, distribution names to read the version from)
RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", ("ai-edge-litert", "ai-edge-litert-nightly")),
    "tflite-runtime": ("tflite_runtime.interpreter", ("tflite-runtime",)),
    "tensorflow": ("tensorflow.lite", ("tensorflow", "tensorflow-cpu", "tf-nightly")),
}


def _version(dists: tuple[str, ...]) -> str:
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def import_runtime(name: str = "auto") -> tuple[str, Any, str]:
    """Return ``(runtime name, interpreter module, version)``.

    ``auto`` tries ai-edge-litert, then tflite-runtime, then tensorflow.lite.
    """
    names = list(RUNTIMES) if name == "auto" else [name]
    if name != "auto" and name not in RUNTIMES:
        raise UserError(f"unknown runtime {name!r}: choose one of auto, {', '.join(RUNTIMES)}")
    problems = []
    for n in names:
        modname, dists = RUNTIMES[n]
        try:
            mod = importlib.import_module(modname)
        except Exception as e:  # ImportError, or a binary built against another numpy
            problems.append(f"{n}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        return n, mod, _version(dists)
    hint = "pip install ai-edge-litert" if name == "auto" else f"pip install {name}"
    raise UserError(f"no TFLite runtime could be imported ({'; '.join(problems)}); install one: {hint}")


def available_runtimes() -> dict[str, str]:
    """Runtimes importable here, name -> version (for `edgebench info`)."""
    found = {}
    for n in RUNTIMES:
        try:
            _, _, v = import_runtime(n)
            found[n] = v
        except UserError:
            pass
    return found


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold back what the TFLite C++ runtime writes to fd 2 (e.g. "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU.") and log it at debug level, so the
    agent's own output stays one clear line per event."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some service managers)
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace").strip()
            if text:
                log.debug("runtime said: %s", text)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    # TFLite error texts span lines; keep the informative part on one line.
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:300]


@dataclass
class TensorInfo:
    name: str
    index: int
    shape: list[int]
    dtype: str
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in ("uint8", "int8", "int16") and self.scale != 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": self.shape,
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


def _tensor_info(d: dict[str, Any]) -> TensorInfo:
    scale, zp = d.get("quantization", (0.0, 0))
    return TensorInfo(
        name=str(d["name"]),
        index=int(d["index"]),
        shape=[int(x) for x in d["shape"]],
        dtype=d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"]),
        scale=float(scale),
        zero_point=int(zp),
    )


@dataclass
class Runtime:
    """A loaded, allocated interpreter and what it took to get there."""

    model_path: str
    name: str
    version: str
    num_threads: int | None
    interpreter: Any
    load_ms: float
    allocate_ms: float
    delegate: str | None = None
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)

    @property
    def init_ms(self) -> float:
        return self.load_ms + self.allocate_ms

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "delegate": self.delegate,
            "num_threads": self.num_threads,
        }

    def set_input(self, array, i: int = 0) -> None:
        self.interpreter.set_tensor(self.inputs[i].index, array)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output(self, i: int = 0):
        return self.interpreter.get_tensor(self.outputs[i].index)


def load(model_path: str, runtime: str = "auto", num_threads: int | None = None) -> Runtime:
    """Load and allocate ``model_path``; raise ModelError with one clear line if we cannot."""
    if not os.path.exists(model_path):
        raise ModelError(f"model file not found: {model_path}")
    if os.path.isdir(model_path):
        raise ModelError(f"model path is a directory, not a .tflite file: {model_path}")
    try:
        with open(model_path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelError(f"cannot read model {model_path}: {e.strerror}") from None
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelError(
            f"{model_path} is not a TFLite flatbuffer (no TFL3 identifier); "
            "pass a .tflite file converted for TFLite/LiteRT"
        )
    rt_name, mod, version = import_runtime(runtime)
    kwargs: dict[str, Any] = {"model_path": model_path}
    if num_threads is not None:
        kwargs["num_threads"] = num_threads
    with quiet_native_stderr():
        t0 = time.perf_counter_ns()
        try:
            interp = mod.Interpreter(**kwargs)
        except Exception as e:
            raise ModelError(f"{rt_name} cannot load {model_path}: {_first_line(e)}") from None
        t1 = time.perf_counter_ns()
        try:
            interp.allocate_tensors()
        except Exception as e:
            raise ModelError(
                f"{rt_name} cannot prepare {model_path} (allocate_tensors failed): {_first_line(e)}"
            ) from None
        t2 = time.perf_counter_ns()
    rt = Runtime(
        model_path=model_path,
        name=rt_name,
        version=version,
        num_threads=num_threads,
        interpreter=interp,
        load_ms=(t1 - t0) / 1e6,
        allocate_ms=(t2 - t1) / 1e6,
    )
    rt.inputs = [_tensor_info(d) for d in interp.get_input_details()]
    rt.outputs = [_tensor_info(d) for d in interp.get_output_details()]
    if not rt.inputs:
        raise ModelError(f"{model_path} has no input tensors")
    return rt


def invoke_checked(rt: Runtime) -> None:
    """Invoke once, turning a runtime failure into a ModelError."""
    try:
        rt.invoke()
    except Exception as e:
        raise ModelError(f"{rt.name} failed to run {rt.model_path} (invoke): {_first_line(e)}") from None
