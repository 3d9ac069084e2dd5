"""The collector's MQTT connection (paho-mqtt 2.x): a connected client with its
network loop in a thread, MQTT 5 first and 3.1.1 when the broker refuses 5.

* ``mqtt://host:port`` or ``mqtts://host:port`` (TLS), or full ``MqttSettings``
  (edgebench.agent.wire.transport);
* ``connect()`` waits for the CONNACK and raises PublishError with one clear
  line when the broker cannot be reached or refuses us.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edgebench.agent.errors import PublishError, UserError
from edgebench.agent.wire.transport import V5_PROBE_TIMEOUT_S, BrokerURL, MqttSettings, dumps, paho_log, parse_url

log = logging.getLogger("edgebench.mqtt")


class Connection:
    """A connected paho client with its network loop running in a thread."""

    def __init__(
        self,
        url: "str | BrokerURL | MqttSettings",
        client_id: str,
        *,
        will: tuple[str, bytes, int, bool] | None = None,
        clean_start: bool = True,
        session_expiry: int | None = None,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        on_connect: Callable[["Connection"], None] | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        protocol: str = "auto",
    ):
        self.settings: MqttSettings | None = None
        if isinstance(url, MqttSettings):
            self.settings = url
            url = url.url
            protocol = self.settings.protocol if protocol == "auto" else protocol
        self.url = parse_url(url) if isinstance(url, str) else url
        self.client_id = client_id
        self.will = will
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        self._on_message = on_message
        self._on_connect_cb = on_connect
        self.tls = (tls_ca, tls_cert, tls_key)
        self.protocol_pref = protocol
        self.protocol: int | None = None
        self.client: mqtt.Client | None = None
        self._connack = threading.Event()
        self._connack_rc: Any = None
        self.connected = threading.Event()
        self._acks: set[int] = set()
        #: mids the broker acknowledged with a failure reason code (MQTT 5 only)
        self.refused: dict[int, str] = {}
        self._ack_cv = threading.Condition()
        self._closing = False

    # -- client construction ---------------------------------------------------
    def _make_client(self, protocol: int) -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else self.clean_start,
        )
        c.enable_logger(paho_log)
        c.suppress_exceptions = True
        if self.settings is not None:
            self.settings.apply(c)
        elif self.url.username:
            c.username_pw_set(self.url.username, self.url.password)
        if self.settings is None and (self.url.tls or any(self.tls)):
            ca, cert, key = self.tls
            c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        if self.will:
            topic, payload, qos, retain = self.will
            c.will_set(topic, payload, qos=qos, retain=retain)
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_publish = self._handle_publish
        c.on_message = self._handle_message
        return c

    def set_will(self, topic: str, payload: bytes, qos: int = 1, retain: bool = True) -> None:
        """Refresh the will (takes effect at the next (re)connect)."""
        self.will = (topic, payload, qos, retain)
        if self.client is not None:
            self.client.will_set(topic, payload, qos=qos, retain=retain)

    # -- callbacks (never let an exception escape into paho's loop) -------------
    def _handle_connect(self, client, userdata, flags, reason_code, properties):
        self._connack_rc = reason_code
        self._connack.set()
        if reason_code.is_failure:
            return
        self.connected.set()
        if self._on_connect_cb:
            try:
                self._on_connect_cb(self)
            except Exception:
                log.exception("on_connect handler failed")

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties):
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._closing:
            log.warning("lost the connection to %s (%s); paho will reconnect", self.url, reason_code)

    def _handle_publish(self, client, userdata, mid, reason_code, properties):
        with self._ack_cv:
            if reason_code is not None and getattr(reason_code, "is_failure", False):
                self.refused[mid] = str(reason_code)  # MQTT 5: e.g. "Not authorized" by the ACL
            self._acks.add(mid)
            self._ack_cv.notify_all()

    def _handle_message(self, client, userdata, msg):
        if self._on_message:
            try:
                self._on_message(msg)
            except Exception:
                log.exception("message handler failed for %s", msg.topic)

    # -- connect ---------------------------------------------------------------
    def _try(self, protocol: int, timeout: float) -> Any:
        self.client = self._make_client(protocol)
        self._connack.clear()
        self._connack_rc = None
        kwargs: dict[str, Any] = {}
        if protocol == mqtt.MQTTv5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            kwargs["clean_start"] = self.clean_start
            if self.session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry
                kwargs["properties"] = props
        try:
            self.client.connect(self.url.host, self.url.port, keepalive=30, **kwargs)
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise PublishError(f"cannot reach MQTT broker at {self.url}: {reason}") from None
        self.client.loop_start()
        if not self._connack.wait(timeout):
            self.client.loop_stop()
            self.client.disconnect()
            raise PublishError(f"MQTT broker at {self.url} did not answer within {timeout:g} s")
        return self._connack_rc

    def connect(self, timeout: float = 10.0) -> "Connection":
        order = {
            "auto": [mqtt.MQTTv5, mqtt.MQTTv311],
            "5": [mqtt.MQTTv5],
            "3.1.1": [mqtt.MQTTv311],
        }.get(self.protocol_pref)
        if order is None:
            raise UserError(f"MQTT protocol {self.protocol_pref!r} must be auto, 5 or 3.1.1")
        rc = None
        for proto in order:
            if proto == mqtt.MQTTv5 and len(order) > 1:
                # Some 3.1.1-only brokers (amqtt) never answer an MQTT 5 CONNECT that
                # carries a will; give 5 a short chance before falling back.
                try:
                    rc = self._try(proto, min(timeout, V5_PROBE_TIMEOUT_S))
                except PublishError as e:
                    if "did not answer" not in str(e):
                        raise
                    log.info("no CONNACK to MQTT 5 from %s; retrying with 3.1.1", self.url)
                    self.client.disconnect()
                    continue
            else:
                rc = self._try(proto, timeout)
            if not rc.is_failure:
                self.protocol = proto
                return self
            self.client.loop_stop()
            self.client.disconnect()
            # 0x84 (MQTT 5) / 1 (3.1.1): unsupported protocol version -> fall back
            if "protocol version" not in str(rc).lower():
                break
        raise PublishError(f"MQTT broker at {self.url} refused the connection: {rc}")

    # -- publish / subscribe ---------------------------------------------------
    def publish(self, topic: str, payload: Any, qos: int = 1, retain: bool = False) -> int:
        """Queue a publish; returns the message id (see ``wait_acked``)."""
        data = payload if isinstance(payload, (bytes, bytearray)) else dumps(payload)
        assert self.client is not None
        info = self.client.publish(topic, data, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise PublishError(f"cannot publish to {topic}: {mqtt.error_string(info.rc)}")
        return info.mid

    def wait_acked(self, mids: list[int] | set[int], timeout: float) -> set[int]:
        """Wait until the broker acknowledged every mid; return those still missing."""
        want = set(mids)
        deadline = time.monotonic() + timeout
        with self._ack_cv:
            while True:
                missing = want - self._acks
                if not missing:
                    self._acks -= want
                    return set()
                left = deadline - time.monotonic()
                if left <= 0:
                    return missing
                self._ack_cv.wait(left)

    def subscribe(self, topics: list[tuple[str, int]]) -> None:
        assert self.client is not None
        self.client.subscribe(topics)

    def close(self, timeout: float = 2.0) -> None:
        """Send DISCONNECT (so no will is published), then stop the network thread."""
        if self.client is None:
            return
        self._closing = True
        try:
            if self.connected.is_set():
                self.client.disconnect()
                deadline = time.monotonic() + timeout
                while self.connected.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
        finally:
            self.client.loop_stop()
