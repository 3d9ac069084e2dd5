"""The commands that read results back, without a collector:

    edgebench report RESULT.json... [--html OUT.html] [--md]   # what a person reads
    edgebench compare BASELINE.json RUN.json [--strict]        # beyond noise or not
    edgebench schema [NAME] [--write DIR]                      # the JSON Schemas

Their flags come from the options table (agent/options/table.py) like every other; the
file arguments are positional, which the table does not describe (as `models info FILE`).
Nothing heavy is imported here: the report loads matplotlib only to draw its charts.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from edgebench.agent.cli.flags import add_flags
from edgebench.agent.errors import UserError

#: exit status of ``compare --strict`` when a figure is worse beyond noise
EXIT_WORSE = 1


def add_parsers(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "report", help="a result, sweep or scenario file as text, Markdown or one HTML page (no collector needed)"
    )
    r.add_argument("files", nargs="+", metavar="RESULT.json", help="documents written by --json")
    add_flags(r, "report")
    c = sub.add_parser("compare", help="a run against a baseline run: is each change beyond noise?")
    c.add_argument("baseline", metavar="BASELINE.json", help="the run compared against (written by run --json)")
    c.add_argument("run", metavar="RUN.json", help="the run judged")
    add_flags(c, "compare")
    s = sub.add_parser("schema", help="the JSON Schemas of the result documents and wire messages")
    s.add_argument("name", nargs="?", metavar="NAME", help="print this one (result, sweep, frames...); none: list them")
    add_flags(s, "schema")


def cmd_report(args: argparse.Namespace, print_run: Callable[[dict[str, Any]], None]) -> int:
    """``print_run``: how `edgebench run` prints a run's summary (cli/__init__.py hands it in)."""
    from edgebench.agent.report.documents import load

    docs = [load(p) for p in args.files]
    if args.html:
        from edgebench.agent.report import render
        from edgebench.agent.report.content import sections

        _write(args.html, render.html(sections(docs), [d.name for d in docs]))
    if args.md:
        from edgebench.agent.report import render
        from edgebench.agent.report.content import sections

        sys.stdout.write(render.markdown(sections(docs)))
    elif not args.html:
        _print_text(docs, print_run)
    if args.html:
        print(f"report written to {args.html}", file=sys.stderr)
    return 0


def _write(path: str, text: str) -> None:
    import os

    try:
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def _print_text(docs, print_run: Callable[[dict[str, Any]], None]) -> None:
    """Each document as the command that made it printed it."""
    from edgebench.agent.cli.sweep import print_sweep
    from edgebench.agent.measure.scenario_run import print_scenario

    for i, d in enumerate(docs):
        if len(docs) > 1:
            print(("\n" if i else "") + f"== {d.path}")
        {"run": print_run, "sweep": print_sweep, "scenario": lambda doc: print_scenario(doc, sys.stdout)}[d.kind](d.doc)


def cmd_compare(args: argparse.Namespace) -> int:
    from edgebench.agent.measure.result import write_json
    from edgebench.agent.report import compare as cmp
    from edgebench.agent.report.documents import load

    c = cmp.compare(load(args.baseline), load(args.run), stage=args.stage)
    if args.strict and not c["judged"]:
        raise UserError(
            f"--strict needs the per-frame samples of both runs ({c['method']}): "
            "make each with `edgebench run --json R.json --csv R.csv`"
        )
    if args.json:
        write_json(args.json, c)
    sys.stdout.write(cmp.as_markdown(c) if args.md else cmp.as_text(c) + "\n")
    if args.strict and c["regressions"]:
        print(f"edgebench: worse beyond noise: {', '.join(c['regressions'])}", file=sys.stderr)
        return EXIT_WORSE
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from edgebench.agent.wire import schemafiles

    if args.write:
        for path in schemafiles.write_all(args.write):
            print(path)
        return 0
    if args.name:
        sys.stdout.write(schemafiles.text(schemafiles.find(args.name)))
        return 0
    for schema in schemafiles.sources():
        print(f"{schemafiles.short_name(schema):<12}{schema:<26}{schemafiles.file_name(schema)}")
    return 0
