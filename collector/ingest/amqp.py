"""Ingest from a RabbitMQ quorum queue: any number of collectors share one replicated queue.

Devices keep speaking MQTT 3.1.1 QoS 1, to the MQTT plugin of any RabbitMQ node: it publishes
topic ``edgebench/v1/dev/run/r1/frames`` to the exchange ``amq.topic`` with the routing key
``edgebench.v1.dev.run.r1.frames`` (a ``.`` inside a level stays: a run id ``v1.2`` is two
words, which the bindings and ``key_to_topic`` allow for), and sends the device its PUBACK only once every queue the message was routed
to confirmed it: for a quorum queue, once a majority of its replicas (Raft) wrote it. So
a node's death, the queue's leader included, cannot drop an acknowledged message (the
measurement is in docs/scale-out.md; NATS 2.9's MQTT listener does not wait like that).

Every collector declares (idempotently) the durable quorum queue ``edgebench-ingest``
bound to ``amq.topic`` with what the MQTT collector subscribes to (frames, summaries,
telemetry, command answers, status, info, run meta; not the confirmations it sends itself),
consumes it with manual acknowledgement and a prefetch, hands each message to the shared
writer (collector.Ingest), and acknowledges (``multiple``: everything up to the batch's last
delivery) only after the batch's transaction committed. A collector that dies, or whose
node dies, with messages in hand never acknowledged them: the queue gives them to a
consumer again as soon as the channel is gone, and the store drops what was already stored
(the (device, session, seq) key). A message published before any collector declared the
queue is routed nowhere and dropped by RabbitMQ (acknowledged all the same): start a
collector (or declare the queue) before the fleet.

Confirmations (``edgebench.ack/1``) go to ``amq.topic`` with the device's ack topic as routing
key, which the MQTT plugin delivers to the device's MQTT subscription.

pika's BlockingConnection is not thread-safe: it lives in a thread of its own
("edgebench-amqp"), and the writer hands acknowledgements and publishes to it with
``add_callback_threadsafe``. When the connection drops, that thread connects to the next
URL of the list (a node that died: the others of the cluster), declares again and goes on;
deliveries of the old channel are not acknowledged (their tags mean nothing on the new
one): RabbitMQ delivers them again and the store drops them as duplicates.
"""

from __future__ import annotations

import logging
import threading
import time

from edgebench.agent.errors import UserError
from edgebench.collector.ingest.collector import DATA_FILTERS, STATE_FILTERS, Ingest
from edgebench.collector.store.urls import redact

log = logging.getLogger("edgebench.collector")

QUEUE = "edgebench-ingest"
EXCHANGE = "amq.topic"
DEFAULT_PREFETCH = 1000


def topic_to_key(topic: str) -> str:
    """The routing key RabbitMQ 3.10's MQTT plugin uses for an MQTT topic (or topic filter:
    ``+`` becomes ``*``): levels joined by ``.``; a ``.`` inside a level stays, so it splits
    the level into several words (``run/v1.2/frames`` -> ``run.v1.2.frames``)."""
    return ".".join("*" if level == "+" else level for level in topic.split("/"))


def key_to_topic(key: str) -> str:
    """The MQTT topic published as routing key ``key``. Device ids have no ``.``
    (protocol.DEVICE_ID_RE); a run id may: what lies between ``run`` and the last word is
    the run id."""
    words = key.split(".")
    if len(words) >= 6 and words[3] == "run":
        return "/".join(words[:4] + [".".join(words[4:-1]), words[-1]])
    return "/".join(words)


#: What the queue is bound to: the MQTT collector's subscriptions, a run id of any number
#: of words (``#``)
BINDINGS = tuple(topic_to_key(f).replace(".run.*.", ".run.#.") for f in DATA_FILTERS + STATE_FILTERS)


def urls(url: str) -> list[str]:
    """``amqp://u:p@a:5672,amqp://u:p@b:5672`` as a list of URLs."""
    out = [p.strip() for p in url.split(",") if p.strip()]
    if not out or not all(p.startswith(("amqp://", "amqps://")) for p in out):
        raise UserError(f"--amqp wants amqp://USER:PASSWORD@HOST:5672[,amqp://...], got {url!r}")
    return out


def declare(channel, queue: str = QUEUE) -> None:
    """The durable quorum queue and its bindings (idempotent: every collector does it)."""
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    for key in BINDINGS:
        channel.queue_bind(queue, EXCHANGE, routing_key=key)


