"""LiteRT's CompiledModel (the "v2" API) behind the Interpreter adapter's interface.

``--accelerator cpu|gpu|npu`` (combinable: ``npu,cpu``) selects this path; without it the
classic Interpreter runs (edgebench.agent.runtime.interpreter), the only Python path to
external delegates (Coral, NXP VX, Arm NN, the QNN TFLite delegate).

The adapter is a :class:`~edgebench.agent.runtime.interpreter.Runtime` whose ``interpreter``
is a small shim (:class:`_Shim`) speaking the Interpreter's words (``set_tensor``,
``invoke``, ``get_tensor``, ``get_input_details``...), so the measurement loop, the sweep
worker and the scenarios run it unchanged, with the same stages, statistics and inputs:

* inputs: the model's own input buffers (``create_input_buffers``, allocated and aligned by
  LiteRT); ``set_tensor`` writes the frame into them, one copy, as the Interpreter's
  ``set_tensor`` does (``TensorBuffer.write`` takes a C-contiguous array as it is). Wrapping
  each frame with ``create_from_host_memory`` instead would make a buffer per frame and
  still copy any array that is not 64-byte aligned;
* ``inference`` is ``run_by_index`` alone (both buffer lists made once, before timing), the
  same call LiteRT's ``litert-benchmark`` times;
* outputs: ``TensorBuffer.read`` into a new array (in ``postprocess``, as ``get_tensor``).

What ran where. ``is_fully_accelerated()`` is all the API says (no per-operator list), and
it is not to be trusted alone: LiteRT warns that with a dispatch library but no compiler
plugin a model may run on the CPU while reporting fully accelerated. So the native log of
environment creation and compilation is read (:func:`_read_log`): which compiler plugins
loaded or failed (and why), whether the NPU accelerator registered, whether plugins
applied, and "No adapters found" for a missing GPU. An NPU counts as used only when it
registered and a compiler plugin applied (or the model was compiled ahead of time for
it: a ``DISPATCH_OP``); a GPU only when the model compiled with it asked.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import re
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgebench.agent.errors import ModelError, UserError
from edgebench.agent.runtime.interpreter import (
    Runtime,
    TensorInfo,
    _first_line,
    _version,
    capture_native_stderr,
    read_model_file,
)
from edgebench.agent.runtime.memory import rss_mb
from edgebench.agent.runtime.threads import resolve as resolve_threads

ACCELERATORS = ("cpu", "gpu", "npu")

#: --accelerator-option keys -> (options group, attribute, enum class name in ai_edge_litert.options)
VENDOR_OPTIONS: dict[str, tuple[str, str, str]] = {
    "cpu_kernel_mode": ("cpu_options", "kernel_mode", "CpuKernelMode"),
    "qualcomm_htp_performance_mode": ("qualcomm_options", "htp_performance_mode", "QualcommHtpPerformanceMode"),
    "qualcomm_backend": ("qualcomm_options", "backend", "QualcommBackend"),
    "openvino_device": ("intel_openvino_options", "graph_backend", "IntelOpenVinoGraphBackend"),
    "openvino_performance_mode": ("intel_openvino_options", "performance_mode", "IntelOpenVinoPerformanceMode"),
}


@dataclass
class CompiledSpec:
    """What ``--accelerator`` and its companions asked for."""

    accelerators: tuple[str, ...]
    dispatch_library: str | None = None
    compiler_plugin: str | None = None
    require_full_delegation: bool = False
    options: dict[str, str] = field(default_factory=dict)
    cpu_fallback: bool = False

    @classmethod
    def from_opts(cls, opts: Any) -> CompiledSpec | None:
        if not getattr(opts, "accelerator", None):
            return None
        if opts.delegate:
            raise UserError(
                "--accelerator runs LiteRT's CompiledModel, which takes no external delegate: "
                "drop --delegate, or drop --accelerator to run the delegate with the Interpreter"
            )
        if not opts.xnnpack:
            raise UserError(
                "--no-xnnpack is for the Interpreter; with --accelerator use --accelerator-option cpu_kernel_mode=builtin"
            )
        return cls(
            accelerators=tuple(opts.accelerator.split(",")),
            dispatch_library=opts.dispatch_library,
            compiler_plugin=opts.compiler_plugin,
            require_full_delegation=opts.require_full_delegation,
            options=dict(opts.accelerator_options or {}),
            cpu_fallback=opts.cpu_fallback,
        )


#: what the LiteRT C++ runtime writes to fd 2 meanwhile, into a list (read, not shown)
_native_log = capture_native_stderr


_PLUGIN_LOADING = re.compile(r"Loading plugin at: (\S+)")
_PLUGIN_FAILED = re.compile(r"Failed to load plugin at: (\S+)")
_CANNOT_OPEN = re.compile(r"(\S+\.so[.\d]*): cannot open shared object file")


def _read_log(lines: list[str]) -> dict[str, Any]:
    """What the native log says about plugins, the NPU and the GPU."""
    text = "\n".join(lines)
    failed = {}
    for i, line in enumerate(lines):
        m = _PLUGIN_FAILED.search(line)
        if m:
            why = _CANNOT_OPEN.search(" ".join(lines[i : i + 2]))
            failed[m.group(1)] = f"needs {why.group(1)}, not found" if why else "failed to load"
    loaded = [p for p in dict.fromkeys(_PLUGIN_LOADING.findall(text)) if p not in failed]
    return {
        "compiler_plugins_loaded": loaded,
        "compiler_plugins_failed": failed,
        "plugins_applied": bool(loaded) and "Failed to apply compiler plugins" not in text,
        "npu_registered": "NPU accelerator could not be loaded" not in text and "NPU accelerator registered" in text,
        "no_gpu": "No adapters found" in text or "Failed to initialize WebGPU" in text,
    }


def _flags(names: tuple[str, ...]):
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator as HA

    out = HA(0)
    for n in names:
        out |= {"cpu": HA.CPU, "gpu": HA.GPU, "npu": HA.NPU}[n]
    return out


def _enum(options_mod: Any, enum_name: str, key: str, value: str) -> Any:
    cls = getattr(options_mod, enum_name)
    try:
        return cls[value.upper()]
    except KeyError:
        names = ", ".join(n.lower() for n in cls.__members__)
        raise UserError(f"--accelerator-option {key}={value}: expected one of {names}") from None


def build_options(spec: CompiledSpec, accelerators: tuple[str, ...], threads: int) -> Any:
    """The ``ai_edge_litert.options.Options`` for ``accelerators``, the thread count and the
    vendor options (unknown keys and values are a UserError naming the known ones)."""
    from ai_edge_litert import options as o

    opts = o.Options(hardware_accelerators=_flags(accelerators), cpu_options=o.CpuOptions(num_threads=threads))
    for key, value in spec.options.items():
        if key not in VENDOR_OPTIONS:
            raise UserError(f"--accelerator-option {key}: unknown; choose one of {', '.join(VENDOR_OPTIONS)}")
        group, attr, enum_name = VENDOR_OPTIONS[key]
        setattr(getattr(opts, group), attr, _enum(o, enum_name, key, value))
    return opts


class _Shim:
    """The Interpreter's words over a CompiledModel's signature 0 (see the module docstring)."""

    def __init__(self, cm: Any):
        self.cm = cm
        sig = list(cm.get_signature_list())[0]
        self.sig = sig
        self._in = list(cm.get_input_tensor_details(sig).values())
        self._out = list(cm.get_output_tensor_details(sig).values())
        self.allocate_tensors()

    def allocate_tensors(self) -> None:
        self.in_bufs = self.cm.create_input_buffers(0)
        self.out_bufs = self.cm.create_output_buffers(0)
        self._in = list(self.cm.get_input_tensor_details(self.sig).values())
        self._out = list(self.cm.get_output_tensor_details(self.sig).values())
        self._in_pos = {int(d["index"]): i for i, d in enumerate(self._in)}
        self._out_pos = {int(d["index"]): i for i, d in enumerate(self._out)}
        self._out_spec = {
            int(d["index"]): (int(np.prod(d["shape"])), np.dtype(d["dtype"]), tuple(d["shape"])) for d in self._out
        }
        # LiteRT starts a second (chatty) environment at the first write: do it here, untimed
        for buf, d in zip(self.in_bufs, self._in):
            buf.write(np.zeros(d["shape"], np.dtype(d["dtype"])))

    def close(self) -> None:
        """Free the compiled model, its buffers and its environment, LiteRT's goodbye lines
        (``DestroyAccelerator``...) held back from the user's terminal."""
        if getattr(self, "cm", None) is None:
            return
        lines: list[str] = []
        with _native_log(lines):
            self.in_bufs = self.out_bufs = self.cm = self.env = None
            gc.collect()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown modules may be gone
            self.close()

    def resize_tensor_input(self, index: int, shape: list[int], strict: bool = False) -> None:
        self.cm.resize_input_tensor(self._in_pos[index], list(shape), 0, strict)

    def set_tensor(self, index: int, array: np.ndarray) -> None:
        self.in_bufs[self._in_pos[index]].write(array)

    def invoke(self) -> None:
        self.cm.run_by_index(0, self.in_bufs, self.out_bufs)

    def get_tensor(self, index: int) -> np.ndarray:
        n, dtype, shape = self._out_spec[index]
        return self.out_bufs[self._out_pos[index]].read(n, dtype).reshape(shape)

    def tensor(self, index: int):
        return lambda: self.get_tensor(index)

    def get_input_details(self) -> list[dict[str, Any]]:
        return [self._details(d) for d in self._in]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [self._details(d) for d in self._out]

    def _details(self, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": d["name"],
            "index": int(d["index"]),
            "shape": np.array(d["shape"], dtype=np.int32),
            "shape_signature": np.array(self.signatures.get(int(d["index"]), d["shape"]), dtype=np.int32),
            "dtype": np.dtype(d["dtype"]).type,
            "quantization": self.quant.get(int(d["index"]), (0.0, 0)),
        }

    #: filled by load() from the flatbuffer: tensor index -> (scale, zero point) and shape signature
    quant: dict[int, tuple[float, int]] = {}
    signatures: dict[int, list[int]] = {}


