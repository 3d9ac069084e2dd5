"""Ingest from NATS JetStream: any number of collectors share one durable, replicated stream.

Devices keep speaking MQTT 3.1.1 QoS 1: nats-server's MQTT listener turns a topic
``edgebench/v1/dev/run/r1/frames`` into the subject ``edgebench.v1.dev.run.r1.frames``
(a ``.`` inside a level becomes ``//``), and the stream ``EDGEBENCH`` captures exactly
what an MQTT collector subscribes to (``edgebench.v1.*.run.*.frames``, ``...telemetry``,
``...status`` and so on: SUBJECTS) with work-queue retention (a message is removed once
acknowledged), file storage and, on a cluster, three replicas.

Every collector binds to the one durable pull consumer ``edgebench-collectors`` with
explicit acknowledgement: it fetches in batches, the same writer thread as the MQTT
collector validates, deduplicates and stores them (collector.Ingest), and only after the
batch's transaction commits are its messages acknowledged. A collector killed with
messages in hand does not acknowledge them: JetStream delivers them again after the ack
wait to whichever collector fetches next, and the store drops what was already stored
(the (device, session, seq) key). So a collector or a follower node may die at any time:
nothing is lost and nothing is stored twice (a stream leader's death is another matter
on nats-server 2.9: docs/scale-out.md).

Confirmations (``edgebench.ack/1``) go back as core NATS publishes on the device's ``ack``
subject (``edgebench.v1.<device>.ack``), which nats-server's MQTT listener delivers to the
device subscribed there, on whichever node it is connected (at QoS 0: one lost is made up
by the device sending again after ``outbox.resend_s``, confirmed again as a duplicate).
That subject, the regression alerts' and the commands' are left out of the stream's
subjects, so nothing the collectors publish comes back to them as work; a stream an older
collector made on all of ``edgebench.v1.>`` is narrowed at start (what it already took of
those is acknowledged and dropped as not data). Core NATS has no retained messages: an
alert reaches the MQTT clients subscribed at the time.

nats-py is asyncio; its loop runs in a thread of its own ("edgebench-nats"), and the
writer hands acknowledgements and publishes to it with ``run_coroutine_threadsafe``,
without waiting for them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from edgebench.agent.errors import UserError
from edgebench.agent.wire import protocol
from edgebench.collector.ingest.collector import DATA_FILTERS, STATE_FILTERS, Ingest

log = logging.getLogger("edgebench.collector")

STREAM = "EDGEBENCH"
DURABLE = "edgebench-collectors"
#: replicas of the stream on a cluster (a single server keeps one)
REPLICAS = 3


def subject_to_topic(subject: str) -> str:
    """The MQTT topic nats-server's MQTT listener published as ``subject``."""
    return "/".join(tok.replace("//", ".") for tok in subject.split("."))


def topic_to_subject(topic: str) -> str:
    """The subject on which an MQTT subscriber to ``topic`` (or filter: ``+`` and ``#``
    become ``*`` and ``>``) hears a core NATS publish, as nats-server's MQTT listener maps it."""
    wild = {"+": "*", "#": ">"}
    return ".".join(wild.get(level, level.replace(".", "//")) for level in topic.split("/"))


#: What the stream captures: exactly what an MQTT collector subscribes to (data, state and
#: command answers), not all of ``edgebench.v1.>``: the confirmations and alerts the
#: collectors publish there, and the commands sent to devices, stay out of the work queue.
SUBJECTS = [topic_to_subject(f) for f in (*DATA_FILTERS, *STATE_FILTERS)]
#: The shared consumer's filter (every subject of the stream; what older versions created).
FILTER = topic_to_subject(f"{protocol.PREFIX}/#")


