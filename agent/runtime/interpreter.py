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
import platform
import re
import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from edgebench.agent.errors import ModelError, UserError
from edgebench.agent.runtime.memory import rss_mb
from edgebench.agent.runtime.threads import resolve as resolve_threads

log = logging.getLogger("edgebench.runtime")

#: name -> (module holding Interpreter, distribution names to read the version from)
RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", ("ai-edge-litert", "ai-edge-litert-nightly")),
    "tflite-runtime": ("tflite_runtime.interpreter", ("tflite-runtime",)),
    "tensorflow": ("tensorflow.lite.python.interpreter", ("tensorflow", "tensorflow-cpu", "tf-nightly")),
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
    # TensorFlow's C++ side logs a banner at import; keep the agent's output its own.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for n in names:
        modname, dists = RUNTIMES[n]
        try:
            mod = importlib.import_module(modname)
        except Exception as e:  # ImportError, or a binary built against another numpy
            problems.append(f"{n}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        return n, mod, _version(dists)
    raise ModelError(f"no TFLite runtime could be imported ({'; '.join(problems)}); install one: {install_hint(name)}")


def install_hint(name: str = "auto", machine: str | None = None, pointer_bits: int | None = None) -> str:
    """What to install for runtime ``name`` on this userland. A 32-bit ARM userland has
    only tflite-runtime, even under a 64-bit kernel (a Pi 4/5 on 32-bit Raspberry Pi
    OS), where ``platform.machine()`` says aarch64: the pointer size tells them apart."""
    machine = machine or platform.machine()
    bits = pointer_bits or 8 * struct.calcsize("P")
    arm32 = bits == 32 and machine.lower().startswith(("arm", "aarch"))
    if name == "tflite-runtime" or (name == "auto" and arm32):
        why = "the only TFLite runtime with 32-bit ARM wheels; " if arm32 else ""
        return f"pip install 'tflite-runtime==2.14.0' 'numpy<2' ({why}Python 3.8-3.11), or deploy/install-agent.sh, which picks the runtime for this board"
    if name == "ai-edge-litert" and arm32:
        return "ai-edge-litert has no wheel for a 32-bit ARM userland: use --runtime tflite-runtime (pip install 'tflite-runtime==2.14.0' 'numpy<2')"
    return "pip install ai-edge-litert" if name == "auto" else f"pip install {name}"


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


def read_model_file(path: str, head_only: bool = False) -> bytes:
    """The model's bytes (or its first 8), after checking it is a TFLite flatbuffer;
    a ModelError with one clear line otherwise."""
    if not os.path.exists(path):
        raise ModelError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelError(f"model path is a directory, not a .tflite file: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read(8) if head_only else f.read()
    except OSError as e:
        raise ModelError(f"cannot read model {path}: {e.strerror}") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(
            f"{path} is not a TFLite flatbuffer (no TFL3 identifier); pass a .tflite file converted for TFLite/LiteRT"
        )
    return data


@contextlib.contextmanager
def capture_native_stderr(lines: list[str]):
    """What the C++ runtime (TFLite or LiteRT) writes to fd 2 meanwhile, into ``lines``:
    read by the caller, never shown on the terminal."""
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
            lines.extend(tmp.read().decode(errors="replace").splitlines())


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold back what the TFLite C++ runtime writes to fd 2 (e.g. "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU.") and log it at debug level, so the
    agent's own output stays one clear line per event."""
    lines: list[str] = []
    try:
        with capture_native_stderr(lines):
            yield
    finally:
        text = "\n".join(lines).strip()
        if text:
            log.debug("runtime said: %s", text)


#: where TFLite's error reporter glued one message to the next without a separator
#: ("...failed to reshape runtimeNode number 8 (TfLiteXNNPackDelegate) failed to prepare.")
_GLUED = re.compile(r"(?<=[a-z])(?=Node number \d)")


def _first_line(e: BaseException) -> str:
    """The runtime's error on one line: its lines, and the messages its error reporter
    glued together, each separated by "; "."""
    text = str(e).strip() or type(e).__name__
    parts = [p.strip().rstrip(".") for line in text.splitlines() for p in _GLUED.split(line) if p.strip()]
    return "; ".join(parts)[:300]


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


#: Friendly names for the delegates edge boards ship (the library is looked up
#: on the loader path like any shared library).
DELEGATE_ALIASES = {
    "edgetpu": "libedgetpu.so.1",  # Coral Edge TPU (options: device=usb|pci|usb:0)
    "vx": "libvx_delegate.so",  # NXP i.MX 8M Plus NPU (VeriSilicon VX delegate)
    "armnn": "libarmnnDelegate.so",  # Arm NN (options: backends=GpuAcc,CpuAcc)
    "qnn": "libQnnTFLiteDelegate.so",  # Qualcomm QNN (options: backend_type=htp)
}


@dataclass
class DelegateSpec:
    library: str
    options: dict[str, str] = field(default_factory=dict)
    cpu_fallback: bool = False

    @property
    def resolved(self) -> str:
        return DELEGATE_ALIASES.get(self.library, self.library)


def _check_delegate_library(lib: str) -> None:
    """Fail with one line before handing the library to the runtime (whose own
    failure paths raise odd exceptions and print tracebacks at garbage collection)."""
    import ctypes

    try:
        handle = ctypes.CDLL(lib)
    except OSError as e:
        reason = str(e).split(": ", 1)[-1] if ": " in str(e) else str(e)
        raise ModelError(f"cannot load delegate library {lib}: {reason}") from None
    if not hasattr(handle, "tflite_plugin_create_delegate"):
        raise ModelError(f"{lib} is not a TFLite external delegate (it has no tflite_plugin_create_delegate symbol)")


def load_delegate(mod: Any, spec: DelegateSpec) -> tuple[Any, float]:
    """Load an external delegate; returns (delegate, load time in ms)."""
    lib = spec.resolved
    t0 = time.perf_counter_ns()
    _check_delegate_library(lib)
    loader = mod.load_delegate
    try:
        with quiet_native_stderr():
            d = loader(lib, spec.options)
    except Exception as e:
        raise ModelError(f"delegate {lib} refused to start with options {spec.options}: {_first_line(e)}") from None
    return d, (time.perf_counter_ns() - t0) / 1e6


@dataclass
class Runtime:
    """A loaded, allocated interpreter and what it took to get there."""

    model_path: str
    name: str
    version: str
    num_threads: int
    interpreter: Any
    load_ms: float
    allocate_ms: float
    delegate: dict[str, Any] | None = None
    delegate_load_ms: float | None = None
    delegate_fallback: dict[str, str] | None = None
    #: XNNPACK applied to at least one operator (read from the graph), None when the graph
    #: cannot say (no _get_ops_details, or an external delegate shares the graph with it)
    xnnpack: bool | None = True
    #: XNNPACK was asked for (not --no-xnnpack)
    xnnpack_requested: bool = True
    delegated_partitions: int | None = None
    #: the op table (edgebench.agent.runtime.graph.op_table), None when the graph cannot be read
    ops: dict[str, Any] | None = None
    #: what the graph contradicts in what was asked for (a delegate that took no operator)
    warnings: list[str] = field(default_factory=list)
    #: resident memory (MB) before_load_mb, after_load_mb, after_allocate_mb (edgebench.agent.runtime.memory)
    memory: dict[str, float | None] = field(default_factory=dict)
    #: threads.GIVEN (the caller asked for num_threads) or threads.DEFAULT
    num_threads_from: str = "given"
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)

    @property
    def init_ms(self) -> float:
        return self.load_ms + self.allocate_ms + (self.delegate_load_ms or 0.0)

    def describe(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "version": self.version,
            "delegate": self.delegate,
            "num_threads": self.num_threads,
            "num_threads_from": self.num_threads_from,
            "api": "interpreter",
            "xnnpack": self.xnnpack,
            "xnnpack_requested": self.xnnpack_requested,
            "delegated_partitions": self.delegated_partitions,
        }
        if self.ops is not None:
            d["ops_delegated"] = self.ops["delegated"]
            d["ops_total"] = self.ops["total"]
            d["placement"] = self.ops["summary"]
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.delegate_fallback:
            d["delegate_fallback"] = self.delegate_fallback
        return d

    def set_input(self, array, i: int = 0) -> None:
        self.interpreter.set_tensor(self.inputs[i].index, array)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output(self, i: int = 0):
        """A copy of output ``i`` (safe to keep)."""
        return self.interpreter.get_tensor(self.outputs[i].index)

    def output_view(self, i: int = 0):
        """Output ``i`` without a copy: valid only until the next invoke (the
        measurement loop decodes it at once; keep a copy of anything you store)."""
        return self.interpreter.tensor(self.outputs[i].index)()


def fallback_text(runtime: dict[str, Any]) -> str:
    """For a summary's first line: `` ON THE CPU (--cpu-fallback: why the delegate did not
    load)`` when the delegate (or a CompiledModel's GPU or NPU) fell back, else empty."""
    fb = runtime.get("delegate_fallback") or runtime.get("accelerator_fallback")
    if not fb:
        return ""
    return f" ON THE CPU (--cpu-fallback: {fb.get('reason')})"


def load(
    model_path: str,
    runtime: str = "auto",
    num_threads: int | None = None,
    delegate: DelegateSpec | None = None,
    xnnpack: bool = True,
) -> Runtime:
    """Load and allocate ``model_path``; raise ModelError with one clear line if we cannot.

    Times are kept apart: delegate load, interpreter construction (model load)
    and ``allocate_tensors`` (where delegates prepare their graph). The thread count is
    always given to the runtime, the default decided by edgebench.agent.runtime.threads,
    and recorded.
    """
    read_model_file(model_path, head_only=True)
    rt_name, mod, version = import_runtime(runtime)
    threads, threads_from = resolve_threads(num_threads)
    kwargs: dict[str, Any] = {"model_path": model_path, "num_threads": threads}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    delegate_info = delegate_ms = fallback = None
    if delegate is not None:
        try:
            d, delegate_ms = load_delegate(mod, delegate)
            kwargs["experimental_delegates"] = [d]
            delegate_info = {"library": delegate.resolved, "options": dict(delegate.options)}
        except ModelError as e:
            if not delegate.cpu_fallback:
                raise ModelError(
                    f"{e}; install it, or add --cpu-fallback to run on the CPU instead (recorded in the result)"
                ) from None
            fallback = {"requested": delegate.resolved, "reason": str(e)}
            log.warning("%s; running on the CPU (--cpu-fallback)", e)
    mem = {"before_load_mb": rss_mb()}
    with quiet_native_stderr():
        t0 = time.perf_counter_ns()
        try:
            interp = mod.Interpreter(**kwargs)
        except Exception as e:
            raise ModelError(f"{rt_name} cannot load {model_path}: {_first_line(e)}") from None
        t1 = time.perf_counter_ns()
        mem["after_load_mb"] = rss_mb()
        try:
            interp.allocate_tensors()
        except Exception as e:
            msg = _first_line(e)
            hint = ""
            if "custom op" in msg and delegate is None:
                hint = (
                    "; a custom op needs the delegate that provides it (e.g. --delegate edgetpu for *_edgetpu.tflite)"
                )
            raise ModelError(f"{rt_name} cannot prepare {model_path} (allocate_tensors failed): {msg}{hint}") from None
        t2 = time.perf_counter_ns()
    mem["after_allocate_mb"] = rss_mb()
    rt = Runtime(
        model_path=model_path,
        name=rt_name,
        version=version,
        num_threads=threads,
        num_threads_from=threads_from,
        interpreter=interp,
        load_ms=(t1 - t0) / 1e6,
        allocate_ms=(t2 - t1) / 1e6,
        delegate=delegate_info,
        delegate_load_ms=delegate_ms,
        delegate_fallback=fallback,
        xnnpack=xnnpack,
        xnnpack_requested=xnnpack,
        memory=mem,
    )
    read_placement(rt, delegate_info["library"] if delegate_info else None)
    rt.inputs = [_tensor_info(d) for d in interp.get_input_details()]
    rt.outputs = [_tensor_info(d) for d in interp.get_output_details()]
    if not rt.inputs:
        raise ModelError(f"{model_path} has no input tensors")
    return rt


def read_placement(rt: Runtime, library: str | None) -> None:
    """What the graph says ran where, after ``allocate_tensors``: the op table, whether
    XNNPACK (and the external delegate) really applied, and a warning (in the result and
    on stderr) for a delegate that was asked for and took no operator."""
    from edgebench.agent.runtime.graph import op_table

    try:
        details = rt.interpreter._get_ops_details()
    except Exception:  # a private API; absent on some runtimes
        rt.xnnpack = None if rt.xnnpack_requested else False
        return
    rt.ops = op_table(details, library, rt.xnnpack_requested)
    rt.delegated_partitions = len(rt.ops["partitions"])
    applied = rt.delegated_partitions > 0
    if library:
        rt.delegate = {**(rt.delegate or {}), "applied": applied}
        rt.xnnpack = None if (rt.xnnpack_requested and applied) else False
        asked = f"the delegate {library}"
    else:
        rt.xnnpack = rt.xnnpack_requested and applied
        asked = "XNNPACK" if rt.xnnpack_requested else None
    if asked and not applied:
        rt.warnings.append(
            f"{asked} was asked for but applied to no operator of {os.path.basename(rt.model_path)}: "
            f"all {rt.ops['total']} operators ran on the CPU's built-in kernels"
        )
        log.warning("%s", rt.warnings[-1])


def invoke_checked(rt: Runtime) -> None:
    """Invoke once, turning a runtime failure into a ModelError."""
    try:
        rt.invoke()
    except Exception as e:
        raise ModelError(f"{rt.name} failed to run {rt.model_path} (invoke): {_first_line(e)}") from None
