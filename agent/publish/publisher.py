"""What a device publishes, and how: everything through the on-disk outbox.

``Publisher`` owns the device's outbox (edgebench.agent.publish.outbox), its MQTT link
(edgebench.agent.publish.link) and one writer thread. Producers hand messages over without
waiting; the writer builds them and stores them in the outbox; the link sends
them; each leaves the outbox when a collector confirms it stored it.

A run goes out as it is measured (``RunStream``): its retained ``meta`` before
the first frame, its frames in column-wise batches while the run goes on (the
measurement loop only puts the batch on a queue), its ``summary`` at the end,
carrying what the outbox had to drop of it. On every connect the link sends
the retained ``status`` online and the publisher queues the retained ``info``
birth record.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

import numpy as np

from edgebench.agent import __version__
from edgebench.agent.errors import UserError
from edgebench.agent.options.table import default, section_values
from edgebench.agent.publish.outbox import Outbox, default_path
from edgebench.agent.wire import protocol
from edgebench.agent.wire.transport import MqttSettings

log = logging.getLogger("edgebench.publish")

#: Outbox bound when the config says nothing (MB of payload; the options table's outbox.max_mb).
DEFAULT_OUTBOX_MB = default("outbox", "max_mb")


class RunAborted(UserError):
    """The agent is stopping: the run in progress ends early (its frames so far are kept)."""


#: operators of a result's op table a summary carries (a graph of thousands would pass the
#: payload limit): the slowest when timed, else the first; the result file keeps them all
MAX_PUBLISHED_OPS = 1000


def summary_result(result: dict[str, Any]) -> dict[str, Any]:
    """The result as a summary carries it: without ``predictions``, and an op table of at most
    MAX_PUBLISHED_OPS operators (``ops_published`` says how many of ``total`` when cut)."""
    out = {k: v for k, v in result.items() if k != "predictions"}
    ops = out.get("ops")
    rows = ops.get("ops") if isinstance(ops, dict) else None
    if isinstance(rows, list) and len(rows) > MAX_PUBLISHED_OPS:
        timed = all(isinstance(o.get("ms"), (int, float)) for o in rows)
        kept = sorted(rows, key=lambda o: -o["ms"])[:MAX_PUBLISHED_OPS] if timed else rows[:MAX_PUBLISHED_OPS]
        out["ops"] = {**ops, "ops": kept, "ops_published": len(kept)}
    return out


def _envelope(schema: str, device_id: str) -> dict[str, Any]:
    # session and seq are stamped by the outbox, in this position
    return {"schema": schema, "device_id": device_id, "session": None, "seq": None, "ts": time.time()}


class Publisher:
    def __init__(
        self,
        settings: MqttSettings | None,
        device_id: str,
        *,
        outbox_path: str | None = None,
        max_mb: float = DEFAULT_OUTBOX_MB,
        synchronous: str = default("outbox", "synchronous"),
        resend_s: float = default("outbox", "resend_s"),
        confirm_wait_s: float = default("outbox", "confirm_wait_s"),
        inventory: dict[str, Any] | None = None,
        capabilities: tuple[str, ...] = ("run",),
        on_command: Callable[[str, bytes], None] | None = None,
        window: int = 64,
    ):
        self.device_id = protocol.check_device_id(device_id)
        self.settings = settings
        self.outbox = Outbox(
            outbox_path or default_path(device_id),
            int(max_mb * 1024 * 1024),
            synchronous,
            resend_s=resend_s,
            confirm_wait_s=confirm_wait_s,
        )
        #: Messages the broker had refused before this publisher started (outbox counter).
        self.rejected_at_start = self.outbox.stats()["rejected_messages"]
        if inventory is None:
            from edgebench.agent.probes.inventory import board_inventory

            inventory = board_inventory()
        self.inventory = inventory
        self.capabilities = list(capabilities)
        self.link = None
        try:
            if settings is not None:
                from edgebench.agent.publish.link import Link

                self.link = Link(
                    settings, device_id, self.outbox, on_connect=self._birth, on_command=on_command, window=window
                )
        except BaseException:
            self.outbox.close()
            raise
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="edgebench-outbox-writer", daemon=True)
        self.write_errors = 0
        self._closed = False

    @classmethod
    def from_config(
        cls,
        cfg: dict[str, Any],
        device_id: str,
        *,
        url: str | None = None,
        protocol_version: str | None = None,
        **kw: Any,
    ) -> "Publisher":
        """A publisher for the config's ``mqtt`` and ``outbox`` sections (flags override)."""
        settings = MqttSettings.from_config(cfg.get("mqtt"), url=url, protocol=protocol_version)
        ob = section_values(cfg, "outbox")
        return cls(
            settings,
            device_id,
            outbox_path=ob["path"],
            max_mb=ob["max_mb"],
            synchronous=ob["synchronous"],
            resend_s=ob["resend_s"],
            confirm_wait_s=ob["confirm_wait_s"],
            **kw,
        )

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> "Publisher":
        self._writer.start()
        if self.link is not None:
            self.link.start()
        return self

    def close(self, drain_s: float = 0.0) -> bool:
        """Store what was handed over, give the link ``drain_s`` to empty the outbox,
        publish ``stopped`` and disconnect. Returns True if the outbox is empty."""
        if self._closed:
            return False
        self._closed = True
        self.flush()
        drained = (
            self.outbox.wait_empty(drain_s) if (self.link is not None and drain_s > 0) else self.outbox.pending() == 0
        )
        if self.link is not None:
            self.link.stop()
        self._q.put(None)
        self._writer.join(10)
        self.outbox.close()
        return drained

    def __enter__(self) -> "Publisher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- handing over -------------------------------------------------------------------
    def submit(self, kind: str, topic: str, body: dict[str, Any], **kw: Any) -> None:
        """Queue a message for the writer thread; never waits."""
        self._q.put(("msg", kind, topic, body, kw))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything handed over so far is in the outbox."""
        if not self._writer.is_alive():
            return self._q.empty()
        done = threading.Event()
        self._q.put(("flush", done))
        return done.wait(timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until the broker acknowledged everything (the outbox is empty); give
        up early if the broker refused our credentials (waiting will not help)."""
        deadline = time.monotonic() + timeout
        if not self.flush(timeout):
            return False
        while True:
            left = deadline - time.monotonic()
            if self.outbox.wait_empty(min(max(left, 0.0), 0.5)):
                return True
            if left <= 0 or (self.link is not None and self.link.refused):
                return False

    def stream(self, config: dict[str, Any] | None = None, hold: bool = False) -> "RunStream":
        return RunStream(self, config=config, hold=hold)

    # -- messages -----------------------------------------------------------------------
    def update_inventory(self, inventory: dict[str, Any]) -> None:
        """A fuller inventory (a run's ``board`` section: sensors, runtime): queue a new
        retained ``info`` with it, and use it at the next connects."""
        self.inventory = inventory
        self.submit("info", protocol.info_topic(self.device_id), self._info_body())

    def _birth(self, session: int) -> None:
        """On every connect (link thread): the retained birth record."""
        self.outbox.put("info", protocol.info_topic(self.device_id), self._info_body())

    def _info_body(self) -> dict[str, Any]:
        body = _envelope(protocol.INFO_SCHEMA, self.device_id)
        body.update(
            agent_version=__version__,
            protocol=protocol.PROTOCOL,
            schemas=sorted(set(protocol.KIND_SCHEMA.values()) | {protocol.CMD_RUN_SCHEMA, *protocol.RESULT_SCHEMAS}),
            inventory=self.inventory,
            capabilities=self.capabilities,
        )
        damaged = self.outbox.damage_reports()
        if damaged:
            body["outbox_damage"] = damaged  # the collector learns what the device lost
        return body

    def telemetry(self, snapshot: dict[str, Any]) -> None:
        """Queue one telemetry message: the snapshot plus the transport's own figures."""
        body = _envelope(protocol.TELEMETRY_SCHEMA, self.device_id)
        body.update(snapshot)
        body["outbox"] = self.outbox.stats()
        if self.link is not None:
            body["link"] = self.link.stats()
        body["link"] = {**body.get("link", {}), "writer_errors": self.write_errors}
        self.submit("telemetry", protocol.telemetry_topic(self.device_id), body)

    def cmd_ack(self, cmd_id: str | None, state: str, *, command: str = "run", **fields: Any) -> None:
        body = _envelope(protocol.CMD_ACK_SCHEMA, self.device_id)
        body.update(cmd_id=cmd_id, command=command, state=state)
        body.update({k: v for k, v in fields.items() if v is not None})
        self.submit("cmd_ack", protocol.cmd_ack_topic(self.device_id), body)

    # -- the writer thread ---------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                if item[0] == "flush":
                    item[1].set()
                elif item[0] == "msg":
                    _, kind, topic, body, kw = item
                    self.outbox.put(kind, topic, body, **kw)
                elif item[0] == "frames":
                    self._store_frames(*item[1:])
            except Exception:  # a storage fault is counted and logged, the writer goes on
                self.write_errors += 1
                log.exception("cannot store a %s message in the outbox", item[0])

    def _store_frames(self, run_id: str, first: int, cols: dict[str, np.ndarray]) -> None:
        n = int(cols["e2e"].size)
        topic = protocol.run_topic(self.device_id, run_id, "frames")
        stages = protocol.STAGES + tuple(s for s in protocol.OPTIONAL_STAGES if s in cols)
        ms = {s: np.round(cols[s] / 1e6, 4) for s in stages}
        for start in range(0, n, protocol.MAX_FRAMES_PER_BATCH):
            stop = min(n, start + protocol.MAX_FRAMES_PER_BATCH)
            columns = {s: ms[s][start:stop].tolist() for s in stages}
            body = protocol.frames_message(self.device_id, None, None, run_id, first + start, columns, time.time())
            self.outbox.put("frames", topic, body, run_id=run_id, first_frame=first + start, frames=stop - start)


