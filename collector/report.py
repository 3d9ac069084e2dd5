"""The fleet report as a terminal table (JSON for scripts)."""

from __future__ import annotations

import json
from typing import Any


def _f(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no results stored yet"
    head = (
        ("device", "model", "runs", "frames", "FPS", "inf p50", "inf p90", "inf p99", "e2e p50", "e2e p90", "e2e p99")
    )
    body = []
    for r in rows:
        body.append(
            (
                r["device_id"],
                r["model"],
                str(r["runs"]),
                str(r["frames"]),
                _f(r["fps"], ".1f"),
                *(_f(r["inference_ms"][k], ".3f") for k in ("p50", "p90", "p99")),
                *(_f(r["e2e_ms"][k], ".3f") for k in ("p50", "p90", "p99")),
            )
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    left = {0, 1}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    out.append("latency in ms (inf = interpreter.invoke() only; e2e = capture to postprocess); FPS = frames / measured time")
    return "\n".join(out)


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
