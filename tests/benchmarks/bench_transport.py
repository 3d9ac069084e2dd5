"""Fleet transport figures: what the outbox and the link cost and carry.

    python -m tests.benchmarks.bench_transport [--batches 400]

Prints, on this machine:
  * hand-over cost in the measurement loop: RunStream.sink (a queue put) per
    batch and per frame, the only transport work on the hot path;
  * writer: frame batches (500 frames, ~17 KiB JSON) stored per second in the
    outbox, synchronous=full and =normal;
  * end to end through a private Mosquitto (QoS 1, PUBACK before delete):
    messages/s and frames/s drained from a full outbox, and small (telemetry-size)
    messages/s;
  * the effect on the measurement itself: e2e p50/p99 of the bundled model with
    and without streaming to the broker (same process, same run length).
Ratios are measured within one run; the machine is shared, so absolute numbers move.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from edgebench.agent.publish.outbox import Outbox
from edgebench.agent.publish.publisher import Publisher
from edgebench.agent.wire import protocol
from edgebench.agent.wire.transport import MqttSettings
from edgebench.collector.broker.embedded import MosquittoBroker
from tests.support.paths import ROOT

BATCH = 500


def cols_ns(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {s: rng.integers(20_000, 2_000_000, n, dtype=np.int64) for s in protocol.STAGES}


def bench_handover(reps: int = 1000) -> tuple[float, float, float]:
    """The transport's share of the measurement loop: one RunStream.sink call per
    batch (measure() builds the batch's arrays whether or not a sink is set), timed
    call by call while the writer thread stores the batches.
    Returns (median us per call, p99 us per call, ns per frame)."""
    tmp = tempfile.mkdtemp()
    pub = Publisher(None, "bench-dev", outbox_path=os.path.join(tmp, "ob.db"), synchronous="normal").start()
    stream = pub.stream()
    stream.run_id = "bench"
    rng = np.random.default_rng(1)
    batches = [cols_ns(BATCH, rng) for _ in range(8)]
    clock = time.perf_counter_ns
    took = np.zeros(reps, dtype=np.int64)
    for i in range(reps):
        cols = batches[i % 8]
        t0 = clock()
        stream.sink(i * BATCH, cols)
        took[i] = clock() - t0
        time.sleep(0.002)  # a batch every few ms, as a fast model produces them
    pub.close()
    return float(np.median(took)) / 1000, float(np.percentile(took, 99)) / 1000, float(np.median(took)) / BATCH


def bench_writer(batches: int, sync: str) -> float:
    tmp = tempfile.mkdtemp()
    pub = Publisher(None, "bench-dev", outbox_path=os.path.join(tmp, "ob.db"), synchronous=sync).start()
    stream = pub.stream()
    stream.run_id = "bench"
    rng = np.random.default_rng(2)
    data = [cols_ns(BATCH, rng) for _ in range(16)]
    t0 = time.perf_counter()
    for i in range(batches):
        stream.sink(i * BATCH, data[i % 16])
    pub.flush(600)
    dt = time.perf_counter() - t0
    pub.close()
    return batches / dt


def bench_drain(broker: MosquittoBroker, batches: int, small: int) -> tuple[float, float, int]:
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "ob.db")
    # fill the outbox offline, then measure the drain
    pub = Publisher(None, "bench-dev", outbox_path=path).start()
    stream = pub.stream()
    stream.run_id = "bench"
    rng = np.random.default_rng(3)
    data = [cols_ns(BATCH, rng) for _ in range(16)]
    for i in range(batches):
        stream.sink(i * BATCH, data[i % 16])
    pub.close()
    size = os.path.getsize(path)
    settings = MqttSettings.from_config({"url": broker.url})
    pub = Publisher(settings, "bench-dev", outbox_path=path)
    t0 = time.perf_counter()
    pub.start()
    assert pub.outbox.wait_empty(600), "the outbox did not drain"
    dt_frames = time.perf_counter() - t0
    pub.close()
    # small (telemetry-size) messages: fill offline, then drain
    body = {
        "schema": protocol.TELEMETRY_SCHEMA,
        "device_id": "bench-dev",
        "session": None,
        "seq": None,
        "ts": 0.0,
        "cpu_pct": 1.0,
    }
    ob = Outbox(path, synchronous="normal")
    for _ in range(small):
        ob.put("telemetry", protocol.telemetry_topic("bench-dev"), dict(body))
    ob.close()
    pub = Publisher(settings, "bench-dev", outbox_path=path)
    t0 = time.perf_counter()
    pub.start()
    assert pub.outbox.wait_empty(600)
    dt_small = time.perf_counter() - t0
    pub.close()
    return batches / dt_frames, small / dt_small, size


def bench_measure_effect(broker: MosquittoBroker, frames: int) -> dict[str, tuple[float, float, float]]:
    from edgebench.agent.measure.run import RunOptions, run

    model = str(ROOT / "models" / "shapes_int8.tflite")
    out = {}
    labels = [("no transport", "streaming")[i % 2] + " " * (i // 2) for i in range(6)]  # interleaved, 3 each
    for label in labels:
        opts = RunOptions(model=model, source="synthetic:64x64", frames=frames, device_id="bench-dev")
        pub = stream = None
        if label.startswith("streaming"):
            tmp = tempfile.mkdtemp()
            pub = Publisher(
                MqttSettings.from_config({"url": broker.url}), "bench-dev", outbox_path=os.path.join(tmp, "ob.db")
            ).start()
            pub.link.wait_first_attempt(5)
            stream = pub.stream()
        res = run(opts, sink_factory=None if stream is None else stream.sink_factory).result
        if pub is not None:
            stream.finish(res)
            pub.wait_drained(120)
            pub.close()
        e2e = res["latency_ms"]["e2e"]
        out[label] = (res["fps"], e2e["p50"], e2e["p99"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=400, help="frame batches of 500 frames (default 400)")
    ap.add_argument("--small", type=int, default=3000, help="small messages (default 3000)")
    ap.add_argument("--frames", type=int, default=50000, help="frames per measurement run (default 50000)")
    args = ap.parse_args()
    os.environ.setdefault("EDGEBENCH_STATE_DIR", tempfile.mkdtemp())

    med, p99, ns = bench_handover()
    print(
        f"hand-over in the measurement loop, per {BATCH}-frame batch: median {med:.1f} us, p99 {p99:.1f} us "
        f"= {ns:.2f} ns per frame (one queue put; no I/O, no wait)"
    )
    for sync in ("full", "normal"):
        r = bench_writer(args.batches, sync)
        print(f"writer, synchronous={sync}: {r:.0f} batches/s = {r * BATCH:,.0f} frames/s into the outbox")
    with MosquittoBroker() as broker:
        msgs, small, size = bench_drain(broker, args.batches, args.small)
        print(
            f"drain through mosquitto (QoS 1, delete on PUBACK): {msgs:.0f} frame batches/s = "
            f"{msgs * BATCH:,.0f} frames/s ({args.batches} batches, outbox file {size / 1e6:.1f} MB)"
        )
        print(f"small messages through the outbox and mosquitto: {small:.0f} messages/s")
        eff = bench_measure_effect(broker, args.frames)
        for kind in ("no transport", "streaming"):
            runs = [v for k, v in eff.items() if k.strip() == kind]
            fps, p50, p99 = (float(np.median([r[i] for r in runs])) for i in range(3))
            print(
                f"measure {args.frames} frames, {kind:<12} (median of {len(runs)}): {fps:7.0f} FPS, "
                f"e2e p50 {p50:.4f} ms, p99 {p99:.4f} ms"
            )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
