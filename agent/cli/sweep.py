"""The command-line side of sweeps and scenarios: `edgebench sweep` and the scenario
runs of `edgebench run` (kept out of cli/__init__.py so it stays small). The flags
themselves come from the options table (agent/options/table.py).

Nothing heavy is imported here at module level: the sweep, the scenarios and
the plots load only when a command asks for them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edgebench.agent.cli.common import check_writable, model_file, strict_check, write_or_keep
from edgebench.agent.errors import OutputError, UserError
from edgebench.agent.wire.figures import people, text_table


def add_sweep_parser(sub: Any) -> None:
    from edgebench.agent.cli.flags import add_flags

    s = sub.add_parser("sweep", help="latency and throughput over a grid of batch sizes, threads and instances")
    add_flags(s, "sweep")


def require_plot(plot: str | None) -> None:
    """--plot needs matplotlib: say so before, not after, the measurement."""
    if plot:
        from edgebench.agent.report.plots import require_matplotlib

        require_matplotlib()


def _open(publish: Any, opts: Any, schema: str) -> tuple[Any, Any]:
    """(publisher, document stream) when publishing, else (None, None); sets the device id."""
    if publish is None:
        return None, None
    from edgebench.agent.measure.result import default_device_id
    from edgebench.agent.publish.documents import DocumentStream, open_publisher

    opts.device_id = opts.device_id or default_device_id()
    pub = open_publisher(publish, opts.device_id)
    return pub, DocumentStream(pub, schema)


def _print_written(json_out: str | None, csv_out: str | None, plots: list[str]) -> None:
    for what, path in (("result", json_out), ("CSV", csv_out)):
        if path:
            print(f"{what} written to {path}")
    for path in plots:
        print(f"plot written to {path}")


def run_scenario_cmd(args: argparse.Namespace, opts: Any, publish: Any = None) -> int:
    """`edgebench run --scenario ...` (and --find-max-qps): run, write --json/--plot, print,
    and with a broker (``publish``, PublishSettings) publish the edgebench.scenario/1
    document (agent/publish/documents.py)."""
    from edgebench.agent.measure.scenario_run import run_scenario_opts
    from edgebench.agent.wire import protocol

    if getattr(args, "csv", None):
        raise UserError(
            "--csv writes every frame of a plain run; a scenario's figures are in its --json document "
            "(leave out --csv, or run without --scenario)"
        )
    opts.validate()
    require_plot(args.plot)
    check_writable(args.json)
    pub, stream = _open(publish, opts, protocol.SCENARIO_SCHEMA)
    try:
        if not args.quiet:
            what = "searching the max QPS" if opts.find_max_qps else f"running the {opts.scenario} scenario"
            print(f"edgebench: {what} on {opts.model} ...", file=sys.stderr)
        doc = run_scenario_opts(opts, on_start=None if stream is None else stream.start)
        unwritten = _scenario_outputs(args, doc, stream)
        if pub is not None:
            from edgebench.agent.publish.documents import finish_publishing

            finish_publishing(publish, pub, doc, "scenario")
    except BaseException:
        from edgebench.agent.publish.documents import abandon

        abandon(pub)
        raise
    if unwritten:
        raise OutputError(unwritten)
    if args.strict:
        strict_check(doc)
    return 0


def _scenario_outputs(args: argparse.Namespace, doc: dict[str, Any], stream: Any) -> str | None:
    """--json, the summary queued, --plot, the printed report; the line saying where the
    document is kept if --json could not be written."""
    from edgebench.agent.measure.scenario_run import print_scenario

    unwritten = write_or_keep(args.json, doc, "scenario") if args.json else None
    if stream is not None:
        stream.finish(doc)
    written = []
    if args.plot:
        from edgebench.agent.report.plots import plot_scenario

        written = plot_scenario(doc, args.plot)
    if not args.quiet:
        print_scenario(doc, sys.stdout)
        _print_written(None if unwritten else args.json, None, written)
    return unwritten


def cmd_sweep(args: argparse.Namespace) -> int:
    """`edgebench sweep`: settle the options, run the grid (publishing it with a broker),
    write --json/--csv/--plot, print a table; exit 3 when no point ran."""
    from edgebench.agent.cli.common import publish_settings, read_settings
    from edgebench.agent.options.build import build_probe_options, build_sweep_options, merge
    from edgebench.agent.wire import protocol

    cfg, flags = read_settings(args, "sweep")
    opts = build_sweep_options(cfg, flags)
    opts.model = model_file(opts.model, args.quiet)
    publish = publish_settings(merge(cfg, flags), args, "sweep")
    probes = build_probe_options(cfg, flags)
    require_plot(args.plot)
    check_writable(args.json)
    pub, stream = _open(publish, opts, protocol.SWEEP_SCHEMA)
    try:
        doc = _run_sweep(opts, probes, stream, quiet=args.quiet)
        unwritten = _sweep_outputs(args, doc, stream)
        if pub is not None:
            from edgebench.agent.publish.documents import finish_publishing

            finish_publishing(publish, pub, doc, "sweep")
    except BaseException:
        from edgebench.agent.publish.documents import abandon

        abandon(pub)
        raise
    if unwritten:
        raise OutputError(unwritten)
    _check_some_point_ran(doc, args.json)
    if args.strict:
        strict_check(doc)
    return 0


def _run_sweep(opts: Any, probes: Any, stream: Any, quiet: bool) -> dict[str, Any]:
    """The grid, with the board's power source sampled around it (energy per item)."""
    from edgebench.agent.measure.sweep import ProbePower, sweep

    with ProbePower(probes.power, probes.sample_hz) as power:
        return sweep(
            opts,
            power_window=power if power.available else None,
            power_reason=power.reason,
            progress=None if quiet else _progress,
            on_start=None if stream is None else stream.start,
        )