@dataclass
class CompiledRuntime(Runtime):
    """A compiled model and what it took; ``describe()`` says what ran where."""

    accelerators_asked: tuple[str, ...] = ()
    accelerators_used: tuple[str, ...] = ()
    fully_accelerated: bool | None = None
    libraries: dict[str, Any] = field(default_factory=dict)
    accelerator_fallback: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "version": self.version,
            "api": "compiled_model",
            "delegate": None,
            "num_threads": self.num_threads,
            "num_threads_from": self.num_threads_from,
            "accelerators_asked": list(self.accelerators_asked),
            "accelerators_used": list(self.accelerators_used),
            "accelerator": "+".join(a.upper() for a in self.accelerators_used) + " (LiteRT CompiledModel)",
            "fully_accelerated": self.fully_accelerated,
            "libraries": self.libraries,
            "xnnpack": None,
            "xnnpack_requested": "cpu" in self.accelerators_used,
        }
        if self.accelerator_fallback:
            d["accelerator_fallback"] = self.accelerator_fallback
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return d


def _import(runtime: str) -> tuple[Any, str]:
    if runtime not in ("auto", "ai-edge-litert"):
        raise UserError(f"--accelerator needs LiteRT's CompiledModel (ai-edge-litert), not --runtime {runtime}")
    try:
        from ai_edge_litert import compiled_model
    except Exception as e:
        raise UserError(
            f"--accelerator needs ai-edge-litert 2.x with CompiledModel ({_first_line(e)}): pip install ai-edge-litert"
        ) from None
    return compiled_model, _version(("ai-edge-litert", "ai-edge-litert-nightly"))


