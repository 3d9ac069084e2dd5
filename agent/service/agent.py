"""``edgebench agent --config FILE``: the service systemd runs on a board.

It stays connected (edgebench.agent.publish.link), announces itself (retained ``status`` and
``info`` on every connect), publishes telemetry every ``telemetry.interval_s``
seconds, runs the config's ``jobs`` (once, or every ``every_s`` seconds) and the
jobs the collector sends (``cmd/run``), one at a time. SIGTERM (or SIGINT) ends
the job in progress at its next frame batch, gives the outbox
``outbox.drain_wait_s`` seconds to empty, publishes ``stopped`` and exits 0.

Remote commands: ``edgebench/v1/<device>/cmd/run`` carries an
``edgebench.cmd_run/1`` document; the device answers on ``cmd-ack``
(``edgebench.cmd_ack/1``): ``accepted`` (with the run id it will use) or
``rejected`` (with the reason) at once, then ``started``, then ``done`` or
``failed``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.options import config as cfgmod
from edgebench.agent.options.build import build_probe_options
from edgebench.agent.options.table import SUSTAINED, section_values
from edgebench.agent.publish.publisher import Publisher, RunAborted, RunStream
from edgebench.agent.wire import protocol

log = logging.getLogger("edgebench.agent")

#: Keys a remote job may not set (they belong to the agent's own schedule).
REMOTE_FORBIDDEN = ("every_s",)


@dataclass
class Job:
    values: dict[str, Any]
    name: str
    every_s: float | None = None
    cmd_id: str | None = None
    run_id: str | None = None
    next_at: float = 0.0
    runs: int = field(default=0)


def job_options(
    values: dict[str, Any], device_id: str, run_id: str | None = None, config: dict[str, Any] | None = None
):
    """RunOptions for a validated job (its probes from the config's ``probes`` section); UserError if wrong."""
    from edgebench.agent.options.build import build_run_options

    if values.get("tune") and values.get("latency_bound_ms") is None:
        raise UserError("job.tune needs job.latency_bound_ms: the p99 in ms a batch must hold")
    return build_run_options(config or {}, job=values, device_id=device_id, run_id=run_id)


def _version() -> str:
    from edgebench.agent import __version__

    return __version__


def resolve_model(name: str, models_dir: str | None, fetch_missing: bool = True, remote: bool = True) -> str:
    """A job's model: a registry name (bundled, cached, or fetched now when
    ``fetch_missing``; edgebench.agent.runtime.fetch), or a .tflite file on this device
    (relative to ``commands.models_dir``, and inside it when set; a remote job's must end
    in .tflite)."""
    from edgebench.agent.runtime.fetch import is_model_name
    from edgebench.agent.runtime.fetch import resolve_model as registry_model

    if name and is_model_name(name) and not (models_dir and (Path(models_dir) / name).is_file()):
        if not fetch_missing:
            return name
        return registry_model(name, out=log.info)
    path = Path(name)
    if models_dir:
        base = Path(models_dir).resolve()
        path = (base / path).resolve()
        if base != path and base not in path.parents:
            raise UserError(f"model {name!r} is outside this device's commands.models_dir ({base})")
    if not path.is_file():
        raise UserError(f"model not found on this device: {name} (nor is it a model's name in the registry)")
    if remote and path.suffix.lower() != ".tflite":
        raise UserError(f"model {name!r} is not a .tflite file")
    return str(path)


class AgentService:
    def __init__(self, cfg: dict[str, Any], device_id: str, url: str | None = None):
        self.cfg = cfg
        self.device_id = device_id
        self.url = url
        self.stop_event = threading.Event()
        self.jobs: list[Job] = []
        for i, j in enumerate(cfg.get("jobs", [])):
            self.jobs.append(Job(values=j, name=j.get("name", f"jobs[{i}]"), every_s=j.get("every_s")))
        cmds = section_values(cfg, "commands", "agent")
        self.commands_enabled = cmds["enabled"]
        self.models_dir = cmds["models_dir"]
        self.telemetry_s = section_values(cfg, "telemetry", "agent")["interval_s"]
        self.drain_wait_s = section_values(cfg, "outbox", "agent")["drain_wait_s"]
        self._cmd_in: queue.SimpleQueue = queue.SimpleQueue()
        self._remote: queue.Queue = queue.Queue()
        self._current: RunStream | None = None
        self._wake = threading.Event()
        self.pub: Publisher | None = None
        # Validate every configured job now (and the probes section): a bad job is a config error at start.
        build_probe_options(cfg)
        for job in self.jobs:
            try:
                job_options(self._resolved(job.values, remote=False, fetch=False), device_id, config=cfg)
            except UserError as e:
                raise UserError("\n".join(f"job {job.name}: {line}" for line in str(e).splitlines())) from None

    def _resolved(self, values: dict[str, Any], remote: bool, fetch: bool = True) -> dict[str, Any]:
        """A job's values with its model (and a remote job's labels) found on this device;
        ``fetch=False`` when only checking (at start): a registry name is fetched when the job runs."""
        v = dict(values)
        if remote:
            v["model"] = resolve_model(str(v.get("model", "")), self.models_dir, fetch_missing=fetch)
            if v.get("labels"):
                lp = Path(v["labels"])
                if self.models_dir and not lp.is_absolute():
                    lp = Path(self.models_dir) / lp
                if not lp.is_file():
                    raise UserError(f"labels file not found on this device: {v['labels']}")
                v["labels"] = str(lp)
        else:  # a configured job: a file, or a registry name (fetched when the job runs)
            v["model"] = resolve_model(str(v.get("model", "")), None, fetch_missing=fetch, remote=False)
        return v

    # -- commands (link thread hands over; the command thread decides) -------------
    def on_command(self, topic: str, payload: bytes) -> None:
        self._cmd_in.put((topic, payload))

    def _command_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                item = self._cmd_in.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._handle_command(*item)
            except Exception:
                log.exception("command handling failed")

    def _handle_command(self, topic: str, payload: bytes) -> None:
        assert self.pub is not None
        info = protocol.parse_topic(topic)
        name = info.get("name") if info else None
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            self.pub.cmd_ack(None, "rejected", command=str(name), reason="the command is not JSON")
            return
        cmd_id = doc.get("cmd_id") if isinstance(doc, dict) and isinstance(doc.get("cmd_id"), str) else None
        if cmd_id is not None and not protocol.CMD_ID_RE.match(cmd_id):
            cmd_id = None

        def reject(reason: str) -> None:
            log.warning("rejected command %s (%s): %s", cmd_id, name, reason)
            self.pub.cmd_ack(cmd_id, "rejected", command=str(name), reason=reason)

        if name not in protocol.COMMANDS:
            return reject(f"unknown command {name!r}; this agent understands: {', '.join(protocol.COMMANDS)}")
        if not isinstance(doc, dict) or doc.get("schema") != protocol.CMD_RUN_SCHEMA:
            return reject(f"expected a {protocol.CMD_RUN_SCHEMA} document")
        if cmd_id is None:
            return reject("the command has no valid cmd_id")
        if not self.pub.outbox.first_sight(cmd_id):
            log.info("command %s delivered again; already handled", cmd_id)
            return
        if not self.commands_enabled:
            return reject("this agent does not accept remote commands (commands.enabled is false)")
        issued, ttl = doc.get("issued_at"), doc.get("ttl_s")
        if isinstance(issued, (int, float)) and isinstance(ttl, (int, float)) and time.time() > issued + ttl:
            return reject(f"the command expired (issued {time.time() - issued:.0f} s ago, ttl {ttl:g} s)")
        job = doc.get("job")
        if not isinstance(job, dict):
            return reject("the command has no job mapping")
        try:
            for k in REMOTE_FORBIDDEN:
                if k in job:
                    raise UserError(f"job.{k} cannot be set remotely")
            values = cfgmod.validate_job(job, "job.")
            values = self._resolved(values, remote=True, fetch=False)  # fetched when it runs
            from edgebench.agent.measure.result import new_run_id

            run_id = new_run_id()
            job_options(values, self.device_id, run_id, self.cfg)
        except UserError as e:
            return reject("; ".join(str(e).splitlines()))
        self._remote.put(Job(values=values, name=f"cmd {cmd_id}", cmd_id=cmd_id, run_id=run_id))
        self.pub.cmd_ack(
            cmd_id, "accepted", run_id=run_id, queued=self._remote.qsize() - 1 + (self._current is not None)
        )
        self._wake.set()

    # -- jobs ---------------------------------------------------------------------------
    def _job_loop(self) -> None:
        now = time.monotonic()
        for job in self.jobs:
            job.next_at = now
        while not self.stop_event.is_set():
            job = None
            try:
                job = self._remote.get_nowait()
            except queue.Empty:
                due = [j for j in self.jobs if j.next_at is not None and j.next_at <= time.monotonic()]
                if due:
                    job = min(due, key=lambda j: j.next_at)
            if job is None:
                upcoming = [j.next_at for j in self.jobs if j.next_at is not None]
                wait = min([1.0] + [max(0.0, t - time.monotonic()) for t in upcoming])
                self._wake.wait(wait)
                self._wake.clear()
                continue
            started = time.monotonic()
            self._run_job(job)
            if job.cmd_id is None:
                job.next_at = None if job.every_s is None else started + job.every_s

    def _run_job(self, job: Job) -> None:
        assert self.pub is not None
        from edgebench.agent.measure.run import run

        job.runs += 1
        stream = self.pub.stream()
        self._current = stream
        try:
            opts = job_options(
                self._resolved(job.values, remote=job.cmd_id is not None), self.device_id, job.run_id, self.cfg
            )
            if job.cmd_id:
                self.pub.cmd_ack(job.cmd_id, "started", run_id=opts.run_id)
            log.info("running %s: %s", job.name, os.path.basename(opts.model))
            if self.stop_event.is_set():
                raise RunAborted("the agent is stopping")
            if job.values.get("tune"):
                self._run_tune_job(job, opts)
                return
            sustained = opts.scenario == SUSTAINED and not opts.find_max_qps
            if (opts.scenario is not None and not sustained) or opts.find_max_qps:
                self._run_scenario_job(job, opts)
                return
            stream.config = {k: v for k, v in job.values.items() if k not in ("name", "every_s")}
            outcome = run(opts, sink_factory=stream.sink_factory, keep_samples=sustained)
            if sustained:
                from edgebench.agent.measure.sustained import attach

                attach(outcome, opts.interval_s)
            stream.finish(outcome.result)
            res = outcome.result
            if res.get("board") and res["board"] != self.pub.inventory:
                self.pub.update_inventory(res["board"])
            log.info("%s done: run %s, %d frames, %s FPS", job.name, res["run_id"], res["frames"], res["fps"])
            if job.cmd_id:
                self.pub.cmd_ack(job.cmd_id, "done", run_id=res["run_id"], frames=res["frames"], fps=res["fps"])
        except UserError as e:
            log.error("%s failed: %s", job.name, e)
            if job.cmd_id:
                self.pub.cmd_ack(job.cmd_id, "failed", run_id=job.run_id, reason=str(e)[:1000])
        except Exception as e:
            log.exception("%s failed", job.name)
            if job.cmd_id:
                self.pub.cmd_ack(
                    job.cmd_id, "failed", run_id=job.run_id, reason=f"internal error: {type(e).__name__}: {e}"[:1000]
                )
        finally:
            self._current = None

    def _run_scenario_job(self, job: Job, opts: Any) -> None:
        """A job with scenario keys (``scenario``, ``find_max_qps``...): the LoadGen-style run,
        published as an edgebench.scenario/1 summary (no frames); a stop ends it at its next query."""
        from edgebench.agent.measure.scenario_run import run_scenario_opts
        from edgebench.agent.publish.documents import DocumentStream

        docs = DocumentStream(self.pub, protocol.SCENARIO_SCHEMA)
        doc = run_scenario_opts(opts, on_start=docs.start, should_stop=self.stop_event.is_set)
        docs.finish(doc)
        h = doc["headline"]
        log.info(
            "%s done: run %s, %s %s: %s %s %s",
            job.name,
            doc["run_id"],
            doc["scenario"],
            doc["verdict"],
            h["metric"],
            h["value"],
            h["unit"],
        )
        if job.cmd_id:
            self.pub.cmd_ack(
                job.cmd_id, "done", run_id=doc["run_id"], scenario=doc["scenario"], verdict=doc["verdict"], headline=h
            )

    def _run_tune_job(self, job: Job, opts: Any) -> None:
        """A job with ``tune: true``: edgebench tune's search (edgebench.agent.measure.tune)
        on the job's model, published as an edgebench.tune/1 summary (no frames)."""
        from edgebench.agent.measure.tune import tune_job
        from edgebench.agent.publish.documents import DocumentStream

        docs = DocumentStream(self.pub, protocol.TUNE_SCHEMA)
        values = {**job.values, "model": opts.model}
        doc = tune_job(values, self.device_id, opts.run_id, on_start=docs.start)
        docs.finish(doc)
        best = doc["best"]
        log.info("%s done: run %s, tune %s", job.name, doc["run_id"], doc["verdict"]["verdict"])
        if job.cmd_id:
            headline = {"metric": "best_throughput_items_per_s", "unit": "items/s", "config": None, "value": None}
            if best:
                headline.update(value=best["throughput_items_per_s"], config=best["config"])
                headline["p99_latency_ms"] = best["batch_p99_ms"]
            self.pub.cmd_ack(
                job.cmd_id, "done", run_id=doc["run_id"], tune=doc["verdict"]["verdict"], headline=headline
            )

    # -- telemetry ------------------------------------------------------------------------
    def _telemetry_loop(self) -> None:
        from edgebench.agent.service.telemetry import Telemetry

        tel = Telemetry(power=section_values(self.cfg, "probes", "agent")["power"])
        while True:
            try:
                self.pub.telemetry(tel.snapshot())
            except Exception:
                log.exception("telemetry snapshot failed")
            if self.stop_event.wait(self.telemetry_s):
                return

    # -- the service ------------------------------------------------------------------------
    def run(self) -> int:
        self.pub = Publisher.from_config(
            self.cfg,
            self.device_id,
            url=self.url,
            capabilities=("run", "scenario", "tune", "telemetry", "cmd/run"),
            on_command=self.on_command,
        )
        self.pub.start()
        print(
            f"edgebench agent: device {self.device_id}, broker {self.pub.settings.describe()}, "
            f"outbox {self.pub.outbox.path} ({self.pub.outbox.pending()} message(s) queued), "
            f"{len(self.jobs)} configured job(s)",
            flush=True,
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        self.pub.link.wait_first_attempt(5.0)
        threads = [
            threading.Thread(target=self._telemetry_loop, name="edgebench-telemetry", daemon=True),
            threading.Thread(target=self._command_loop, name="edgebench-commands", daemon=True),
            threading.Thread(target=self._job_loop, name="edgebench-jobs", daemon=True),
        ]
        for t in threads:
            t.start()
        while not self.stop_event.wait(1.0):
            pass
        # stopping: end the run in progress at its next batch, let the outbox drain
        stream = self._current
        if stream is not None:
            stream.abort()
        self._wake.set()
        for t in threads:
            t.join(30)
        drained = self.pub.close(drain_s=self.drain_wait_s)
        left = 0 if drained else _pending(self.pub.outbox.path)
        msg = (
            "everything was delivered"
            if drained
            else (f"{left} message(s) remain queued in {self.pub.outbox.path}; the next start sends them")
        )
        print(f"edgebench agent: stopped ({msg})", flush=True)
        return 0


def _pending(path: str) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    except sqlite3.Error:
        return -1


def run_agent(config_path: str, *, device_id: str | None = None, url: str | None = None, verbose: bool = False) -> int:
    """``edgebench agent``: the config file, with ``--device-id`` and ``--mqtt`` over it."""
    from edgebench.agent.measure.result import default_device_id

    cfg = cfgmod.load(config_path)
    device_id = device_id or cfg.get("device_id") or default_device_id()
    try:
        protocol.check_device_id(device_id)
    except ValueError as e:
        raise UserError(str(e)) from None
    if not (url or cfg.get("mqtt", {}).get("url")):
        raise UserError(f"config {config_path}: no mqtt.url: the agent needs a broker (or give --mqtt URL)")
    if not verbose:
        logging.getLogger("edgebench").setLevel(logging.INFO)
    return AgentService(cfg, device_id, url=url).run()
