"""Publishing a sweep or a scenario result (``edgebench sweep --mqtt``,
``edgebench run --scenario ... --mqtt``, scenario jobs of the agent service).

Such a run goes out like a per-frame run, minus the frames (see agent/wire/protocol.md,
"Sweeps and scenarios"): its retained ``meta`` when the model is loaded (with
``result_schema`` saying which document its summary will carry), then one ``summary``
whose ``result`` is the whole ``edgebench.sweep/1`` or ``edgebench.scenario/1``
document. Both go through the device's outbox like everything else: a dead broker
leaves them queued for the next start.

A document must fit in one message (``protocol.MAX_PAYLOAD_BYTES``). A sweep too large
for it is published without its per-point latency histograms (the local JSON keeps
them) and says so in ``published_without``; nothing else is ever cut.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from edgebench.agent.errors import PublishError, UserError
from edgebench.agent.publish.publisher import Publisher, _envelope
from edgebench.agent.wire import protocol

#: How long a command waits for its first connection before running (as `edgebench run`).
FIRST_CONNECT_WAIT_S = 5.0
#: What the outbox adds to a summary after we measure it: session, seq, dropped, replayed.
_ENVELOPE_SLACK = 256


def summary_bytes(device_id: str, doc: dict[str, Any]) -> int:
    """Size of the summary message carrying ``doc``, as the outbox will store and send it."""
    body = _envelope(protocol.SUMMARY_SCHEMA, device_id)
    body.update(
        session=2**53,
        seq=2**53,
        run_id=doc["run_id"],
        result=doc,
        dropped={"messages": 0, "frames": 0, "frame_ranges": []},
        replayed=True,
    )
    try:
        return len(json.dumps(body, separators=(",", ":"), allow_nan=False).encode())
    except ValueError as e:  # NaN or Infinity: the collector would refuse it; say so now
        raise UserError(f"the {doc['schema']} document holds a value JSON cannot carry ({e}): not published") from None


def fit_document(device_id: str, doc: dict[str, Any], limit: int = protocol.MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """The document as it is published: whole when its summary fits in one message;
    a sweep that does not fit loses its per-point histograms (and says so)."""
    size = summary_bytes(device_id, doc)
    if size + _ENVELOPE_SLACK <= limit:
        return doc
    if doc.get("schema") == protocol.SWEEP_SCHEMA:
        slim = dict(doc)
        slim["points"] = [{k: v for k, v in p.items() if k != "latency_histogram_ms"} for p in doc["points"]]
        slim["published_without"] = ["points[].latency_histogram_ms"]
        slim["notes"] = [
            *doc.get("notes", []),
            (
                f"published without the per-point latency histograms: the whole document ({size} bytes) exceeds the "
                f"{limit}-byte message limit; the local JSON has them"
            ),
        ]
        slim_size = summary_bytes(device_id, slim)
        if slim_size + _ENVELOPE_SLACK <= limit:
            return slim
        size = slim_size
    raise PublishError(
        f"the {doc['schema']} document is {size} bytes, more than one message may carry ({limit} bytes): "
        "it is not published; use a smaller grid"
    )


class DocumentStream:
    """One sweep's or scenario's way out: ``start(info)`` queues the retained meta
    (the ``on_start`` hook of ``sweep()`` / ``run_scenario_opts()``), ``finish(doc)``
    the summary."""

    def __init__(self, pub: Publisher, result_schema: str):
        if result_schema not in (protocol.SWEEP_SCHEMA, protocol.SCENARIO_SCHEMA, protocol.TUNE_SCHEMA):
            raise ValueError(f"not a sweep, scenario or tune schema: {result_schema!r}")
        self.pub = pub
        self.result_schema = result_schema
        self.run_id: str | None = None
        self.published: dict[str, Any] | None = None

    def start(self, info: dict[str, Any]) -> None:
        if info["device_id"] != self.pub.device_id:
            raise UserError(f"run device id {info['device_id']!r} differs from the publisher's {self.pub.device_id!r}")
        self.run_id = run_id = info["run_id"]
        body = _envelope(protocol.RUN_META_SCHEMA, self.pub.device_id)
        body.update(
            run_id=run_id,
            model=info["model"],
            runtime=info["runtime"],
            source=info["source"] or {},
            result_schema=self.result_schema,
        )
        if info.get("scenario"):
            body["scenario"] = info["scenario"]
        if self.result_schema == protocol.SWEEP_SCHEMA:
            body["config"] = {"grid": info["grid"], "settings": info["settings"]}
        elif info.get("config") is not None:
            body["config"] = info["config"]
        self.pub.submit("meta", protocol.run_topic(self.pub.device_id, run_id, "meta"), body, run_id=run_id)

    def finish(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Queue the summary; returns the document as published (see fit_document)."""
        if doc.get("schema") != self.result_schema:
            raise ValueError(f"expected a {self.result_schema} document, got {doc.get('schema')!r}")
        if self.run_id is None:  # no start hook ran (e.g. a caller without one): meta now
            self.start({**doc, "source": doc.get("source"), "grid": doc.get("grid"), "settings": doc.get("settings")})
        published = fit_document(self.pub.device_id, doc)
        body = _envelope(protocol.SUMMARY_SCHEMA, self.pub.device_id)
        body.update(run_id=doc["run_id"], result=published)
        self.pub.submit(
            "summary", protocol.run_topic(self.pub.device_id, doc["run_id"], "summary"), body, run_id=doc["run_id"]
        )
        self.published = published
        return published