def _environment(cm_mod: Any, spec: CompiledSpec) -> Any:
    for what, path in (("--dispatch-library", spec.dispatch_library), ("--compiler-plugin", spec.compiler_plugin)):
        if path and not os.path.isdir(path):
            raise ModelError(f"{what} {path}: no such folder (give the folder that holds the vendor's .so)")
    kwargs = {"runtime_path": os.path.dirname(os.path.abspath(cm_mod.__file__))}
    if spec.dispatch_library:
        kwargs["dispatch_library_path"] = spec.dispatch_library
    if spec.compiler_plugin:
        kwargs["compiler_plugin_path"] = spec.compiler_plugin
    return cm_mod.Environment.create(**kwargs)


def _compile(cm_mod: Any, path: str, spec: CompiledSpec, accels: tuple[str, ...], threads: int):
    """(compiled model, environment, what the log says, error text or None, [environment ms, compile ms])."""
    lines: list[str] = []
    options = build_options(spec, accels, threads)
    times = [0.0, 0.0]
    cm = env = error = None
    with _native_log(lines):  # the log is read once the block has ended
        try:
            t0 = time.perf_counter_ns()
            env = _environment(cm_mod, spec)
            t1 = time.perf_counter_ns()
            cm = cm_mod.CompiledModel.from_file(path, environment=env, options=options)
            times = [(t1 - t0) / 1e6, (time.perf_counter_ns() - t1) / 1e6]
        except (ModelError, UserError):
            raise
        except Exception as e:
            error = _first_line(e)
            cm = env = None
            gc.collect()  # the half-made environment says goodbye here, into the log
    return cm, env, _read_log(lines), error, times


