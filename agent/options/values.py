"""Parsers for option values given on the command line: bounded numbers and KEY=VALUE
pairs, each failing with one line that says what is wrong."""

from __future__ import annotations

import argparse

from edgebench.agent.errors import UserError


def _number(cast, *, min_value: float, strict: bool = False, max_value: float | None = None, hint: str = ""):
    """An argparse type: a number of ``cast`` within bounds, or one clear line."""
    kind = "whole number" if cast is int else "number"

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        if (v <= min_value if strict else v < min_value) or (max_value is not None and v > max_value):
            if max_value is not None:
                raise argparse.ArgumentTypeError(f"{text!r} must be between {min_value:g} and {max_value:g}{hint}")
            if min_value == 0 and not strict:
                raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
            raise argparse.ArgumentTypeError(f"{text!r} must be {'more than' if strict else 'at least'} {min_value:g}")
        return v

    return parse


_positive_int = _number(int, min_value=0)  # 0 or more (counts such as --warmup)
_positive_float = _number(float, min_value=0, strict=True)
_nonneg_float = _number(float, min_value=0)
_fraction = _number(float, min_value=0, max_value=1, hint=" (0.9 for 90%)")


def _delegate_options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k.strip():
            raise UserError(f"--delegate-option {p!r} must be KEY=VALUE")
        out[k.strip()] = v.strip()
    return out