# --------------------------------------------------------------------------- command line
@dataclass(frozen=True)
class PublishSettings:
    """What a command's publishing needs (``edgebench run``, ``sweep``), built by the command
    line from its flags and config: nothing here reads argparse's Namespace."""

    #: the config's ``mqtt`` section with ``--mqtt`` and ``--mqtt-protocol`` over it (``url`` is set)
    mqtt: dict[str, Any]
    #: after the run, how long to wait for the broker (``--mqtt-wait``, else ``outbox.drain_wait_s``)
    wait_s: float
    #: the config's ``outbox`` section
    outbox: dict[str, Any] = field(default_factory=dict)
    #: where the document is kept on disk (``--json``); None: a file in the working folder, when needed
    keep: str | None = None
    #: print nothing but errors (``-q``)
    quiet: bool = False
    #: log the link's every attempt (``-v``); else the final error line says what it saw, once
    verbose: bool = False


def open_publisher(settings: PublishSettings, device_id: str) -> Publisher:
    """The device's publisher for a command, started, after waiting up to 5 s for its first connection."""
    import logging

    if not settings.verbose:  # the final error line says what the link saw, once
        logging.getLogger("edgebench.link").setLevel(logging.ERROR)
    pub = Publisher.from_config({"mqtt": settings.mqtt, "outbox": settings.outbox}, device_id).start()
    pub.link.wait_first_attempt(FIRST_CONNECT_WAIT_S)
    return pub


def keep_document(settings: PublishSettings, doc: dict[str, Any], what: str) -> str:
    """Where the document is on disk: --json, else a file written now in the working folder."""
    from edgebench.agent.measure.result import write_json

    if settings.keep:
        return settings.keep
    path = os.path.abspath(f"edgebench-{what}-{doc['run_id']}.json")
    write_json(path, doc)
    return path


def finish_publishing(settings: PublishSettings, pub: Publisher, doc: dict[str, Any], what: str) -> None:
    """Wait for the outbox to drain (``settings.wait_s``), then print where it went, or raise
    PublishError (exit 5) in one line: why, what stays queued and where, that the next start
    sends it, where the document is kept."""
    wait = settings.wait_s
    drained = pub.wait_drained(wait)
    stats = pub.outbox.stats()
    unsent = pub.outbox.unsent()
    reason = pub.link.last_error
    where = pub.settings.describe()
    pub.close()
    rejected = stats["rejected_messages"] - pub.rejected_at_start
    if rejected:
        saved = keep_document(settings, doc, what)
        raise PublishError(
            f"the broker at {where} refused {rejected} message(s) ({pub.link.last_rejection}): is the MQTT username "
            f"this device's id ({doc['device_id']})? They are set aside in the outbox {pub.outbox.path} (table "
            f"rejected); the {what} result is kept in {saved}"
        )
    if drained:
        if not settings.quiet:
            print(f"published {what} {doc['run_id']} as device {doc['device_id']} to {where}")
        return
    saved = keep_document(settings, doc, what)
    if unsent == 0 and stats["unconfirmed_messages"]:
        raise PublishError(
            f"published {what} {doc['run_id']} to {where}, {stats['unconfirmed_messages']} message(s) not yet "
            f"confirmed by a collector within {wait:g} s; kept in the outbox {pub.outbox.path}: the next start with "
            f"device id {doc['device_id']} sends again what stays unconfirmed; the {what} result is kept in {saved}"
        )
    why = reason or f"the broker at {where} did not acknowledge everything within {wait:g} s"
    raise PublishError(
        f"{why}; {stats['queued_messages']} message(s) remain queued in the outbox {pub.outbox.path}: the next "
        f"`edgebench run`, `edgebench sweep` or `edgebench agent` with device id {doc['device_id']} sends them; "
        f"the {what} result is kept in {saved}"
    )


def abandon(pub: Publisher | None) -> None:
    """The command failed: what was queued so far leaves now, or with the next start."""
    if pub is not None:
        pub.close(drain_s=2.0)
