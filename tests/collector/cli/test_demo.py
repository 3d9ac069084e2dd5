"""The README's first command ends in `edgebench-collector demo`: it must work and clean up."""

import os
import socket
import time

import psutil
import pytest

from tests.support.paths import run_collector_cli


def _processes_using(port: int):
    """Processes (orphans included) whose command line names this broker port."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if f"127.0.0.1:{port}" in cmd:
            found.append(cmd)
    return found


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_demo_prints_the_fleet_report_and_leaves_nothing_running(broker):
    t0 = time.monotonic()
    p = run_collector_cli("demo", "--broker", broker, timeout=90)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    out = p.stdout
    # the devices table: both simulated devices, stopped cleanly
    demo_lines = [ln.split() for ln in out.splitlines() if ln.startswith("demo-")]
    devices = [d for d in demo_lines if not d[1].endswith(".tflite")]
    assert sorted((d[0], d[1]) for d in devices) == [("demo-jetson-02", "stopped"), ("demo-pi-01", "stopped")], out
    # one fleet report row per simulated device and model, with frames and latency figures
    rows = {d[0]: d for d in demo_lines if d[1].endswith(".tflite")}
    assert rows["demo-pi-01"][1] == "shapes_int8.tflite", out
    assert rows["demo-jetson-02"][1] == "mobilenet_v2_0.35_160_int8_untrained.tflite", out
    # the threads each ran with: the jetson is asked for one, the pi runs the default (all cores)
    assert rows["demo-jetson-02"][2] == "1", out
    assert rows["demo-pi-01"][2] == str(len(os.sched_getaffinity(0))), out
    for cells in rows.values():
        assert cells[4] == "300"  # frames
        assert float(cells[5]) > 0  # FPS measured
        assert 0 < float(cells[6]) <= float(cells[8])  # inference p50 <= p99
    assert "everything started has been stopped" in out
    assert elapsed < 60
    # the broker's port is closed and no process the demo started is alive
    port = int(out.split("127.0.0.1:")[1].split()[0])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert _processes_using(port) == []


def test_the_demo_says_how_to_open_its_dashboard(tmp_path):
    db = tmp_path / "fleet.db"
    p = run_collector_cli("demo", "--db", str(db), "--frames", "60", timeout=90)
    assert p.returncode == 0, p.stderr
    assert f"demo: the dashboard of this fleet: edgebench-collector web --db {db}" in p.stdout


def test_demo_web_keeps_the_dashboard_open_until_ctrl_c():
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    from tests.support.paths import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "edgebench.collector.cli", "demo", "--web", "--port", "0", "--frames", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            m = re.search(r"demo: dashboard: (http://127\.0\.0\.1:\d+/)", line)
            url = m.group(1) if m else None
        assert url, "the demo never said where its dashboard is"
        with urllib.request.urlopen(url, timeout=30) as r:
            page = r.read().decode()
        assert "demo-pi-01" in page and "demo-jetson-02" in page
        with urllib.request.urlopen(url + "device/demo-pi-01", timeout=30) as r:
            assert "Inventory" in r.read().decode()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "everything started has been stopped" in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_on_postgresql_keeps_its_device_state_out_of_the_working_folder(pg_url, tmp_path):
    """--db with a database URL: the devices' session counters go to the user's state folder
    (a folder named after the URL, "postgresql:/...", appeared in the working folder)."""
    import subprocess
    import sys

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    p = subprocess.run(
        [sys.executable, "-m", "edgebench.collector.cli", "demo", "--db", pg_url, "--frames", "60"],
        capture_output=True, text=True, timeout=90, cwd=work, env=dict(os.environ, HOME=str(home)),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert list(work.iterdir()) == []
    [state] = (home / ".local/state/edgebench").glob("demo-*")
    assert {"session-demo-jetson-02", "session-demo-pi-01"} <= {x.name for x in state.iterdir()}
