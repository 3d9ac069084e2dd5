"""``edgebench-collector demo``: broker + collector + two simulated devices + fleet report.

The devices are real agent processes (``edgebench run``) measuring the bundled
trained model, one on the bundled labelled test images, one on a synthetic
camera-sized stream with one thread. Everything started here is stopped
before the demo returns.
"""

from __future__ import annotations

import hashlib
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


#: seconds a device's run may take, and the collector to receive both summaries
DEVICE_TIMEOUT_S = 120
SUMMARY_TIMEOUT_S = 30


def run_demo(args) -> int:
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="edgebench-demo-")
    started = _Started()
    try:
        devices = _devices()
        url, proto = _broker(args, started)
        db = args.db or os.path.join(tmp, "demo.db")
        store = open_store(db)
        started.collector = Collector(
            url, store, client_id="edgebench-demo-collector", session_expiry_s=0, protocol_version=proto
        ).start()
        _say(f"collector subscribed, storing in {db}")
        _run_devices(args, devices, url, proto, tmp, started)
        _wait_for_summaries(started.collector, store, len(devices))
        _report(started.collector, store)
        if args.db:
            _say(f"database kept: edgebench-collector report --db {args.db}")
        if getattr(args, "web", False):
            _serve_dashboard(store, args.port)
        else:
            _say(f"the dashboard of this fleet: {_dashboard_command(args.db)}")
        _say(f"done in {time.monotonic() - t_start:.1f} s; everything started has been stopped")
        return 0
    finally:
        started.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _dashboard_command(db: str | None) -> str:
    """The one command that opens the dashboard on the demo's data."""
    if db:
        return f"edgebench-collector web --db {db}   (then open http://127.0.0.1:8080/)"
    return "edgebench-collector demo --web   (or keep the data with --db FILE, then: edgebench-collector web --db FILE)"


def _serve_dashboard(store, port: int) -> None:
    """The dashboard on the demo's database until Ctrl-C (or SIGTERM)."""
    import signal
    import threading

    from edgebench.collector.views.web import Dashboard, WebServer

    web = WebServer(Dashboard(store), "127.0.0.1", port).start()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _say(f"dashboard: {web.url}  (Ctrl-C stops it and the demo)")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        web.stop()


class _Started:
    """What the demo started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.broker: EmbeddedBroker | MosquittoBroker | None = None
        self.collector: Collector | None = None
        self.procs: list[subprocess.Popen] = []

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.collector is not None:
            self.collector.stop()
            self.collector.store.close()
        if self.broker is not None:
            if isinstance(self.broker, MosquittoBroker):
                self.broker.cleanup()
            else:
                self.broker.stop()


def _broker(args, started: _Started) -> tuple[str, str]:
    """The broker's URL and the MQTT protocol to use: --mqtt, a private mosquitto, or the
    embedded broker (MQTT 3.1.1 only)."""
    if args.mqtt:
        _say(f"using the broker at {args.mqtt}")
        return args.mqtt, "auto"
    if args.broker == "mosquitto":
        started.broker = MosquittoBroker().start()
        _say(f"started mosquitto on {started.broker.url}")
        return started.broker.url, "auto"
    started.broker = EmbeddedBroker().start()
    _say(f"started the embedded broker (amqtt, MQTT 3.1.1) on {started.broker.url}")
    return started.broker.url, "3.1.1"


def _devices() -> list[tuple[str, str, list[str]]]:
    """(device id, model path, extra arguments): the trained model on its labelled test
    images, and a camera-sized synthetic stream on one thread with a heavier model."""
    entry = models.entry(DEMO_MODEL)
    model = str(models.MODELS_DIR / entry["file"])
    labels = str(models.MODELS_DIR / entry["labels"])
    testset = str(models.MODELS_DIR / entry["testset"])
    mobilenet = str(models.path_of(DEMO_LATENCY_MODEL))
    return [
        ("demo-pi-01", model, ["--source", testset, "--labels", labels]),
        ("demo-jetson-02", mobilenet, ["--source", "synthetic:320x240", "--threads", "1"]),
    ]


def _run_devices(args, devices, url: str, proto: str, tmp: str, started: _Started) -> None:
    """Start one agent process per device, wait for them all; a failed one is a UserError."""
    # Device state (session counters) lives as long as the database file it feeds; beside a
    # database URL (PostgreSQL) there is no file, so it lives in the user's state folder.
    if args.db and "://" in args.db:
        state = os.path.join(
            os.path.expanduser("~/.local/state/edgebench"), "demo-" + hashlib.sha256(args.db.encode()).hexdigest()[:12]
        )
    else:
        state = f"{args.db}.demo-state" if args.db else os.path.join(tmp, "state")
    env = dict(os.environ, EDGEBENCH_STATE_DIR=state)
    for dev, dev_model, extra in devices:
        cmd = [sys.executable, "-m", "edgebench.agent.cli", "run", "--model", dev_model]
        cmd += ["--frames", str(args.frames), "--mqtt", url, "--mqtt-protocol", proto, "--device-id", dev]
        cmd += ["--json", os.path.join(tmp, f"{dev}.json"), "-q", *extra]
        started.procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
        _say(f"device {dev} running {os.path.basename(dev_model)} on {extra[1]} ({args.frames} frames)")
    failed = []
    for (dev, _, _), p in zip(devices, started.procs):
        try:
            _, err = p.communicate(timeout=DEVICE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        if p.returncode != 0:
            failed.append(f"{dev}: {err.strip().splitlines()[-1] if err.strip() else f'exit {p.returncode}'}")
    if failed:
        raise UserError("a demo device failed: " + "; ".join(failed))


def _wait_for_summaries(collector: Collector, store, want: int) -> None:
    done = collector.wait_for(
        lambda: store.query("SELECT COUNT(*) FROM runs WHERE summary IS NOT NULL")[0][0] >= want, SUMMARY_TIMEOUT_S
    )
    collector.wait_idle(10)
    if not done:
        raise UserError(f"the collector did not receive both devices' summaries within {SUMMARY_TIMEOUT_S} s")


def _report(collector: Collector, store) -> None:
    """The devices and the fleet report, as `edgebench-collector devices` and `report` print them."""
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