def servers(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` (or ``nats://a:4222,b:4222``) as a list of server URLs."""
    out = []
    for part in (p.strip() for p in url.split(",")):
        if not part:
            continue
        out.append(part if "://" in part else f"nats://{part}")
    if not out or not all(p.startswith(("nats://", "tls://")) for p in out):
        raise UserError(f"--nats wants nats://HOST:PORT[,nats://HOST:PORT...], got {url!r}")
    return out


def _log_failure(fut) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.debug("NATS: publish failed (%s)", fut.exception())


class JetStreamCollector(Ingest):
    def __init__(
        self,
        url: str,
        store,
        *,
        name: str = "edgebench-collector",
        fetch_max: int = 500,
        ack_wait_s: float = 30.0,
        replicas: int = REPLICAS,
        **ingest,
    ):
        try:
            import nats  # noqa: F401
        except ImportError:
            raise UserError("--nats needs nats-py: pip install 'edgebench[collector]'") from None
        super().__init__(store, **ingest)
        self.servers = servers(url)
        self.url = ",".join(self.servers)
        self.name = name
        self.fetch_max = fetch_max
        self.ack_wait_s = ack_wait_s
        self.replicas = replicas
        self.subscriptions = [f"{STREAM}/{DURABLE} ({', '.join(SUBJECTS)})"]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="edgebench-nats", daemon=True)
        self._nc = None
        self._closed_nc = False
        self._fetching: asyncio.Future | None = None
        self.connected = threading.Event()

    # -- the asyncio side ----------------------------------------------------------------
    async def _connect(self) -> None:
        import nats

        async def on_disconnect():
            self.connected.clear()
            log.warning("NATS: disconnected; reconnecting")

        async def on_reconnect():
            self.connected.set()
            log.info("NATS: reconnected to %s", self._nc.connected_url.netloc if self._nc else "?")

        async def on_error(e):
            log.debug("NATS: %s", e)

        self._nc = await nats.connect(
            servers=self.servers,
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
        )
        self.connected.set()
        js = self._nc.jetstream()
        await self._ensure_stream(js)
        from nats.js.api import AckPolicy, ConsumerConfig

        self._psub = await js.pull_subscribe(
            FILTER,
            durable=DURABLE,
            stream=STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s, max_ack_pending=-1),
        )

    async def _ensure_stream(self, js, wait_s: float = 30.0) -> None:
        """Create the stream unless it exists: replicated on a cluster, one copy on a single
        server. A cluster that is still electing its leaders is waited for."""
        from nats.js.api import RetentionPolicy, StorageType
        from nats.js.errors import APIError, NotFoundError

        replicas = self.replicas
        deadline = time.monotonic() + wait_s
        while True:
            try:
                try:
                    await self._narrow(js, await js.stream_info(STREAM))
                    return
                except NotFoundError:
                    pass
                await js.add_stream(
                    name=STREAM,
                    subjects=SUBJECTS,
                    retention=RetentionPolicy.WORK_QUEUE,
                    storage=StorageType.FILE,
                    num_replicas=replicas,
                )
                log.info("NATS: created stream %s with %d replica(s)", STREAM, replicas)
                return
            except APIError as e:
                if "non-clustered" in str(e) and replicas > 1:
                    replicas = 1  # a single server: one copy, said in the log
                    log.warning("NATS: a single server; the stream %s keeps one copy", STREAM)
                    continue
                last = e
            except Exception as e:  # no JetStream leader yet, a timeout
                last = e
            if time.monotonic() > deadline:
                raise UserError(
                    f"NATS at {self.url}: cannot create the JetStream stream {STREAM} ({last});"
                    " is JetStream enabled (nats-server -js)?"
                )
            await asyncio.sleep(0.5)

    async def _narrow(self, js, info) -> None:
        """A stream made by an older collector captures all of ``edgebench.v1.>``, the
        confirmations too: narrowed to SUBJECTS (what it already holds of those is
        acknowledged and dropped by the writer as not data)."""
        if sorted(info.config.subjects or []) == sorted(SUBJECTS):
            return
        old = info.config.subjects
        info.config.subjects = list(SUBJECTS)
        await js.update_stream(info.config)
        log.info("NATS: stream %s now captures %s (was %s)", STREAM, ", ".join(SUBJECTS), ", ".join(old or []))

    async def _fetch_loop(self) -> None:
        import nats.errors

        while not self._closing:
            if len(self.q) >= 4 * self.batch_max:  # the writer is behind: let the stream hold the rest
                await asyncio.sleep(0.01)
                continue
            try:
                msgs = await self._psub.fetch(self.fetch_max, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                # nats-py cancels a fetch in flight when its connection drops (a node dies):
                # the loop goes on after the reconnect; only stop() ends it
                if self._closing:
                    raise
                await asyncio.sleep(0.2)
                continue
            except Exception as e:  # a node going away, a leader election: try again
                log.debug("NATS: fetch failed (%s); retrying", e)
                await asyncio.sleep(0.2)
                continue
            for m in msgs:
                self._enqueue(subject_to_topic(m.subject), m.data, False, m, 1)

    async def _ack_all(self, msgs) -> None:
        for m in msgs:
            try:
                await m.ack()
            except Exception as e:  # not acknowledged: redelivered later, dropped as a duplicate
                log.debug("NATS: ack failed (%s)", e)

    def _ack(self, items) -> None:
        msgs = [it[3] for it in items]
        asyncio.run_coroutine_threadsafe(self._ack_all(msgs), self._loop)

    def _publish(self, topic: str, payload: bytes | str, retain: bool = False) -> bool:
        """A core NATS publish on the topic's subject, handed to the NATS loop without
        waiting for it (nats-py buffers while reconnecting); MQTT subscribers on any node
        receive it (at QoS 0). ``retain`` has no meaning in core NATS: an alert goes to
        whoever listens at the time."""
        if self._nc is None or self._closed_nc:
            return False
        data = payload.encode() if isinstance(payload, str) else payload
        fut = asyncio.run_coroutine_threadsafe(self._nc.publish(topic_to_subject(topic), data), self._loop)
        fut.add_done_callback(_log_failure)
        return True

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "JetStreamCollector":
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._connect(), self._loop).result(timeout)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"cannot reach NATS JetStream at {self.url}: {str(e) or type(e).__name__}") from None
        self._writer.start()
        self._fetching = asyncio.run_coroutine_threadsafe(self._fetch_loop(), self._loop)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop fetching, store and acknowledge what was fetched, close the connection."""
        self._closing = True
        self._stop_deadline = time.monotonic() + timeout
        if self._fetching is not None:
            try:
                self._fetching.result(timeout=3.0)  # ends within its fetch timeout
            except Exception:
                self._fetching.cancel()
        self.wait_idle(timeout)
        self._stop.set()
        self._writer.join(timeout=timeout)

        self._closed_nc = True

        async def close():
            if self._nc is not None:
                await self._nc.flush(timeout=5)
                await self._nc.close()

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        except Exception as e:
            log.debug("NATS: close: %s", e)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
