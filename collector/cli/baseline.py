"""``edgebench-collector baseline set|list|clear`` and ``regressions``: the regression
watch's baselines and its stored verdicts (edgebench.collector.aggregate.regressions)."""

from __future__ import annotations

import sys
from typing import Any

from edgebench.agent.errors import UserError


def add_parsers(sub: Any, db_arg, open_store) -> None:
    """``db_arg`` adds --db; ``open_store`` opens it (handed in: this module is imported by the CLI's)."""
    b = sub.add_parser("baseline", help="the regression watch's baselines: set, list, clear")
    bsub = b.add_subparsers(dest="action", metavar="ACTION")
    bsub.required = True
    s = bsub.add_parser("set", help="make a stored run the baseline of its key")
    db_arg(s)
    s.add_argument("--run", required=True, help="DEVICE/RUN_ID (or a unique RUN_ID)")
    ls = bsub.add_parser("list", help="every baseline with its key")
    db_arg(ls)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    c = bsub.add_parser("clear", help="clear one baseline (--key) or every one (--all)")
    db_arg(c)
    c.add_argument("--key", help="the key id `baseline list` shows")
    c.add_argument("--all", action="store_true", help="clear every baseline")
    b.set_defaults(func=cmd_baseline, open_store=open_store)
    r = sub.add_parser("regressions", help="each baseline key's newest verdict: faster, slower or within noise")
    db_arg(r)
    r.add_argument("--format", choices=["table", "json"], default="table")
    r.set_defaults(func=cmd_regressions, open_store=open_store)


def _key_text(key: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in key.items() if v is not None and k != "model_sha256") + (
        f", model {key['model_sha256'][:12]}" if key.get("model_sha256") else ""
    )


def cmd_baseline(args) -> int:
    from edgebench.collector.aggregate import find_run
    from edgebench.collector.aggregate.regressions import clear_baselines, key_id, list_baselines, set_baseline
    from edgebench.collector.views.report import as_json

    store = args.open_store(args.db, must_exist=True)
    try:
        if args.action == "set":
            dev, run = find_run(store, args.run)
            print(f"baseline of key {key_id(set_baseline(store, dev, run))} is now {dev}/{run}")
        elif args.action == "list":
            rows = list_baselines(store)
            if args.format == "json":
                print(as_json(rows))
            for r in rows if args.format == "table" else []:
                print(f"{r['key_id']}  {r['baseline']} ({r['how']})  {_key_text(r['key'])}")
        else:
            if bool(args.key) == bool(args.all):
                raise UserError("baseline clear needs --key KEY_ID (see `baseline list`) or --all, one of them")
            n = clear_baselines(store, None if args.all else args.key)
            print(f"cleared {n} baseline(s)")
    finally:
        store.close()
    return 0


def cmd_regressions(args) -> int:
    from edgebench.collector.aggregate.regressions import regression_rows
    from edgebench.collector.views.report import as_json

    store = args.open_store(args.db, must_exist=True)
    try:
        rows = regression_rows(store)
    finally:
        store.close()
    if args.format == "json":
        print(as_json(rows))
        return _status(rows)
    for r in rows:
        judged = [m for m in r["metrics"] if m.get("beyond_noise")]
        why = "; ".join(f"{m['metric']} {m['change_pct']:+g} % (95% CI {m['ci95']})" for m in judged)
        sys.stdout.write(f"{r['verdict']}: {r['run']} vs {r['baseline']}  {why}\n  key {r['key_id']}: ")
        sys.stdout.write(_key_text(r["key"]) + "\n")
    return _status(rows)


def _status(rows: list[dict[str, Any]]) -> int:
    """1 when a key's newest run is slower than its baseline (like `compare --strict`), for cron and CI."""
    slower = [r for r in rows if r["verdict"] == "slower"]
    if slower:
        print(f"edgebench-collector: {len(slower)} key(s) slower than their baseline", file=sys.stderr)
        return 1
    return 0