class AmqpCollector(Ingest):
    def __init__(
        self,
        url: str,
        store,
        *,
        name: str = "edgebench-collector",
        prefetch: int = DEFAULT_PREFETCH,
        queue: str = QUEUE,
        **ingest,
    ):
        try:
            import pika  # noqa: F401
        except ImportError:
            raise UserError("--amqp needs pika: pip install 'edgebench[collector]'") from None
        super().__init__(store, client_id=name, **ingest)
        logging.getLogger("pika").setLevel(logging.CRITICAL)  # its tracebacks; ours say it in a line
        self.urls = urls(url)
        self.url = ",".join(redact(u) for u in self.urls)
        self.name = name
        self.prefetch = prefetch
        self.queue = queue
        self.subscriptions = [f"{queue} (quorum queue; {EXCHANGE} {', '.join(BINDINGS)})"]
        self._next = 0  # which URL to try first
        #: (generation, connection, channel) of the session consuming now, or None
        self._state: tuple | None = None
        self._done = threading.Event()  # stop(): the writer acknowledged everything
        self._thread = threading.Thread(target=self._run, name="edgebench-amqp", daemon=True)
        self.connected = threading.Event()
        self._first: Exception | None = None
        #: the node the collector is connected to ("127.0.0.1:5672"), for logs and tests
        self.node: str | None = None

    # -- the pika thread -----------------------------------------------------------------
    def _connect(self):
        import pika

        order = self.urls[self._next :] + self.urls[: self._next]
        last = None
        for u in order:
            p = pika.URLParameters(u)
            p.connection_attempts = 1
            p.socket_timeout = 5
            p.heartbeat = 10
            p.blocked_connection_timeout = 60
            p.client_properties = {"connection_name": self.name}
            try:
                conn = pika.BlockingConnection(p)
            except Exception as e:
                last = e
                continue
            self._next = (self.urls.index(u) + 1) % len(self.urls)  # after its death, the next one
            self.node = f"{p.host}:{p.port}"
            return conn
        raise ConnectionError(f"no node answered ({type(last).__name__}{': ' + str(last) if str(last) else ''})")

    def _declare(self, ch) -> None:
        declare(ch, self.queue)
        ch.basic_qos(prefetch_count=self.prefetch)

    def _session(self) -> None:
        """One connection: declare, consume until it drops or stop() says so."""
        conn = self._connect()
        ch = conn.channel()
        self._declare(ch)
        self._generation += 1
        gen = self._generation

        def on_message(_ch, method, _props, body):
            if not self._closing:  # else not acknowledged: given to another consumer
                self._enqueue(key_to_topic(method.routing_key), body, False, method.delivery_tag, 1)

        tag = ch.basic_consume(self.queue, on_message, auto_ack=False)
        self._state = (gen, conn, ch)
        self.connected.set()
        log.info("AMQP: consuming %s on %s (generation %d)", self.queue, self.node, gen)
        try:
            while not self._closing:
                conn.process_data_events(time_limit=0.2)
            ch.basic_cancel(tag)  # what it had not handed to us yet goes back to the queue
            while not self._done.is_set():  # the writer's last acknowledgements
                conn.process_data_events(time_limit=0.1)
            conn.process_data_events(time_limit=0)
        finally:
            self.connected.clear()
            self._state = None
            try:
                conn.close()
            except Exception:
                pass

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                self._session()
                return
            except Exception as e:
                if self._generation == 0 or self._closing:
                    self._first = e  # start() reports it
                    return
                log.warning("AMQP: connection lost (%s); reconnecting", str(e) or type(e).__name__)
                self.connected.clear()
                time.sleep(0.5)

    # -- the writer side -------------------------------------------------------------------
    def _call(self, fn, state=None) -> bool:
        """Run ``fn(channel)`` in the pika thread, on the channel of ``state`` (default: the
        current session) and only if that channel is still the current one."""
        state = state or self._state
        if state is None:
            return False

        def run():
            if self._state is state and state[2].is_open:
                fn(state[2])

        try:
            state[1].add_callback_threadsafe(run)
        except Exception:  # the connection just closed
            return False
        return True

    def _ack(self, items) -> None:
        state = self._state  # tags of an earlier channel mean nothing on this one
        if state is None:
            return
        tags = [it[3] for it in items if it[5] == state[0]]
        if tags:
            last = max(tags)
            self._call(lambda ch: ch.basic_ack(last, multiple=True), state)

    def _publish(self, topic: str, payload: bytes | str, retain: bool = False) -> bool:
        """To the MQTT subscribers of ``topic`` (a device's confirmations); AMQP cannot set
        MQTT's retained flag, so an alert reaches those subscribed at the time only."""
        import pika

        # persistent: the MQTT plugin delivers it with QoS 1 (no x-mqtt-publish-qos header: the
        # plugin of 3.10 expects a byte there, which pika cannot encode, and drops the device)
        props = pika.BasicProperties(delivery_mode=2)
        body = payload.encode() if isinstance(payload, str) else payload
        key = topic_to_key(topic)
        return self._call(lambda ch: ch.basic_publish(EXCHANGE, key, body, props))

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "AmqpCollector":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.connected.wait(0.05):
            if self._first is not None or not self._thread.is_alive() or time.monotonic() > deadline:
                self._done.set()
                why = self._first or "no answer in time"
                raise UserError(f"cannot reach RabbitMQ at {self.url}: {str(why) or type(why).__name__}") from None
        self._writer.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking messages, store and acknowledge those already received, disconnect."""
        self._closing = True
        self._stop_deadline = time.monotonic() + timeout
        self.wait_idle(timeout)
        self._stop.set()
        self._writer.join(timeout=timeout)
        self._done.set()
        self._thread.join(10)
