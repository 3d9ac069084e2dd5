"""How to reach a broker, shared by the agent and the collector: the broker URL, the
connection settings (credentials, TLS, protocol), secrets from files, and the compact
JSON every message is sent as. Pure Python: paho-mqtt is imported by the two clients
that use these settings (agent/publish/link.py, collector/broker/connection.py).

``mqtt://host:port`` or ``mqtts://host:port`` (TLS), credentials in the URL or
passed separately (``MqttSettings.from_config``: password files, environment
variables); secrets never appear in ``repr``, ``describe()`` or a message.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from edgebench.agent.errors import UserError


class _PahoNoise(logging.Filter):
    """paho 2.2 logs 'Client is not connected' at ERROR from its loop thread after
    every disconnect, deliberate or not; our on_disconnect reports real losses."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


paho_log = logging.getLogger("edgebench.paho")
paho_log.addFilter(_PahoNoise())

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


#: A host name (letters, digits, dots, hyphens, underscores), an IPv4 or an IPv6 address.
_HOST_RE = re.compile(r"^[A-Za-z0-9._:%-]+$")


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
    if not _HOST_RE.match(u.hostname):
        raise UserError(f"bad broker URL {url!r}: {u.hostname!r} is not a host name or address; use mqtt://HOST:PORT")
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

    def apply(self, client: Any) -> None:
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
