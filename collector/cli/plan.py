"""``edgebench-collector plan``: the capacity plan (edgebench.collector.aggregate.plan) on the
command line: its flags, the prices parsed, the plan printed as text or JSON."""

from __future__ import annotations

from typing import Any

from edgebench.agent.errors import UserError


def _positive(text: str, kind: type, what: str) -> Any:
    """A number above 0, or one line saying what is wrong (not argparse's usage block)."""
    try:
        v = kind(text)
    except ValueError:
        word = "whole number" if kind is int else "number"
        raise UserError(f"{what} must be a {word}, got {text!r}") from None
    if not v > 0:
        raise UserError(f"{what} must be above 0, got {text}")
    return v


def parse_prices(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        board, sep, eur = item.rpartition("=")
        try:
            value = float(eur)
        except ValueError:
            value = -1.0
        if not sep or not board or value < 0:
            raise UserError(f"--price takes BOARD=EUR (the board type as `devices` shows it), got {item!r}")
        out[board] = value
    return out


def add_parser(sub: Any, db_arg, open_store) -> None:
    """``db_arg`` adds --db; ``open_store`` opens it (handed in: this module is imported by the CLI's)."""
    p = sub.add_parser("plan", help="boards needed per board type for N streams at F FPS under a p99 bound")
    db_arg(p)
    p.add_argument("--model", required=True, help="the model (file name as stored)")
    p.add_argument("--streams", required=True, help="how many streams")
    p.add_argument("--fps", required=True, help="frames per second of each stream")
    p.add_argument("--p99-ms", required=True, help="the p99 latency bound in milliseconds")
    p.add_argument("--price", action="append", metavar="BOARD=EUR", help="a board type's price (repeat per type)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_plan, open_store=open_store)


def cmd_plan(args) -> int:
    from edgebench.collector.aggregate.plan import capacity_plan, plan_lines
    from edgebench.collector.views.report import as_json

    streams = _positive(args.streams, int, "--streams")
    fps = _positive(args.fps, float, "--fps")
    p99_ms = _positive(args.p99_ms, float, "--p99-ms")
    prices = parse_prices(args.price)
    store = args.open_store(args.db, must_exist=True)
    try:
        plan = capacity_plan(store, args.model, streams, fps, p99_ms, prices)
    finally:
        store.close()
    print(as_json(plan) if args.format == "json" else "\n".join(plan_lines(plan)))
    return 0
