"""Ingest: the MQTT callback only queues; one writer thread validates and stores in batches."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from agent import protocol
from agent.mqtt import Connection

from .validate import Rejected, Validator

log = logging.getLogger("edgebench.collector")

#: How long the broker keeps the collector's session (and queues for it) while it is away.
SESSION_EXPIRY_S = 7 * 24 * 3600


class Collector:
    def __init__(
        self,
        url: str,
        store,
        *,
        client_id: str = "edgebench-collector",
        batch_max: int = 1000,
        linger_s: float = 0.05,
        protocol: str = "auto",
    ):
        self.store = store
        self.validator = Validator()
        self.batch_max = batch_max
        self.linger_s = linger_s
        self.q: queue.Queue = queue.Queue()
        self.counts = {"received": 0, "stored": 0, "duplicates": 0, "rejected": 0, "ignored": 0}
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="edgebench-writer", daemon=True)
        # A persistent session (clean start off, session expiry): after a broker or
        # collector restart the broker still holds our subscription and queues what
        # devices send meanwhile, instead of acknowledging it to them and dropping it.
        self.conn = Connection(
            url,
            client_id=client_id,
            on_message=self._on_message,
            on_connect=self._on_connect,
            clean_start=False,
            session_expiry=SESSION_EXPIRY_S,
            protocol=protocol,
        )
        self._enqueued = 0
        self._processed = 0

    # -- MQTT side: never block, never raise ---------------------------------------
    def _on_connect(self, conn: Connection) -> None:
        conn.subscribe([(protocol.ALL_DEVICES, 1)])

    def _on_message(self, msg) -> None:
        self._enqueued += 1  # only the paho network thread writes this
        self.q.put((msg.topic, msg.payload, bool(msg.retain)))

    # -- writer side -----------------------------------------------------------------
    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self.q.empty()):
            try:
                first = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            deadline = time.monotonic() + self.linger_s
            while len(items) < self.batch_max:
                try:
                    items.append(self.q.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._process(items)
            except Exception:  # a storage fault must not kill ingest silently
                log.exception("failed to store a batch of %d messages", len(items))
            finally:
                self._processed += len(items)

    def _process(self, items) -> None:
        good = []
        for topic, payload, retained in items:
            self.counts["received"] += 1
            try:
                m = self.validator(topic, payload, retained)
            except Rejected as e:
                self.counts["rejected"] += 1
                log.warning("rejected message on %s: %s", topic, e)
                self.store.quarantine(topic, str(e), payload)
                continue
            if m is None:
                self.counts["ignored"] += 1
            else:
                good.append(m)
        if good:
            c = self.store.apply(good)
            self.counts["stored"] += c["stored"]
            self.counts["duplicates"] += c["duplicates"]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "Collector":
        self._writer.start()
        self.conn.connect(timeout)
        return self

    def stop(self) -> None:
        self.conn.close()
        self._stop.set()
        self._writer.join(timeout=30)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every message received so far has been validated and stored."""
        return self.wait_for(lambda: self._processed == self._enqueued, timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True
