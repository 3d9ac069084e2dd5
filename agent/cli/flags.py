"""The command line of ``edgebench run``, ``sweep`` and ``agent``, made from the table.

``add_flags(parser, command)`` adds every flag the table gives ``command``, in the table's
order, in its help group, with its metavar and choices, and its help ending in the
default rendered from the table (agent/options/table.py ``help_text``). Every flag that
has a config key defaults to None, "not given", so that the config file's value stays
unless the flag is given; argparse only converts text to a number (``'ten' is not a
whole number``), the ranges are checked by ``given()``.

``given(args, command)`` turns the parsed flags into the config's shape (``{"run":
{"frames": 4}, "mqtt": {"url": ...}, "device_id": ...}``, only the flags given), each
value checked against its option's range: every bad value at once, a line each
(``--frames must be at least 1, got 0``). The flags without a config key (``--json``,
``-q``...) stay on ``args``.
"""

from __future__ import annotations

import argparse
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.options.kinds import Bad
from edgebench.agent.options.table import CLI, TOP, Option, for_command, help_text

_ACTIONS = {"true": ("store_const", True), "false": ("store_const", False)}


def _metavar(o: Option) -> str | None:
    if o.metavar or o.kind.choices:
        return o.metavar
    return o.flag.lstrip("-").replace("-", "_").upper() if o.flag else None


def _argument(o: Option, command: str) -> tuple[list[str], dict[str, Any]]:
    """The names and keywords of ``add_argument`` for one option."""
    names = [o.short, o.flag] if o.short else [o.flag]
    kw: dict[str, Any] = {"dest": o.dest, "help": argparse.SUPPRESS if o.hidden else help_text(o).replace("%", "%%")}
    if o.action in _ACTIONS:
        kw["action"], kw["const"] = _ACTIONS[o.action]
    else:
        kw.update(metavar=_metavar(o), choices=o.kind.choices, type=o.kind.parse)
        if o.action == "append":
            kw.update(action="append", type=None)
    kw["default"] = o.default if o.section == CLI else None
    if command in o.required:
        kw["required"] = True
    return [n for n in names if n], kw


def add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Every flag of ``command``, from the table, in its help group."""
    groups: dict[str | None, Any] = {None: parser}
    for o in for_command(command):
        if o.group not in groups:
            groups[o.group] = parser.add_argument_group(o.group)
        names, kw = _argument(o, command)
        groups[o.group].add_argument(*names, **kw)


def given(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The flags given, in the config's shape, each checked; UserError with every bad value."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for o in for_command(command):
        v = getattr(args, o.dest, None)
        if o.section == CLI or v is None:
            continue
        try:
            v = o.kind.from_flag(v, o.flag)
        except Bad as e:
            problems.append(str(e))
            continue
        if o.section == TOP:
            out[o.key] = v
        else:
            out.setdefault(o.section, {})[o.key] = v
    if problems:
        raise UserError("\n".join(problems))
    return out
