"""The dashboard's HTML: Jinja2 templates (``templates/``, package data) with autoescape on.

Every value a page shows passes through ``{{ }}`` and so is escaped: device ids, model
names, reasons and notes come from the fleet and are never markup. Control characters
(which HTML has no escape for) are shown as U+FFFD. The only markup not written in a
template is the inline SVG of charts.py, which escapes its own text and is passed in as
``Markup``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from edgebench.collector.views.pages.cells import Link, Mark, fmt
from edgebench.collector.views.report import iso

#: C0 controls but tab, newline and carriage return; DEL; C1 controls.
_CONTROLS = {c: 0xFFFD for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))}


def _visible(v: Any) -> Any:
    """What ``{{ v }}`` prints: text with its control characters as U+FFFD."""
    if isinstance(v, Markup):
        return v
    return v.translate(_CONTROLS) if isinstance(v, str) else v


def _breakable(v: Any) -> Markup:
    """Text (escaped) that may wrap after ``_ / . -`` (``<wbr>``): a long model name or run id
    wraps at its parts instead of widening a table past the page."""
    text = str(Markup.escape(_visible(str(v))))
    return Markup(re.sub(r"([_/.-])", r"\1<wbr>", text))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("edgebench.collector.views", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_visible,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["breakable"] = _breakable
    env.tests["link"] = lambda c: isinstance(c, Link)
    env.tests["mark"] = lambda c: isinstance(c, Mark)
    return env


_ENV = _environment()


def svg(text: str) -> Markup:
    """A chart from charts.py (which escapes its own text) as markup for a template."""
    return Markup(text)


def render(template: str, context: dict[str, Any] | None = None, **more: Any) -> bytes:
    """A page from its template and its data, as UTF-8."""
    return _ENV.get_template(template).render(made=iso(time.time()), **(context or {}), **more).encode()
