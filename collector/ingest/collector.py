"""Ingest: the MQTT callback only queues; one writer thread validates and stores in batches.

* Data (frames, summaries, telemetry) comes in on MQTT 5 shared subscriptions
  (``$share/<group>/edgebench/v1/+/run/+/frames`` ...), so several collector processes
  split the load; retained state (status, info, run meta) on plain subscriptions, since a
  broker does not send retained messages to shared subscriptions. On an MQTT 3.1.1 broker
  (the demo's embedded amqtt) everything falls back to plain subscriptions.
* A persistent session (clean start off, a session expiry) with a fixed client id: what
  the broker holds for us while we are away is delivered when we come back.
* Messages are acknowledged (PUBACK) only after they are stored (or quarantined): a
  collector that crashes with messages in its queue gets them again from the broker.
* Every message is validated; a rejected one is counted by reason and kept in quarantine.
* End to end: after each stored batch the collector confirms, per device, the seqs it
  stored (or quarantined, or already had) on the device's ``ack`` topic
  (``edgebench.ack/1``, QoS 1); the device keeps each message until one arrives. With
  several collectors each confirms what it stored; the device needs the union.
"""

from __future__ import annotations

import abc
import collections
import json
import logging
import sqlite3
import threading
import time
from collections import Counter
from typing import Callable

import paho.mqtt.client as mqtt

from edgebench.agent.wire import protocol
from edgebench.collector.broker.connection import Connection
from edgebench.collector.ingest.validate import REASONS, Message, Rejected, Validator

log = logging.getLogger("edgebench.collector")

#: Topic filters under the v1 tree.
DATA_FILTERS = (
    f"{protocol.PREFIX}/+/run/+/frames",
    f"{protocol.PREFIX}/+/run/+/summary",
    f"{protocol.PREFIX}/+/telemetry",
    protocol.ALL_CMD_ACKS,  # devices' answers to remote commands
)
STATE_FILTERS = (f"{protocol.PREFIX}/+/status", f"{protocol.PREFIX}/+/info", f"{protocol.PREFIX}/+/run/+/meta")

DEFAULT_GROUP = "edgebench-collectors"
#: How long the broker keeps a stopped collector's session. Long enough for a restart or
#: an upgrade; not days: a member of a shared group that is away keeps being dealt its
#: share of the messages into its session, which wait there until it returns.
DEFAULT_SESSION_EXPIRY_S = 3600


def _payload(body: dict) -> bytes:
    """A validated message's body as JSON again, for the quarantine."""
    return json.dumps(body, default=str).encode()


class _AckingConnection(Connection):
    """The shared Connection, with PUBACKs sent by us after storing instead of by paho on receipt."""

    def _make_client(self, protocol_version: int) -> mqtt.Client:
        c = super()._make_client(protocol_version)
        c.manual_ack_set(True)
        self.trying = protocol_version  # known in on_connect, before connect() returns
        return c


def _transient(e: BaseException) -> bool:
    """A database fault worth retrying (locked, connection lost), not a bad message."""
    if isinstance(e, sqlite3.OperationalError):
        return True
    try:
        import psycopg

        return isinstance(e, psycopg.OperationalError)
    except ImportError:
        return False


def _rejected_key(topic: str, payload: bytes) -> tuple[str, int] | None:
    """(device, seq) of a quarantined message, when its topic and payload say them:
    confirmed too, since sending it again would only be rejected again."""
    info = protocol.parse_topic(topic)
    if info is None or not protocol.DEVICE_ID_RE.match(info["device_id"]) or len(payload) > protocol.MAX_PAYLOAD_BYTES:
        return None
    try:
        seq = json.loads(payload).get("seq")
    except (ValueError, AttributeError, RecursionError):
        return None
    return (info["device_id"], seq) if type(seq) is int and 0 <= seq < 2**63 else None


