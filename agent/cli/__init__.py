"""``edgebench``: the agent's command line (what runs on a board)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from edgebench.agent import __version__
from edgebench.agent.cli.common import model_file, publish_settings, read_settings, strict_check
from edgebench.agent.cli.flags import add_flags, given
from edgebench.agent.cli.sweep import add_sweep_parser, cmd_sweep, run_scenario_cmd
from edgebench.agent.errors import OutputError, PublishError, UserError
from edgebench.agent.options.build import build_run_options, merge
from edgebench.agent.options.table import SUSTAINED
from edgebench.agent.runtime.interpreter import fallback_text
from edgebench.agent.runtime.threads import describe as describe_threads
from edgebench.agent.wire.figures import people, text_table
from edgebench.agent.wire.words import accelerator as accelerator_words


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line naming it and pointing to --help (not the whole
    usage first); subcommands' parsers are of this class too."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="edgebench",
        description="Benchmark a TFLite model on this board: latency per stage, FPS; publish to a collector.",
    )
    ap.add_argument("--version", action="version", version=f"edgebench {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="run one benchmark and report it")
    add_flags(r, "run")
    add_sweep_parser(sub)

    i = sub.add_parser("info", help="runtimes, delegates, cameras and board facts found here")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    i.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help="only these sections, each loading only what it needs (e.g. `info agent board`; default: all)",
    )

    from edgebench.agent.cli.models import add_parser as add_models_parser

    add_models_parser(sub)
    from edgebench.agent.cli.local import add_parsers as add_local_parsers

    add_local_parsers(sub)
    from edgebench.agent.cli.tune import add_parser as add_tune_parser

    add_tune_parser(sub)

    a = sub.add_parser(
        "agent",
        help="the service: stay connected, publish status/info/telemetry, run the config's jobs and remote commands",
    )
    add_flags(a, "agent")
    return ap


def latency_table(latency_ms: dict[str, dict[str, Any]]) -> str:
    """The stages' latency for people (4 significant digits), columns as wide as their
    widest figure, so they stay apart at 1,000 ms and more."""
    keys = ("mean", "p50", "p90", "p99", "max")
    rows = [[stage, *(people(st.get(k)) for k in keys)] for stage, st in latency_ms.items()]
    return "\n".join(text_table(["latency (ms)", *keys], rows))


def placement_line(res: dict[str, Any]) -> str:
    """Where the model ran: the graph's ``N of M operators on X`` or the CompiledModel's accelerators."""
    rt = res["runtime"]
    if rt.get("api") == "compiled_model":
        used = ",".join(rt.get("accelerators_used") or []) or "?"
        return f"ran on: {used} (LiteRT CompiledModel; fully accelerated: {rt.get('fully_accelerated')})"
    return f"ran on: {rt.get('placement') or accelerator_words(rt)}"


def print_summary(res: dict[str, Any], out=sys.stdout, written: str | None = None) -> None:
    """The run for people; ``written``: the result file the run was written to, if any."""
    rt = res["runtime"]
    threads = describe_threads(rt.get("num_threads"), rt.get("num_threads_from"))
    src = res["source"]
    w = out.write
    w(
        f"model {res['model']['name']} on {rt['name']} {rt['version']}{fallback_text(rt)}, {threads}, "
        f"source {src.get('kind')} {src.get('uri', '')}\n"
    )
    fps = f"{res['fps']:.1f} FPS" if res["fps"] else "FPS n/a"
    w(
        f"frames {res['frames']} (+{res['warmup_frames']} warmup) in {res['duration_s']:.3f} s: {fps}; "
        f"init {res['init_ms']:.1f} ms, first inference {res['first_inference_ms']:.2f} ms\n"
    )
    w(latency_table(res["latency_ms"]) + "\n")
    w(placement_line(res) + "\n")
    if (res.get("ops") or {}).get("times"):
        from edgebench.agent.runtime.optime import format_table

        w(format_table(res["ops"]) + "\n")
    mem = res.get("memory") or {}
    if mem.get("after_allocate_mb") is not None:
        w(
            "memory (RSS MB): load {}, allocate {}, first inference {}, peak {}\n".format(
                *(mem.get(k) for k in ("after_load_mb", "after_allocate_mb", "after_first_inference_mb", "peak_mb"))
            )
        )
    preds = res.get("predictions") or []
    for p in preds[:5]:
        top = p["top_k"][0]
        name = top["label"] if top["label"] is not None else f"class {top['index']}"
        w(f"top-1 {p['source_name']}: {name} ({top['score']:.3f})\n")
    if len(preds) > 5:
        where = f"in {written}" if written else "not shown (--json FILE writes them all)"
        w(f"... and {len(preds) - 5} more predictions {where}\n")
    if res.get("accuracy"):
        from edgebench.agent.measure.accuracy import summary_line

        w(summary_line(res["accuracy"]) + "\n")
    v = res.get("validity")
    if v:
        rules = f" by {v['rules']}" if v.get("rules") else ""
        verdict = "valid" if v["verdict"] == "VALID" else f"INVALID ({'; '.join(v['reasons'])})"
        w(f"verdict: {verdict}{rules}\n")
    for warning in res.get("warnings", []):
        w(f"warning: {warning}\n")
    from edgebench.agent.probes.info import run_summary_line

    probes_line = run_summary_line(res)
    if probes_line:
        w(probes_line + "\n")
    if res.get("sustained"):
        from edgebench.agent.measure.sustained import summary_lines

        w(f"sustained, per {res['sustained']['interval_s']:g} s:\n" + "\n".join(summary_lines(res["sustained"])) + "\n")
    for note in res.get("notes", []):
        w(f"note: {note}\n")


def resolve_run(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Defaults <- config file <- command-line flags: (RunOptions, the config with the flags over it)."""
    cfg, flags = read_settings(args, "run")
    opts = build_run_options(cfg, flags, run_id=args.run_id)
    return opts, merge(cfg, flags)


