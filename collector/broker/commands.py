"""Remote commands: ask devices to run a benchmark job.

``edgebench-collector cmd run --device 'pi-*' --model shapes-int8 --frames 500``

1. Find the fleet from the retained ``status`` of every device (what the
   broker holds), keep the ids matching the ``--device`` globs and, unless
   ``--include-offline``, those online.
2. Subscribe to ``cmd-ack``, then publish one ``edgebench.cmd_run/1`` per device
   on ``edgebench/v1/<device>/cmd/run`` (QoS 1, not retained; MQTT 5 message
   expiry = ``--ttl``).
3. Wait for each device's answer: ``accepted`` (with the run id) or ``rejected``
   (with the reason); with ``--wait-done``, also for ``done`` or ``failed``.

Only the collector's account may publish on ``cmd`` (deploy/mosquitto/acl).
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from edgebench.agent.errors import PublishError, UserError
from edgebench.agent.wire import protocol
from edgebench.agent.wire.transport import MqttSettings
from edgebench.collector.broker.connection import Connection

#: How long to listen for retained status messages once they stop arriving.
STATUS_SETTLE_S = 0.5


@dataclass
class Answer:
    device_id: str
    cmd_id: str
    states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any] | None:
        return self.states[-1] if self.states else None


class Commander:
    def __init__(self, settings: MqttSettings, client_id: str | None = None):
        self.settings = settings
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._status: dict[str, dict[str, Any]] = {}
        self._last_status_at = time.monotonic()
        self._acks: dict[str, list[dict[str, Any]]] = {}
        self.conn = Connection(
            settings,
            client_id=client_id or f"edgebench-cmd-{secrets.token_hex(4)}",
            on_message=self._on_message,
        )

    def __enter__(self) -> "Commander":
        self.conn.connect(self.settings.connect_timeout_s)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()

    def _on_message(self, msg) -> None:
        info = protocol.parse_topic(msg.topic)
        if info is None or not msg.payload:
            return
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if not isinstance(body, dict) or body.get("device_id") != info["device_id"]:
            return  # a device speaking for another: ignore
        with self._cv:
            if info["kind"] == "status":
                self._status[info["device_id"]] = body
                self._last_status_at = time.monotonic()
            elif info["kind"] == "cmd_ack" and isinstance(body.get("cmd_id"), str):
                self._acks.setdefault(body["cmd_id"], []).append(body)
            self._cv.notify_all()

    def fleet(self, max_wait_s: float = 3.0) -> dict[str, dict[str, Any]]:
        """Every device's last status, as the broker retains it."""
        self.conn.subscribe([(protocol.ALL_STATUS, 1)])
        start = time.monotonic()
        self._last_status_at = start
        with self._cv:
            while True:
                now = time.monotonic()
                quiet = now - self._last_status_at
                if quiet >= STATUS_SETTLE_S or now - start >= max_wait_s:
                    return dict(self._status)
                self._cv.wait(STATUS_SETTLE_S - quiet)

    def send_run(self, device_ids: list[str], job: dict[str, Any], ttl_s: float) -> dict[str, Answer]:
        self.conn.subscribe([(protocol.ALL_CMD_ACKS, 1)])
        time.sleep(0.2)  # let the SUBACK come back before the first answer can
        answers = {}
        mids = []
        for dev in device_ids:
            cmd_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"
            doc = {
                "schema": protocol.CMD_RUN_SCHEMA,
                "cmd_id": cmd_id,
                "issued_at": time.time(),
                "ttl_s": ttl_s,
                "issued_by": self.conn.client_id,
                "job": job,
            }
            answers[dev] = Answer(dev, cmd_id)
            props = None
            if self.conn.protocol == 5:
                from paho.mqtt.packettypes import PacketTypes
                from paho.mqtt.properties import Properties

                props = Properties(PacketTypes.PUBLISH)
                props.MessageExpiryInterval = max(1, int(ttl_s))
                props.ContentType = "application/json"
            assert self.conn.client is not None
            from edgebench.agent.wire.transport import dumps

            info = self.conn.client.publish(
                protocol.cmd_topic(dev, "run"), dumps(doc), qos=1, retain=False, properties=props
            )
            mids.append((dev, info.mid))
        missing = self.conn.wait_acked([m for _, m in mids], 10.0)
        if missing:
            raise PublishError(
                f"the broker at {self.settings.describe()} did not acknowledge {len(missing)} command(s)"
            )
        refused = [(dev, self.conn.refused[m]) for dev, m in mids if m in self.conn.refused]
        if refused:
            dev, why = refused[0]
            raise PublishError(
                f"the broker at {self.settings.describe()} refused the command to {dev}: {why} "
                "(only the collector's account may publish commands)"
            )
        return answers

    def wait(self, answers: dict[str, Answer], until: tuple[str, ...], timeout: float) -> None:
        """Wait until every device's answer reached one of ``until`` (or rejected/failed)."""
        final = set(until) | {"rejected", "failed"}
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for a in answers.values():
                    a.states = list(self._acks.get(a.cmd_id, []))
                if all(a.last and any(s["state"] in final for s in a.states) for a in answers.values()):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cv.wait(left)


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML scalars (numbers, true/false, text)."""
    import yaml

    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise UserError(f"--set {p!r}: expected KEY=VALUE")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            out[k.strip()] = v
    return out


def add_broker_options(p) -> None:
    """--username/--password-file/--password-env/--ca/--cert/--key: how a collector-side
    command logs in (secrets from a file or the environment, never the command line)."""
    p.add_argument("--username", help="broker account (default: from the URL)")
    p.add_argument("--password-file", help="file holding the account's password")
    p.add_argument("--password-env", help="environment variable holding the account's password")
    p.add_argument("--ca", help="CA certificate to check the broker's (TLS)")
    p.add_argument("--cert", help="client certificate (TLS)")
    p.add_argument("--key", help="client certificate's key (TLS)")


def settings_from_args(args) -> MqttSettings:
    opts = {k: getattr(args, k, None) for k in ("username", "password_file", "password_env", "ca", "cert", "key")}
    return MqttSettings.from_config({k: v for k, v in opts.items() if v}, url=args.mqtt, where="--")


def cmd_run(args) -> int:
    job: dict[str, Any] = {"model": args.model}
    for k in ("source", "frames", "warmup", "threads", "labels", "scenario"):
        v = getattr(args, k, None)
        if v is not None:
            job[k] = v
    job.update(parse_sets(args.set or []))
    return send_job(args, job)


def cmd_tune(args) -> int:
    """``cmd tune``: edgebench tune's search as a job (``tune: true``) on each device."""
    job: dict[str, Any] = {"model": args.model, "tune": True, "latency_bound_ms": args.latency_bound_ms}
    for k in ("objective", "budget_s", "max_batch"):
        if getattr(args, k) is not None:
            job[k] = getattr(args, k)
    job.update(parse_sets(args.set or []))
    return send_job(args, job)