def _missing(asked: tuple[str, ...], log: dict[str, Any], precompiled: bool, error: str | None) -> str | None:
    """Why an asked-for GPU or NPU is not there (None when it is)."""
    if "gpu" in asked and (log["no_gpu"] or (error and "WebGPU" in error)):
        return "LiteRT found no GPU here (WebGPU: No adapters found)"
    if "npu" in asked and not log["npu_registered"]:
        return "LiteRT found no NPU here (no dispatch library registered the NPU accelerator)"
    if "npu" in asked and not precompiled and not log["plugins_applied"]:
        why = "; ".join(f"{os.path.basename(p)} {r}" for p, r in log["compiler_plugins_failed"].items())
        return f"no compiler plugin compiled the model for the NPU ({why or 'none found'})"
    return None


def load(model_path: str, spec: CompiledSpec, runtime: str = "auto", num_threads: int | None = None) -> CompiledRuntime:
    """Compile ``model_path`` for ``spec.accelerators``; a missing accelerator or (with
    ``--require-full-delegation``) a partial one is a ModelError (exit 3) with one line, or
    with ``--cpu-fallback`` a CPU run recorded as such."""
    from edgebench.agent.runtime.modelinfo import FlatModel

    read_model_file(model_path, head_only=True)
    cm_mod, version = _import(runtime)
    _LOADED.append(True)
    threads, threads_from = resolve_threads(num_threads)
    fm = FlatModel(model_path)
    precompiled = "DISPATCH_OP" in fm.codes
    asked = spec.accelerators
    before = rss_mb()
    cm, env, log, error, times = _compile(cm_mod, model_path, spec, asked, threads)
    fallback = None
    missing = _missing(asked, log, precompiled, error)
    if missing or error:
        reason = missing or f"LiteRT cannot compile {model_path} for {','.join(asked)}: {error}"
        with _native_log([]):  # LiteRT's goodbye lines, held back
            cm = env = None
            gc.collect()
        if not spec.cpu_fallback or asked == ("cpu",):
            hint = "; add --cpu-fallback to run on the CPU instead (recorded in the result)" if missing else ""
            raise ModelError(f"--accelerator {','.join(asked)}: {reason}{hint}")
        fallback = {"requested": ",".join(asked), "reason": reason}
        cm, env, _, error, times = _compile(cm_mod, model_path, spec, ("cpu",), threads)
        if error:
            raise ModelError(f"LiteRT cannot compile {model_path} for the CPU: {error}")
    used = ("cpu",) if fallback else tuple(a for a in asked if a != "npu" or log["npu_registered"])
    with _native_log([]):  # making the buffers may start another environment, as chatty
        rt = _runtime(model_path, version, threads, threads_from, cm, fm, times)
    rt.interpreter.env = env
    rt.memory = {"before_load_mb": before, "after_load_mb": None, "after_allocate_mb": rss_mb()}
    rt.accelerators_asked, rt.accelerators_used, rt.accelerator_fallback = asked, used, fallback
    _LIVE.add(rt.interpreter)
    rt.libraries = {
        "compiler_plugins_loaded": log["compiler_plugins_loaded"],
        "compiler_plugins_failed": log["compiler_plugins_failed"],
        "dispatch_library": getattr(getattr(env, "_options", None), "dispatch_library_path", None) or None,
        "npu_registered": log["npu_registered"],
        "precompiled_for_npu": precompiled,
    }
    _judge_full(rt, spec, log, precompiled)
    return rt


