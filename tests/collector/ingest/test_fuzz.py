"""Fuzz (issue 20, proof): 12,000 seeded messages of every kind a hostile or broken device
could send (random bytes, truncated and deeply nested JSON, schema-valid absurd values,
values past the bounds, hostile ids and topics, among valid ones) through the collector's
writer step into SQLite and PostgreSQL. Afterwards every message is accounted for, every
rejection is counted by reason and kept in quarantine under that reason, and every page,
API and /metrics answers 200."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from urllib.parse import quote

import numpy as np

from edgebench.agent.wire import protocol
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.ingest.validate import REASONS
from edgebench.collector.views.web import Dashboard, WebServer
from tests.support.fleet import columns, frames, info, meta, result_doc, status, summary, topic_for

N = 12_000
DEVICES = ["pi-a", "jetson-b", "x", "a" * 64, "dev_9-z"]
HOSTILE = [
    "<script>alert(1)</script>",
    "'; DROP TABLE runs; --",
    "../../etc/passwd",
    "\x1b[2J\x00",
    "\u202eevil",
    "%s%n",
    "Robert'); DELETE FROM devices;--",
    "💥" * 40,
    "a" * 5000,
]


def _telemetry(dev: str, session: int, seq: int, **extra) -> dict:
    return {
        "schema": protocol.TELEMETRY_SCHEMA,
        "device_id": dev,
        "session": session,
        "seq": seq,
        "ts": time.time(),
        **extra,
    }


class Fuzz:
    """Message makers, each returning (topic, payload, retained)."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.np = np.random.default_rng(seed)
        self.seq = Counter()

    def _next(self, dev: str) -> int:
        self.seq[dev] += 1
        return self.seq[dev]

    def valid(self) -> dict:
        dev = self.r.choice(DEVICES)
        run = f"r{self.r.randint(0, 3)}"
        kind = self.r.choice(["frames", "frames", "meta", "summary", "telemetry", "info", "status"])
        s = self._next(dev)
        if kind == "frames":
            return frames(dev, 1, s, run, self.r.randint(0, 10**6), columns(self.r.randint(1, 50), self.np))
        if kind == "meta":
            return meta(dev, 1, s, run, model=self.r.choice(["m.tflite", *HOSTILE[:4]]))
        if kind == "summary":
            return summary(dev, 1, s, result_doc(dev, run, model=self.r.choice(["m.tflite", *HOSTILE[:3]])))
        if kind == "telemetry":
            return _telemetry(dev, 1, s, cpu_pct=self.r.uniform(0, 100), temps_c={"cpu": self.r.uniform(20, 90)})
        if kind == "info":
            return info(dev, 1, s, version=self.r.choice(["0.1.0", HOSTILE[0], HOSTILE[3]]))
        return status(dev, 1, self.r.choice(protocol.STATUS_STATES))

    def absurd(self) -> dict:
        """Valid against the schema, at the edges of what it allows."""
        body = self.valid()
        edge = self.r.choice([0, protocol.MAX_SEQ, 1])
        if "seq" in body:
            body["seq"] = edge if edge else 0
        if body["schema"] == protocol.FRAMES_SCHEMA:
            n = body["n"]
            body["latency_ms"] = {
                s: [self.r.choice([0.0, protocol.MAX_MS, 5e-324, 1e-300]) for _ in range(n)] for s in protocol.STAGES
            }
            body["first_frame"] = self.r.choice([0, protocol.MAX_COUNT])
        if body["schema"] == protocol.TELEMETRY_SCHEMA:
            body["cpu_pct"] = self.r.choice([-1e12, 1e12, 0])
            body["probes"] = {"x": [[[[1e308]]]], "s": self.r.choice(HOSTILE)}
        if "ts" in body:
            body["ts"] = self.r.choice([0, protocol.MAX_TS])
        return body

    def beyond(self) -> dict:
        """Past a bound or of a wrong type: rejected as invalid."""
        body = self.valid()
        key, value = self.r.choice(
            [
                ("seq", 2**63 - 1),
                ("seq", 2**64 - 1),
                ("seq", -1),
                ("session", 2**70),
                ("ts", 1e308),
                ("ts", -5),
                ("session", "1"),
                ("device_id", None),
            ]
        )
        if key not in body:
            key = "session"
        body[key] = value
        if body["schema"] == protocol.FRAMES_SCHEMA and self.r.random() < 0.5:
            body["seq"] = self._next(body["device_id"])
            body["latency_ms"]["inference"][0] = self.r.choice([1e308, -1.0, protocol.MAX_MS * 2])
        return body

    def inconsistent(self) -> dict:
        body = self.valid()
        if body["schema"] == protocol.FRAMES_SCHEMA:
            body["latency_ms"]["e2e"] = body["latency_ms"]["e2e"][:-1] or [1.0, 2.0]
        else:
            body["device_id"] = "someone-else"
        return body

    def item(self) -> tuple[str, bytes, bool]:
        r = self.r.random()
        if r < 0.30:
            body = self.valid()
        elif r < 0.42:
            body = self.absurd()
        elif r < 0.52:
            body = self.beyond()
        elif r < 0.57:
            body = self.inconsistent()
        else:
            return self.junk()
        retained = body["schema"] in (protocol.STATUS_SCHEMA, protocol.INFO_SCHEMA, protocol.RUN_META_SCHEMA)
        return topic_for(body), json.dumps(body).encode(), retained

    def _valid_topic(self) -> str:
        dev = self.r.choice(DEVICES)
        return self.r.choice(
            [
                f"{protocol.PREFIX}/{dev}/telemetry",
                protocol.run_topic(dev, "r1", "frames"),
                f"{protocol.PREFIX}/{dev}/info",
            ]
        )

    def junk(self) -> tuple[str, bytes, bool]:
        r = self.r.random()
        topic = self._valid_topic()
        valid = json.dumps(self.valid()).encode()
        if r < 0.15:
            return topic, self.r.randbytes(self.r.randint(1, 300)), False
        if r < 0.30:
            return topic, valid[: self.r.randint(1, max(1, len(valid) - 1))], False
        if r < 0.38:
            depth = self.r.choice([100, 1000, 100_000])
            return topic, b"[" * depth + b"]" * depth, False
        if r < 0.43:
            return topic, b'{"a":' * 5000 + b"1" + b"}" * 5000, False
        if r < 0.50:
            return topic, self.r.choice([b"NaN", b'{"x": Infinity}', b"[1,2]", b'"s"', b"null", b"1e999"]), False
        if r < 0.55:
            return topic, b"", False
        if r < 0.58:
            return (
                topic,
                b'{"schema":"edgebench.telemetry/1","pad":"' + b"x" * protocol.MAX_PAYLOAD_BYTES + b'"}',
                False,
            )
        if r < 0.70:
            schema = self.r.choice(
                [None, 5, "edgebench.telemetry/2", "edgebench.frames/1", "nope/1", "edgebench.summary/1", ""]
            )
            return topic, json.dumps({"schema": schema, "device_id": "pi-a"}).encode(), False
        hostile = self.r.choice(HOSTILE)
        topic = self.r.choice(
            [
                f"{protocol.PREFIX}/{hostile}/telemetry",
                f"{protocol.PREFIX}/pi-a/run/{hostile}/frames",
                f"{protocol.PREFIX}/pi-a/{hostile}",
                hostile,
                "edgebench/v2/pi-a/telemetry",
                f"{protocol.PREFIX}/pi-a/run/r1/frames/extra",
                f"{protocol.PREFIX}/PI-A/telemetry",
                "/" * 50,
            ]
        )
        return topic, valid, self.r.random() < 0.2


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_fuzz_then_every_page_answers_and_every_rejection_is_counted(store):
    fz = Fuzz(20)
    items = [fz.item() for _ in range(N)]
    col = Collector("mqtt://127.0.0.1:9", store)  # never connected: the writer step is run directly
    for k in range(0, N, 500):  # the writer's batches
        now = time.time()
        col._process([(t, p, ret, 0, 0, 0, now) for t, p, ret in items[k : k + 500]])
    c = col.counts
    # every message accounted for, once
    assert c["received"] == N
    assert c["stored"] + c["duplicates"] + c["retained_again"] + c["rejected"] + c["ignored"] == N, dict(c)
    assert sum(col.rejections.values()) == c["rejected"]
    assert set(col.rejections) <= set(REASONS)
    # a fuzz that exercised every reason a message itself can be refused for
    for reason in ("bad_topic", "empty", "oversized", "not_json", "not_object", "unknown_schema"):
        assert col.rejections[reason] > 0, reason
    for reason in ("wrong_version", "wrong_schema", "invalid", "inconsistent"):
        assert col.rejections[reason] > 0, reason
    assert c["stored"] > 1000, dict(c)
    # in quarantine under its reason: each live one kept, each retained one kept once
    kept = dict(store.query("SELECT code, COUNT(*) FROM quarantine GROUP BY code"))
    for reason, n in col.rejections.items():
        if n:
            assert 0 < kept.get(reason, 0) <= n, (reason, n, kept)
    assert sum(kept.values()) >= c["rejected"] - sum(1 for t, p, ret in items if ret) - c["store_errors"]
    # and then: every page answers
    web = WebServer(Dashboard(store, ingest=col), "127.0.0.1", 0).start()
    try:
        paths = ["/", "/api/devices", "/api/fleet", "/api/fleet?by=model", "/metrics", "/healthz"]
        paths += [f"/device/{quote(d, safe='')}" for (d,) in store.query("SELECT device_id FROM devices")]
        runs = store.query("SELECT device_id, run_id, model_name FROM runs")
        paths += [f"/run/{quote(d, safe='')}/{quote(r, safe='')}" for d, r, _m in runs]
        paths += [f"/api/run/{quote(d, safe='')}/{quote(r, safe='')}" for d, r, _m in runs]
        paths += sorted({f"/model/{quote(m, safe='')}" for _d, _r, m in runs if m})
        answers = {p: _get(web.url + p) for p in paths}
    finally:
        web.stop()
    assert len(runs) >= 10 and len(paths) > 30
    assert {p: a for p, a in answers.items() if a != 200} == {}
    text = Dashboard(store, ingest=col).metrics().decode()
    for reason, n in col.rejections.items():
        if n:
            assert f'reason="{reason}"' in text, reason


