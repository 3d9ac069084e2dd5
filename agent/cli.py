"""``edgebench``: the agent's command line (what runs on a board)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from . import __version__
from .errors import PublishError, UserError


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return v


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
    r.add_argument("--frames", type=_positive_int, help="frames to measure (default 100)")
    r.add_argument("--warmup", type=_positive_int, help="frames run first and not measured (default 5)")
    r.add_argument("--threads", type=_positive_int, help="interpreter threads (default: runtime's)")
    r.add_argument(
        "--runtime",
        choices=["auto", "ai-edge-litert", "tflite-runtime", "tensorflow"],
        help="TFLite runtime (default auto: ai-edge-litert, then tflite-runtime, then tensorflow)",
    )
    r.add_argument("--labels", help="labels file (one per line) to name classification outputs")
    r.add_argument("--top-k", type=_positive_int, help="classes kept per prediction (default 5)")
    r.add_argument("--resize", choices=["stretch", "crop", "letterbox"], help="how frames are fitted to the input (default stretch)")
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

    a = sub.add_parser(
        "agent",
        help="the service: stay connected, publish status/info/telemetry, run the config's jobs and remote commands",
    )
    a.add_argument("--config", metavar="FILE", required=True, help="YAML config (device_id, mqtt, outbox, telemetry, jobs, ...)")
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
    for note in res.get("notes", []):
        w(f"note: {note}\n")


#: run flags that map one-to-one onto the config's `run` keys
RUN_FLAGS = ("model", "source", "frames", "warmup", "threads", "runtime", "labels", "top_k", "resize", "color")


def resolve_run(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Defaults <- config file <- command-line flags. Returns (RunOptions, config)."""
    from . import config as cfgmod
    from .runner import RunOptions

    cfg = cfgmod.load(args.config) if args.config else {}
    values: dict[str, Any] = dict(cfg.get("run", {}))
    for k in RUN_FLAGS:
        v = getattr(args, k, None)
        if v is not None:
            values[k] = v
    if not values.get("model"):
        raise UserError("no model: give --model PATH (or run.model in a --config file)")
    device_id = args.device_id or cfg.get("device_id")
    if device_id is not None:
        from .protocol import check_device_id

        try:
            check_device_id(device_id)
        except ValueError as e:
            raise UserError(str(e)) from None
    mq = cfg.get("mqtt", {})
    args.mqtt = args.mqtt or mq.get("url")
    args.mqtt_protocol = args.mqtt_protocol or mq.get("protocol", "auto")
    if args.mqtt:  # a bad URL is a user error before, not after, the run
        from .mqtt import parse_url

        parse_url(args.mqtt)
    known = set(RunOptions.__dataclass_fields__)
    unsupported = sorted(set(values) - known)
    if unsupported:
        raise UserError(f"run.{unsupported[0]} is not supported by this version of edgebench")
    return RunOptions(**values, device_id=device_id, run_id=args.run_id), cfg


def cmd_run(args: argparse.Namespace) -> int:
    from .result import write_json

    opts, cfg = resolve_run(args)
    from .runner import run

    pub = stream = None
    if args.mqtt:
        from .publish import Publisher
        from .result import default_device_id

        opts.device_id = opts.device_id or default_device_id()
        if not args.verbose:  # the final error line says what the link saw, once
            logging.getLogger("edgebench.link").setLevel(logging.ERROR)
        pub = Publisher.from_config(cfg, opts.device_id, url=args.mqtt, protocol_version=args.mqtt_protocol).start()
        pub.link.wait_first_attempt(FIRST_CONNECT_WAIT_S)
        stream = pub.stream()
    try:
        outcome = run(opts, stream=stream)
    except BaseException:
        if pub is not None:  # what was measured so far leaves now, or with the next start
            pub.close(drain_s=2.0)
        raise
    res = outcome.result
    if args.json:
        write_json(args.json, res)
    if not args.quiet:
        print_summary(res)
        if args.json:
            print(f"result written to {args.json}")
    if pub is not None:
        _finish_publishing(args, cfg, pub, stream, res)
    return 0


#: How long `edgebench run` waits for its first connection before measuring (so
#: that a reachable broker gets the run live; an unreachable one costs no more).
FIRST_CONNECT_WAIT_S = 5.0
DEFAULT_DRAIN_WAIT_S = 15.0


def _finish_publishing(args, cfg: dict[str, Any], pub, stream, res: dict[str, Any]) -> None:
    """Queue the summary, wait for the outbox to drain (or the wait to expire), report."""
    from .result import write_json

    stream.finish(res)
    wait = args.mqtt_wait if args.mqtt_wait is not None else cfg.get("outbox", {}).get("drain_wait_s", DEFAULT_DRAIN_WAIT_S)
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
    from .service import run_agent

    return run_agent(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="edgebench: %(levelname)s %(name)s: %(message)s",
    )
    try:
        return {"run": cmd_run, "agent": cmd_agent}[args.command](args)
    except UserError as e:
        print(f"edgebench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgebench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
