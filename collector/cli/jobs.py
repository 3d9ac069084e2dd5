"""``edgebench-collector jobs schedule|list|remove|send-due``: recurring jobs sent by the
collector (edgebench.collector.broker.schedules); ``serve`` sends them when due."""

from __future__ import annotations

import sys
from typing import Any

from edgebench.agent.errors import UserError


def add_parser(sub: Any, db_arg, open_store) -> None:
    """``db_arg`` adds --db; ``open_store`` opens it (handed in: this module is imported by the CLI's)."""
    from edgebench.collector.broker.commands import add_broker_options, parse_sets

    j = sub.add_parser("jobs", help="recurring jobs the collector sends to devices: schedule, list, remove, send-due")
    jsub = j.add_subparsers(dest="action", metavar="ACTION")
    jsub.required = True
    s = jsub.add_parser("schedule", help="send a job to the devices matching --device every --every")
    db_arg(s)
    s.add_argument("--name", required=True, help="the schedule's name (list and remove use it)")
    s.add_argument("--every", required=True, metavar="PERIOD", help="how often: 30m, 24h, 7d or seconds")
    s.add_argument("--first", metavar="TIME", help="first due (ISO time or epoch s; default now: the next check)")
    s.add_argument(
        "--device", action="append", required=True, metavar="GLOB", help="device id or glob, e.g. 'pi-*' (repeatable)"
    )
    s.add_argument("--model", required=True, help="a bundled model's name or a .tflite path on the device")
    for flag, kind, what in (
        ("--frames", int, "frames to measure"),
        ("--threads", int, "interpreter threads"),
        ("--source", str, "frame source on the device (default synthetic)"),
        ("--scenario", str, "scenario (when the device's agent supports it)"),
    ):
        s.add_argument(flag, type=kind, help=what)
    s.add_argument("--tune", action="store_true", help="run edgebench tune's search (needs --latency-bound-ms)")
    s.add_argument("--latency-bound-ms", type=float, metavar="MS", help="the bound of a tune job or a scenario")
    s.add_argument("--objective", help="a tune job's objective: throughput, latency or energy")
    s.add_argument("--budget-s", type=float, metavar="SEC", help="a tune job's budget")
    s.add_argument("--max-batch", type=int, metavar="N", help="the largest batch a tune job tries")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other job key (repeatable)")
    ls = jsub.add_parser("list", help="every schedule: its job, period, next due time and last answers")
    db_arg(ls)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    rm = jsub.add_parser("remove", help="remove a schedule")
    db_arg(rm)
    rm.add_argument("--name", required=True)
    sd = jsub.add_parser("send-due", help="send the schedules due now, once (what serve does every 30 s)")
    db_arg(sd)
    sd.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL (default mqtt://127.0.0.1:1883)")
    add_broker_options(sd)
    j.set_defaults(func=cmd_jobs, open_store=open_store, parse_sets=parse_sets)


def job_of(args) -> dict[str, Any]:
    job: dict[str, Any] = {"model": args.model}
    keys = ("frames", "threads", "source", "scenario", "latency_bound_ms", "objective", "budget_s", "max_batch")
    job.update({k: getattr(args, k) for k in keys if getattr(args, k) is not None})
    if args.tune:
        if args.latency_bound_ms is None:
            raise UserError("jobs schedule --tune needs --latency-bound-ms MS (the p99 a batch must hold)")
        job["tune"] = True
    job.update(args.parse_sets(args.set or []))
    return job


def cmd_jobs(args) -> int:
    from edgebench.collector.broker import schedules

    if args.action == "schedule":  # the flags are checked before the database is touched
        every = schedules.parse_period(args.every)
        job = job_of(args)
        from edgebench.collector.cli.times import parse_time

        first = parse_time(args.first) if args.first else None
    store = args.open_store(args.db, must_exist=args.action != "schedule")
    try:
        if args.action == "schedule":
            schedules.add(store, args.name, args.device, job, every, first)
            print(f"schedule {args.name}: every {every:g} s to {' '.join(args.device)}; `serve` sends it when due")
        elif args.action == "list":
            _list(schedules.rows(store), args.format)
        elif args.action == "remove":
            schedules.remove(store, args.name)
            print(f"schedule {args.name} removed")
        else:
            from edgebench.collector.broker.commands import settings_from_args

            sent = schedules.send_due(store, schedules.commander_sender(settings_from_args(args)))
            for r in sent:
                print(f"{r['name']}: {r['last_result']}")
            if not sent:
                print("nothing due")
    finally:
        store.close()
    return 0


def _list(rows: list[dict[str, Any]], fmt: str) -> None:
    from edgebench.collector.views.report import as_json, iso

    if fmt == "json":
        print(as_json(rows))
        return
    for r in rows:
        job = ", ".join(f"{k}={v}" for k, v in r["job"].items())
        sys.stdout.write(
            f"{r['name']}: every {r['every_s']:g} s to {' '.join(r['devices'])}: {job}; next {iso(r['next_at'])}"
            f"; last {iso(r['last_sent_at']) if r['last_sent_at'] else 'never'}"
            + (f": {r['last_result']}" if r["last_result"] else "")
            + "\n"
        )