class progress_printer:
    """Live FPS and p50 while a run goes on: a one-line bar on a terminal,
    plain log lines (every 10 s) in a pipe or under systemd."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last_log = __import__("time").monotonic()
        self.drawn = False

    def __call__(self, p) -> None:
        import time

        if p.phase == "warmup":
            text = f"warming up: {p.frames} frames, {p.elapsed_s:.1f} s"
        else:
            fps = f"{p.fps:.1f} FPS" if p.fps else "- FPS"
            p50 = f"inference p50 {p.p50_inference_ms:.3f} ms" if p.p50_inference_ms is not None else ""
            text = f"measuring: {p.frames} frames, {p.elapsed_s:.1f} s, {fps}, {p50}"
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self.drawn = True
        elif time.monotonic() - self.last_log >= 10:
            self.last_log = time.monotonic()
            self.stream.write(f"edgebench: {text}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def cmd_run(args: argparse.Namespace) -> int:
    opts, merged = resolve_run(args)
    opts.model = model_file(opts.model, args.quiet)
    publish = publish_settings(merged, args, "run")
    sustained = opts.scenario == SUSTAINED and not opts.find_max_qps
    if (opts.scenario is not None and not sustained) or opts.find_max_qps:
        return run_scenario_cmd(args, opts, publish)
    _check_outputs(args)
    pub = stream = None
    if publish is not None:
        from edgebench.agent.measure.result import default_device_id
        from edgebench.agent.publish.documents import open_publisher

        opts.device_id = opts.device_id or default_device_id()
        pub = open_publisher(publish, opts.device_id)
        # An accuracy run may be refused by its floor: hold it back until it passes.
        held = bool(opts.accuracy or opts.accuracy_floor is not None)
        stream = pub.stream(config=_run_config(opts), hold=held)
    outcome = _measure(opts, pub, stream, quiet=args.quiet, keep=bool(args.csv or args.plot or sustained))
    res = outcome.result
    if sustained:
        from edgebench.agent.measure.sustained import attach

        attach(outcome, opts.interval_s)
    written = _local_outputs(args, outcome)
    unwritten = _report(res, args.json, args.quiet, written)
    if res.get("accuracy"):
        from edgebench.agent.measure.accuracy import check_floor

        try:
            check_floor(res)  # a fast wrong model is not a result: stop before publishing
        except UserError:
            if pub is not None:
                stream.discard()
                pub.close()
            raise
    if pub is not None:
        stream.release()
        if res.get("board"):
            pub.update_inventory(res["board"])
        _finish_publishing(publish, pub, stream, res)
    if unwritten:  # published, printed: only the file is elsewhere
        raise OutputError(unwritten)
    if args.strict:
        strict_check(res)
    return 0


def _measure(opts: Any, pub: Any, stream: Any, quiet: bool, keep: bool = False) -> Any:
    """The run (a RunOutcome; ``keep``: with every frame's samples, for --csv and --plot), with
    live progress unless quiet; on failure what was queued leaves now, or with the next start."""
    from edgebench.agent.measure.run import run

    progress = None if quiet else progress_printer()
    try:
        return run(
            opts, sink_factory=None if stream is None else stream.sink_factory, progress=progress, keep_samples=keep
        )
    except BaseException:
        if pub is not None:
            pub.close(drain_s=2.0)
        raise
    finally:
        if progress is not None:
            progress.close()


def _check_outputs(args: argparse.Namespace) -> None:
    """--plot's matplotlib and a writable --csv and --plot folder, before, not after, the run."""
    from edgebench.agent.cli.common import check_writable
    from edgebench.agent.cli.sweep import require_plot

    require_plot(args.plot)
    check_writable(args.json)
    for what, folder in (
        ("CSV", os.path.dirname(os.path.abspath(args.csv)) if args.csv else None),
        ("plot", args.plot),
    ):
        if folder:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as e:
                raise UserError(f"cannot create the {what} folder {folder}: {e.strerror or e}") from None
            if not os.access(folder, os.W_OK):
                raise UserError(f"cannot write the {what} into {folder}: permission denied")


def _local_outputs(args: argparse.Namespace, outcome: Any) -> dict[str, Any]:
    """--csv (every frame and stage) and --plot (the run's PNGs): what was written where."""
    res, m = outcome.result, outcome.measurement
    stages = tuple(res["latency_ms"])
    out: dict[str, Any] = {"csv": None, "plots": []}
    if args.csv:
        from edgebench.agent.report.samples import write_samples_csv

        write_samples_csv(args.csv, m.kept, m.start_ns, stages)
        out["csv"] = args.csv
    if args.plot:
        from edgebench.agent.report.plots import plot_run
        from edgebench.agent.report.samples import from_kept

        out["plots"] = plot_run(res, from_kept(m.kept, m.start_ns, stages), outcome.timeline, args.plot)
        if res.get("sustained"):
            from edgebench.agent.report.plots import plot_sustained

            out["plots"] += plot_sustained(res, outcome.timeline, args.plot)
    return out


def _report(
    res: dict[str, Any], json_out: str | None, quiet: bool, written: dict[str, Any] | None = None
) -> str | None:
    """--json (naming the --csv beside it, so `edgebench compare` finds the frames), the summary.
    Returns the line saying where the result is kept when --json could not be written."""
    from edgebench.agent.cli.common import write_or_keep

    written = written or {"csv": None, "plots": []}
    unwritten = None
    if json_out:
        doc = res
        if written["csv"]:
            rel = os.path.relpath(os.path.abspath(written["csv"]), os.path.dirname(os.path.abspath(json_out)))
            doc = {**res, "samples_csv": rel}
        unwritten = write_or_keep(json_out, doc)
    if not quiet:
        print_summary(res, written=None if unwritten else json_out)
        for what, path in (("result", None if unwritten else json_out), ("per-frame CSV", written["csv"])):
            if path:
                print(f"{what} written to {path}")
        for path in written["plots"]:
            print(f"plot written to {path}")
    return unwritten


def _run_config(opts) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(opts).items() if k not in ("notes", "device_id", "run_id")}


