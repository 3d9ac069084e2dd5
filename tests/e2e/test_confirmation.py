"""End to end: a device keeps a message until a collector says it stored it, whatever the
broker does. Real Mosquitto processes (with the Debian defaults: no persistence), real
collectors, real `edgebench run` and `edgebench agent` processes; short outages, paced runs."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebench.collector.aggregate import group_rows
from edgebench.collector.broker.embedded import MosquittoBroker
from tests.support.paths import ROOT, SHAPES_MODEL
from tests.support.transport import (
    NoPersistenceBroker,
    agent_env,
    frame_numbers,
    message_rows,
    outbox_rows,
    spawn,
    start_collector,
    stop_collector,
    stop_process,
    unconfirmed_rows,
    wait_until,
    write_config,
)

RUN = ["-m", "edgebench.agent.cli", "run", "--model", str(SHAPES_MODEL), "--source", "synthetic:64x64"]
#: Fast reconnects, and what stays unconfirmed 2 s is sent again.
AGENT = {"mqtt": {"reconnect_min_s": 0.2, "reconnect_max_s": 0.5}, "outbox": {"resend_s": 2}}


def paced_run(tmp_path, url: str, device: str, run_id: str, frames: int, fps: int = 100) -> subprocess.Popen:
    cfg = write_config(tmp_path / "agent.yaml", **AGENT)
    args = [*RUN, "--frames", str(frames), "--fps", str(fps), "--config", str(cfg), "--mqtt", url]
    args += ["--device-id", device, "--run-id", run_id, "--mqtt-wait", "60"]
    return spawn(args, agent_env(tmp_path / "state"), tmp_path / "agent.log")


def check_stored_once(col, device: str, run_id: str, frames: int) -> None:
    """Every frame of the run stored exactly once, the summary there, no message twice."""
    got = frame_numbers(col, "WHERE device_id=? AND run_id=?", (device, run_id))
    assert got == list(range(frames)), f"{frames - len(set(got))} frames missing, {len(got) - len(set(got))} doubled"
    summary = col.store.query("SELECT frames FROM runs WHERE device_id=? AND summary IS NOT NULL", (device,))
    assert summary == [(frames,)]
    seqs = [s for s, _, _ in message_rows(col, device)]
    assert len(seqs) == len(set(seqs))


def test_broker_without_persistence_down_mid_run_loses_nothing(tmp_path):
    broker = NoPersistenceBroker().start()
    col = start_collector(broker.url, tmp_path / "c.db", client_id="col-np")
    p = paced_run(tmp_path, broker.url, "dev-np", "run-np", 800)
    try:
        wait_until(lambda: frame_numbers(col), 60, "the first frames at the collector")
        broker.stop()
        time.sleep(2.0)  # the run goes on into the outbox
        broker.start()  # a restart that forgot the collector's session
        assert p.wait(120) == 0, (tmp_path / "agent.log").read_text()
        out = (tmp_path / "agent.log").read_text()
        col.wait_idle()
        check_stored_once(col, "dev-np", "run-np", 800)
        # what waited (lost by the broker, sent again) and when a collector confirmed it
        assert "message(s) again" in out and "a collector confirmed" in out, out
        assert "confirmed by a collector" in out
        print(out[-1500:])
        print(f"no-persistence broker restart: {col.counts['duplicates']} duplicate deliveries dropped")
    finally:
        if p.poll() is None:
            p.kill()
        stop_collector(col)
        broker.cleanup()


def test_broker_restarted_without_its_persistence_file_while_the_collector_is_down(tmp_path):
    broker = MosquittoBroker().start()  # the recommended configuration: persistence on
    col = start_collector(broker.url, tmp_path / "c.db", client_id="col-pd")
    p = paced_run(tmp_path, broker.url, "dev-pd", "run-pd", 800)
    try:
        wait_until(lambda: frame_numbers(col), 60, "the first frames at the collector")
        stop_collector(col)  # its session queues what the device sends meanwhile
        wait_until(lambda: unconfirmed_rows(tmp_path / "state" / "outbox-dev-pd.db"), 30, "unconfirmed messages")
        time.sleep(1.0)
        broker.stop()
        for f in Path(broker.dir).glob("*.db"):
            f.unlink()  # the broker's persistence file, and the collector's queue with it
        broker.start()
        time.sleep(1.0)
        col = start_collector(broker.url, tmp_path / "c.db", client_id="col-pd")
        assert p.wait(120) == 0, (tmp_path / "agent.log").read_text()
        col.wait_idle()
        check_stored_once(col, "dev-pd", "run-pd", 800)
    finally:
        if p.poll() is None:
            p.kill()
        stop_collector(col)
        broker.cleanup()


def test_collector_killed_mid_stream_loses_and_doubles_nothing(tmp_path):
    broker = MosquittoBroker().start()
    db = tmp_path / "c.db"
    serve = [sys.executable, "-m", "edgebench.collector.cli", "serve", "--mqtt", broker.url, "--db", str(db)]
    serve += ["--client-id", "col-kill9"]
    c = subprocess.Popen(serve, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    p = paced_run(tmp_path, broker.url, "dev-k9", "run-k9", 800)
    col = None
    try:
        assert "collector: connected" in c.stdout.readline()
        wait_until(lambda: unconfirmed_rows(tmp_path / "state" / "outbox-dev-k9.db") or p.poll(), 60, "traffic")
        time.sleep(1.5)
        c.send_signal(signal.SIGKILL)
        c.wait(30)
        time.sleep(1.5)
        col = start_collector(broker.url, db, client_id="col-kill9")
        assert p.wait(120) == 0, (tmp_path / "agent.log").read_text()
        col.wait_idle()
        check_stored_once(col, "dev-k9", "run-k9", 800)
    finally:
        for proc in (p, c):
            if proc.poll() is None:
                proc.kill()
        if col is not None:
            stop_collector(col)
        broker.cleanup()


def test_device_killed_with_unconfirmed_messages_resends_them_on_restart(tmp_path):
    broker = NoPersistenceBroker().start()
    state = tmp_path / "state"
    ob = state / "outbox-dev-d9.db"
    col = start_collector(broker.url, tmp_path / "c.db", client_id="col-d9")
    p = paced_run(tmp_path, broker.url, "dev-d9", "run-d9", 100000, fps=200)
    try:
        wait_until(lambda: frame_numbers(col), 60, "the first frames at the collector")
        stop_collector(col)
        wait_until(lambda: sum(1 for r in unconfirmed_rows(ob) if r[1] == "frames") >= 3, 60, "unconfirmed frames")
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        waiting = unconfirmed_rows(ob)
        last = max(f + n for _, k, f, n in outbox_rows(ob) if k == "frames")
        broker.stop()
        broker.start()  # no persistence: the broker's copies for the collector are gone
        col = start_collector(broker.url, tmp_path / "c.db", client_id="col-d9")
        cfg = write_config(
            tmp_path / "agent2.yaml",
            device_id="dev-d9",
            mqtt={"url": broker.url},
            outbox={"resend_s": 2},
            telemetry={"interval_s": 60},
        )
        stored = {s for s, _, _ in message_rows(col, "dev-d9")}
        assert not {s for s, *_ in waiting} <= stored  # they were lost at the broker
        a = spawn(["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(state), tmp_path / "a2.log")
        try:
            wait_until(lambda: {s for s, *_ in waiting} <= {s for s, _, _ in message_rows(col, "dev-d9")}, 60, "resent")
            wait_until(lambda: not unconfirmed_rows(ob) and not outbox_rows(ob), 30, "an empty outbox")
        finally:
            assert stop_process(a) == 0
        col.wait_idle()
        got = frame_numbers(col, "WHERE run_id='run-d9'")
        assert got == list(range(last)), "frames lost or doubled"
        seqs = [s for s, _, _ in message_rows(col, "dev-d9")]
        assert len(seqs) == len(set(seqs))
        print(f"device kill: {len(waiting)} unconfirmed messages resent and stored once, frames 0-{last - 1}")
    finally:
        if p.poll() is None:
            p.kill()
        stop_collector(col)
        broker.cleanup()


def run_alone(tmp_path, url: str, device: str, wait: str, confirm_wait: float) -> subprocess.CompletedProcess:
    cfg = write_config(tmp_path / f"{device}.yaml", outbox={"confirm_wait_s": confirm_wait})
    args = [*RUN, "--frames", "50", "--config", str(cfg), "--mqtt", url, "--device-id", device, "--mqtt-wait", wait]
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=agent_env(tmp_path / "state"), capture_output=True, text=True
    )


def test_no_collector_ever_keeps_the_brokers_ack_after_the_wait_and_says_so(tmp_path, mosquitto):
    r = run_alone(tmp_path, mosquitto.url, "dev-alone", "30", 1.0)
    assert r.returncode == 0, r.stderr
    assert "no collector has ever confirmed this device's messages" in r.stdout
    assert "no collector has ever confirmed a message of this device (waited 1 s)" in r.stderr
    assert outbox_rows(tmp_path / "state" / "outbox-dev-alone.db") == []


def test_unconfirmed_at_the_end_of_the_wait_exits_5_and_keeps_them(tmp_path, mosquitto):
    r = run_alone(tmp_path, mosquitto.url, "dev-wait", "1", 60.0)
    assert r.returncode == 5, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "published run" in line and "not yet confirmed by a collector within 1 s; kept in the outbox" in line
    kept = unconfirmed_rows(tmp_path / "state" / "outbox-dev-wait.db")
    assert {k for _, k, _, _ in kept} >= {"meta", "frames", "summary"}


def _small_disk(folder: Path) -> None:
    """A 2 MB tmpfs at ``folder`` (root only), else skip."""
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a 2 MB tmpfs for the full-disk case (needs root): {r.stderr.strip()[:200]}")


def test_a_full_disk_loses_frames_counted_the_run_finishes_and_the_collector_shows_the_hole(tmp_path):
    state = tmp_path / "state"
    _small_disk(state)
    dead = "mqtt://127.0.0.1:1"
    try:
        args = [*RUN, "--frames", "60000", "--mqtt", dead, "--device-id", "dev-full", "--run-id", "run-full"]
        args += ["--mqtt-wait", "0", "--quiet", "--json", str(tmp_path / "r.json")]
        r = subprocess.run([sys.executable, *args], cwd=ROOT, env=agent_env(state), capture_output=True, text=True)
        assert r.returncode == 5 and "Traceback" not in r.stderr, r.stderr
        m = re.search(r"a full disk under the outbox dropped (\d+) frames of this run", r.stderr)
        assert m, r.stderr
        lost = int(m.group(1))
        assert lost > 0 and "the disk holding the outbox" in r.stderr
        # while the disk is still full, the agent starts (no restart loop under systemd)
        again = [*RUN, "--frames", "60", "--mqtt", dead, "--device-id", "dev-full", "--mqtt-wait", "0", "--quiet"]
        r2 = subprocess.run([sys.executable, *again], cwd=ROOT, env=agent_env(state), capture_output=True, text=True)
        assert r2.returncode == 5 and "Traceback" not in r2.stderr, r2.stderr
        broker = MosquittoBroker().start()
        col = start_collector(broker.url, tmp_path / "c.db", client_id="col-full")
        try:
            cfg = write_config(
                tmp_path / "agent.yaml", device_id="dev-full", mqtt={"url": broker.url}, telemetry={"interval_s": 60}
            )
            a = spawn(
                ["-m", "edgebench.agent.cli", "agent", "--config", str(cfg)], agent_env(state), tmp_path / "a.log"
            )
            try:
                wait_until(
                    lambda: col.store.query("SELECT 1 FROM runs WHERE run_id='run-full' AND summary IS NOT NULL"),
                    60,
                    "the summary",
                )
            finally:
                stop_process(a)
            col.wait_idle()
            (row,) = [g for g in group_rows(col.store, ("device_id", "run_id")) if g["run_id"] == "run-full"]
            assert row["missing_frames"] == lost and row["frames"] == 60000 - lost
        finally:
            stop_collector(col)
            broker.cleanup()
    finally:
        subprocess.run(["umount", str(state)], capture_output=True)


def test_two_collectors_sharing_the_load_each_confirm_their_share_and_the_device_needs_the_union(tmp_path):
    from edgebench.collector.ingest.collector import Collector
    from edgebench.collector.store import SQLiteStore

    broker = MosquittoBroker().start()
    cols = [
        Collector(
            broker.url, SQLiteStore(str(tmp_path / f"c{i}.db")), client_id=f"col-u{i}", group="g-union", share=True
        ).start()
        for i in (1, 2)
    ]
    try:
        p = paced_run(tmp_path, broker.url, "dev-u", "run-u", 300, fps=100)
        assert p.wait(120) == 0, (tmp_path / "agent.log").read_text()
        assert "confirmed by a collector" in (tmp_path / "agent.log").read_text()
        assert outbox_rows(tmp_path / "state" / "outbox-dev-u.db") == []
        shares = [frame_numbers(c, "WHERE run_id='run-u'") for c in cols]
        assert all(shares) and sorted(shares[0] + shares[1]) == list(range(300))  # split, none twice
        assert all(c.counts["confirmations"] > 0 for c in cols)  # each confirmed its own share
    finally:
        for c in cols:
            stop_collector(c)
        broker.cleanup()
