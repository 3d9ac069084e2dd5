"""Validate every incoming message against the shared protocol (agent/wire/protocol.py).

A message is accepted only if its topic is in the v1 tree, its payload is
JSON without NaN/Infinity, within the size limit, names the schema (and major
version) its topic calls for, matches that JSON Schema, and agrees with its
topic (device, run) and with itself (column lengths). Anything else is
rejected with a reason code (for counting) and a one-line reason (for people).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from edgebench.agent.wire import protocol

try:  # strict (no NaN/Infinity, no overflow to inf) and several times faster than json
    import orjson

    def _loads(payload: bytes) -> Any:
        return orjson.loads(payload)

    _JSON_ERRORS: tuple = (orjson.JSONDecodeError, ValueError, UnicodeDecodeError, RecursionError)
except ImportError:  # pragma: no cover - orjson is in the collector extra

    def _loads(payload: bytes) -> Any:
        return json.loads(payload, parse_constant=_no_constants)

    _JSON_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)

#: Why a message can be rejected; every rejection is counted under one of these.
REASONS = (
    "bad_topic",  # not in the edgebench/v1 tree, or of unknown shape
    "empty",  # empty payload where one is required
    "oversized",  # larger than the payload limit
    "not_json",  # undecodable, not JSON, or NaN/Infinity
    "not_object",  # JSON but not an object
    "unknown_schema",  # no or unknown "schema" name
    "wrong_version",  # a known schema name with another major version
    "wrong_schema",  # a known schema, but not the one this topic carries
    "invalid",  # fails the JSON Schema (types, ranges, sizes)
    "inconsistent",  # disagrees with its topic or with itself
    "seq_reused",  # (device, session, seq) already used by a different message
    "store_failed",  # passed validation but the store refused it (kept in quarantine with the error)
)


class Rejected(Exception):
    """A message that must not reach the results; ``str()`` is the reason."""

    def __init__(self, code: str, reason: str):
        assert code in REASONS, code
        super().__init__(reason)
        self.code = code


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@dataclass
class Message:
    topic: str
    kind: str
    device_id: str
    run_id: str | None
    body: dict[str, Any]
    retained: bool = False
    #: collector wall clock when the MQTT callback received it (s since the epoch)
    received_at: float = field(default_factory=time.time)


_SCHEMA_NAMES = {s.split("/")[0]: s for s in protocol.SCHEMAS}
#: What JSON encoders write for non-finite floats; named in the rejection reason.
_NON_JSON_NUMBER = re.compile(rb"-?\b(NaN|Infinity)\b")


def _schema_error(name: str, e: Exception) -> str:
    path = "/".join(str(p) for p in getattr(e, "instance_path", []) or [])
    msg = getattr(e, "message", None) or str(e).splitlines()[0]
    return f"{name}: {path + ': ' if path else ''}{msg}"


def _holds_nul(v: Any) -> bool:
    """Whether a decoded document has a NUL character in a key or a string (PostgreSQL's
    text refuses it; rejected on every store so that both stores keep the same messages)."""
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any("\x00" in k or _holds_nul(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_holds_nul(x) for x in v)
    return False


class Validator:
    """Compiled JSON Schemas (jsonschema-rs, a Rust validator: several times faster than
    pure-Python validators on the per-frame arrays, with the same JSON Schema semantics,
    e.g. a boolean is not a number)."""

    def __init__(self, max_bytes: int = protocol.MAX_PAYLOAD_BYTES):
        import jsonschema_rs

        self._error = jsonschema_rs.ValidationError
        self.max_bytes = max_bytes
        self._checks = {name: jsonschema_rs.validator_for(schema) for name, schema in protocol.SCHEMAS.items()}

    def __call__(
        self, topic: str, payload: bytes, retained: bool = False, received_at: float | None = None
    ) -> Message | None:
        """Return the validated message, None for what is not a result (an empty
        retained payload clearing a device's state, our own commands), or raise Rejected."""
        info = protocol.parse_topic(topic)
        if info is None:
            raise Rejected("bad_topic", f"topic {topic[:200]!r} is not in the {protocol.PREFIX} tree")
        if info["kind"] in ("cmd", "ack"):
            return None  # commands to devices; not results
        if not payload:
            if retained or info["kind"] in ("status", "info", "meta"):
                return None
            raise Rejected("empty", "empty payload")
        if len(payload) > self.max_bytes:
            raise Rejected("oversized", f"payload of {len(payload)} bytes exceeds the {self.max_bytes}-byte limit")
        try:
            body = _loads(payload)
        except _JSON_ERRORS as e:
            m = _NON_JSON_NUMBER.search(payload)
            hint = f"{m.group().decode()} is not valid JSON ({str(e)[:100]})" if m else str(e)[:120]
            raise Rejected("not_json", f"payload is not JSON: {hint}") from None
        if not isinstance(body, dict):
            raise Rejected("not_object", "payload is not a JSON object")
        if b"\\u0000" in payload and _holds_nul(body):
            raise Rejected(
                "invalid", "a text holds a NUL character (\\u0000), which PostgreSQL cannot store; remove it"
            )
        want = protocol.KIND_SCHEMA[info["kind"]]
        got = body.get("schema")
        if got != want:
            if not isinstance(got, str) or got.split("/")[0] not in _SCHEMA_NAMES:
                raise Rejected(
                    "unknown_schema", f"unknown schema {str(got)[:80]!r} on a {info['kind']} topic; expected {want!r}"
                )
            if got.split("/")[0] == want.split("/")[0]:
                raise Rejected(
                    "wrong_version", f"schema {got[:80]!r} is a version this collector does not read; expected {want!r}"
                )
            raise Rejected("wrong_schema", f"schema {got!r} on a {info['kind']} topic; expected {want!r}")
        try:
            self._checks[want].validate(body)
        except self._error as e:
            raise Rejected("invalid", _schema_error(want, e)[:300]) from None
        except ValueError as e:  # e.g. an integer beyond 64 bits
            raise Rejected("invalid", f"{want}: {str(e)[:200]}") from None
        errors = protocol.semantic_errors(info["kind"], info, body)
        if errors:
            raise Rejected("inconsistent", "; ".join(errors)[:300])
        return Message(
            topic=topic,
            kind=info["kind"],
            device_id=info["device_id"],
            run_id=info.get("run_id"),
            body=body,
            retained=retained,
            received_at=time.time() if received_at is None else received_at,
        )
