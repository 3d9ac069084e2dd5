"""Validate every incoming message against the shared protocol (agent/protocol.py).

A message is accepted only if its topic is in the v1 tree, its payload is
JSON without NaN/Infinity, within the size limit, matches the JSON Schema its
topic calls for, and agrees with its topic (device, run) and with itself
(column lengths). Anything else is rejected with a one-line reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from agent import protocol


class Rejected(Exception):
    """A message that must not reach the results; ``str()`` is the reason."""


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


class Validator:
    def __init__(self, max_bytes: int = protocol.MAX_PAYLOAD_BYTES):
        self.max_bytes = max_bytes
        self._checks = {name: fastjsonschema.compile(schema) for name, schema in protocol.SCHEMAS.items()}

    def __call__(self, topic: str, payload: bytes, retained: bool = False) -> Message | None:
        """Return the validated message, None for an empty retained payload
        (a device clearing its retained state), or raise Rejected."""
        info = protocol.parse_topic(topic)
        if info is None:
            raise Rejected(f"topic {topic!r} is not in the {protocol.PREFIX} tree")
        if info["kind"] == "cmd":
            return None  # our own commands to devices; not results
        if not payload:
            if retained or info["kind"] in ("status", "info", "meta"):
                return None
            raise Rejected("empty payload")
        if len(payload) > self.max_bytes:
            raise Rejected(f"payload of {len(payload)} bytes exceeds the {self.max_bytes}-byte limit")
        try:
            body = json.loads(payload, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise Rejected(f"payload is not JSON: {str(e)[:120]}") from None
        if not isinstance(body, dict):
            raise Rejected("payload is not a JSON object")
        want = protocol.KIND_SCHEMA[info["kind"]]
        got = body.get("schema")
        if got != want:
            raise Rejected(f"schema {got!r} on a {info['kind']} topic; expected {want!r}")
        try:
            self._checks[want](body)
        except fastjsonschema.JsonSchemaException as e:
            raise Rejected(f"{want}: {e.message}"[:300]) from None
        errors = protocol.semantic_errors(info["kind"], info, body)
        if errors:
            raise Rejected("; ".join(errors)[:300])
        return Message(
            topic=topic,
            kind=info["kind"],
            device_id=info["device_id"],
            run_id=info.get("run_id"),
            body=body,
            retained=retained,
        )
