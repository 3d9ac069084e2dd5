"""Publish a device's results on the v1 topic tree.

On connect the device announces itself (retained ``status`` online, retained
``info``), with a retained ``status`` offline as its last will. A run goes out
as its retained ``meta``, its per-frame latencies in column-wise batches
(``frames``) and its ``summary``; every message carries the device's session
and a strictly increasing seq, at QoS 1. Leaving cleanly publishes ``stopped``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import __version__, protocol
from .errors import PublishError
from .mqtt import Connection, dumps
from .state import next_session


class DevicePublisher:
    def __init__(
        self,
        url: str,
        device_id: str,
        *,
        timeout: float = 10.0,
        inventory: dict | None = None,
        protocol_version: str = "auto",
    ):
        self.device_id = protocol.check_device_id(device_id)
        self.timeout = timeout
        self.session = next_session(device_id)
        self.seq = 0
        if inventory is None:
            from .probes.inventory import board_inventory

            inventory = board_inventory()
        self.inventory = inventory
        will = dumps({"schema": protocol.STATUS_SCHEMA, "device_id": device_id, "session": self.session, "state": "offline"})
        self.conn = Connection(
            url,
            client_id=f"edgebench-{device_id}",
            will=(protocol.status_topic(device_id), will, 1, True),
            protocol=protocol_version,
        )
        self._pending: list[int] = []

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _send(self, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
        self._pending.append(self.conn.publish(topic, payload, qos=1, retain=retain))

    def _status(self, state: str) -> dict[str, Any]:
        return {
            "schema": protocol.STATUS_SCHEMA,
            "device_id": self.device_id,
            "session": self.session,
            "state": state,
            "ts": time.time(),
        }

    def open(self) -> "DevicePublisher":
        self.conn.connect(self.timeout)
        self._send(protocol.status_topic(self.device_id), self._status("online"), retain=True)
        self._send(
            protocol.info_topic(self.device_id),
            {
                "schema": protocol.INFO_SCHEMA,
                "device_id": self.device_id,
                "session": self.session,
                "seq": self._next_seq(),
                "ts": time.time(),
                "agent_version": __version__,
                "inventory": self.inventory,
                "capabilities": ["run"],
            },
            retain=True,
        )
        return self

    def publish_run(self, result: dict[str, Any], batches: list[tuple[int, dict[str, np.ndarray]]]) -> int:
        """Send meta, the frame batches (as handed to the run's frame sink) and the
        summary of one run; return the number of frame messages."""
        dev, run_id = self.device_id, result["run_id"]
        meta = {
            "schema": protocol.RUN_META_SCHEMA,
            "device_id": dev,
            "session": self.session,
            "seq": self._next_seq(),
            "ts": time.time(),
            "run_id": run_id,
            "model": result["model"],
            "runtime": result["runtime"],
            "source": result["source"],
            "config": result.get("config", {}),
        }
        self._send(protocol.run_topic(dev, run_id, "meta"), meta, retain=True)
        sent = 0
        for first, cols in batches:
            n = len(cols["e2e"])
            for start in range(0, n, protocol.MAX_FRAMES_PER_BATCH):
                stop = min(n, start + protocol.MAX_FRAMES_PER_BATCH)
                ms = {s: np.round(v[start:stop] / 1e6, 4).tolist() for s, v in cols.items()}
                msg = protocol.frames_message(dev, self.session, self._next_seq(), run_id, first + start, ms, time.time())
                self._send(protocol.run_topic(dev, run_id, "frames"), msg)
                sent += 1
        summary_result = {k: v for k, v in result.items() if k != "predictions"}
        self._send(
            protocol.run_topic(dev, run_id, "summary"),
            {
                "schema": protocol.SUMMARY_SCHEMA,
                "device_id": dev,
                "session": self.session,
                "seq": self._next_seq(),
                "ts": time.time(),
                "run_id": run_id,
                "result": summary_result,
            },
        )
        self.flush()
        return sent

    def flush(self) -> None:
        missing = self.conn.wait_acked(self._pending, self.timeout)
        self._pending = []
        if missing:
            raise PublishError(
                f"MQTT broker at {self.conn.url} did not acknowledge {len(missing)} message(s) within {self.timeout:g} s"
            )

    def close(self) -> None:
        try:
            if self.conn.connected.is_set():
                self._send(protocol.status_topic(self.device_id), self._status("stopped"), retain=True)
                self.flush()
        finally:
            self.conn.close()
