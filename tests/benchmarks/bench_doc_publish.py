"""Figures for publishing sweeps and scenario results.

    python -m tests.benchmarks.bench_doc_publish

Prints, on this machine:
  * the size of a real sweep point and of a real scenario document (the bundled model),
    and the largest grid whose summary fits whole in one message (MAX_PAYLOAD_BYTES);
  * a 512-point sweep (the largest grid): its size whole and as published (without the
    per-point histograms);
  * the collector's cost per summary: validation (JSON Schema + consistency checks) and
    storing, for a real 12-point sweep, a real scenario and the 512-point sweep;
  * end to end through a private Mosquitto: from `DocumentStream.finish` to the summary
    stored by a collector, for the 512-point sweep.
Ratios are measured within one run; the machine is shared, so absolute numbers move.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

os.environ.setdefault("EDGEBENCH_STATE_DIR", tempfile.mkdtemp(prefix="edgebench-bench-state-"))

from edgebench.agent.measure.run import RunOptions
from edgebench.agent.measure.scenario_run import run_scenario_opts
from edgebench.agent.measure.sweep import SweepOptions, sweep
from edgebench.agent.publish.documents import DocumentStream, fit_document, summary_bytes
from edgebench.agent.publish.publisher import Publisher
from edgebench.agent.wire import protocol
from edgebench.collector.broker.embedded import MosquittoBroker
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.ingest.validate import Validator
from edgebench.collector.store import SQLiteStore
from tests.support.paths import ROOT

MODEL = ROOT / "models" / "shapes_int8.tflite"


def summary_body(doc: dict) -> dict:
    return {
        "schema": protocol.SUMMARY_SCHEMA,
        "device_id": doc["device_id"],
        "session": 1,
        "seq": 1,
        "ts": time.time(),
        "run_id": doc["run_id"],
        "result": doc,
    }


def big_sweep(doc: dict) -> dict:
    """512 points made from the real sweep's first point (the largest grid the agent runs)."""
    proto = doc["points"][0]
    batches, threads, instances = list(range(1, 33)), list(range(1, 5)), list(range(1, 5))
    big = dict(doc, run_id="bench-big")
    big["points"] = [
        {**proto, "batch": b, "threads": t, "instances": i, "items": proto["batches"] * b, "instance_mode": "threads"}
        for b in batches
        for t in threads
        for i in instances
    ]
    big["grid"] = {"batch": batches, "threads": threads, "instances": instances, "instance_mode": "threads"}
    big["counts"] = {"ok": 512, "unsupported": 0, "failed": 0}
    return big


def per_call(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main() -> None:
    sw = sweep(
        SweepOptions(
            model=str(MODEL), batch=[1, 2, 4], threads=[1, 2], instances=[1, 2], frames=50, device_id="bench-dev"
        )
    )
    scen = run_scenario_opts(
        RunOptions(
            model=str(MODEL),
            scenario="server",
            target_qps=200,
            latency_bound_ms=50,
            duration_s=1.0,
            device_id="bench-dev",
        )
    )
    head = summary_bytes("bench-dev", dict(sw, points=[]))
    per_point = (summary_bytes("bench-dev", sw) - head) / len(sw["points"])
    print(
        f"sweep point: {per_point:.0f} bytes on average ({len(sw['points'])} points of a real sweep;"
        f" document head {head} bytes)"
    )
    print(
        f"whole sweeps fit one message up to {(protocol.MAX_PAYLOAD_BYTES - 256 - head) / per_point:.0f} points"
        f" ({protocol.MAX_PAYLOAD_BYTES} bytes per message)"
    )
    print(f"scenario (server) summary: {summary_bytes('bench-dev', scen)} bytes")
    big = big_sweep(sw)
    pub = fit_document("bench-dev", big)
    print(
        f"512-point sweep: {summary_bytes('bench-dev', big)} bytes whole, {summary_bytes('bench-dev', pub)} bytes"
        f" as published (without {', '.join(pub.get('published_without', []))})"
    )

    v = Validator()
    for name, doc in (("12-point sweep", sw), ("server scenario", scen), ("512-point sweep, published", pub)):
        payload = json.dumps(summary_body(doc)).encode()
        topic = protocol.run_topic(doc["device_id"], doc["run_id"], "summary")
        n = 20 if len(payload) > 100_000 else 200
        t = per_call(lambda topic=topic, payload=payload: v(topic, payload), n)
        print(f"collector validation, {name} ({len(payload)} bytes): {t * 1e3:.2f} ms per summary")

    with tempfile.TemporaryDirectory() as d:
        broker = MosquittoBroker().start()
        store = SQLiteStore(os.path.join(d, "c.db"))
        col = Collector(broker.url, store, client_id="bench-doc", group="bench-doc", session_expiry_s=0).start()
        p = Publisher.from_config({"outbox": {"path": os.path.join(d, "ob.db")}}, "bench-dev", url=broker.url).start()
        try:
            p.link.wait_first_attempt(5)
            times = []
            for i in range(5):
                doc = dict(big, run_id=f"bench-big-{i}")
                stream = DocumentStream(p, protocol.SWEEP_SCHEMA)
                stream.start({**doc, "grid": doc["grid"], "settings": doc.get("settings")})
                t0 = time.perf_counter()
                stream.finish(doc)
                while not store.query("SELECT 1 FROM runs WHERE run_id = ? AND summary IS NOT NULL", (doc["run_id"],)):
                    time.sleep(0.002)
                times.append(time.perf_counter() - t0)
            times.sort()
            print(
                f"512-point sweep summary, finish() to stored at the collector through Mosquitto: median"
                f" {times[2] * 1e3:.0f} ms (min {times[0] * 1e3:.0f}, max {times[-1] * 1e3:.0f}; 5 runs)"
            )
        finally:
            p.close(drain_s=5)
            col.stop()
            store.close()
            broker.cleanup()


if __name__ == "__main__":
    main()
