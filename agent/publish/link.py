"""The device's MQTT link: one thread owns the paho client and moves the outbox
to the broker; a watchdog thread watches it.

* Each connection is a fresh paho client (callback API 2), so paho never
  re-sends anything on its own: what was not acknowledged stays in the outbox
  and is sent again by us on the next connection (marked ``replayed``).
* Before each CONNECT the session counter is bumped (persisted in the state
  folder) and the will (retained ``status`` offline carrying that session) is
  set; messages produced from then on carry the new session.
* MQTT 5 first; 3.1.1 when the broker refuses 5 or does not answer it. Persistent
  session (clean start off, session expiry) so commands sent while the device
  was away reach it when it comes back.
* On connect: retained ``status`` online, subscribe to the device's own ``cmd/#``,
  then ``on_connect`` (the publisher queues the ``info`` birth record).
* Delivery: up to ``window`` messages in flight; a message leaves the outbox only
  in ``on_publish`` for its mid with a success reason code; a failure reason code
  (MQTT 5, e.g. "Not authorized") sets it aside as rejected.
* Confirmation: the link also subscribes to the device's own ``ack`` topic, where
  collectors say which seqs they stored (``edgebench.ack/1``); each one checked
  is handed to the outbox, which deletes what it covers. While connected the link
  ticks the outbox (``Outbox.tick``) every second: what waited too long
  unconfirmed is sent again.
* Every callback is wrapped: an exception is logged and counted, never allowed
  into paho. The link thread itself catches everything; if it dies anyway the
  watchdog logs it and starts a new one, and reports a thread that stopped
  beating (``stats()['stalls']``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import select
import ssl
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgebench.agent import __version__
from edgebench.agent.publish.outbox import Outbox
from edgebench.agent.publish.state import next_session
from edgebench.agent.wire import protocol
from edgebench.agent.wire.transport import V5_PROBE_TIMEOUT_S, MqttSettings, dumps, paho_log

log = logging.getLogger("edgebench.link")

#: How long the broker keeps a device's session (its cmd subscription and the
#: commands sent meanwhile) after the device went away.
SESSION_EXPIRY_S = 24 * 3600
#: The link thread beats at least this often; the watchdog reports a silence
#: several times longer than the connect timeout as a stall.
STALL_S = 60.0


class Link:
    def __init__(
        self,
        settings: MqttSettings,
        device_id: str,
        outbox: Outbox,
        *,
        on_connect: Callable[[int], None] | None = None,
        on_command: Callable[[str, bytes], None] | None = None,
        window: int = 64,
        session_expiry_s: int = SESSION_EXPIRY_S,
        stall_s: float = STALL_S,
    ):
        self.settings = settings
        self.device_id = protocol.check_device_id(device_id)
        self.client_id = settings.client_id or f"edgebench-{device_id}"
        self._ack_topic = protocol.ack_topic(self.device_id)
        self.outbox = outbox
        self.on_connect = on_connect
        self.on_command = on_command
        self.window = window
        self.session_expiry_s = session_expiry_s
        self.stall_s = stall_s
        self.session = next_session(device_id)
        self._session_fresh = True
        outbox.session = self.session
        self._proto = mqtt.MQTTv311 if settings.protocol == "3.1.1" else mqtt.MQTTv5
        self.protocol: str | None = None  # "5" or "3.1.1" once connected
        self.connected = threading.Event()
        #: Set once the first connection attempt has succeeded or failed.
        self.attempted = threading.Event()
        self.last_error: str | None = None
        self.refused: str | None = None  # the broker's refusal of the connection, if any
        self.last_rejection: str | None = None  # the last PUBACK failure reason (MQTT 5), if any
        self.counters = {
            "connects": 0,
            "connect_failures": 0,
            "disconnects": 0,
            "callback_errors": 0,
            "loop_errors": 0,
            "loop_restarts": 0,
            "stalls": 0,
            "rejected": 0,
            "acks_received": 0,
            "acks_invalid": 0,
        }
        self._proc = secrets.token_hex(4)
        self._gen = 0
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._beat = time.monotonic()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        # per connection (touched by the link thread only)
        self._mids: dict[int, int] = {}
        self._acks: list[tuple[int, Any]] = []
        self._connack: Any = None
        self._status_mid: int | None = None
        self._status_acked = False
        self._status_refused: str | None = None
        outbox.listeners.append(self.wake)

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "Link":
        self._spawn()
        self._watchdog = threading.Thread(target=self._watch, name="edgebench-mqtt-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def _spawn(self) -> None:
        self._beat = time.monotonic()
        self._thread = threading.Thread(target=self._main, name="edgebench-mqtt-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``stopped`` (if connected), DISCONNECT cleanly, end the threads."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        self._stopped.set()
        if self._watchdog is not None:
            self._watchdog.join(2)
        try:
            self.outbox.listeners.remove(self.wake)
        except ValueError:
            pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except (BlockingIOError, OSError):
            pass

    def wait_first_attempt(self, timeout: float) -> bool:
        """Wait until the first connection attempt is over; True if connected."""
        self.attempted.wait(timeout)
        return self.connected.is_set()

    def stats(self) -> dict[str, Any]:
        return {
            **self.counters,
            "connected": self.connected.is_set(),
            "session": self.session,
            "protocol": self.protocol,
            "last_error": self.last_error,
        }

    # -- watchdog -----------------------------------------------------------------
    def _watch(self) -> None:
        stalled = False
        while not self._stopped.wait(1.0):
            if self._stopping.is_set():
                continue
            t = self._thread
            if t is not None and not t.is_alive():
                self.counters["loop_restarts"] += 1
                log.error("the MQTT link thread died; the watchdog starts a new one")
                self.connected.clear()
                self.outbox.end_connection()
                self._spawn()
                continue
            silent = time.monotonic() - self._beat
            if silent > self.stall_s and not stalled:
                stalled = True
                self.counters["stalls"] += 1
                log.error("the MQTT link thread has not made progress for %.0f s", silent)
            elif silent <= self.stall_s:
                stalled = False

    def _beat_now(self) -> None:
        self._beat = time.monotonic()

    # -- the link thread ----------------------------------------------------------------
    def _main(self) -> None:
        backoff = self.settings.reconnect_min_s
        while not self._stopping.is_set():
            self._beat_now()
            try:
                up = self._connection()
            except Exception as e:  # a bug here must not end delivery
                self.attempted.set()
                self.counters["loop_errors"] += 1
                self.last_error = f"MQTT link error: {type(e).__name__}: {e}"
                log.exception("MQTT link error")
                up = False
            finally:
                self._drop_client()
            if self._stopping.is_set():
                break
            if up:
                backoff = self.settings.reconnect_min_s
            elif self._retry_now:
                self._retry_now = False
                continue
            self._sleep(backoff)
            backoff = min(backoff * 2, self.settings.reconnect_max_s)

    _retry_now = False

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._beat_now()
            try:
                select.select([self._wake_r], [], [], min(left, 1.0))
                os.read(self._wake_r, 4096)
            except (BlockingIOError, OSError, ValueError):
                pass

    def _next_session(self) -> int:
        if self._session_fresh:
            self._session_fresh = False
        else:
            self.session = next_session(self.device_id)
        self.outbox.session = self.session
        return self.session

    def _make_client(self, session: int) -> mqtt.Client:
        v5 = self._proto == mqtt.MQTTv5
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self._proto,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
        )
        c.enable_logger(paho_log)
        c.suppress_exceptions = True
        self.settings.apply(c)
        will = dumps(protocol.status_message(self.device_id, session, "offline", None))
        c.will_set(protocol.status_topic(self.device_id), will, qos=1, retain=True)
        c.on_connect = self._cb(self._on_connect)
        c.on_disconnect = self._cb(self._on_disconnect)
        c.on_publish = self._cb(self._on_publish)
        c.on_message = self._cb(self._on_message)
        return c

    def _cb(self, fn: Callable) -> Callable:
        def wrapped(*args: Any) -> None:
            try:
                fn(*args)
            except Exception:
                self.counters["callback_errors"] += 1
                log.exception("MQTT callback %s failed", fn.__name__)

        wrapped.__name__ = fn.__name__
        return wrapped

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connack = reason_code

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._stopping.is_set():
            log.warning("lost the connection to %s (%s); reconnecting", self.settings.url, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.append((mid, reason_code))

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self._ack_topic:
            self._on_confirmation(msg.payload)
            return
        if self.on_command is not None:
            self.on_command(msg.topic, msg.payload)

    def _on_confirmation(self, payload: bytes) -> None:
        """A collector's ``edgebench.ack/1``: checked, then handed to the outbox."""
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        errors = protocol.ack_errors(self.device_id, body)
        if errors:
            self.counters["acks_invalid"] += 1
            n = self.counters["acks_invalid"]
            if n & (n - 1) == 0:
                log.warning("ignored a confirmation on %s (%d so far): %s", self._ack_topic, n, "; ".join(errors))
            return
        self.counters["acks_received"] += 1
        self.outbox.confirm(body["seqs"])

    def _drop_client(self) -> None:
        c, self._client = self._client, None
        if self.connected.is_set():
            self.counters["disconnects"] += 1
        self.connected.clear()
        self.outbox.end_connection()
        self._mids.clear()
        self._acks.clear()
        if c is not None:
            sock = c.socket()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    def _io(self, client: mqtt.Client, timeout: float) -> MQTTErrorCode:
        """One round of network work; returns a paho error code (non-zero: connection gone)."""
        self._beat_now()
        sock = client.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        wl = [sock] if client.want_write() else []
        try:
            r, w, _ = select.select([sock, self._wake_r], wl, [], 0 if pending else timeout)
        except (OSError, ValueError):
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if self._wake_r in r:
            try:
                os.read(self._wake_r, 4096)
            except (BlockingIOError, OSError):
                pass
        if sock in r or pending:
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        if client.socket() is not None and client.want_write():
            rc = client.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        return client.loop_misc()

    def _connection(self) -> bool:
        """Connect once and serve the connection until it ends; True if it was up."""
        session = self._next_session()
        v5 = self._proto == mqtt.MQTTv5
        client = self._client = self._make_client(session)
        self._connack = None
        kwargs: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            kwargs = {"clean_start": False, "properties": props}
        url = self.settings.url
        try:
            client.connect(url.host, url.port, keepalive=self.settings.keepalive_s, **kwargs)
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e) or type(e).__name__
            self._fail(f"cannot reach MQTT broker at {self.settings.describe()}: {reason}")
            return False
        probing = self.settings.protocol == "auto" and v5
        deadline = time.monotonic() + (V5_PROBE_TIMEOUT_S if probing else self.settings.connect_timeout_s)
        while self._connack is None and not self._stopping.is_set():
            rc = self._io(client, 0.1)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and self._connack is None:
                break
            if time.monotonic() > deadline:
                break
        rc = self._connack
        if rc is None:
            if probing and not self._stopping.is_set():
                log.info("no CONNACK to MQTT 5 from %s; trying 3.1.1", url)
                self._proto = mqtt.MQTTv311
                self._retry_now = True
            self._fail(f"MQTT broker at {self.settings.describe()} did not answer the CONNECT")
            return False
        if rc.is_failure:
            if probing and "protocol version" in str(rc).lower():
                self._proto = mqtt.MQTTv311
                self._retry_now = True
            else:
                self.refused = str(rc)
            self._fail(f"MQTT broker at {self.settings.describe()} refused the connection: {rc}")
            return False
        return self._serve(client, session, v5)

    def _fail(self, reason: str) -> None:
        if not self._retry_now:
            self.attempted.set()
        if reason != self.last_error:
            log.log(logging.INFO if self._retry_now else logging.WARNING, "%s", reason)
        self.last_error = reason
        self.counters["connect_failures"] += 1

    def _serve(self, client: mqtt.Client, session: int, v5: bool) -> bool:
        self.protocol = "5" if v5 else "3.1.1"
        self._gen += 1
        self.outbox.begin_connection(f"{self._proc}:{self._gen}")
        self._status_mid = client.publish(
            protocol.status_topic(self.device_id),
            dumps(protocol.status_message(self.device_id, session, "online", time.time(), agent_version=__version__)),
            qos=1,
            retain=True,
        ).mid
        client.subscribe([(protocol.cmd_filter(self.device_id), 1), (self._ack_topic, 1)])
        self.counters["connects"] += 1
        self.connected.set()
        self.attempted.set()
        log.info("connected to %s (MQTT %s, session %d)", self.settings.describe(), self.protocol, session)
        if self.on_connect is not None:
            try:
                self.on_connect(session)
            except Exception:
                self.counters["callback_errors"] += 1
                log.exception("on_connect handler failed")
        self._status_refused = None
        next_tick = time.monotonic() + 1.0
        while not self._stopping.is_set():
            rc = self._io(client, 0.5)
            self._settle()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + 1.0
                self.outbox.tick()
            if self._status_refused:
                self.refused = self.last_error = self._status_refused
                if self.counters["connects"] == 1 or self.counters["connects"] & (self.counters["connects"] - 1) == 0:
                    log.warning("%s", self._status_refused)
                return False  # back off: retrying soon will not help
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return True
            self._pump(client, v5)
        self._goodbye(client, session)
        return True

    def _settle(self) -> None:
        """Turn the PUBACKs received into outbox deletions."""
        if not self._acks:
            return
        acks, self._acks = self._acks, []
        done = []
        for mid, rc in acks:
            if mid == self._status_mid:
                self._status_acked = True
                if rc is not None and getattr(rc, "is_failure", False):
                    # The broker will not let this account write this device's tree
                    # (MQTT 5; mosquitto then drops the connection): a setup error.
                    self._status_refused = (
                        f"the broker at {self.settings.describe()} refused this device's status ({rc}): "
                        f"is the MQTT username this device's id ({self.device_id})?"
                    )
                else:
                    self.refused = self.last_error = None
                continue
            row_id = self._mids.pop(mid, None)
            if row_id is None:
                continue
            if rc is not None and getattr(rc, "is_failure", False):
                self.counters["rejected"] += 1
                self.last_rejection = str(rc)
                n = self.counters["rejected"]
                if n & (n - 1) == 0:  # 1, 2, 4, 8...: visible, not a flood
                    log.error(
                        "the broker refused a message (%s); set aside in the outbox's rejected table (%d so far): "
                        "is the MQTT username this device's id?",
                        rc,
                        n,
                    )
                self.outbox.reject(row_id, str(rc))
            else:
                done.append(row_id)
        self.outbox.ack(done)

    def _pump(self, client: mqtt.Client, v5: bool) -> None:
        free = self.window - len(self._mids)
        if free <= 0:
            return
        for row in self.outbox.claim(free):
            payload = protocol.with_replayed(row.payload, self.outbox.is_replay(row))
            props = None
            if v5:
                props = Properties(PacketTypes.PUBLISH)
                props.ContentType = "application/json"
                props.UserProperty = ("schema", protocol.KIND_SCHEMA[row.kind])
            info = client.publish(row.topic, payload, qos=row.qos, retain=row.retain, properties=props)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self.outbox.release([row.id])
                log.warning("cannot publish to %s: %s", row.topic, mqtt.error_string(info.rc))
                continue
            self._mids[info.mid] = row.id

    def _goodbye(self, client: mqtt.Client, session: int) -> None:
        """Clean stop: retained ``stopped`` (acknowledged), then DISCONNECT, so no will."""
        self._status_acked = False
        self._status_mid = client.publish(
            protocol.status_topic(self.device_id),
            dumps(protocol.status_message(self.device_id, session, "stopped", time.time(), agent_version=__version__)),
            qos=1,
            retain=True,
        ).mid
        deadline = time.monotonic() + 3.0
        while not self._status_acked and time.monotonic() < deadline:
            if self._io(client, 0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            self._settle()
        client.disconnect()
        deadline = time.monotonic() + 2.0
        while client.socket() is not None and time.monotonic() < deadline:
            if self._io(client, 0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        self.connected.clear()