def _progress(p: dict[str, Any], i: int, n: int) -> None:
    """One line per point on stderr."""
    head = f"[{i}/{n}] batch {p['batch']} threads {p['threads']} instances {p['instances']}: "
    if p["status"] == "ok":
        print(
            head + f"{people(p['throughput_items_per_s'])} items/s, p50 {people(p['latency_ms']['p50'])} ms, "
            f"p99 {people(p['latency_ms']['p99'])} ms per batch, CPU {people(p['cpu_pct'])} %"
            + ("" if p["verdict"] == "VALID" else f" (INVALID: {'; '.join(p['reasons'])})"),
            file=sys.stderr,
        )
    else:
        print(head + f"{p['status']}: {p['reason']}", file=sys.stderr)


def _sweep_outputs(args: argparse.Namespace, doc: dict[str, Any], stream: Any) -> str | None:
    """--json, --csv, the summary queued, --plot, the printed table; the line saying where the
    document is kept if --json could not be written."""
    from edgebench.agent.measure.sweep import write_csv

    unwritten = write_or_keep(args.json, doc, "sweep") if args.json else None
    if args.csv:
        write_csv(args.csv, doc)
    if stream is not None:
        stream.finish(doc)
    written = []
    if args.plot:
        from edgebench.agent.report.plots import plot_sweep

        written = plot_sweep(doc, args.plot)
    if not args.quiet:
        print_sweep(doc)
        _print_written(None if unwritten else args.json, args.csv, written)
    return unwritten


def _check_some_point_ran(doc: dict[str, Any], json_out: str | None) -> None:
    c = doc["counts"]
    if not c["ok"]:
        from edgebench.agent.errors import ModelError

        raise ModelError(
            f"no point of the grid ran ({c['unsupported']} unsupported, {c['failed']} failed; each point says why"
            f"{' in ' + json_out if json_out else ''}): try --batch 1"
        )


def print_sweep(doc: dict[str, Any], out=sys.stdout) -> None:
    """The grid as a table for people (figures rounded; the JSON keeps them exact). A batch
    size the model cannot take gets its reason once, under the table, not on every row."""
    w = out.write
    g = doc["grid"]
    rt = doc["runtime"]
    defaulted = " (the default: all cores)" if rt.get("num_threads_from") == "default" else ""
    w(
        f"sweep of {doc['model']['name']} on {rt['name']} {rt['version']}, threads {','.join(map(str, g['threads']))}"
        f"{defaulted}, instances as {g['instance_mode']}\n"
    )
    rows, unsupported = [], {}
    for p in doc["points"]:
        head = [str(p["batch"]), str(p["threads"]), str(p["instances"])]
        if p["status"] == "ok":
            lat = p["latency_ms"]
            status = "ok" if p["verdict"] == "VALID" else "INVALID: " + "; ".join(p["reasons"])
            figures = [p["throughput_items_per_s"], lat["p50"], lat["p99"], p["latency_per_item_ms"]["p50"]]
            rows.append([*head, *map(people, figures), people(p["cpu_pct"]), status])
            continue
        if p["status"] == "unsupported":
            unsupported.setdefault(p["batch"], p["reason"])
            status = f"unsupported (batch {p['batch']}: see below)"
        else:
            status = f"{p['status']}: {p['reason']}"
        rows.append([*head, "-", "-", "-", "-", "-", status])
    head = ["batch", "threads", "inst", "items/s", "p50 ms", "p99 ms", "ms/item", "CPU %", "status"]
    for line in text_table(head, rows, left={len(head) - 1}):
        w(line + "\n")
    for batch, reason in unsupported.items():
        w(f"batch {batch} unsupported: {reason}\n")
    best = doc["best"]
    if best["throughput"]:
        b = best["throughput"]
        w(
            f"best throughput: {people(b['throughput_items_per_s'])} items/s at batch {b['batch']}, "
            f"threads {b['threads']}, instances {b['instances']}\n"
        )
    for note in doc["notes"]:
        w(f"note: {note}\n")