def _done_words(last: dict[str, Any]) -> str:
    """What a ``done`` answer says: a tune's winner, a scenario's verdict, a run's frames and FPS."""
    h = last.get("headline") or {}
    if last.get("tune"):
        cfg = h.get("config") or {}
        shown = ({True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v for v in cfg.values())
        best = ", ".join(f"{k} {v}" for k, v in zip(cfg, shown) if v is not None) or "none meets the bound"
        figs = f", {h.get('value')} items/s, p99 {h.get('p99_latency_ms')} ms" if cfg else ""
        return f" (tune: {last['tune']}; best {best}{figs})"
    if last.get("verdict"):
        return f" ({last.get('scenario')}: {last['verdict']}, {h.get('metric')} {h.get('value')} {h.get('unit')})"
    return f" ({last.get('frames')} frames, {last.get('fps')} FPS)"


def send_job(args, job: dict[str, Any]) -> int:
    """Send ``job`` to the devices matching ``--device`` and print each answer."""
    settings = settings_from_args(args)
    with Commander(settings) as cmd:
        fleet = cmd.fleet()
        matched = sorted(d for d in fleet if any(fnmatch.fnmatchcase(d, g) for g in args.device))
        exact = [g for g in args.device if not any(c in g for c in "*?[")]
        for g in exact:  # a device named outright is asked even if the broker has no status for it
            if g not in matched:
                matched.append(g)
        if not matched:
            known = ", ".join(sorted(fleet)) or "none"
            raise UserError(f"no device matches {' '.join(args.device)} (devices known to the broker: {known})")
        targets, skipped = [], []
        for d in matched:
            state = fleet.get(d, {}).get("state", "unknown")
            (targets if args.include_offline or state == "online" else skipped).append(d)
        for d in skipped:
            print(f"{d}: skipped ({fleet.get(d, {}).get('state', 'never seen')}; --include-offline sends anyway)")
        if not targets:
            return 1
        answers = cmd.send_run(targets, job, args.ttl)
        cmd.wait(answers, ("done",) if args.wait_done else ("accepted",), args.timeout)
    bad = 0
    for d in targets:
        a = answers[d]
        if not a.states:
            print(f"{d}: no answer within {args.timeout:g} s (command {a.cmd_id})")
            bad += 1
            continue
        last = a.last
        state = last["state"]
        run = f" run {last['run_id']}" if last.get("run_id") else ""
        reason = f": {last['reason']}" if last.get("reason") else ""
        extra = _done_words(last) if state == "done" else ""
        print(f"{d}: {state}{run}{reason}{extra}")
        if state in ("rejected", "failed") or (args.wait_done and state != "done"):
            bad += 1
    return 1 if bad or skipped else 0


def add_parser(sub) -> None:
    c = sub.add_parser("cmd", help="send commands to devices (run a benchmark job)")
    csub = c.add_subparsers(dest="cmd_name", metavar="COMMAND")
    csub.required = True
    r = csub.add_parser("run", help="ask devices matching --device to run a benchmark job")
    _common(r)
    r.add_argument("--source", help="frame source on the device (default synthetic)")
    r.add_argument("--frames", type=int, help="frames to measure")
    r.add_argument("--warmup", type=int, help="warmup frames")
    r.add_argument("--threads", type=int, help="interpreter threads")
    r.add_argument("--labels", help="labels file on the device")
    r.add_argument("--scenario", help="scenario (when the device's agent supports it)")
    _answers(r)
    r.set_defaults(func=cmd_run)
    t = csub.add_parser("tune", help="ask devices matching --device to run edgebench tune's search (a tune job)")
    _common(t)
    t.add_argument("--latency-bound-ms", type=float, required=True, metavar="MS", help="the p99 a batch must hold")
    t.add_argument("--objective", help="throughput, latency or energy (default: the agent's, throughput)")
    t.add_argument("--budget-s", type=float, metavar="SEC", help="the search's budget (default: the agent's, 300)")
    t.add_argument("--max-batch", type=int, metavar="N", help="the largest batch tried (default: the agent's, 8)")
    _answers(t)
    t.set_defaults(func=cmd_tune)


def _common(r) -> None:
    r.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL (default mqtt://127.0.0.1:1883)")
    add_broker_options(r)
    r.add_argument(
        "--device", action="append", required=True, metavar="GLOB", help="device id or glob, e.g. 'pi-*' (repeatable)"
    )
    r.add_argument("--model", required=True, help="a bundled model's name or a .tflite path on the device")


def _answers(r) -> None:
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other job key (repeatable)")
    r.add_argument("--ttl", type=float, default=600.0, help="seconds the command stays valid (default 600)")
    r.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answers (default 15)")
    r.add_argument("--wait-done", action="store_true", help="wait until the jobs are done, not only accepted")
    r.add_argument("--include-offline", action="store_true", help="also send to devices not online now")