def test_fuzz_through_a_real_broker_every_delivered_message_is_accounted_for(private_mosquitto, store):
    """3,000 of the same kind of messages published through a real Mosquitto to a running
    collector: every message the broker delivers is stored, a duplicate, ignored or rejected by
    reason, and the pages still answer."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edgebench.collector.ingest.collector import DATA_FILTERS, STATE_FILTERS

    fz = Fuzz(21)
    items = []
    while len(items) < 3000:
        t, p, ret = fz.item()
        if "\x00" in t or "+" in t or "#" in t or not t or len(p) > 256 * 1024:
            continue  # what an MQTT client cannot publish at all
        items.append((t, p, ret))
    filters = DATA_FILTERS + STATE_FILTERS
    delivered = sum(any(mqtt.topic_matches_sub(f, t) for f in filters) for t, _p, _r in items)
    col = Collector(private_mosquitto.url, store, client_id="fuzz-collector", session_expiry_s=0).start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-publisher", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", private_mosquitto.port)
    pub.loop_start()
    try:
        infos = [pub.publish(t, p, qos=1, retain=ret) for t, p, ret in items]
        for info in infos:
            info.wait_for_publish(30)
        assert col.wait_for(lambda: col.counts["received"] >= delivered, 60), (delivered, dict(col.counts))
        assert col.wait_idle(60)
        c = col.counts
        assert c["received"] == delivered
        assert c["stored"] + c["duplicates"] + c["retained_again"] + c["rejected"] + c["ignored"] == delivered
        assert sum(col.rejections.values()) == c["rejected"] > 0
        assert c["stored"] > 300, dict(c)
        web = WebServer(Dashboard(store, ingest=col), "127.0.0.1", 0).start()
        try:
            paths = ["/", "/api/devices", "/api/fleet", "/metrics"]
            paths += [f"/device/{quote(d, safe='')}" for (d,) in store.query("SELECT device_id FROM devices")]
            assert {p: a for p in paths if (a := _get(web.url + p)) != 200} == {}
        finally:
            web.stop()
    finally:
        pub.loop_stop()
        pub.disconnect()
        col.stop()
