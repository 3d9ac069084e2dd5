"""``edgebench info``: what this board is and what edgebench can measure on it.

Built as a list of sections, ``(title, [(key, value), ...])``, so other parts
of the agent (runtimes, delegates, cameras) add their own sections to
``gather()`` and the printer stays one function.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .probes.info import Section, _fmt, probe_sections


def gather(root: str | None = None, power: str = "auto") -> list[Section]:
    return list(probe_sections(root, power=power))


def print_sections(sections: list[Section], out: TextIO = sys.stdout) -> None:
    for i, (title, rows) in enumerate(sections):
        if i:
            out.write("\n")
        out.write(f"{title}\n")
        width = max((len(k) for k, _ in rows), default=0)
        for k, v in rows:
            out.write(f"  {k:<{width}}  {_fmt(v)}\n")


def sections_json(sections: list[Section]) -> dict[str, Any]:
    """``{title: [[key, value], ...]}`` (keys may repeat within a section)."""
    return {title: [[k, v] for k, v in rows] for title, rows in sections}
