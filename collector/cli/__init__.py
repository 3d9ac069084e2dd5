"""``edgebench-collector``: the central side (serve, report, devices, export, compare, web, demo)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from edgebench.agent import __version__
from edgebench.agent.errors import UserError
from edgebench.collector.cli.times import parse_time

DEFAULT_DB = "edgebench.db"


def open_store(db: str, must_exist: bool = False):
    from edgebench.collector.store import is_postgres_url, sqlite_path
    from edgebench.collector.store import open_store as _open

    if must_exist and not is_postgres_url(db):
        path = sqlite_path(db)
        if "://" not in path and not os.path.exists(path):
            raise UserError(f"database not found: {db} (run `edgebench-collector serve --db {db}` first)")
    return _open(db)


def _by(text: str) -> tuple[str, ...]:
    from edgebench.collector.aggregate import check_group

    return check_group(k.strip() for k in text.split(",") if k.strip())


def _filters(args) -> dict:
    return {"device_id": getattr(args, "device", None), "model": getattr(args, "model", None)}


def _token(args) -> str | None:
    return args.token or os.environ.get("EDGEBENCH_WEB_TOKEN") or None


def _start_ingest(args, settings):
    """The store and the receiver ``serve`` runs (MQTT; NATS JetStream with --nats; a RabbitMQ
    quorum queue with --amqp), and where it is connected, in words."""
    from edgebench.collector.ingest.collector import Collector

    retention_s = args.retention_days * 86400 if args.retention_days else None
    store = open_store(args.db)
    if args.nats:
        from edgebench.collector.ingest.jetstream import JetStreamCollector

        col = JetStreamCollector(
            args.nats, store, name=args.client_id, client_id=args.client_id, retention_s=retention_s
        ).start(30)
        return (
            store,
            col,
            f"NATS JetStream at {col.url} (stream EDGEBENCH, shared durable consumer edgebench-collectors)",
        )
    if args.amqp:
        from edgebench.collector.ingest.amqp import QUEUE, AmqpCollector

        col = AmqpCollector(args.amqp, store, name=args.client_id, retention_s=retention_s).start(30)
        return store, col, f"RabbitMQ at {col.node} of {col.url} (quorum queue {QUEUE}, shared by the collectors)"
    col = Collector(
        settings,
        store,
        client_id=args.client_id,
        group=args.group,
        share=args.share,
        session_expiry_s=args.session_expiry,
        protocol_version=args.mqtt_protocol,
        retention_s=retention_s,
    ).start()
    shared = any(s.startswith("$share/") for s in col.subscriptions)
    return (
        store,
        col,
        f"{col.conn.url} ({'shared subscriptions, group ' + args.group if shared else 'plain subscriptions'})",
    )


def cmd_serve(args) -> int:
    from edgebench.collector.broker.commands import settings_from_args

    # credentials/TLS checked before the database is touched; with --nats or --amqp, --mqtt is where
    # recurring jobs are sent (remote commands go over MQTT: any node's MQTT listener)
    settings = settings_from_args(args)
    store, col, where = _start_ingest(args, settings)
    print(
        f"collector: connected to {where},"
        f" storing in {store.url if store.dialect == 'sqlite' else 'PostgreSQL'} (Ctrl-C to stop)",
        flush=True,
    )
    web = None
    if args.web_port is not None:
        from edgebench.collector.views.web import Dashboard, WebServer

        web = WebServer(Dashboard(store, token=_token(args), ingest=col), args.web_bind, args.web_port).start()
        print(f"collector: dashboard on {web.url} (metrics at {web.url}metrics)", flush=True)
    from edgebench.collector.broker.schedules import Scheduler, commander_sender

    scheduler = Scheduler(store, commander_sender(settings), args.schedule_check_s).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    scheduler.stop()
    if web:
        web.stop()
    col.stop()
    c = col.counts
    rej = ", ".join(f"{k} {v}" for k, v in col.rejections.items() if v)
    print(
        f"collector: stopped; received {c['received']}, stored {c['stored']}, duplicates {c['duplicates']}, "
        f"rejected {c['rejected']}" + (f" ({rej})" if rej else "") + f", store errors {c['store_errors']}",
        flush=True,
    )
    store.close()
    return 0


def _emit(args, rows, table_fn) -> None:
    from edgebench.collector.views.report import as_csv, as_json

    if args.format == "json":
        print(as_json(rows))
    elif args.format == "csv":
        sys.stdout.write(as_csv(rows))
    else:
        print(table_fn(rows))


def cmd_report(args) -> int:
    from edgebench.collector.aggregate import group_rows
    from edgebench.collector.store.rollups import METHOD as ROLLUP_METHOD
    from edgebench.collector.views.report import table

    if args.what in ("scenarios", "sweeps", "tunes"):
        from edgebench.collector.aggregate import scenario_rows, sweep_rows, tune_rows
        from edgebench.collector.views.report import scenario_table, sweep_table, tune_table

        store = open_store(args.db, must_exist=True)
        fn, table_fn = {
            "scenarios": (scenario_rows, scenario_table),
            "sweeps": (sweep_rows, sweep_table),
            "tunes": (tune_rows, tune_table),
        }[args.what]
        rows = fn(store, since=parse_time(args.since), until=parse_time(args.until), where=_filters(args))
        _emit(args, rows, table_fn)
        store.close()
        return 0
    by = _by(args.by)
    store = open_store(args.db, must_exist=True)
    if args.rollups and not store.has_rollups:
        raise UserError("report --rollups: per-minute rollups are kept on PostgreSQL only; leave it out on SQLite")
    since, until = parse_time(args.since), parse_time(args.until)
    rows = group_rows(store, by, since=since, until=until, where=_filters(args), rollups=args.rollups)
    for r in rows:
        r.pop("last_at", None)
    note = f"\nlatency {ROLLUP_METHOD}" if args.rollups and args.format == "table" else ""
    _emit(args, rows, lambda rs: table(rs, by) + note)
    store.close()
    return 0


def cmd_devices(args) -> int:
    from edgebench.collector.aggregate import device_rows
    from edgebench.collector.views.report import devices_table

    store = open_store(args.db, must_exist=True)
    rows = device_rows(store)
    if args.format != "json":
        for r in rows:
            r.pop("inventory", None)
    _emit(args, rows, devices_table)
    store.close()
    return 0


def cmd_export(args) -> int:
    from edgebench.collector.views.export import export

    store = open_store(args.db, must_exist=True)
    n = export(
        store,
        args.what,
        args.format,
        args.out,
        since=parse_time(args.since),
        until=parse_time(args.until),
        where=_filters(args),
    )
    print(f"exported {n} {args.what} rows to {args.out}", file=sys.stderr)
    store.close()
    return 0


def cmd_compare(args) -> int:
    from edgebench.collector.aggregate import compare_runs, find_run, group_rows
    from edgebench.collector.views.report import as_csv, as_json, compare_table, table

    store = open_store(args.db, must_exist=True)
    if args.run:
        if not args.baseline:
            raise UserError("compare --run needs --baseline DEVICE/RUN_ID (the run to compare against)")
        c = compare_runs(store, find_run(store, args.run), find_run(store, args.baseline), stage=args.stage)
        if args.format == "csv":
            sys.stdout.write(as_csv([{"run": c["run"], "baseline": c["baseline"], **m} for m in c["metrics"]]))
        else:
            print(as_json(c) if args.format == "json" else compare_table(c))
    elif args.model:
        by = ("model", "device_id", "board", "runtime", "delegate", "threads")
        rows = group_rows(
            store, by, where={"model": args.model}, since=parse_time(args.since), until=parse_time(args.until)
        )
        if not rows:
            raise UserError(f"no runs of model {args.model!r} stored (see `edgebench-collector report`)")
        for r in rows:
            r.pop("last_at", None)
        _emit(args, rows, lambda rs: table(rs, by[1:]))
    else:
        raise UserError("compare needs --model NAME (the model across boards) or --run RUN --baseline RUN")
    store.close()
    return 0


def cmd_web(args) -> int:
    from edgebench.collector.views.web import Dashboard, WebServer

    store = open_store(args.db, must_exist=True)
    token = _token(args)
    if args.bind not in ("127.0.0.1", "localhost", "::1") and not token:
        print(
            f"edgebench-collector: warning: serving on {args.bind} without a token; anyone who can reach it can"
            " read the fleet's results (set --token or EDGEBENCH_WEB_TOKEN)",
            file=sys.stderr,
        )
    web = WebServer(Dashboard(store, token=token), args.bind, args.port).start()
    print(f"dashboard on {web.url} (metrics at {web.url}metrics; Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    web.stop()
    store.close()
    return 0


def cmd_purge(args) -> int:
    store = open_store(args.db, must_exist=True)
    n = store.purge(time.time() - args.older_than_days * 86400)
    print(
        f"purged {n['frame_batches']} frame batches, {n['messages']} dedup keys, {n['quarantine']} quarantined"
        " messages; runs and summaries kept"
    )
    store.close()
    return 0


def cmd_demo(args) -> int:
    from edgebench.collector.cli.demo import run_demo

    return run_demo(args)


def _db_arg(p) -> None:
    p.add_argument(
        "--db",
        default=os.environ.get("EDGEBENCH_DB", DEFAULT_DB),
        help=f"SQLite file or postgresql://USER@HOST/DB (default $EDGEBENCH_DB or {DEFAULT_DB})",
    )


def _window_args(p) -> None:
    p.add_argument("--since", help="only frames measured since (ISO time, epoch s, or ago: 30m, 2h, 7d)")
    p.add_argument("--until", help="only frames measured before this time")
    p.add_argument("--device", help="only this device")
    p.add_argument("--model", help="only this model (file name)")


def build_parser() -> argparse.ArgumentParser:
    from edgebench.collector.broker.commands import add_parser as add_cmd_parser

    ap = argparse.ArgumentParser(
        prog="edgebench-collector", description="Collect, store and show a fleet's benchmarks."
    )
    ap.add_argument("--version", action="version", version=f"edgebench-collector {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    commands = (_serve_parser, _report_parser, _devices_parser, _export_parser, _compare_parser, _web_parser)
    for add in (*commands, _purge_parser, _demo_parser, add_cmd_parser):  # in the order --help lists them
        add(sub)
    from edgebench.collector.cli.plan import add_parser as add_plan_parser

    add_plan_parser(sub, _db_arg, open_store)
    from edgebench.collector.cli.baseline import add_parsers as add_baseline_parsers

    add_baseline_parsers(sub, _db_arg, open_store)
    from edgebench.collector.cli.jobs import add_parser as add_jobs_parser

    add_jobs_parser(sub, _db_arg, open_store)
    return ap


def _serve_parser(sub) -> None:
    from edgebench.collector.broker.commands import add_broker_options

    s = sub.add_parser("serve", help="subscribe to the fleet and store what it publishes")
    s.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL (default mqtt://127.0.0.1:1883)")
    _db_arg(s)
    s.add_argument(
        "--client-id",
        default="edgebench-collector",
        help="MQTT client id; fixed, so the broker keeps our session (give each collector its own)",
    )
    s.add_argument(
        "--share",
        action="store_true",
        help="frames, summaries and telemetry on MQTT 5 shared subscriptions, so several collectors split the load"
        " (see the README for what Mosquitto 2.0 loses across a broker restart)",
    )
    s.add_argument(
        "--group",
        default="edgebench-collectors",
        help="shared subscription group with --share (default edgebench-collectors)",
    )
    s.add_argument(
        "--session-expiry",
        type=int,
        default=3600,
        metavar="S",
        help="seconds the broker keeps our session (and queues our share) while we are away"
        " (default 3600; 0 ends the session at disconnect: use it to retire a collector)",
    )
    s.add_argument("--mqtt-protocol", choices=["auto", "5", "3.1.1"], default="auto")
    engine = s.add_mutually_exclusive_group()
    engine.add_argument(
        "--nats",
        metavar="URL[,URL...]",
        help="consume the fleet from NATS JetStream instead of --mqtt (nats://host:4222,...; docs/scale-out.md)",
    )
    engine.add_argument(
        "--amqp",
        metavar="URL[,URL...]",
        help="consume the fleet from a RabbitMQ quorum queue instead of --mqtt"
        " (amqp://user:password@host:5672,...; docs/scale-out.md)",
    )
    s.add_argument("--retention-days", type=float, help="purge raw frames older than this (summaries are kept)")
    s.add_argument("--web-port", type=int, help="also serve the dashboard and /metrics on this port")
    s.add_argument("--web-bind", default="127.0.0.1", help="address for --web-port (default 127.0.0.1)")
    s.add_argument("--token", help="dashboard token (or $EDGEBENCH_WEB_TOKEN)")
    add_broker_options(s)
    s.add_argument(
        "--schedule-check-s",
        type=float,
        default=30.0,
        metavar="S",
        help="how often to send the recurring jobs that are due (`jobs schedule`; default 30)",
    )
    s.set_defaults(func=cmd_serve)


def _report_parser(sub) -> None:
    r = sub.add_parser(
        "report",
        help="frames, FPS, latency percentiles, energy, data quality per group;"
        " scenario verdicts and headlines; sweeps",
    )
    _db_arg(r)
    r.add_argument(
        "--what",
        choices=["fleet", "scenarios", "sweeps", "tunes"],
        default="fleet",
        help="fleet (default): per-frame runs grouped by --by; scenarios: one row per scenario result"
        " (verdict, headline, reasons); sweeps: one row per sweep (points, best throughput, lowest p99);"
        " tunes: one row per tune search (bound, best configuration, its figures, verdict)",
    )
    r.add_argument("--format", choices=["table", "json", "csv"], default="table")
    r.add_argument(
        "--rollups",
        action="store_true",
        help="PostgreSQL: latency from the per-minute rollups (fast over long windows; percentiles within 2 %%,"
        " window in whole minutes) instead of every raw frame (exact)",
    )
    r.add_argument(
        "--by",
        default="device_id,model,threads",
        help="group by some of device_id,model,runtime,delegate,threads,scenario,board,run_id"
        " (default device_id,model,threads: boards compare at equal thread counts)",
    )
    _window_args(r)
    r.set_defaults(func=cmd_report)


def _devices_parser(sub) -> None:
    d = sub.add_parser("devices", help="every device: online/stopped/offline, last seen, agent version, data quality")
    _db_arg(d)
    d.add_argument("--format", choices=["table", "json", "csv"], default="table")
    d.set_defaults(func=cmd_devices)


def _export_parser(sub) -> None:
    e = sub.add_parser("export", help="per-frame samples, runs or the fleet report as CSV or Parquet")
    _db_arg(e)
    e.add_argument("--what", choices=["frames", "runs", "fleet"], default="frames")
    e.add_argument(
        "--format",
        choices=["csv", "parquet"],
        default="csv",
        help="parquet needs pyarrow: pip install 'edgebench[parquet]'",
    )
    e.add_argument("--out", required=True, help="output file ('-' for stdout, CSV only)")
    _window_args(e)
    e.set_defaults(func=cmd_export)


def _compare_parser(sub) -> None:
    c = sub.add_parser(
        "compare", help="a model across boards, or a run against a baseline (is the change beyond noise?)"
    )
    _db_arg(c)
    c.add_argument("--model", help="show this model on every board side by side")
    c.add_argument("--run", help="the run to judge: DEVICE/RUN_ID (or a unique RUN_ID)")
    c.add_argument("--baseline", help="the run to compare against: DEVICE/RUN_ID")
    c.add_argument("--stage", default="e2e", help="latency stage for p50/p99 (default e2e; inference is always shown)")
    c.add_argument("--format", choices=["table", "json", "csv"], default="table")
    c.add_argument("--since")
    c.add_argument("--until")
    c.set_defaults(func=cmd_compare)


def _web_parser(sub) -> None:
    w = sub.add_parser("web", help="the read-only dashboard and Prometheus /metrics")
    _db_arg(w)
    w.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    w.add_argument("--port", type=int, default=8080)
    w.add_argument("--token", help="require this token (or $EDGEBENCH_WEB_TOKEN)")
    w.set_defaults(func=cmd_web)


def _purge_parser(sub) -> None:
    p = sub.add_parser("purge", help="apply retention now: delete raw frames older than N days (summaries kept)")
    _db_arg(p)
    p.add_argument("--older-than-days", type=float, required=True)
    p.set_defaults(func=cmd_purge)


def _demo_parser(sub) -> None:
    dm = sub.add_parser("demo", help="the one-command tour: broker, collector, two devices, fleet report")
    dm.add_argument(
        "--broker",
        choices=["embedded", "mosquitto"],
        default="embedded",
        help="embedded (in-process, default) or a private mosquitto started for the demo",
    )
    dm.add_argument("--mqtt", help="use this running broker instead of starting one")
    dm.add_argument("--db", help="keep the demo's database here (default: a temporary file, removed)")
    dm.add_argument("--frames", type=int, default=300, help="frames each device measures (default 300)")
    dm.add_argument(
        "--web", action="store_true", help="then keep the dashboard open on the demo's database until Ctrl-C"
    )
    dm.add_argument(
        "--port", type=int, default=8080, help="the dashboard's port with --web (default 8080; 0: any free)"
    )
    dm.set_defaults(func=cmd_demo)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="edgebench-collector: %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except UserError as e:
        print(f"edgebench-collector: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgebench-collector: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
