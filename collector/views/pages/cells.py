"""What tables are made of: a plain value (shown as text), a link, or text marked with a
class (a state, a verdict, a point's status), and the links between pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union
from urllib.parse import quote


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class Mark:
    """Text shown with a class: ``<span class="online">online</span>``."""

    cls: str
    text: str


Cell = Union[str, Link, Mark]


@dataclass
class Table:
    """A table with an id (the tests and scripts find tables by id), its heading, its rows
    of cells, and how many leading columns are left-aligned (the rest are figures)."""

    id: str
    head: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    left: int = 1


def fmt(v: Any, spec: str = ".3f") -> str:
    """A figure as shown: ``-`` for none, a float with ``spec``, anything else as text."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def marked(v: str | None) -> Cell:
    """A verdict (or status) shown with its own class; ``-`` for none."""
    return "-" if v is None else Mark(v, v)


def dev_href(d: str) -> str:
    return "/device/" + quote(d, safe="")


def run_href(d: str, r: str) -> str:
    return f"/run/{quote(d, safe='')}/{quote(r, safe='')}"


def model_href(m: str) -> str:
    return "/model/" + quote(m, safe="")


def facts(tid: str, items: list[tuple[str, Any]]) -> Table:
    """A two-column table of named facts (run info, a scenario's figures)."""
    return Table(tid, ["", ""], [[k, fmt(v)] for k, v in items], left=2)