def why_dropped(stats: dict[str, Any]) -> str:
    """What made the outbox drop messages: its bound, a full disk, or both."""
    bound = f"the outbox bound ({stats['max_bytes']} bytes)"
    if not stats.get("not_kept_disk_full"):
        return bound
    full = "a full disk under the outbox"
    return full if stats["dropped_messages"] == sum(stats["not_kept_disk_full"].values()) else f"{bound} and {full}"


def _finish_publishing(publish: Any, pub, stream, res: dict[str, Any]) -> None:
    """Queue the summary, wait for the outbox to drain (or the wait to expire), report."""
    from edgebench.agent.publish.documents import keep_document

    stream.finish(res)
    wait = publish.wait_s
    drained = pub.wait_drained(wait)
    drops = pub.outbox.run_drops(res["run_id"])
    stats = pub.outbox.stats()
    unsent = pub.outbox.unsent()
    reason = pub.link.last_error
    where = pub.settings.describe()
    pub.close()
    if drops["frames"]:
        ranges = ", ".join(f"{a}-{a + n - 1}" for a, n in drops["frame_ranges"][:5])
        print(
            f"edgebench: warning: {why_dropped(stats)} dropped {drops['frames']} frames "
            f"of this run in {drops['messages']} batch(es) (frames {ranges}{', ...' if len(drops['frame_ranges']) > 5 else ''}); "
            "the summary says so",
            file=sys.stderr,
        )
    rejected = stats["rejected_messages"] - pub.rejected_at_start
    if rejected:
        saved = keep_document(publish, res, "result")
        raise PublishError(
            f"the broker at {where} refused {rejected} message(s) ({pub.link.last_rejection}): is the MQTT username "
            f"this device's id ({res['device_id']})? They are set aside in the outbox {pub.outbox.path} (table "
            f"rejected); the result is kept in {saved}"
        )
    if drained:
        if not publish.quiet:
            how = (
                "; no collector has ever confirmed this device's messages: the broker's acknowledgement was enough"
                if stats["confirmation"] == "broker-only"
                else ", confirmed by a collector"
            )
            print(
                f"published run {res['run_id']} as device {res['device_id']} to {where} ({res['frames']} frames){how}"
            )
        return
    saved = keep_document(publish, res, "result")
    if unsent == 0 and stats["unconfirmed_messages"]:
        raise PublishError(
            f"published run {res['run_id']} to {where}, {stats['unconfirmed_messages']} message(s) "
            f"({stats['unconfirmed_frames']} frames) not yet confirmed by a collector within {wait:g} s; kept in the "
            f"outbox {pub.outbox.path}: the next `edgebench run` or `edgebench agent` with device id "
            f"{res['device_id']} sends again what stays unconfirmed; the result is kept in {saved}"
        )
    why = reason or f"the broker at {where} did not acknowledge everything within {wait:g} s"
    raise PublishError(
        f"{why}; {stats['queued_messages']} message(s) ({stats['queued_frames']} frames) remain queued in the outbox "
        f"{pub.outbox.path}: the next `edgebench run` or `edgebench agent` with device id {res['device_id']} "
        f"sends them; the result is kept in {saved}"
    )


def cmd_agent(args: argparse.Namespace) -> int:
    from edgebench.agent.service.agent import run_agent

    flags = given(args, "agent")
    return run_agent(
        args.config,
        device_id=flags.get("device_id"),
        url=flags.get("mqtt", {}).get("url"),
        verbose=args.verbose,
    )


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from edgebench.agent.cli import info

    data = info.collect(args.sections or None)
    print(json.dumps(data, indent=2) if args.json else info.render(data))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="edgebench: %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "models":
            from edgebench.agent.cli.models import cmd_models

            return cmd_models(args)
        if args.command == "tune":
            from edgebench.agent.cli.tune import cmd_tune

            return cmd_tune(args)
        if args.command in ("report", "compare", "schema"):
            from edgebench.agent.cli import local

            if args.command == "report":
                return local.cmd_report(args, print_summary)
            return {"compare": local.cmd_compare, "schema": local.cmd_schema}[args.command](args)
        return {"run": cmd_run, "info": cmd_info, "sweep": cmd_sweep, "agent": cmd_agent}[args.command](args)
    except UserError as e:  # one line per problem (a config file may have several)
        for line in str(e).splitlines() or [""]:
            print(f"edgebench: error: {line}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgebench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `edgebench info | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
