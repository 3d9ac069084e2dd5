"""Messages that must say what happened, and only that (issue 16, items 7 to 14)."""

from __future__ import annotations

import io
import json

from edgebench.agent.cli.sweep import print_sweep
from tests.support.paths import ROOT, SHAPES_MODEL, run_cli

FIXED_BATCH = ROOT / "models" / "shapes_int8_fixed_batch.tflite"


def test_a_sweep_gives_one_reason_per_unsupported_batch_size(tmp_path):
    out = tmp_path / "s.json"
    p = run_cli(
        "sweep", "--model", str(FIXED_BATCH), "--batch", "1,2", "--threads", "1,2", "--frames", "5",
        "--json", str(out), "--power", "none",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    reason = doc["unsupported_batches"]["2"]
    # the runtime's two messages, told apart, not glued ("...reshape runtimeNode number 8...")
    assert "runtimeNode" not in reason and "; Node number" in reason, reason
    buf = io.StringIO()
    print_sweep(doc, buf)
    text = buf.getvalue()
    assert text.count(reason) == 1, text
    assert text.count("unsupported (batch 2: see below)") == 2
    assert f"batch 2 unsupported: {reason}" in text


MOBILENET = ROOT / "models" / "mobilenet_v2_0.35_224_int8_untrained.tflite"


def test_a_non_live_gstreamer_pipeline_is_read_as_a_file(tmp_path):
    """videotestsrc without is-live=true makes frames as fast as they are read: under the
    newest-frame rule almost all of them were dropped and the run "ended during warmup"."""
    out = tmp_path / "r.json"
    pipeline = "gst:videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240"
    p = run_cli("run", "--model", str(MOBILENET), "--source", pipeline, "--frames", "50", "--json", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["frames"] == 50 and res["source"]["live"] is False
    assert "frames_dropped" not in res["source"]
    assert any("videotestsrc without is-live=true is not live" in n for n in res["notes"])


def test_a_live_source_that_drops_everything_during_warmup_says_so():
    pipeline = "gst:videotestsrc is-live=true num-buffers=40 ! video/x-raw,width=320,height=240,framerate=1000/1"
    p = run_cli("run", "--model", str(MOBILENET), "--source", pipeline, "--warmup", "1000", "--no-probes")
    assert p.returncode == 4, p.stderr
    line = p.stderr.strip()
    assert line.startswith("edgebench: error: no frames measured: the source gst:videotestsrc is-live=true")
    assert "frames were dropped because inference was slower than the source" in line
    assert "of its 40 frames" in line and len(line.splitlines()) == 1


def test_more_predictions_are_in_the_result_file_only_when_one_was_written(tmp_path):
    folder = ROOT / "models" / "testsets" / "shapes"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--source", str(folder), "--frames", "20", "--no-probes")
    assert p.returncode == 0, p.stderr
    assert "result file" not in p.stdout
    assert "... and 15 more predictions not shown (--json FILE writes them all)" in p.stdout
    out = tmp_path / "r.json"
    p = run_cli(
        "run", "--model", str(SHAPES_MODEL), "--source", str(folder), "--frames", "20", "--no-probes",
        "--json", str(out),
    )  # fmt: skip
    assert f"... and 15 more predictions in {out}" in p.stdout
    assert len(json.loads(out.read_text())["predictions"]) == 20


def test_nothing_to_watch_is_not_no_throttling_seen():
    from edgebench.agent.probes.info import run_summary_line

    base = {"power": {"available": False}, "thermal": {"max_c": None}}
    line = run_summary_line({**base, "throttling": {"watched": [], "throttled": False, "flags": [], "events": []}})
    assert "no throttling source on this board" in line and "no throttling seen" not in line
    watched = {"watched": ["cpu0 max frequency"], "throttled": False, "flags": [], "events": []}
    assert "no throttling seen" in run_summary_line({**base, "throttling": watched})


def test_a_cpu_fallback_is_in_the_summary_header_and_the_collectors_report(tmp_path):
    out = tmp_path / "r.json"
    p = run_cli(
        "run", "--model", str(SHAPES_MODEL), "--delegate", "edgetpu", "--cpu-fallback", "--frames", "20",
        "--no-probes", "--json", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert "ON THE CPU (--cpu-fallback: cannot load delegate library libedgetpu.so.1" in first, first
    res = json.loads(out.read_text())
    from edgebench.collector.store.fields import run_fields

    assert run_fields(res)["delegate"] == "CPU fallback from libedgetpu.so.1"
    # a delegate that did load is stored as its library, not as its {library, options} mapping
    res["runtime"].update(delegate={"library": "libvx_delegate.so", "options": {}}, delegate_fallback=None)
    assert run_fields(res)["delegate"] == "libvx_delegate.so"


def test_the_summary_says_how_many_passes_a_folder_took(tmp_path):
    out = tmp_path / "r.json"
    folder = ROOT / "models" / "testsets" / "shapes"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--source", str(folder), "--frames", "235", "--warmup", "5",
                "--no-probes", "--json", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    src = json.loads(out.read_text())["source"]
    assert src["images"] == 120 and src["images_read"] == 240 and src["passes"] == 2.0
    assert (
        "note: the folder's 120 images were read 240 times (2 passes, warmup included): "
        "a folder loops until --frames or --duration" in p.stdout
    )


def test_edgebench_info_has_no_python_spellings():
    from edgebench.agent.cli.info import render

    text = render({"board": {"model": None, "model_from": None, "cpu": {}, "flags": []}, "sources": {"ffmpeg": True}})
    assert "None" not in text and "True" not in text and "{}" not in text and "[]" not in text
    assert "  model: unknown" in text and "  ffmpeg: yes" in text and "  cpu: none" in text
    p = run_cli("info")
    assert p.returncode == 0 and "None" not in p.stdout, p.stdout
