"""The command-line side of sweeps and scenarios: `edgebench sweep` and the
scenario flags of `edgebench run` (kept out of cli.py so it stays small).

Nothing heavy is imported here at module level: the sweep, the scenarios and
the plots load only when a command asks for them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edgebench.agent.errors import UserError

#: run flags that map one-to-one onto RunOptions / the config's `run` keys
SCENARIO_RUN_FLAGS = (
    "scenario",
    "target_qps",
    "latency_bound_ms",
    "samples_per_query",
    "min_queries",
    "max_duration_s",
    "batch",
    "find_max_qps",
    "max_qps_steps",
    "seed",
)


def add_scenario_flags(r: argparse.ArgumentParser) -> None:
    from edgebench.agent.options.values import _positive_float, _positive_int

    sc = r.add_argument_group("scenarios (after MLPerf LoadGen; see README 'Sweeps and scenarios')")
    sc.add_argument(
        "--scenario",
        choices=["single-stream", "multi-stream", "offline", "server"],
        help="run a LoadGen-style scenario instead of the per-frame run",
    )
    sc.add_argument(
        "--target-qps",
        dest="target_qps",
        type=_positive_float,
        metavar="N",
        help="server: Poisson arrival rate (queries/s); --find-max-qps: the first rate tried",
    )
    sc.add_argument(
        "--latency-bound-ms",
        dest="latency_bound_ms",
        type=_positive_float,
        metavar="N",
        help="server: the p99 latency the rate must hold (single/multi-stream: checked against p90/p99)",
    )
    sc.add_argument(
        "--samples-per-query",
        dest="samples_per_query",
        type=_positive_int,
        metavar="N",
        help="multi-stream: samples per query (default 8)",
    )
    sc.add_argument(
        "--min-queries",
        dest="min_queries",
        type=_positive_int,
        metavar="N",
        help="fewer queries (offline: samples) make the scenario INVALID (default 64)",
    )
    sc.add_argument(
        "--max-duration",
        dest="max_duration_s",
        type=_positive_float,
        metavar="SEC",
        help="hard stop for a scenario (default: server 2x--duration+5 s, others max(60 s, 10x--duration))",
    )
    sc.add_argument(
        "--batch",
        type=_positive_int,
        help="scenarios: interpreter batch size (the batch dimension is resized; default 1)",
    )
    sc.add_argument(
        "--find-max-qps",
        dest="find_max_qps",
        action="store_const",
        const=True,
        help="search the highest server rate whose p99 stays within --latency-bound-ms",
    )
    sc.add_argument(
        "--max-qps-steps",
        dest="max_qps_steps",
        type=_positive_int,
        metavar="N",
        help="--find-max-qps: at most N server runs (default 10)",
    )
    sc.add_argument("--seed", type=_positive_int, help="seed of the server arrivals and synthetic samples (default 0)")
    sc.add_argument(
        "--plot",
        metavar="DIR",
        help="scenarios: write PNG curves here (needs the plot extra: pip install 'edgebench[plot]')",
    )


def add_sweep_parser(sub: Any) -> None:
    from edgebench.agent.options.values import _positive_float, _positive_int

    s = sub.add_parser("sweep", help="latency and throughput over a grid of batch sizes, threads and instances")
    s.add_argument("--model", required=True, help="path to a .tflite model")
    s.add_argument("--batch", help="batch sizes, e.g. 1,2,4 or 1..64 (powers of two; default 1)")
    s.add_argument("--threads", help="interpreter thread counts, e.g. 1,2,4 (default 1)")
    s.add_argument("--instances", help="concurrent interpreters, e.g. 1,2 (default 1)")
    s.add_argument(
        "--processes", action="store_true", help="run the instances as processes (default: threads in this process)"
    )
    s.add_argument(
        "--duration",
        dest="duration_s",
        type=_positive_float,
        metavar="SEC",
        help="measure each point this long (default 2 s)",
    )
    s.add_argument(
        "--frames",
        type=_positive_int,
        metavar="N",
        help="measure N batches per instance at each point instead of --duration",
    )
    s.add_argument(
        "--warmup", type=_positive_int, metavar="N", help="warmup batches per instance before each point (default 3)"
    )
    s.add_argument(
        "--source", help="samples: synthetic (default), an image, a folder of images or a video (image models)"
    )
    s.add_argument(
        "--runtime",
        choices=["auto", "ai-edge-litert", "tflite-runtime", "tensorflow"],
        help="TFLite runtime (default auto)",
    )
    s.add_argument(
        "--no-xnnpack", dest="xnnpack", action="store_false", help="disable the default XNNPACK CPU delegate"
    )
    s.add_argument("--delegate", metavar="LIB", help="external delegate: a library path or edgetpu, vx, armnn, qnn")
    s.add_argument(
        "--delegate-option",
        dest="delegate_options",
        action="append",
        metavar="KEY=VALUE",
        help="delegate option, repeatable",
    )
    s.add_argument("--cpu-fallback", action="store_true", help="if the delegate cannot load, run on the CPU (recorded)")
    s.add_argument(
        "--min-frames", type=_positive_int, metavar="N", help="fewer batches at a point make it INVALID (default 20)"
    )
    s.add_argument(
        "--min-duration",
        dest="min_duration_s",
        type=_positive_float,
        metavar="SEC",
        help="a shorter point is INVALID (default 0.5)",
    )
    s.add_argument(
        "--power",
        metavar="SOURCE",
        help="power source for energy per item: auto (default), none, jetson, rpi-pmic, rapl, hwmon[:NAME], cmd:COMMAND, serial:DEVICE",
    )
    s.add_argument("--sample-hz", type=_positive_float, help="power sampling rate (default 10)")
    s.add_argument("--json", metavar="OUT", help="write the edgebench.sweep/1 document here")
    s.add_argument("--csv", metavar="OUT", help="write one CSV row per point here")
    s.add_argument(
        "--plot", metavar="DIR", help="write PNG curves here (needs the plot extra: pip install 'edgebench[plot]')"
    )
    s.add_argument("--device-id", help="this device's id (default: the config's device_id, else the hostname)")
    s.add_argument("--config", metavar="FILE", help="YAML config: its device_id, mqtt and outbox sections")
    s.add_argument("--mqtt", metavar="URL", help="publish the sweep to this broker, e.g. mqtt://collector.local:1883")
    s.add_argument(
        "--mqtt-protocol", choices=["auto", "5", "3.1.1"], help="MQTT version (default auto: 5, falling back to 3.1.1)"
    )
    s.add_argument(
        "--mqtt-wait",
        type=float,
        metavar="S",
        help="after the sweep, wait up to S seconds for the broker to acknowledge it (default: outbox.drain_wait_s, else 15)",
    )
    s.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def run_scenario_cmd(args: argparse.Namespace, opts: Any, cfg: dict[str, Any] | None = None) -> int:
    """`edgebench run --scenario ...` (and --find-max-qps): run, write --json/--plot, print,
    and with --mqtt publish the edgebench.scenario/1 document (agent/publish/documents.py)."""
    from edgebench.agent.measure.result import write_json
    from edgebench.agent.measure.scenario_run import print_scenario, run_scenario_opts

    if opts.scenario is None and not opts.find_max_qps:
        raise UserError("--plot draws scenario curves: use it with --scenario (or with `edgebench sweep`)")
    opts.validate()
    if args.plot:
        from edgebench.agent.report.plots import require_matplotlib

        require_matplotlib()
    pub = stream = None
    if args.mqtt:
        from edgebench.agent.measure.result import default_device_id
        from edgebench.agent.publish.documents import DocumentStream, open_publisher
        from edgebench.agent.wire import protocol

        opts.device_id = opts.device_id or default_device_id()
        pub = open_publisher(args, cfg or {}, opts.device_id)
        stream = DocumentStream(pub, protocol.SCENARIO_SCHEMA)
    try:
        if not args.quiet:
            what = "searching the max QPS" if opts.find_max_qps else f"running the {opts.scenario} scenario"
            print(f"edgebench: {what} on {opts.model} ...", file=sys.stderr)
        doc = run_scenario_opts(opts, on_start=None if stream is None else stream.start)
        if args.json:
            write_json(args.json, doc)
        if stream is not None:
            stream.finish(doc)
        written = []
        if args.plot:
            from edgebench.agent.report.plots import plot_scenario

            written = plot_scenario(doc, args.plot)
        if not args.quiet:
            print_scenario(doc, sys.stdout)
            if args.json:
                print(f"result written to {args.json}")
            for path in written:
                print(f"plot written to {path}")
        if pub is not None:
            from edgebench.agent.publish.documents import finish_publishing

            finish_publishing(args, cfg or {}, pub, doc, "scenario")
    except BaseException:
        from edgebench.agent.publish.documents import abandon

        abandon(pub)
        raise
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:  # noqa: C901
    """`edgebench sweep`: run the grid, write --json/--csv/--plot, print a table."""
    from edgebench.agent.measure.result import write_json
    from edgebench.agent.measure.sweep import MAX_BATCH, MAX_INSTANCES, SweepOptions, parse_grid, sweep, write_csv
    from edgebench.agent.options.values import _delegate_options

    opts = SweepOptions(
        model=args.model,
        batch=parse_grid(args.batch, "batch", [1], MAX_BATCH),
        threads=parse_grid(args.threads, "threads", [1], 256),
        instances=parse_grid(args.instances, "instances", [1], MAX_INSTANCES),
        processes=args.processes,
        duration_s=args.duration_s,
        frames=args.frames,
        source=args.source or "synthetic",
        runtime=args.runtime or "auto",
        xnnpack=args.xnnpack,
        delegate=args.delegate,
        delegate_options=_delegate_options(args.delegate_options or []),
        cpu_fallback=args.cpu_fallback,
        device_id=args.device_id,
    )
    if args.warmup is not None:
        opts.warmup = args.warmup
    if args.min_frames is not None:
        opts.min_frames = args.min_frames
    if args.min_duration_s is not None:
        opts.min_duration_s = args.min_duration_s
    cfg: dict[str, Any] = {}
    if args.config:
        from edgebench.agent.options import config as cfgmod

        cfg = cfgmod.load(args.config)
    opts.device_id = args.device_id or cfg.get("device_id")
    if opts.device_id is not None:
        from edgebench.agent.wire.protocol import check_device_id

        try:
            check_device_id(opts.device_id)
        except ValueError as e:
            raise UserError(str(e)) from None
    args.mqtt = args.mqtt or cfg.get("mqtt", {}).get("url")
    if args.mqtt:  # a bad URL is a user error before, not after, the sweep
        from edgebench.agent.wire.transport import parse_url

        parse_url(args.mqtt)
    opts.validate()
    if args.plot:
        from edgebench.agent.report.plots import require_matplotlib

        require_matplotlib()

    def progress(p: dict[str, Any], i: int, n: int) -> None:
        if args.quiet:
            return
        head = f"[{i}/{n}] batch {p['batch']} threads {p['threads']} instances {p['instances']}: "
        if p["status"] == "ok":
            print(
                head + f"{p['throughput_items_per_s']:.1f} items/s, p50 {p['latency_ms']['p50']:.3f} ms, "
                f"p99 {p['latency_ms']['p99']:.3f} ms per batch, CPU {p['cpu_pct']}%"
                + ("" if p["verdict"] == "VALID" else f" (INVALID: {'; '.join(p['reasons'])})"),
                file=sys.stderr,
            )
        else:
            print(head + f"{p['status']}: {p['reason']}", file=sys.stderr)

    from edgebench.agent.measure.sweep import ProbePower

    pub = stream = None
    if args.mqtt:
        from edgebench.agent.measure.result import default_device_id
        from edgebench.agent.publish.documents import DocumentStream, open_publisher
        from edgebench.agent.wire import protocol

        opts.device_id = opts.device_id or default_device_id()
        pub = open_publisher(args, cfg, opts.device_id)
        stream = DocumentStream(pub, protocol.SWEEP_SCHEMA)
    try:
        with ProbePower(args.power or "auto", args.sample_hz or 10.0) as power:
            doc = sweep(
                opts,
                power_window=power if power.available else None,
                power_reason=power.reason,
                progress=progress,
                on_start=None if stream is None else stream.start,
            )
        if args.json:
            write_json(args.json, doc)
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
            for what, path in (("result", args.json), ("CSV", args.csv)):
                if path:
                    print(f"{what} written to {path}")
            for path in written:
                print(f"plot written to {path}")
        if pub is not None:
            from edgebench.agent.publish.documents import finish_publishing

            finish_publishing(args, cfg, pub, doc, "sweep")
    except BaseException:
        from edgebench.agent.publish.documents import abandon

        abandon(pub)
        raise
    c = doc["counts"]
    if not c["ok"]:
        from edgebench.agent.errors import ModelError

        raise ModelError(
            f"no point of the grid ran ({c['unsupported']} unsupported, {c['failed']} failed; each point says why"
            f"{' in ' + args.json if args.json else ''}): try --batch 1"
        )
    return 0


def print_sweep(doc: dict[str, Any], out=sys.stdout) -> None:
    w = out.write
    g = doc["grid"]
    w(
        f"sweep of {doc['model']['name']} on {doc['runtime']['name']} {doc['runtime']['version']}, instances as {g['instance_mode']}\n"
    )
    w(
        f"{'batch':>6}{'threads':>8}{'inst':>5}{'items/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'ms/item':>9}{'CPU %':>7}  status\n"
    )
    for p in doc["points"]:
        head = f"{p['batch']:>6}{p['threads']:>8}{p['instances']:>5}"
        if p["status"] == "ok":
            lat = p["latency_ms"]
            w(
                head + f"{p['throughput_items_per_s']:>11.1f}{lat['p50']:>9.3f}{lat['p99']:>9.3f}"
                f"{p['latency_per_item_ms']['p50']:>9.4f}{p['cpu_pct'] if p['cpu_pct'] is not None else '-':>7}  "
                f"{'ok' if p['verdict'] == 'VALID' else 'INVALID: ' + '; '.join(p['reasons'])}\n"
            )
        else:
            w(head + f"{'-':>11}{'-':>9}{'-':>9}{'-':>9}{'-':>7}  {p['status']}: {p['reason']}\n")
    best = doc["best"]
    if best["throughput"]:
        b = best["throughput"]
        w(
            f"best throughput: {b['throughput_items_per_s']:.1f} items/s at batch {b['batch']}, threads {b['threads']}, instances {b['instances']}\n"
        )
    for note in doc["notes"]:
        w(f"note: {note}\n")