#: loaded models, closed at exit so LiteRT's destructors log into _native_log, not the terminal
_LIVE: weakref.WeakSet = weakref.WeakSet()
_LOADED = []


@atexit.register
def _close_all() -> None:
    """Close what is still open; then, once a CompiledModel was loaded, send fd 2 to /dev/null:
    LiteRT's static environment logs ``DestroyAccelerator`` from C++ destructors after
    Python has finished (everything edgebench says has been said by then)."""
    for shim in list(_LIVE):
        shim.close()
    if _LOADED:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)


def _judge_full(rt: CompiledRuntime, spec: CompiledSpec, log: dict[str, Any], precompiled: bool) -> None:
    """``fully_accelerated`` as the API says it, unless the NPU cannot have run the model
    (no compiler plugin, not compiled ahead): then None and a warning."""
    full = bool(rt.interpreter.cm.is_fully_accelerated())
    if "npu" in rt.accelerators_used and full and not (log["plugins_applied"] or precompiled):
        rt.warnings.append(
            "LiteRT reports the model fully accelerated, but no compiler plugin compiled it and it was not "
            "compiled ahead of time for the NPU: it may be running on the CPU"
        )
        full = None
    rt.fully_accelerated = full
    if spec.require_full_delegation and not full and not rt.accelerator_fallback:
        raise ModelError(
            f"--require-full-delegation: {os.path.basename(rt.model_path)} is not fully accelerated on "
            f"{','.join(rt.accelerators_used)} (is_fully_accelerated() is {full}); some operators run on the CPU"
        )


def _runtime(
    path: str, version: str, threads: int, threads_from: str, cm: Any, fm: Any, times: list[float]
) -> CompiledRuntime:
    from edgebench.agent.runtime.interpreter import _tensor_info

    shim = _Shim(cm)
    shim.quant, shim.signatures = {}, {}
    for i, t in enumerate(fm.tensors):
        doc = fm.tensor_doc(t)
        shim.quant[i] = (doc.get("scale", 0.0), doc.get("zero_point", 0))
        shim.signatures[i] = doc["shape_signature"]
    rt = CompiledRuntime(
        model_path=path,
        name="ai-edge-litert",
        version=version,
        num_threads=threads,
        num_threads_from=threads_from,
        interpreter=shim,
        load_ms=times[0],
        allocate_ms=times[1],
        xnnpack=None,
    )
    rt.inputs = [_tensor_info(d) for d in shim.get_input_details()]
    rt.outputs = [_tensor_info(d) for d in shim.get_output_details()]
    if not rt.inputs:
        raise ModelError(f"{path} has no input tensors")
    return rt


__all__ = ["ACCELERATORS", "CompiledRuntime", "CompiledSpec", "TensorInfo", "load"]
