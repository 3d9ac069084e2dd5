"""Every source kind through `edgebench run`: files, folders, streams, cameras, pipelines."""

import json
import shutil

import cv2
import numpy as np
import pytest

from edgebench.agent.sources.base import SyntheticSource
from edgebench.agent.sources.capture import gst_frame_size
from edgebench.agent.sources.live import LiveSource
from edgebench.agent.sources.open import open_source
from tests.support.mjpeg_server import MJPEGServer
from tests.support.paths import SHAPES_MODEL, run_cli


def run_json(tmp_path, *args, ok=True):
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--json", str(out), *args)
    if ok:
        assert p.returncode == 0, p.stderr
        return json.loads(out.read_text()), p
    return None, p


def make_video(path, frames=40, fps=25.0, size=(96, 72)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    rng = np.random.default_rng(5)
    for _ in range(frames):
        w.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    w.release()
    return path


def test_mjpeg_http_stream(tmp_path):
    with MJPEGServer("steady", fps=200) as cam:
        res, _ = run_json(tmp_path, "--source", cam.url, "--frames", "30", "--warmup", "2")
    src = res["source"]
    assert src["kind"] == "stream" and src["live"] is True and src["width"] == 160
    assert res["frames"] == 30
    assert src["frames_captured"] >= src["frames_delivered"] >= 32
    assert src["frames_captured"] == src["frames_delivered"] + src["frames_dropped"] + (
        src["frames_captured"] - src["frames_delivered"] - src["frames_dropped"]
    )
    assert "queue" in res["latency_ms"]  # live frames can wait
    assert res["pacing"] == "realtime"


def test_stream_that_ends_stops_cleanly(tmp_path):
    with MJPEGServer("ending", frames=25, fps=200) as cam:
        res, p = run_json(tmp_path, "--source", cam.url, "--frames", "500", "--warmup", "0", "--reconnects", "1")
    assert 0 < res["frames"] <= 25
    assert res["source_ended_early"] is True
    assert res["source"]["reconnects"] == 1  # tried once, then accepted the end
    assert "Traceback" not in p.stderr


def test_stream_that_stalls_times_out_with_one_line(tmp_path):
    with MJPEGServer("stall", frames=10, fps=200) as cam:
        _, p = run_json(
            tmp_path, "--source", cam.url, "--frames", "500", "--warmup", "0", "--stall-timeout", "1.5", ok=False
        )
    assert p.returncode == 4
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "stalled: no frame for 1.5 s" in lines[0], p.stderr


def test_stream_that_drops_is_reconnected(tmp_path):
    with MJPEGServer("drop", frames=15, fps=200) as cam:
        res, _ = run_json(tmp_path, "--source", cam.url, "--frames", "40", "--warmup", "0", "--reconnects", "5")
        assert cam.connections >= 3
    assert res["frames"] == 40
    assert res["source"]["reconnects"] >= 2


def test_unreachable_stream(tmp_path):
    from edgebench.collector.broker.embedded import free_port

    _, p = run_json(tmp_path, "--source", f"http://127.0.0.1:{free_port()}/x.mjpg", "--stall-timeout", "2", ok=False)
    assert p.returncode == 4 and "cannot open stream" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_missing_camera_is_a_clear_error(tmp_path):
    _, p = run_json(tmp_path, "--source", "/dev/video97", ok=False)
    assert p.returncode == 4
    assert "camera /dev/video97 not found" in p.stderr and "Traceback" not in p.stderr


def test_video_played_in_real_time_is_paced(tmp_path):
    video = make_video(tmp_path / "v.avi", frames=40, fps=25.0)
    res, _ = run_json(tmp_path, "--source", str(video), "--pacing", "realtime", "--frames", "20", "--warmup", "2")
    assert res["source"]["paced_fps"] == 25.0
    # a camera at 25 FPS cannot be measured faster than 25 FPS
    assert res["fps"] <= 25.0 * 1.05
    assert res["latency_ms"]["capture"]["p50"] > 10  # waiting for the next frame (40 ms apart)


def test_fps_pacing_drops_frames_when_inference_is_slower(tmp_path):
    # a 2000 FPS full-HD camera feeding a pipeline that needs longer per frame
    res, _ = run_json(
        tmp_path,
        "--source",
        "synthetic:1920x1080",
        "--fps",
        "2000",
        "--frames",
        "40",
        "--warmup",
        "0",
        "--resize",
        "letterbox",
    )
    src = res["source"]
    assert src["frames_delivered"] == 40
    assert src["frames_dropped"] > 0
    assert any("dropped" in n for n in res["notes"])


def test_pipelined_mode_reports_queue_and_mode(tmp_path):
    video = make_video(tmp_path / "v.avi", frames=60)
    res, _ = run_json(tmp_path, "--source", str(video), "--pipelined", "--frames", "50", "--warmup", "3")
    assert res["mode"] == "pipelined" and res["frames"] == 50
    lat = res["latency_ms"]
    assert set(lat) == {"capture", "preprocess", "queue", "inference", "postprocess", "e2e"}
    assert lat["e2e"]["max"] >= lat["inference"]["max"]


def test_duration_mode(tmp_path):
    res, _ = run_json(tmp_path, "--duration", "1.0", "--warmup", "2")
    assert res["duration_s"] >= 1.0 and res["frames"] > 10
    assert res["validity"]["verdict"] == "VALID"


def test_warmup_by_time(tmp_path):
    res, _ = run_json(tmp_path, "--frames", "20", "--warmup", "1", "--warmup-s", "0.3")
    assert res["warmup_s"] >= 0.3 and res["warmup_frames"] > 1


def test_too_short_a_run_is_flagged_invalid(tmp_path):
    res, p = run_json(tmp_path, "--frames", "10")
    v = res["validity"]
    assert v["verdict"] == "INVALID" and any("only 10 frames" in r for r in v["reasons"])
    assert "verdict: INVALID (only 10 frames" in p.stdout


@pytest.mark.skipif(
    shutil.which("gst-launch-1.0") is None, reason="gst-launch-1.0 (gstreamer1.0-tools) is not installed"
)
def test_gstreamer_pipeline(tmp_path):
    pipe = "gst:videotestsrc is-live=true num-buffers=40 ! video/x-raw,width=128,height=96"
    res, _ = run_json(tmp_path, "--source", pipe, "--frames", "30", "--warmup", "2")
    assert res["source"]["kind"] == "gstreamer" and res["source"]["width"] == 128
    assert res["frames"] == 30


@pytest.mark.skipif(
    shutil.which("gst-launch-1.0") is None, reason="gst-launch-1.0 (gstreamer1.0-tools) is not installed"
)
def test_broken_gstreamer_pipeline(tmp_path):
    _, p = run_json(tmp_path, "--source", "gst:nosuchelementsrc ! fakesink", ok=False)
    assert p.returncode == 4 and "GStreamer pipeline failed" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_gst_size_from_caps():
    assert gst_frame_size("libcamerasrc ! video/x-raw,width=1280,height=720,framerate=30/1") == (1280, 720)
    assert gst_frame_size("nvarguscamerasrc ! video/x-raw(memory:NVMM),width=(int)1920,height=(int)1080") == (
        1920,
        1080,
    )
    assert gst_frame_size("v4l2src") == (640, 480)


def test_synthetic_defaults_to_the_model_input_size():
    src = open_source("synthetic", default_size=(64, 48))
    assert isinstance(src, SyntheticSource) and src.read().image.shape == (48, 64, 3)
    paced = open_source("synthetic", default_size=(8, 8), fps=100)
    try:
        assert isinstance(paced, LiveSource) and paced.read().t_origin_ns is not None
    finally:
        paced.close()
