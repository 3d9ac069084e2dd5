"""MQTT connection shared by the agent and the collector (paho-mqtt 2.x).

* ``mqtt://host:port`` or ``mqtts://host:port`` (TLS), credentials in the URL
  or passed separately;
* callback API version 2; MQTT 5 first, and 3.1.1 when the broker refuses 5;
* ``connect()`` waits for the CONNACK and raises PublishError with one clear
  line when the broker cannot be reached or refuses us.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edgebench.agent.errors import PublishError, UserError

log = logging.getLogger("edgebench.mqtt")

class _PahoNoise(logging.Filter):
    """paho 2.2 logs 'Client is not connected' at ERROR from its loop thread after
    every disconnect, deliberate or not; our on_disconnect reports real losses."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_paho_log = logging.getLogger("edgebench.paho")
_paho_log.addFilter(_PahoNoise())

#: How long an MQTT 5 CONNECT may go unanswered before 3.1.1 is tried.
V5_PROBE_TIMEOUT_S = 3.0


@dataclass
class BrokerURL:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:  # never shows the password
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_url(url: str) -> BrokerURL:
    u = urlparse(url if "://" in url else f"mqtt://{url}")
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise UserError(f"bad broker URL {url!r}: use mqtt://HOST:PORT or mqtts://HOST:PORT")
    tls = u.scheme in ("mqtts", "ssl")
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError:
        raise UserError(f"bad broker URL {url!r}: the port is not a number") from None
    if not u.hostname:
        raise UserError(f"bad broker URL {url!r}: no host")
    return BrokerURL(
        host=u.hostname,
        port=port,
        tls=tls,
        username=unquote(u.username) if u.username else None,
        password=unquote(u.password) if u.password else None,
    )


@dataclass
class MqttSettings:
    """Where and how to connect: broker URL, credentials, TLS, protocol.

    Secrets come from a file (``password_file``) or an environment variable
    (``password_env``), or the URL; they are never printed (``repr`` and
    ``str`` leave them out) and never written into a message.
    """

    url: BrokerURL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    protocol: str = "auto"
    client_id: str | None = None
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    connect_timeout_s: float = 10.0

    @property
    def tls(self) -> bool:
        return self.url.tls or bool(self.ca or self.cert)

    def describe(self) -> str:
        """The broker as it may be shown: URL without password, TLS/auth in words."""
        bits = []
        if self.username:
            bits.append(f"user {self.username}")
        if self.cert:
            bits.append("client certificate")
        if self.tls and not self.url.tls:
            bits.append("TLS")
        return f"{self.url}" + (f" ({', '.join(bits)})" if bits else "")

    @classmethod
    def from_config(
        cls,
        section: dict[str, Any] | None,
        *,
        url: str | None = None,
        protocol: str | None = None,
        where: str = "mqtt.",
    ) -> "MqttSettings":
        """Build from the config's ``mqtt`` section (flags override); read the secret now,
        so that a missing password file is a one-line error before any work."""
        sec = dict(section or {})
        raw = url or sec.get("url")
        if not raw:
            raise UserError(f"no broker: give --mqtt URL or {where}url in the config")
        u = parse_url(raw)
        if u.tls is False and raw.split("://", 1)[0] in ("mqtt", "tcp") and (sec.get("ca") or sec.get("cert")):
            u = BrokerURL(u.host, u.port, True, u.username, u.password)
        if sec.get("password_file") and sec.get("password_env"):
            raise UserError(f"{where}password_file and {where}password_env are both set: keep one")
        password = u.password
        if sec.get("password_file"):
            password = read_secret(sec["password_file"], f"{where}password_file")
        elif sec.get("password_env"):
            name = sec["password_env"]
            if name not in os.environ:
                raise UserError(f"{where}password_env: the environment variable {name} is not set")
            password = os.environ[name]
        for k in ("ca", "cert", "key"):
            path = sec.get(k)
            if path and not os.path.isfile(path):
                raise UserError(f"{where}{k}: file not found: {path}")
        if sec.get("key") and not sec.get("cert"):
            raise UserError(f"{where}key is set without {where}cert")
        return cls(
            url=BrokerURL(u.host, u.port, u.tls, None, None),
            username=sec.get("username") or u.username,
            password=password,
            ca=sec.get("ca"),
            cert=sec.get("cert"),
            key=sec.get("key"),
            protocol=protocol or sec.get("protocol", "auto"),
            client_id=sec.get("client_id"),
            keepalive_s=sec.get("keepalive_s", 30),
            reconnect_min_s=sec.get("reconnect_min_s", 0.5),
            reconnect_max_s=sec.get("reconnect_max_s", 30.0),
        )

    def apply(self, client: mqtt.Client) -> None:
        """Credentials and TLS on a paho client."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca, certfile=self.cert, keyfile=self.key)


def read_secret(path: str, what: str) -> str:
    """A secret from a file: the first line, without its line ending."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f"{what}: file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{what}: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    secret = text.splitlines()[0] if text.strip() else ""
    if not secret:
        raise UserError(f"{what}: {path} is empty")
    return secret


def dumps(payload: Any) -> bytes:
    """Compact JSON; NaN/Infinity are refused (they are not JSON)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


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
        c.enable_logger(_paho_log)
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
            from paho.mqtt.properties import Properties
            from paho.mqtt.packettypes import PacketTypes

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
