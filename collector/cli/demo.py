"""``edgebench-collector demo``: broker + collector + two simulated devices + fleet report.

The devices are real agent processes (``edgebench run``) measuring the bundled
trained model, one on the bundled labelled test images, one on a synthetic
camera-sized stream with one thread. Everything started here is stopped
before the demo returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from edgebench import models
from edgebench.agent.errors import UserError
from edgebench.collector.aggregate import device_rows, fleet_rows
from edgebench.collector.broker.embedded import EmbeddedBroker, MosquittoBroker
from edgebench.collector.ingest.collector import Collector
from edgebench.collector.store import open_store
from edgebench.collector.views.report import devices_table, table

DEMO_MODEL = "shapes-int8"  # trained: device 1 shows real predictions on its test images
#: untrained MobileNet V2 0.35 at 160x160: realistic compute for the latency comparison
DEMO_LATENCY_MODEL = "mobilenet-v2-0.35-160-int8-untrained"


def _say(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


def run_demo(args) -> int:
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="edgebench-demo-")
    broker = None
    collector = None
    procs: list[subprocess.Popen] = []
    try:
        entry = models.entry(DEMO_MODEL)
        model = str(models.MODELS_DIR / entry["file"])
        labels = str(models.MODELS_DIR / entry["labels"])
        testset = str(models.MODELS_DIR / entry["testset"])

        proto = "auto"
        if args.mqtt:
            url = args.mqtt
            _say(f"using the broker at {url}")
        elif args.broker == "mosquitto":
            broker = MosquittoBroker().start()
            url = broker.url
            _say(f"started mosquitto on {url}")
        else:
            broker = EmbeddedBroker().start()
            url = broker.url
            proto = "3.1.1"
            _say(f"started the embedded broker (amqtt, MQTT 3.1.1) on {url}")

        db = args.db or os.path.join(tmp, "demo.db")
        store = open_store(db)
        collector = Collector(
            url, store, client_id="edgebench-demo-collector", session_expiry_s=0, protocol_version=proto
        ).start()
        _say(f"collector subscribed, storing in {db}")

        mobilenet = str(models.path_of(DEMO_LATENCY_MODEL))
        devices = [
            ("demo-pi-01", model, ["--source", testset, "--labels", labels]),
            ("demo-jetson-02", mobilenet, ["--source", "synthetic:320x240", "--threads", "1"]),
        ]
        # Device state (session counters) lives as long as the database it feeds.
        state = f"{args.db}.demo-state" if args.db else os.path.join(tmp, "state")
        env = dict(os.environ, EDGEBENCH_STATE_DIR=state)
        for dev, dev_model, extra in devices:
            cmd = [
                sys.executable,
                "-m",
                "edgebench.agent.cli",
                "run",
                "--model",
                dev_model,
                "--frames",
                str(args.frames),
                "--mqtt",
                url,
                "--mqtt-protocol",
                proto,
                "--device-id",
                dev,
                "--json",
                os.path.join(tmp, f"{dev}.json"),
                "-q",
                *extra,
            ]
            procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
            _say(f"device {dev} running {os.path.basename(dev_model)} on {extra[1]} ({args.frames} frames)")
        failed = []
        for (dev, _, _), p in zip(devices, procs):
            try:
                _, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if p.returncode != 0:
                failed.append(f"{dev}: {err.strip().splitlines()[-1] if err.strip() else f'exit {p.returncode}'}")
        if failed:
            raise UserError("a demo device failed: " + "; ".join(failed))

        want = len(devices)
        done = collector.wait_for(
            lambda: store.query("SELECT COUNT(*) FROM runs WHERE summary IS NOT NULL")[0][0] >= want, 30
        )
        collector.wait_idle(10)
        if not done:
            raise UserError("the collector did not receive both devices' summaries within 30 s")
        print()
        print(devices_table(device_rows(store)))
        print()
        print(table(fleet_rows(store)))
        print()
        c = collector.counts
        _say(
            f"collector received {c['received']} messages, stored {c['stored']}, "
            f"duplicates {c['duplicates']}, rejected {c['rejected']}"
        )
        if args.db:
            _say(f"database kept: edgebench-collector report --db {args.db}")
        _say(f"done in {time.monotonic() - t_start:.1f} s; everything started has been stopped")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if collector is not None:
            collector.stop()
            collector.store.close()
        if broker is not None:
            if isinstance(broker, MosquittoBroker):
                broker.cleanup()
            else:
                broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
