"""Times on the collector's command line: epoch seconds, ISO dates, or a duration ago."""

from __future__ import annotations

import re
import time
from datetime import datetime

from edgebench.agent.errors import UserError

_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")


def parse_time(text: str | None) -> float | None:
    """Epoch seconds, an ISO date/time, or a duration ago: 30m, 2h, 7d."""
    if text is None:
        return None
    t = text.strip()
    m = _REL.match(t)
    if m:
        mult = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return time.time() - float(m.group(1)) * mult
    try:
        return float(t)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(t).timestamp()
    except ValueError:
        raise UserError(
            f"cannot read the time {text!r}: use an ISO date (2026-11-22T10:00), epoch seconds,"
            " or a duration ago (30m, 2h, 7d)"
        ) from None
