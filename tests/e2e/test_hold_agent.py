"""The agent holds against its own paths and arguments (issue 20, items 7 and 10): a bad
flag is one line, a bad broker URL, an unwritable --json and an uncreatable state folder are
refused before measuring, a result that cannot be written at the end is published anyway
and kept elsewhere (exit 9), a truncated JPEG says so in the result's warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import cv2
import pytest

from edgebench.collector.store import SQLiteStore
from tests.support.paths import ROOT, SHAPES_MODEL, SHAPES_TESTSET, run_cli
from tests.support.transport import start_collector, stop_collector, wait_until


def _one_line(p: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_a_bad_flag_is_one_line_pointing_to_help():
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "x")
    assert p.returncode == 2
    assert (
        _one_line(p) == "edgebench run: error: argument --frames: 'x' is not a whole number (see edgebench run --help)"
    )


def test_a_broker_url_that_is_not_one_is_refused_before_the_run(tmp_path):
    t0 = time.monotonic()
    p = run_cli(
        "run", "--model", str(SHAPES_MODEL), "--duration", "30", "--mqtt", "not a url", "-q",
        env={"EDGEBENCH_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    assert p.returncode == 2
    assert "'not a url' is not a host name or address" in _one_line(p)
    assert time.monotonic() - t0 < 25, "refused only after the 30 s run"
    assert not list((tmp_path / "state").glob("outbox-*"))


def test_an_uncreatable_state_folder_is_one_line(mosquitto, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = run_cli(
        "run", "--model", str(SHAPES_MODEL), "--frames", "5", "-q", "--mqtt", mosquitto.url,
        env={"EDGEBENCH_STATE_DIR": str(blocker / "state")},
    )  # fmt: skip
    assert p.returncode == 2
    line = _one_line(p)
    assert line.startswith(f"edgebench: error: cannot create the state folder {blocker / 'state'}: ")
    assert line.endswith("set EDGEBENCH_STATE_DIR to a writable folder")


@pytest.mark.parametrize("where", ["folder", "/proc/x.json"])
def test_an_unwritable_json_path_is_refused_before_measuring(tmp_path, where):
    target = str(tmp_path) if where == "folder" else where
    t0 = time.monotonic()
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--duration", "30", "-q", "--json", target)
    assert p.returncode == 2
    assert _one_line(p).startswith(f"edgebench: error: cannot write the result to {target}: ")
    assert time.monotonic() - t0 < 25, "refused only after the 30 s run"


def test_a_result_that_cannot_be_written_at_the_end_is_published_and_kept(private_mosquitto, tmp_path):
    """The --json folder becomes a file while the run measures: the run still publishes its
    summary, keeps the result in the state folder, says where in one line, and exits 9."""
    state = tmp_path / "state"
    out = tmp_path / "out"
    out.mkdir()
    col = start_collector(private_mosquitto.url, tmp_path / "fleet.db", client_id="hold-json")
    try:
        args = ["run", "--model", str(SHAPES_MODEL), "--duration", "4", "-q", "--device-id", "pi-hold"]
        args += ["--run-id", "r-hold", "--json", str(out / "r.json"), "--mqtt", private_mosquitto.url]
        env = {**os.environ, "EDGEBENCH_STATE_DIR": str(state)}
        p = subprocess.Popen(
            [sys.executable, "-m", "edgebench.agent.cli", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_until(lambda: list(state.glob("outbox-*")), 60, "the run to start")
        time.sleep(1.0)
        out.rmdir()
        out.write_text("the folder is gone")
        _stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 9, stderr
        assert "Traceback" not in stderr
        kept = state / "results" / "edgebench-result-r-hold.json"
        assert stderr.strip().splitlines()[-1] == (
            f"edgebench: error: cannot write the result to {out / 'r.json'} (File exists); it is kept in {kept}"
        )
        doc = json.loads(kept.read_text())
        assert doc["run_id"] == "r-hold" and doc["frames"] > 0
        store = SQLiteStore(str(tmp_path / "fleet.db"))
        wait_until(
            lambda: store.query("SELECT frames FROM runs WHERE run_id = 'r-hold' AND summary IS NOT NULL"),
            30,
            "the summary at the collector",
        )
        assert store.query("SELECT frames FROM runs WHERE run_id = 'r-hold'") == [(doc["frames"],)]
        store.close()
    finally:
        stop_collector(col)


def test_a_truncated_jpeg_is_named_in_the_result_warnings(tmp_path):
    img = cv2.resize(cv2.imread(str(next(SHAPES_TESTSET.glob("*/*.png")))), (128, 128))
    ok, data = cv2.imencode(".jpg", img)
    assert ok
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data.tobytes()[: len(data) // 2])
    p = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--source",
        str(cut),
        "--frames",
        "20",
        "-q",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    want = f"1 damaged image(s) measured: {cut} is a truncated JPEG (no end marker): decoded only in part"
    assert want in doc["warnings"]
    # the whole image: no such warning
    whole = tmp_path / "whole.jpg"
    whole.write_bytes(data.tobytes())
    p = run_cli(
        "run",
        "--model",
        str(SHAPES_MODEL),
        "--source",
        str(whole),
        "--frames",
        "20",
        "-q",
        "--json",
        str(tmp_path / "w.json"),
    )
    assert p.returncode == 0, p.stderr
    assert not any("damaged" in w for w in json.loads((tmp_path / "w.json").read_text())["warnings"])
