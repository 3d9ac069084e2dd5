"""`edgebench info`: what this board can run and measure, section by section."""

from __future__ import annotations

import ctypes
import platform
import shutil
from typing import Any, Callable

from edgebench.agent import __version__
from edgebench.agent.errors import UserError
from edgebench.agent.probes.info import probe_sections
from edgebench.agent.runtime.interpreter import DELEGATE_ALIASES, available_runtimes, install_hint


def delegates_found() -> dict[str, str]:
    """Known delegate libraries that this machine's loader can open, name -> library."""
    found = {}
    for name, lib in DELEGATE_ALIASES.items():
        try:
            ctypes.CDLL(lib)
            found[name] = lib
        except OSError:
            continue
    return found


def opencv_features() -> dict[str, Any]:
    import cv2

    build = cv2.getBuildInformation()

    def has(word: str) -> bool:
        return any(line.strip().startswith(word) and "YES" in line for line in build.splitlines())

    return {"version": cv2.__version__, "ffmpeg": has("FFMPEG"), "gstreamer": has("GStreamer"), "v4l2": has("v4l/v4l2")}


def section_agent() -> dict[str, Any]:
    return {"edgebench": __version__, "python": platform.python_version(), "machine": platform.machine()}


def section_runtimes() -> dict[str, Any]:
    rts = available_runtimes()
    return {"found": rts or f"none ({install_hint()})", "default": next(iter(rts), None)}


def section_delegates() -> dict[str, Any]:
    found = delegates_found()
    return {"found": found or "none", "known": DELEGATE_ALIASES}


def section_sources() -> dict[str, Any]:
    from edgebench.agent.sources.open import list_cameras

    return {
        "cameras": list_cameras() or "none",
        "gst-launch-1.0": shutil.which("gst-launch-1.0") or "not installed",
        "opencv": opencv_features(),
    }


#: Sections in print order; other modules (board inventory, probes) add theirs.
SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "agent": section_agent,
    "runtimes": section_runtimes,
    "delegates": section_delegates,
    "sources": section_sources,
}
SECTIONS.update(probe_sections())  # board, accelerators, power, thermal, throttling


def collect(names: list[str] | None = None) -> dict[str, Any]:
    """The sections named (all when None), in print order. Each section imports what it
    reads (OpenCV for ``sources``, the runtimes for ``runtimes``) only when it runs."""
    unknown = [n for n in names or () if n not in SECTIONS]
    if unknown:
        raise UserError(f"no info section {', '.join(map(repr, unknown))}: choose from {', '.join(SECTIONS)}")
    out = {}
    for name, fn in SECTIONS.items():
        if names and name not in names:
            continue
        try:
            out[name] = fn()
        except Exception as e:  # one broken probe must not hide the rest
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def _word(v: Any) -> str:
    """A value for people: no Python spellings (None, True, {}, [])."""
    if v is None:
        return "unknown"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (dict, list)) and not v:
        return "none"
    return str(v)


def render(info: dict[str, Any]) -> str:
    """``edgebench info`` as text: sections, indented keys, values in words (``--json`` keeps
    them as they are: null, true, {})."""
    lines = []

    def walk(value: Any, indent: int) -> None:
        pad = "  " * indent
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, (dict, list)) and v:
                    lines.append(f"{pad}{k}:")
                    walk(v, indent + 1)
                else:
                    lines.append(f"{pad}{k}: {_word(v)}")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    lines.append(pad + ", ".join(f"{k}={_word(v)}" for k, v in item.items()))
                else:
                    lines.append(f"{pad}- {_word(item)}")

    for name, section in info.items():
        lines.append(f"[{name}]")
        walk(section, 1)
    return "\n".join(lines)