class Ingest(abc.ABC):
    """What every way in shares: the queue, the one writer thread that validates and stores
    in batches, the counters, the confirmations. A receiver (MQTT below, JetStream in
    jetstream.py) appends ``(topic, payload, retained, handle, qos, generation, received_at)``
    with ``_enqueue``, acknowledges in ``_ack`` once the batch is stored, and sends what goes
    back to the devices (confirmations, alerts) in ``_publish``; ``after_commit`` holds the
    functions called with each batch's validated messages after its transaction commits
    (before the acknowledgement), the one hook for work that must follow storage."""

    def __init__(
        self,
        store,
        *,
        client_id: str = "edgebench-collector",
        batch_max: int = 1000,
        linger_s: float = 0.02,
        retention_s: float | None = None,
        purge_every_s: float = 60.0,
        confirm: bool = True,
    ):
        self.store = store
        self.client_id = client_id
        #: Confirm stored seqs to the devices (``edgebench.ack/1``).
        self.confirm = confirm
        self._failed: set[int] = set()
        self.validator = Validator()
        self.batch_max = batch_max
        self.linger_s = linger_s
        self.retention_s = retention_s
        self.purge_every_s = purge_every_s
        # The receiving thread appends, the writer pops: deque operations are atomic, and far
        # cheaper per message than queue.Queue's locks (this is the hot path).
        self.q: collections.deque = collections.deque()
        self._wake = threading.Event()
        self.counts = Counter(
            received=0,
            stored=0,
            duplicates=0,
            retained_again=0,
            rejected=0,
            ignored=0,
            store_errors=0,
            confirmations=0,
            confirmed_seqs=0,
        )
        #: Per device: the highest seq confirmed and when (what `devices` and the dashboard show).
        self.confirmed: dict[str, tuple[int, float]] = {}
        self.rejections: Counter = Counter({r: 0 for r in REASONS})
        self.subscriptions: list[str] = []
        #: called with the validated messages of each batch once its transaction committed
        self.after_commit: list[Callable[[list[Message]], None]] = []
        self._stop = threading.Event()
        self._closing = False
        self._generation = 0
        self._writer = threading.Thread(target=self._write_loop, name="edgebench-writer", daemon=True)
        self._enqueued = 0
        self._processed = 0
        self._last_purge = 0.0
        #: wall clock of the first message received and of the last batch stored
        self.first_received_at: float | None = None
        self.last_stored_at: float | None = None

    def _enqueue(self, topic: str, payload: bytes, retained: bool, handle, qos: int) -> None:
        """Queue one received message for the writer (called by one receiving thread only)."""
        self._enqueued += 1
        t = time.time()
        if self.first_received_at is None:
            self.first_received_at = t
        self.q.append((topic, payload, retained, handle, qos, self._generation, t))
        if not self._wake.is_set():
            self._wake.set()

    @abc.abstractmethod
    def _ack(self, items) -> None:
        """Acknowledge a stored batch's messages to where they came from (each receiver its own way)."""

    def _publish(self, topic: str, payload: bytes | str, retain: bool = False) -> bool:
        """Send a message back towards the devices (confirmations, alerts); False where this
        receiver has no way to (then devices fall back to the broker's acknowledgement after
        ``outbox.confirm_wait_s``, and say so)."""
        return False

    # -- writer side -----------------------------------------------------------------
    def _write_loop(self) -> None:
        q = self.q
        while not (self._stop.is_set() and not q):
            if not q:
                self._wake.wait(0.2)
                self._wake.clear()
                if not q:
                    self._maybe_purge()
                    continue
                # linger a little while the queue still grows, so that a burst is stored in
                # one transaction (but not when the broker waits for our acks to send more)
                deadline = time.monotonic() + self.linger_s
                last = len(q)
                while last < self.batch_max and time.monotonic() < deadline:
                    time.sleep(0.002)
                    if len(q) == last:
                        break
                    last = len(q)
            items = [q.popleft() for _ in range(min(len(q), self.batch_max))]
            try:
                done = self._process(items)
                self.last_stored_at = time.time()
                self._ack(items)
                self._send_confirmations(done)
            finally:
                self._processed += len(items)
            self._maybe_purge()

    def _maybe_purge(self) -> None:
        if not self.retention_s:
            return
        now = time.time()
        if now - self._last_purge < self.purge_every_s:
            return
        self._last_purge = now
        try:
            n = self.store.purge(now - self.retention_s)
            if any(n.values()):
                log.info("retention: purged %s", n)
        except Exception:
            log.exception("retention purge failed")

    def _send_confirmations(self, done: list[tuple[str, int]]) -> None:
        """Tell each device which of its seqs are now stored (after the batch committed)."""
        if not (self.confirm and done):
            return
        per: dict[str, list[int]] = {}
        for dev, seq in done:
            per.setdefault(dev, []).append(seq)
        now = time.time()
        for dev, seqs in per.items():
            for body in protocol.ack_messages(dev, self.client_id, seqs, now):
                if not self._publish(protocol.ack_topic(dev), json.dumps(body, separators=(",", ":"))):
                    return
                self.counts["confirmations"] += 1
            self.counts["confirmed_seqs"] += len(seqs)
            self.confirmed[dev] = (max(max(seqs), self.confirmed.get(dev, (0, 0))[0]), now)

    def _process(self, items) -> list[tuple[str, int]]:
        """Validate and store a batch; return the (device, seq) now stored or quarantined."""
        good = []
        bad: list = []
        bad_retained: list = []  # kept once: the broker delivers them again on every restart
        for topic, payload, retained, _mid, _qos, _gen, t in items:
            self.counts["received"] += 1
            try:
                m = self.validator(topic, payload, retained, t)
            except Rejected as e:
                self.counts["rejected"] += 1
                self.rejections[e.code] += 1
                n = self.rejections[e.code]
                if n <= 10 or n % 1000 == 0:  # a flood of bad messages must not flood the log
                    log.warning(
                        "rejected message on %s (%s, %d so far%s): %s",
                        topic[:200],
                        e.code,
                        n,
                        "; logging every 1000th from now on" if n == 10 else "",
                        e,
                    )
                (bad_retained if retained else bad).append((t, topic, e.code, str(e), payload))
                continue
            if m is None:
                self.counts["ignored"] += 1
            else:
                good.append(m)
        self._failed = set()
        quarantined = self._store(lambda: self.store.quarantine(bad)) is not False
        done = [_rejected_key(topic, payload) for _, topic, _, _, payload in bad] if quarantined else []
        if bad_retained:
            self._store(lambda: self.store.quarantine(bad_retained, once=True))
        if good:
            c = self._store(lambda: self.store.apply(good), fallback=good)
            self._committed(good)
            done += [
                (m.device_id, m.body["seq"])
                for m in good
                if c and id(m) not in self._failed and isinstance(m.body.get("seq"), int)
            ]
            if c:
                for k in ("stored", "duplicates", "retained_again"):
                    self.counts[k] += c[k]
                if c.get("seq_reused"):
                    self.counts["rejected"] += c["seq_reused"]
                    self.rejections["seq_reused"] += c["seq_reused"]
            self._watch(good)
        return [k for k in done if k is not None]

    def _watch(self, stored) -> None:
        """The regression watch (collector/aggregate/regressions.py) on each run summary just
        stored: its verdict stored, and its alert published retained; never stops ingest."""
        from edgebench.collector.aggregate.regressions import alert_message, is_run_summary, watch

        for m in stored:
            if not is_run_summary(m):
                continue
            try:
                v = watch(self.store, m.device_id, m.run_id)
            except Exception:
                log.exception("regression watch failed for %s/%s", m.device_id, m.run_id)
                continue
            if v is not None:
                topic, payload = alert_message(v)
                self._publish(topic, payload, retain=True)

    def _committed(self, messages: list[Message]) -> None:
        """After the batch's transaction committed, before the acknowledgement: the hook."""
        for fn in self.after_commit:
            try:
                fn(messages)
            except Exception:
                log.exception("after-commit hook %r failed", fn)

    def _store(self, fn: Callable, fallback=None):
        """Run a storage call; retry while the database is unavailable (nothing is acked
        meanwhile); a batch that fails for another reason is stored in halves, and each half
        that fails in halves again, so that one bad message cannot block the others and costs
        about log2(batch) transactions (one per message, as before, cost PostgreSQL ~4 ms
        each: a bad message in every batch of 500 cut ingest to a few hundred messages/s)."""
        delay = 0.1
        while True:
            try:
                return fn()
            except Exception as e:
                if _transient(e) and not (self._stop.is_set() and self._closing_deadline_passed()):
                    log.warning("database unavailable (%s); retrying in %.1f s", str(e).splitlines()[0][:200], delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if not fallback or len(fallback) == 1:
                    self._failed.update(id(m) for m in fallback or ())
                    self._store_failed(fallback or [], e)
                    return None if fallback else False
                total = Counter()
                half = len(fallback) // 2
                for part in (fallback[:half], fallback[half:]):
                    c = self._store(lambda part=part: self.store.apply(part), fallback=part)
                    if c:
                        total.update(c)
                return total

    def _store_failed(self, msgs: list, e: Exception) -> None:
        """A message that passed validation but could not be stored: counted, logged in one
        line (the first ten, then every 1000th) and kept in quarantine with the store's error,
        so that a person sees what it was; it is then acknowledged like any rejected message."""
        self.counts["store_errors"] += max(1, len(msgs))
        reason = f"the store refused it: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        n = self.counts["store_errors"]
        if n <= 10 or n % 1000 == 0:
            log.error("could not store %d message(s) (%d so far): %s", max(1, len(msgs)), n, reason)
        if not msgs:
            return
        self.counts["rejected"] += len(msgs)
        self.rejections["store_failed"] += len(msgs)
        items = [(m.received_at, m.topic, "store_failed", reason, _payload(m.body)) for m in msgs]
        try:
            self.store.quarantine(items)
        except Exception as qe:  # the database itself is broken: the count and the log line remain
            log.error("could not quarantine either: %s", str(qe).splitlines()[0][:200] if str(qe) else qe)

    def _closing_deadline_passed(self) -> bool:
        return time.monotonic() > getattr(self, "_stop_deadline", float("inf"))

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

    def stats(self) -> dict:
        return {
            **self.counts,
            "queued": self._enqueued - self._processed,
            "rejections": {k: v for k, v in self.rejections.items() if v},
            "subscriptions": list(self.subscriptions),
        }


class Collector(Ingest):
    """The MQTT receiver: a persistent session, PUBACKs sent after storing."""

    def __init__(
        self,
        url: str,
        store,
        *,
        client_id: str = "edgebench-collector",
        group: str = DEFAULT_GROUP,
        share: bool = False,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        protocol_version: str = "auto",
        **ingest,
    ):
        super().__init__(store, client_id=client_id, **ingest)
        self.group = group
        self.share = share
        self.conn = _AckingConnection(
            url,
            client_id=client_id,
            on_message=self._on_message,
            on_connect=self._on_connect,
            clean_start=False,
            session_expiry=session_expiry_s,
            protocol=protocol_version,
        )

    # -- MQTT side: never block, never raise ---------------------------------------
    def _on_connect(self, conn: Connection) -> None:
        self._generation += 1
        shared = self.share and getattr(conn, "trying", conn.protocol) == mqtt.MQTTv5
        data = [f"$share/{self.group}/{f}" if shared else f for f in DATA_FILTERS]
        self.subscriptions = data + list(STATE_FILTERS)
        conn.subscribe([(t, 1) for t in self.subscriptions])
        log.info("subscribed (%s): %s", "shared" if shared else "plain", ", ".join(self.subscriptions))

    def _on_message(self, msg) -> None:
        if self._closing:
            return  # not acknowledged: the broker keeps it for our next session
        self._enqueue(msg.topic, msg.payload, bool(msg.retain), msg.mid, msg.qos)  # only paho's thread calls this

    def _ack(self, items) -> None:
        client = self.conn.client
        if client is None:
            return
        for it in items:
            mid, qos, gen = it[3], it[4], it[5]
            # A mid from an earlier connection means nothing on this one: the broker
            # re-sends those messages itself, and the store drops them as duplicates.
            if qos > 0 and gen == self._generation and self.conn.connected.is_set():
                client.ack(mid, qos)

    def _publish(self, topic: str, payload: bytes | str, retain: bool = False) -> bool:
        client = self.conn.client
        if client is None:
            return False
        client.publish(topic, payload, qos=1, retain=retain)
        return True

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "Collector":
        self._writer.start()
        self.conn.connect(timeout)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking messages, store and acknowledge those already received, disconnect.
        The session stays on the broker (persistent), which queues for us meanwhile."""
        self._closing = True
        self._stop_deadline = time.monotonic() + timeout
        self.wait_idle(timeout)
        self._stop.set()
        self._writer.join(timeout=timeout)
        self.conn.close()