class RunStream:
    """One run's way out, for ``runner.run(sink_factory=stream.sink_factory)``:
    the runner calls ``sink_factory(info)`` once the run is set up (the meta is
    queued), then ``sink`` with frame batches from the measurement loop (only a
    queue put); ``finish(result)`` queues the summary.

    With ``hold=True`` (accuracy runs, whose result may be refused by a floor)
    nothing is queued until ``release()``; ``discard()`` forgets it all."""

    def __init__(self, pub: Publisher, config: dict[str, Any] | None = None, hold: bool = False):
        self.pub = pub
        self.device_id = pub.device_id
        self.config = config
        self.run_id: str | None = None
        self.frames_handed = 0
        self._aborted = False
        self._held: list[tuple] | None = [] if hold else None
        self._put = self._held.append if hold else pub._q.put

    def sink_factory(self, info: dict[str, Any]) -> Callable[[int, dict[str, np.ndarray]], None]:
        if info["device_id"] != self.device_id:
            raise UserError(f"run device id {info['device_id']!r} differs from the publisher's {self.device_id!r}")
        self.run_id = run_id = info["run_id"]
        body = _envelope(protocol.RUN_META_SCHEMA, self.device_id)
        body.update(
            run_id=run_id,
            model=info["model"],
            runtime=info["runtime"],
            source=info["source"],
            result_schema=protocol.RESULT_SCHEMA,
        )
        if self.config is not None:
            body["config"] = self.config
        self._put(("msg", "meta", protocol.run_topic(self.device_id, run_id, "meta"), body, {"run_id": run_id}))
        return self.sink

    def sink(self, first_frame: int, cols: dict[str, np.ndarray]) -> None:
        """Called by the measurement loop: hand over, never wait."""
        if self._aborted:
            raise RunAborted("the agent is stopping: run ended early")
        self._put(("frames", self.run_id, first_frame, cols))
        self.frames_handed += cols["e2e"].size

    def abort(self) -> None:
        self._aborted = True

    def release(self) -> None:
        """Queue what a held stream kept back."""
        if self._held is not None:
            for item in self._held:
                self.pub._q.put(item)
            self._held = None
            self._put = self.pub._q.put

    def discard(self) -> None:
        if self._held is not None:
            self._held.clear()

    def finish(self, result: dict[str, Any]) -> None:
        body = _envelope(protocol.SUMMARY_SCHEMA, self.device_id)
        body.update(run_id=result["run_id"], result=summary_result(result))
        self._put(
            (
                "msg",
                "summary",
                protocol.run_topic(self.device_id, result["run_id"], "summary"),
                body,
                {"run_id": result["run_id"]},
            )
        )
