"""``edgebench``: the agent's command line (what runs on a board)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from edgebench.agent import __version__
from edgebench.agent.cli.sweep import (
    SCENARIO_RUN_FLAGS,
    add_scenario_flags,
    add_sweep_parser,
    cmd_sweep,
    run_scenario_cmd,
)
from edgebench.agent.errors import PublishError, UserError
from edgebench.agent.options.values import _delegate_options, _fraction, _nonneg_float, _positive_float, _positive_int


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edgebench",
        description="Benchmark a TFLite model on this board: latency per stage, FPS; publish to a collector.",
    )
    ap.add_argument("--version", action="version", version=f"edgebench {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="run one benchmark and report it")
    r.add_argument("--model", help="path to a .tflite model")
    r.add_argument(
        "--source",
        help="synthetic[:WxH], an image file, a folder of images or a video file (default: synthetic)",
    )
    r.add_argument("--frames", type=_positive_int, help="frames to measure (default 100 unless --duration)")
    r.add_argument(
        "--duration",
        dest="duration_s",
        type=_positive_float,
        metavar="SEC",
        help="measure for this long (with --frames: whichever ends first)",
    )
    r.add_argument("--warmup", type=_positive_int, help="frames run first and not measured (default 5)")
    r.add_argument(
        "--warmup-s",
        dest="warmup_s",
        type=_positive_float,
        metavar="SEC",
        help="warm up for at least this long too (default 0)",
    )
    r.add_argument("--threads", type=_positive_int, help="interpreter threads (default: runtime's)")
    r.add_argument(
        "--runtime",
        choices=["auto", "ai-edge-litert", "tflite-runtime", "tensorflow"],
        help="TFLite runtime (default auto: ai-edge-litert, then tflite-runtime, then tensorflow)",
    )
    r.add_argument("--delegate", metavar="LIB", help="external delegate: a library path or edgetpu, vx, armnn, qnn")
    r.add_argument(
        "--delegate-option",
        dest="delegate_options",
        action="append",
        metavar="KEY=VALUE",
        help="delegate option, repeatable (e.g. device=usb:0, backends=GpuAcc,CpuAcc)",
    )
    r.add_argument(
        "--cpu-fallback",
        action="store_const",
        const=True,
        help="if the delegate cannot load, run on the CPU (recorded in the result)",
    )
    r.add_argument(
        "--no-xnnpack",
        dest="xnnpack",
        action="store_const",
        const=False,
        help="disable the default XNNPACK CPU delegate",
    )
    r.add_argument(
        "--pipelined",
        action="store_const",
        const=True,
        help="capture+preprocess in their own thread, overlapping inference",
    )
    r.add_argument(
        "--pacing", choices=["fast", "realtime"], help="fast (default) or realtime: play a video at its own frame rate"
    )
    r.add_argument(
        "--fps", type=_positive_float, help="pace a file or synthetic source at N frames/s, as a camera would"
    )
    r.add_argument(
        "--stall-timeout",
        dest="stall_timeout_s",
        type=_positive_float,
        metavar="SEC",
        help="a live source silent this long is an error (default 10)",
    )
    r.add_argument("--reconnects", type=_positive_int, help="reopen a dropped network stream up to N times (default 3)")
    r.add_argument("--min-frames", type=_positive_int, help="fewer measured frames make the run INVALID (default 50)")
    r.add_argument(
        "--min-duration",
        dest="min_duration_s",
        type=_positive_float,
        metavar="SEC",
        help="a shorter measurement is INVALID (default 1)",
    )
    r.add_argument("--labels", help="labels file (one per line) to name classification outputs")
    r.add_argument("--top-k", type=_positive_int, help="classes kept per prediction (default 5)")
    r.add_argument(
        "--resize",
        choices=["stretch", "crop", "letterbox"],
        help="how frames are fitted to the input (default stretch)",
    )
    r.add_argument("--color", choices=["RGB", "BGR"], help="channel order the model expects (default RGB)")
    r.add_argument("--config", metavar="FILE", help="YAML config; its `run` section is overridden by flags")
    r.add_argument("--json", metavar="OUT", help="write the result document here")
    r.add_argument("--mqtt", metavar="URL", help="publish to this broker, e.g. mqtt://collector.local:1883")
    r.add_argument(
        "--mqtt-protocol",
        choices=["auto", "5", "3.1.1"],
        help="MQTT version (default auto: 5, falling back to 3.1.1)",
    )
    r.add_argument(
        "--mqtt-wait",
        type=float,
        metavar="S",
        help="after the run, wait up to S seconds for the broker to acknowledge everything "
        "(default: outbox.drain_wait_s, else 15)",
    )
    r.add_argument("--device-id", help="this device's id on the fleet (default: the hostname)")
    r.add_argument("--run-id", help=argparse.SUPPRESS)
    r.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    r.add_argument(
        "--accuracy", metavar="DIR", help="labelled images (a folder per class, or a labels CSV): report top-1/top-5"
    )
    r.add_argument("--accuracy-floor", type=_fraction, metavar="F", help="fail the run if top-1 is below F (0..1)")
    pr = r.add_argument_group("power, thermal and system probes")
    pr.add_argument("--sample-hz", type=_positive_float, help="probe sampling rate (default 10)")
    pr.add_argument(
        "--power",
        metavar="SOURCE",
        help="auto (default), none, jetson, tegrastats, rpi-pmic, rapl, hwmon[:NAME], "
        "cmd:COMMAND (prints watts), serial:DEVICE[:um24c|um25c|um34c]",
    )
    pr.add_argument(
        "--idle-baseline-s", type=_nonneg_float, help="idle power measured before the run (default 2; 0: none)"
    )
    pr.add_argument(
        "--cool-below", type=float, metavar="C", help="first wait until the board is below C degrees Celsius"
    )
    pr.add_argument(
        "--soak", action="store_true", default=None, help="first run the model until the temperature is steady"
    )
    pr.add_argument("--no-probes", action="store_true", help="sample nothing (no power, thermal or system sections)")
    add_scenario_flags(r)
    add_sweep_parser(sub)

    i = sub.add_parser("info", help="runtimes, delegates, cameras and board facts found here")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")

    from edgebench.agent.cli.models import add_parser as add_models_parser

    add_models_parser(sub)

    a = sub.add_parser(
        "agent",
        help="the service: stay connected, publish status/info/telemetry, run the config's jobs and remote commands",
    )
    a.add_argument(
        "--config", metavar="FILE", required=True, help="YAML config (device_id, mqtt, outbox, telemetry, jobs, ...)"
    )
    a.add_argument("--device-id", help="override the config's device_id")
    a.add_argument("--mqtt", metavar="URL", help="override the config's mqtt.url")
    return ap


def _fmt(v: Any, width: int = 8) -> str:
    return f"{v:>{width}.3f}" if isinstance(v, (int, float)) else f"{'-':>{width}}"


def print_summary(res: dict[str, Any], out=sys.stdout) -> None:
    rt = res["runtime"]
    threads = rt["num_threads"] if rt["num_threads"] is not None else "default"
    src = res["source"]
    w = out.write
    w(
        f"model {res['model']['name']} on {rt['name']} {rt['version']} (threads: {threads}), "
        f"source {src.get('kind')} {src.get('uri', '')}\n"
    )
    fps = f"{res['fps']:.1f} FPS" if res["fps"] else "FPS n/a"
    w(
        f"frames {res['frames']} (+{res['warmup_frames']} warmup) in {res['duration_s']:.3f} s: {fps}; "
        f"init {res['init_ms']:.1f} ms, first inference {res['first_inference_ms']:.2f} ms\n"
    )
    w(f"{'latency (ms)':<13}{'mean':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}\n")
    for stage, st in res["latency_ms"].items():
        w(f"{stage:<13}" + "".join(_fmt(st[k]) for k in ("mean", "p50", "p90", "p99", "max")) + "\n")
    preds = res.get("predictions") or []
    for p in preds[:5]:
        top = p["top_k"][0]
        name = top["label"] if top["label"] is not None else f"class {top['index']}"
        w(f"top-1 {p['source_name']}: {name} ({top['score']:.3f})\n")
    if len(preds) > 5:
        w(f"... and {len(preds) - 5} more predictions in the result file\n")
    if res.get("accuracy"):
        from edgebench.agent.measure.accuracy import summary_line

        w(summary_line(res["accuracy"]) + "\n")
    v = res.get("validity")
    if v and v["verdict"] != "VALID":
        w(f"INVALID run: {'; '.join(v['reasons'])}\n")
    for warning in res.get("warnings", []):
        w(f"warning: {warning}\n")
    from edgebench.agent.probes.info import run_summary_line

    probes_line = run_summary_line(res)
    if probes_line:
        w(probes_line + "\n")
    for note in res.get("notes", []):
        w(f"note: {note}\n")


#: run flags that map one-to-one onto the config's `run` keys
RUN_FLAGS = (
    "model",
    "source",
    "frames",
    "duration_s",
    "warmup",
    "warmup_s",
    "threads",
    "runtime",
    "labels",
    "top_k",
    "resize",
    "color",
    "delegate",
    "delegate_options",
    "cpu_fallback",
    "xnnpack",
    "pipelined",
    "pacing",
    "fps",
    "stall_timeout_s",
    "reconnects",
    "min_frames",
    "min_duration_s",
    "accuracy",
    "accuracy_floor",
)
RUN_FLAGS += SCENARIO_RUN_FLAGS


def resolve_run(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Defaults <- config file <- command-line flags. Returns (RunOptions, config)."""
    from edgebench.agent.measure.run import RunOptions
    from edgebench.agent.options import config as cfgmod

    cfg = cfgmod.load(args.config) if args.config else {}
    values: dict[str, Any] = dict(cfg.get("run", {}))
    for k in RUN_FLAGS:
        v = getattr(args, k, None)
        if v is not None:
            values[k] = _delegate_options(v) if k == "delegate_options" else v
    if not values.get("model"):
        raise UserError("no model: give --model PATH (or run.model in a --config file)")
    device_id = args.device_id or cfg.get("device_id")
    if device_id is not None:
        from edgebench.agent.wire.protocol import check_device_id

        try:
            check_device_id(device_id)
        except ValueError as e:
            raise UserError(str(e)) from None
    mq = cfg.get("mqtt", {})
    args.mqtt = args.mqtt or mq.get("url")
    args.mqtt_protocol = args.mqtt_protocol or mq.get("protocol", "auto")
    if args.mqtt:  # a bad URL is a user error before, not after, the run
        from edgebench.agent.wire.transport import parse_url

        parse_url(args.mqtt)
    known = set(RunOptions.__dataclass_fields__)
    unsupported = sorted(set(values) - known)
    if unsupported:
        raise UserError(f"run.{unsupported[0]} is not supported by this version of edgebench")
    from edgebench.agent.probes.session import probe_options

    probes = probe_options(
        cfg.get("probes"),
        sample_hz=getattr(args, "sample_hz", None),
        power=getattr(args, "power", None),
        idle_baseline_s=getattr(args, "idle_baseline_s", None),
        cool_below_c=getattr(args, "cool_below", None),
        soak=getattr(args, "soak", None),
        enabled=False if getattr(args, "no_probes", False) else None,
    )
    return RunOptions(**values, device_id=device_id, run_id=args.run_id, probes=probes), cfg


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
    from edgebench.agent.measure.result import write_json

    opts, cfg = resolve_run(args)
    if opts.scenario is not None or opts.find_max_qps or args.plot:
        return run_scenario_cmd(args, opts, cfg)
    from edgebench.agent.measure.run import run

    pub = stream = None
    if args.mqtt:
        from edgebench.agent.measure.result import default_device_id
        from edgebench.agent.publish.publisher import Publisher

        opts.device_id = opts.device_id or default_device_id()
        if not args.verbose:  # the final error line says what the link saw, once
            logging.getLogger("edgebench.link").setLevel(logging.ERROR)
        pub = Publisher.from_config(cfg, opts.device_id, url=args.mqtt, protocol_version=args.mqtt_protocol).start()
        pub.link.wait_first_attempt(FIRST_CONNECT_WAIT_S)
        # An accuracy run may be refused by its floor: hold it back until it passes.
        held = bool(opts.accuracy or opts.accuracy_floor is not None)
        stream = pub.stream(config=_run_config(opts), hold=held)
    progress = None if args.quiet else progress_printer()
    try:
        outcome = run(opts, sink_factory=None if stream is None else stream.sink_factory, progress=progress)
    except BaseException:
        if pub is not None:  # what was measured so far leaves now, or with the next start
            pub.close(drain_s=2.0)
        raise
    finally:
        if progress is not None:
            progress.close()
    res = outcome.result
    if args.json:
        write_json(args.json, res)
    if not args.quiet:
        print_summary(res)
        if args.json:
            print(f"result written to {args.json}")
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
        _finish_publishing(args, cfg, pub, stream, res)
    return 0


