"""What an option's value may be, and the one line that says a value is wrong.

A kind is the type and range of an option (agent/options/table.py gives every option
one). It checks a value from three places, each with the house's message style:

* the config file (YAML, already parsed): ``from_config(v)`` returns the value or raises
  :class:`Bad` with ``expected a whole number >= 1, got 'ten'``; the caller puts
  ``config FILE: run.frames: `` in front;
* the command line: ``parse(text)`` is the argparse ``type=`` (conversion only:
  ``'ten' is not a whole number``); the range is checked after parsing, with the rest;
* a flag's value or a Python caller's value (``RunOptions(frames=0)``): ``from_flag(v, name)``
  returns the value or raises :class:`Bad` with ``--frames must be at least 1, got 0``.

The range lives in the kind once; both messages are rendered from it.
"""

from __future__ import annotations

import argparse
from typing import Any

from edgebench.agent.errors import UserError


class Bad(Exception):
    """One problem with one value (a sentence without the key or file in front)."""


def _show(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Kind:
    """Any value (the base class): what every kind may refine."""

    #: the dataclass field's annotation
    annotation = "Any"
    #: argparse ``choices``, when the flag has a fixed set
    choices: tuple[str, ...] | None = None

    def parse(self, text: str) -> Any:
        """The argparse ``type=``: text to value, conversion only."""
        return text

    def from_config(self, v: Any) -> Any:
        return v

    def from_flag(self, v: Any, name: str) -> Any:
        return v


class Text(Kind):
    annotation = "str"

    def from_config(self, v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise Bad(f"expected a non-empty string, got {v!r}")
        return v


class Bool(Kind):
    annotation = "bool"

    def from_config(self, v: Any) -> bool:
        if not isinstance(v, bool):
            raise Bad(f"expected true or false, got {v!r}")
        return v


class Choice(Kind):
    annotation = "str"

    def __init__(self, *options: str):
        self.choices = options

    def from_config(self, v: Any) -> str:
        if v not in self.choices:
            raise Bad(f"expected one of {', '.join(self.choices)}, got {v!r}")
        return v

    def from_flag(self, v: Any, name: str) -> str:
        if v not in self.choices:
            raise Bad(f"{name} must be one of {', '.join(self.choices)}, got {v!r}")
        return v


class Subset(Kind):
    """Some of a fixed set, in order, comma-separated (``npu,cpu``); a list in the config file.
    The value is the normalized text (lower case, no spaces, no repeats)."""

    annotation = "str | None"

    def __init__(self, *options: str):
        self.options = options

    def _check(self, parts: list[str]) -> str:
        wrong = [p for p in parts if p not in self.options]
        if not parts or wrong:
            raise Bad(f"expected some of {', '.join(self.options)} (comma-separated), got {','.join(parts)!r}")
        return ",".join(dict.fromkeys(parts))

    def from_config(self, v: Any) -> str:
        if isinstance(v, str):
            return self._check([p.strip().lower() for p in v.split(",") if p.strip()])
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return self._check([x.strip().lower() for x in v])
        raise Bad(f"expected some of {', '.join(self.options)} as a list or comma-separated, got {v!r}")

    def from_flag(self, v: Any, name: str) -> str:
        try:
            return self.from_config(v)
        except Bad as e:
            raise Bad(f"{name}: {e}") from None


class _Bounded(Kind):
    """A number within [lo, hi] (``above``: lo itself is out)."""

    word = "number"

    def __init__(self, lo: float | None = None, hi: float | None = None, *, above: bool = False):
        self.lo, self.hi, self.above = lo, hi, above

    def _below(self, v: Any) -> bool:
        return self.lo is not None and (v <= self.lo if self.above else v < self.lo)

    def _over(self, v: Any) -> bool:
        return self.hi is not None and v > self.hi

    def from_flag(self, v: Any, name: str) -> Any:
        if self._below(v):
            raise Bad(f"{name} must {self._lower_phrase()}, got {_show(v)}")
        if self._over(v):
            raise Bad(f"{name} must {self._range_phrase()}, got {_show(v)}")
        return v

    def _lower_phrase(self) -> str:
        if self.above:
            return f"be more than {self.lo:g}"
        return "not be negative" if self.lo == 0 else f"be at least {self.lo:g}"

    def _range_phrase(self) -> str:
        if self.lo is None:
            return f"be at most {self.hi:g}"
        if self.above:
            return f"be above {self.lo:g} and at most {self.hi:g}"
        return f"be between {self.lo:g} and {self.hi:g}"


class Whole(_Bounded):
    annotation = "int"

    def parse(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None

    def from_config(self, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise Bad(f"expected a whole number{f' >= {self.lo}' if self.lo is not None else ''}, got {v!r}")
        if self._below(v) or self._over(v):
            rng = f">= {self.lo}" if self.hi is None else f"between {self.lo} and {self.hi}"
            raise Bad(f"expected a whole number {rng}, got {v!r}")
        return v


class Number(_Bounded):
    annotation = "float"

    def parse(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None

    def from_config(self, v: Any) -> float:
        if not _is_number(v):
            raise Bad(f"expected a number, got {v!r}")
        if self._below(v) or self._over(v):
            raise Bad(f"expected a number {self._config_range()}, got {v!r}")
        return float(v)

    def _config_range(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.above else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"<= {self.hi:g}")
        return " and ".join(parts)


class Fraction(Number):
    """A share between 0 and 1 (0.9 for 90%)."""

    def __init__(self) -> None:
        super().__init__(0, 1)

    def from_config(self, v: Any) -> float:
        if not _is_number(v) or not 0 <= v <= 1:
            raise Bad(f"expected a fraction between 0 and 1 (0.9 for 90%), got {v!r}")
        return float(v)

    def from_flag(self, v: Any, name: str) -> float:
        if not 0 <= v <= 1:
            raise Bad(f"{name} must be between 0 and 1 (0.9 for 90%), got {_show(v)}")
        return v


class StrMap(Kind):
    """key: value pairs; on the command line a repeated KEY=VALUE."""

    annotation = "dict[str, str]"

    def from_config(self, v: Any) -> dict[str, str]:
        if not isinstance(v, dict):
            raise Bad(f"expected a mapping of key: value, got {v!r}")
        return {str(k): str(val) for k, val in v.items()}

    def from_flag(self, v: Any, name: str) -> dict[str, str]:
        if isinstance(v, dict):
            return v
        out = {}
        for p in v:
            k, sep, val = p.partition("=")
            if not sep or not k.strip():
                raise Bad(f"{name} {p!r} must be KEY=VALUE")
            out[k.strip()] = val.strip()
        return out


class Normalization(Kind):
    """``{mean, std}``: one number or three (per channel) each; std never zero."""

    annotation = "dict[str, list[float]]"

    def from_config(self, v: Any) -> dict[str, list[float]]:
        if not isinstance(v, dict) or set(v) != {"mean", "std"}:
            raise Bad(f"expected a mapping with mean and std, got {v!r}")
        out = {"mean": _floats3(v["mean"]), "std": _floats3(v["std"])}
        if any(s == 0 for s in out["std"]):
            raise Bad("std must not be zero")
        return out


def _floats3(v: Any) -> list[float]:
    if _is_number(v):
        return [float(v)] * 3
    if isinstance(v, list) and len(v) in (1, 3) and all(_is_number(x) for x in v):
        return [float(x) for x in v] * (3 if len(v) == 1 else 1)
    raise Bad(f"expected a number or a list of 1 or 3 numbers, got {v!r}")


class DeviceId(Kind):
    """A device id as the protocol allows it in topics."""

    annotation = "str"

    def from_config(self, v: Any) -> str:
        from edgebench.agent.wire.protocol import check_device_id

        try:
            return check_device_id(v)
        except ValueError as e:
            raise Bad(str(e)) from None

    def from_flag(self, v: Any, name: str) -> str:
        return self.from_config(v)


class Grid(Kind):
    """A sweep axis: whole numbers from 1 to ``hi``, each once, in the order given;
    written ``1,2,4``, ``1..64`` (powers of two) or a mix, or as a YAML list."""

    annotation = "list[int]"

    def __init__(self, hi: int):
        self.hi = hi

    def from_config(self, v: Any) -> list[int]:
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v]
        whole_list = isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        if isinstance(v, str) or whole_list:
            try:
                return parse_grid(v, "grid", [], self.hi)
            except UserError:
                pass
        raise Bad(f"expected whole numbers from 1 to {self.hi}, each once (a list, '1,2,4' or '1..64'), got {v!r}")

    def from_flag(self, v: Any, name: str) -> list[int]:
        try:
            return parse_grid(v if isinstance(v, str) else list(v), name.lstrip("-"), [], self.hi)
        except UserError as e:
            raise Bad(str(e)) from None


#: the sweep's bounds (a point per combination; protocol.MAX_SWEEP_POINTS bounds their product)
MAX_BATCH = 65536
MAX_THREADS = 256
MAX_INSTANCES = 64


def parse_grid(text: str | list[int] | None, name: str, default: list[int], hi: int) -> list[int]:
    """ "1,2,4", "1..64" (powers of two from 1 to 64) or a mix: whole numbers >= 1,
    each once, kept in the order given. Every problem is one UserError line."""
    if text is None:
        return list(default)
    if isinstance(text, list):
        parts = [str(v) for v in text]
    else:
        parts = [p.strip() for p in str(text).split(",")]
    if not parts or all(p == "" for p in parts):
        raise UserError(f"--{name} is empty: give whole numbers >= 1, e.g. --{name} 1,2,4 or --{name} 1..64")
    values: list[int] = []
    for p in parts:
        if p == "":
            raise UserError(f"--{name} {text!r} has an empty entry: give whole numbers separated by commas")
        values.extend(_grid_part(p, name, text))
    for v in values:
        if v > hi:
            raise UserError(f"--{name} {v} is too large (at most {hi})")
    dup = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if dup is not None:
        raise UserError(f"--{name} lists {dup} more than once: give each value once")
    return values


def _grid_part(p: str, name: str, text: Any) -> list[int]:
    if ".." not in p:
        return [_whole(p, name, text)]
    a, _, b = p.partition("..")
    lo, up = _whole(a, name, text), _whole(b, name, text)
    if up < lo:
        raise UserError(f"--{name} range {p!r} runs backwards: write LOW..HIGH, e.g. 1..64")
    out = []
    while lo <= up:
        out.append(lo)
        lo *= 2
    return out


def _whole(p: str, name: str, text: Any) -> int:
    try:
        v = int(p.strip())
    except ValueError:
        raise UserError(f"--{name} {text!r}: {p.strip()!r} is not a whole number") from None
    if v < 1:
        raise UserError(f"--{name} {text!r}: {v} must be at least 1") from None
    return v
