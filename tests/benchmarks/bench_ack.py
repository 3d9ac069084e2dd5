"""What end-to-end confirmation costs: extra messages and bytes, and the outbox's disk.

    python -m tests.benchmarks.bench_ack [--frames 1000] [--fps 50] [--outage-s 60]

Prints, on this machine, with the load average beside every figure:
  * confirmations per 1,000 frames: a real paced `edgebench run` (bundled model,
    synthetic source) through a private Mosquitto to an in-process collector; a raw
    client subscribed to the device's whole tree counts what the device published
    (the bare thing) and the collector's ``ack`` messages, in messages and payload
    bytes, and their ratio;
  * the outbox's disk during an outage: the same run at the same rate with no broker
    for ``--outage-s`` seconds; the outbox file (+ WAL) sampled every second, against
    the payload bytes it holds (the bare thing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgebench.collector.broker.embedded import MosquittoBroker, free_port
from tests.support.paths import ROOT, SHAPES_MODEL
from tests.support.transport import RawClient, start_collector, stop_collector

DEV = "bench-ack"


def load() -> str:
    return f"(load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"


def run_args(url: str, frames: int, fps: int, wait: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "edgebench.agent.cli", "run", "--model", str(SHAPES_MODEL), "--source", "synthetic:64x64"),
        *("--frames", str(frames), "--fps", str(fps), "--mqtt", url, "--device-id", DEV, "--mqtt-wait", wait),
        "--quiet",
    ]


def bench_confirmations(frames: int, fps: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    broker = MosquittoBroker().start()
    col = start_collector(broker.url, tmp / "c.db", client_id="bench-ack-col")
    raw = RawClient(broker.port)
    raw.subscribe(f"edgebench/v1/{DEV}/#")
    try:
        env = {**os.environ, "EDGEBENCH_STATE_DIR": str(tmp / "state")}
        r = subprocess.run(run_args(broker.url, frames, fps, "60"), cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"the run failed ({r.returncode}): {r.stderr.strip()[-500:]}")
        time.sleep(1.0)
        msgs = list(raw.messages)
    finally:
        raw.close()
        stop_collector(col)
        broker.cleanup()
    data = [m for m in msgs if not m[0].endswith("/ack") and not m[0].endswith("/status")]
    acks = [m for m in msgs if m[0].endswith("/ack")]
    dn, db = len(data), sum(len(m[1]) for m in data)
    an, ab = len(acks), sum(len(m[1]) for m in acks)
    per = 1000 / frames
    print(f"confirmations, {frames} frames at {fps} FPS {load()}")
    print(f"  device messages  {dn * per:8.1f} per 1,000 frames, {db * per / 1024:8.1f} KiB")
    print(f"  confirmations    {an * per:8.1f} per 1,000 frames, {ab * per / 1024:8.1f} KiB")
    print(f"  ratio            {an / max(dn, 1):8.3f} messages, {ab / max(db, 1):8.4f} bytes {load()}")


def bench_outage(seconds: float, fps: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    url = f"mqtt://127.0.0.1:{free_port()}"  # nobody listens: a broker outage from start to end
    env = {**os.environ, "EDGEBENCH_STATE_DIR": str(tmp / "state")}
    ob = tmp / "state" / f"outbox-{DEV}.db"
    p = subprocess.Popen(
        run_args(url, int(seconds * fps), fps, "0"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while p.poll() is None:
        size = sum(f.stat().st_size for f in tmp.joinpath("state").glob(f"outbox-{DEV}.db*") if f.is_file())
        peak = max(peak, size)
        time.sleep(1.0)
    import sqlite3

    db = sqlite3.connect(ob)
    payload, n = db.execute("SELECT COALESCE(SUM(bytes), 0), COUNT(*) FROM outbox").fetchone()
    db.close()
    final = ob.stat().st_size
    print(f"outbox during a {seconds:g} s outage at {fps} FPS {load()}")
    print(f"  queued           {n} messages, {payload / 1024:.0f} KiB of payload (the bare thing)")
    print(f"  disk, peak       {peak / 1024:.0f} KiB (file + WAL), {peak / max(payload, 1):.2f} x the payload {load()}")
    print(f"  disk, at exit    {final / 1024:.0f} KiB, {final / max(payload, 1):.2f} x the payload")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--fps", type=int, default=50)
    ap.add_argument("--outage-s", type=float, default=60.0)
    a = ap.parse_args()
    bench_confirmations(a.frames, a.fps)
    bench_outage(a.outage_s, a.fps)


if __name__ == "__main__":
    main()