def _run_config(opts) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(opts).items() if k not in ("notes", "device_id", "run_id")}


#: How long `edgebench run` waits for its first connection before measuring (so
#: that a reachable broker gets the run live; an unreachable one costs no more).
FIRST_CONNECT_WAIT_S = 5.0
DEFAULT_DRAIN_WAIT_S = 15.0


def _finish_publishing(args, cfg: dict[str, Any], pub, stream, res: dict[str, Any]) -> None:
    """Queue the summary, wait for the outbox to drain (or the wait to expire), report."""
    from edgebench.agent.measure.result import write_json

    stream.finish(res)
    wait = (
        args.mqtt_wait
        if args.mqtt_wait is not None
        else cfg.get("outbox", {}).get("drain_wait_s", DEFAULT_DRAIN_WAIT_S)
    )
    drained = pub.wait_drained(wait)
    drops = pub.outbox.run_drops(res["run_id"])
    stats = pub.outbox.stats()
    reason = pub.link.last_error
    where = pub.settings.describe()
    pub.close()
    if drops["frames"]:
        ranges = ", ".join(f"{a}-{a + n - 1}" for a, n in drops["frame_ranges"][:5])
        print(
            f"edgebench: warning: the outbox bound ({stats['max_bytes']} bytes) dropped {drops['frames']} frames "
            f"of this run in {drops['messages']} batch(es) (frames {ranges}{', ...' if len(drops['frame_ranges']) > 5 else ''}); "
            "the summary says so",
            file=sys.stderr,
        )
    rejected = stats["rejected_messages"] - pub.rejected_at_start
    if rejected:
        saved = args.json or os.path.abspath(f"edgebench-result-{res['run_id']}.json")
        if not args.json:
            write_json(saved, res)
        raise PublishError(
            f"the broker at {where} refused {rejected} message(s) ({pub.link.last_rejection}): is the MQTT username "
            f"this device's id ({res['device_id']})? They are set aside in the outbox {pub.outbox.path} (table "
            f"rejected); the result is kept in {saved}"
        )
    if drained:
        if not args.quiet:
            print(f"published run {res['run_id']} as device {res['device_id']} to {where} ({res['frames']} frames)")
        return
    saved = args.json
    if not saved:
        saved = os.path.abspath(f"edgebench-result-{res['run_id']}.json")
        write_json(saved, res)
    why = reason or f"the broker at {where} did not acknowledge everything within {wait:g} s"
    raise PublishError(
        f"{why}; {stats['queued_messages']} message(s) ({stats['queued_frames']} frames) remain queued in the outbox "
        f"{pub.outbox.path}: the next `edgebench run` or `edgebench agent` with device id {res['device_id']} "
        f"sends them; the result is kept in {saved}"
    )


def cmd_agent(args: argparse.Namespace) -> int:
    from edgebench.agent.service.agent import run_agent

    return run_agent(args)


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from edgebench.agent.cli import info

    data = info.collect()
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
        return {"run": cmd_run, "info": cmd_info, "sweep": cmd_sweep, "agent": cmd_agent}[args.command](args)
    except UserError as e:
        print(f"edgebench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgebench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `edgebench info | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
