"""``edgebench-collector``: the central side (ingest, store, report, demo)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from agent import __version__
from agent.errors import UserError


def open_store(db: str):
    from .store import SQLiteStore

    d = os.path.dirname(os.path.abspath(db))
    if not os.path.isdir(d):
        raise UserError(f"cannot create database {db}: folder {d} does not exist")
    try:
        return SQLiteStore(db)
    except Exception as e:  # sqlite3.DatabaseError: not a database, locked, read-only
        raise UserError(f"cannot open database {db}: {e}") from None


def cmd_serve(args) -> int:
    from .ingest import Collector

    store = open_store(args.db)
    from .commands import settings_from_args

    col = Collector(settings_from_args(args), store, client_id=args.client_id).start()
    print(f"collector: subscribed to {col.conn.url}, storing in {args.db} (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    col.stop()
    c = col.counts
    print(
        f"collector: stopped; received {c['received']}, stored {c['stored']}, "
        f"duplicates {c['duplicates']}, rejected {c['rejected']}",
        flush=True,
    )
    store.close()
    return 0


def cmd_report(args) -> int:
    from .aggregate import fleet_rows
    from .report import as_json, table

    if not os.path.exists(args.db):
        raise UserError(f"database not found: {args.db} (run `edgebench-collector serve --db {args.db}` first)")
    store = open_store(args.db)
    rows = fleet_rows(store)
    print(as_json(rows) if args.format == "json" else table(rows))
    store.close()
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgebench-collector", description="Collect, store and show a fleet's benchmarks.")
    ap.add_argument("--version", action="version", version=f"edgebench-collector {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("serve", help="subscribe to the fleet and store what it publishes")
    s.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL (default mqtt://127.0.0.1:1883)")
    s.add_argument("--db", default="edgebench.db", help="SQLite database file (default edgebench.db)")
    s.add_argument("--client-id", default="edgebench-collector")
    from .commands import add_broker_options

    add_broker_options(s)
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("report", help="one row per device and model: frames, FPS, latency percentiles")
    r.add_argument("--db", default="edgebench.db")
    r.add_argument("--format", choices=["table", "json"], default="table")
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("demo", help="the one-command tour: broker, collector, two devices, fleet report")
    d.add_argument(
        "--broker",
        choices=["embedded", "mosquitto"],
        default="embedded",
        help="embedded (in-process, default) or a private mosquitto started for the demo",
    )
    d.add_argument("--mqtt", help="use this running broker instead of starting one")
    d.add_argument("--db", help="keep the demo's database here (default: a temporary file, removed)")
    d.add_argument("--frames", type=int, default=300, help="frames each device measures (default 300)")
    d.set_defaults(func=cmd_demo)

    from .commands import add_parser as add_cmd_parser

    add_cmd_parser(sub)
    return ap


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


if __name__ == "__main__":
    sys.exit(main())
