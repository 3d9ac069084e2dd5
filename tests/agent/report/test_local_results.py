"""Results read without a collector: `edgebench run --csv/--plot`, `edgebench report` (text,
Markdown, one HTML file) and `edgebench compare` (the shared block-bootstrap verdict)."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from edgebench.agent.report import compare as cmp
from edgebench.agent.report.documents import load
from edgebench.agent.report.samples import COLUMNS, read_samples_csv
from edgebench.agent.runtime.threads import default_threads
from edgebench.agent.wire.compare import compare_samples
from edgebench.agent.wire.protocol import STAGES
from tests.support.documents import scenario_doc, sweep_doc
from tests.support.paths import SHAPES_MODEL, run_cli


def _run(folder, name: str, *extra: str) -> dict:
    out = folder / f"{name}.json"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--json", str(out), "-q", *extra)
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs with their per-frame CSVs (one with 1 thread), one without, and PNGs."""
    d = tmp_path_factory.mktemp("runs")
    a = _run(d, "a", "--frames", "1500", "--csv", str(d / "a.csv"), "--plot", str(d / "plots"))
    b = _run(d, "b", "--frames", "1500", "--threads", "1", "--csv", str(d / "frames" / "b.csv"))
    c = _run(d, "c", "--frames", "300")
    return d, a, b, c


def test_the_csv_has_a_row_per_frame_and_stage_with_timestamps(runs):
    d, a, _, _ = runs
    assert a["samples_csv"] == "a.csv"
    rows = list(csv.DictReader((d / "a.csv").open()))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == a["frames"] * len(STAGES)
    assert [r["stage"] for r in rows[: len(STAGES)]] == list(STAGES)
    frames = {}
    for r in rows:
        frames.setdefault(int(r["frame"]), {})[r["stage"]] = r
    assert sorted(frames) == list(range(a["frames"]))
    ends = [float(frames[i]["e2e"]["frame_end_s"]) for i in sorted(frames)]
    assert ends == sorted(ends) and ends[0] > 0
    for f in (frames[0], frames[a["frames"] - 1]):
        e2e = f["e2e"]
        # the frame's span on the monotonic clock is its e2e latency
        span_ms = (float(e2e["frame_end_s"]) - float(e2e["frame_start_s"])) * 1000
        assert span_ms == pytest.approx(float(e2e["latency_ms"]), abs=2e-6)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e2e["frame_end_utc"])
    # the samples are the ones the summary was computed from
    s = read_samples_csv(str(d / "a.csv"))
    for stage in STAGES:
        assert float(np.percentile(s["stages"][stage], 99)) == pytest.approx(a["latency_ms"][stage]["p99"], abs=1e-4)


def test_the_csv_sits_where_asked_and_the_document_finds_it(runs):
    d, _, b, _ = runs
    assert b["samples_csv"] == "frames/b.csv"
    samples, why = __import__("edgebench.agent.report.documents", fromlist=["per_frame"]).per_frame(
        load(str(d / "b.json"))
    )
    assert samples["frames"] == b["frames"] and "b.csv" in why


def test_plot_of_a_plain_run_writes_labelled_pngs(runs):
    from PIL import Image

    d, _, _, _ = runs
    pngs = sorted(p.name for p in (d / "plots").glob("*.png"))
    assert pngs == ["run_latency_over_time.png", "run_latency_per_stage.png"]  # no probes here: no board picture
    for name in pngs:
        im = Image.open(d / "plots" / name)
        assert im.size[0] >= 600
        assert "(ms)" in im.info["y_label"] + im.info["x_label"]
    im = Image.open(d / "plots" / "run_latency_over_time.png")
    assert im.info["x_label"] == "time since the measured window started (s)"
    assert all(f"{s} (ms)" in im.info["y_label"] for s in STAGES)


def test_board_timeline_picture_from_the_probes():
    """Temperature, clock, power and throttling over time draw as one picture with units."""
    from edgebench.agent.report.plots import labels_of, run_figures

    n = 50
    timeline = {
        "t_s": [i * 0.1 for i in range(n)],
        "temps_c": {"cpu-thermal": [50 + i * 0.2 for i in range(n)]},
        "cpu_mhz": {"cpu0": [1800.0] * 25 + [1500.0] * 25},
        "power_w": [4.0 + (i % 3) * 0.1 for i in range(n)],
        "throttled": [0] * 30 + [1] * 20,
    }
    res = json.loads(json.dumps(scenario_doc("dev-1", "r1")))  # any document with model/runtime
    res.update(frames=n, latency_ms={"e2e": {"p50": 1.0, "p99": 2.0}})
    samples = {"stages": {"e2e": np.linspace(1, 2, n)}, "frame_end_s": np.linspace(0, 5, n), "frames": n}
    figs = dict(run_figures(res, samples, timeline))
    assert set(figs) == {"latency_over_time", "latency_per_stage", "board_over_time"}
    labels = labels_of(figs["board_over_time"])
    assert labels["y_label"] == "temperature (°C); CPU clock (MHz); power (W); throttled (1 = yes)"
    # without any reading there is no board picture
    assert "board_over_time" not in dict(run_figures(res, samples, {"t_s": [], "temps_c": {}, "cpu_mhz": {}}))


def test_timeline_from_sampler_readings():
    from edgebench.agent.probes.power import PowerReading
    from edgebench.agent.probes.sampler import Sample
    from edgebench.agent.probes.thermal import ThermalReading
    from edgebench.agent.probes.timeline import timeline

    t0 = 1_000_000_000
    samples = [
        Sample(t0 - 100, thermal=ThermalReading(temps_c={"soc": 40.0})),  # before the window: left out
        Sample(t0 + 0, power=PowerReading(total_w=3.0), thermal=ThermalReading({"soc": 41.0}, {0: 1_500_000})),
        Sample(t0 + 100_000_000, power_error="i2c", thermal=None),
        Sample(t0 + 200_000_000, power=PowerReading(total_w=3.5), thermal=ThermalReading({"soc": 42.5}, {0: None})),
    ]
    tl = timeline(samples, t0, t0 + 200_000_000)
    assert tl["t_s"] == [0.0, 0.1, 0.2]
    assert tl["temps_c"] == {"soc": [41.0, None, 42.5]}
    assert tl["cpu_mhz"] == {"cpu0": [1500.0, None, None]}
    assert tl["power_w"] == [3.0, None, 3.5]
    assert tl["throttled"] is None  # no firmware flag on this board
    # an energy counter has no instantaneous power per reading
    assert timeline(samples, t0, t0 + 200_000_000, "energy-counter")["power_w"] is None


def test_csv_of_a_scenario_is_refused_before_it_runs(tmp_path):
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--scenario", "offline", "--csv", str(tmp_path / "x.csv"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.startswith("edgebench: error: --csv writes every frame of a plain run")
    assert not (tmp_path / "x.csv").exists()


def test_an_unwritable_csv_folder_is_refused_before_the_run(tmp_path):
    (tmp_path / "file").write_text("")
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--csv", str(tmp_path / "file" / "x.csv"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "cannot create the CSV folder" in p.stderr and "measuring" not in p.stderr


# ----------------------------------------------------------------------------- compare
def test_compare_judges_from_the_csvs_by_the_shared_method(runs):
    d, a, b, _ = runs
    out = d / "cmp.json"
    p = run_cli("compare", str(d / "a.json"), str(d / "b.json"), "--json", str(out))
    assert p.returncode == 0, p.stderr
    c = json.loads(out.read_text())
    assert c["judged"] and c["method"].startswith("per-frame samples: a.json: 1500 frames")
    # the verdict is exactly what the shared method says on the same samples
    sa, sb = read_samples_csv(str(d / "a.csv")), read_samples_csv(str(d / "frames" / "b.csv"))
    direct = compare_samples(sb["stages"], sa["stages"], fps=(b["fps"], a["fps"]))
    for mine, theirs in zip(c["metrics"], direct["metrics"]):
        assert {k: mine[k] for k in theirs} == json.loads(json.dumps(theirs))
        assert mine["verdict"] == cmp.direction(mine)
    assert c["regressions"] == [m["metric"] for m in c["metrics"] if m["verdict"] == "worse"]
    cores = default_threads()  # a.json ran with the default: every core the process may use
    assert {"what": "runtime.num_threads_from", "baseline": "default", "run": "given"} in c["config_differences"]
    if cores != 1:
        assert {"what": "runtime.num_threads", "baseline": cores, "run": 1} in c["config_differences"]
        assert f"runtime.num_threads: {cores} -> 1" in p.stdout
    assert "configuration differences:" in p.stdout
    assert "95% CI of change" in p.stdout and "block bootstrap" in p.stdout


def test_compare_strict_exit_follows_the_verdict(runs, tmp_path):
    d, _, _, _ = runs
    same = run_cli("compare", str(d / "a.json"), str(d / "a.json"), "--strict")
    assert same.returncode == 0, same.stderr
    assert "verdict: no change beyond noise" in same.stdout
    both = run_cli("compare", str(d / "a.json"), str(d / "b.json"), "--strict")
    c = cmp.compare(load(str(d / "a.json")), load(str(d / "b.json")))
    assert both.returncode == (1 if c["regressions"] else 0), both.stderr
    # a made-up regression: every frame of the run twice as slow is worse beyond noise
    slow = tmp_path / "slow.csv"
    with (d / "a.csv").open() as f, slow.open("w") as g:
        r, w = csv.reader(f), csv.writer(g, lineterminator="\n")
        w.writerow(next(r))
        for row in r:
            w.writerow([row[0], row[1], f"{float(row[2]) * 2:.6f}", *row[3:]])
    doc = json.loads((d / "a.json").read_text())
    doc.update(samples_csv="slow.csv", fps=doc["fps"] / 2)
    (tmp_path / "slow.json").write_text(json.dumps(doc))
    p = run_cli("compare", str(d / "a.json"), str(tmp_path / "slow.json"), "--strict")
    assert p.returncode == 1
    assert p.stderr.strip().startswith("edgebench: worse beyond noise: e2e p50")
    assert "fps" in p.stderr


def test_compare_without_frames_gives_figures_not_a_verdict(runs):
    d, _, _, _ = runs
    p = run_cli("compare", str(d / "a.json"), str(d / "c.json"))
    assert p.returncode == 0, p.stderr
    assert "not judged (no per-frame samples to judge noise)" in p.stdout
    assert "c.json names no per-frame CSV (run with --json and --csv to keep every frame)" in p.stdout
    assert "verdict: not judged" in p.stdout
    strict = run_cli("compare", str(d / "a.json"), str(d / "c.json"), "--strict")
    assert strict.returncode == 2 and strict.stderr.startswith("edgebench: error: --strict needs the per-frame")


def test_compare_markdown_is_a_table(runs):
    d, _, _, _ = runs
    p = run_cli("compare", str(d / "a.json"), str(d / "b.json"), "--md")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("| metric |"))
    assert lines[head + 1].startswith("|---|---:|")
    assert "| what differs | baseline | run |" in lines


@pytest.mark.parametrize(
    "content,message",
    [
        ("{", "is not JSON"),
        ('{"schema": "other/1"}', "is not an edgebench result (its schema is 'other/1'"),
        ('{"schema": "edgebench.result/1", "device_id": "x"}', "a edgebench.result/1 document without run_id"),
    ],
)
def test_bad_documents_are_one_line(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    for args in (("report", str(bad)), ("compare", str(bad), str(bad))):
        p = run_cli(*args)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.startswith("edgebench: error: ") and message in p.stderr
        assert len(p.stderr.splitlines()) == 1


def test_compare_refuses_a_sweep(tmp_path, runs):
    d, _, _, _ = runs
    (tmp_path / "s.json").write_text(json.dumps(sweep_doc("dev-1", "s1")))
    p = run_cli("compare", str(d / "a.json"), str(tmp_path / "s.json"))
    assert p.returncode == 2 and "s.json is a sweep result: compare takes two per-frame runs" in p.stderr


# ----------------------------------------------------------------------------- report
@pytest.fixture(scope="module")
def documents(runs):
    d, _, _, _ = runs
    (d / "sweep.json").write_text(json.dumps(sweep_doc("dev-1", "s1")))
    (d / "server.json").write_text(json.dumps(scenario_doc("dev-1", "q1", "server", valid=False)))
    return d, [str(d / n) for n in ("a.json", "c.json", "sweep.json", "server.json")]


def test_report_text_is_what_the_commands_printed(documents):
    d, files = documents
    p = run_cli("report", files[0])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("model shapes_int8.tflite on ai-edge-litert") and "latency (ms)" in p.stdout
    p = run_cli("report", *files)
    assert p.returncode == 0
    assert [ln for ln in p.stdout.splitlines() if ln.startswith("== ")] == [f"== {f}" for f in files]
    assert "sweep of m.tflite" in p.stdout and "result: INVALID" in p.stdout


def test_report_markdown_uses_words(documents):
    _, files = documents
    p = run_cli("report", *files, "--md")
    assert p.returncode == 0, p.stderr
    md = p.stdout
    assert md.startswith("# edgebench report\n")
    assert "## Runs side by side" in md  # two per-frame runs
    assert "| a.json | " in md and "| c.json | " in md
    assert "- **accelerator**: CPU, XNNPACK" in md and "- **threads**: runtime default" in md
    assert "server: single-sample queries arriving at random (Poisson) at a target rate" in md
    assert "- **target rate (queries/s)**: " in md
    assert "target_qps" not in md and "XNNPACK True" not in md
    assert "**INVALID** · 99th percentile latency" in md


def test_report_html_is_one_self_contained_file(documents, tmp_path):
    _, files = documents
    out = tmp_path / "report.html"
    p = run_cli("report", *files, "--html", str(out))
    assert p.returncode == 0, p.stderr
    page = out.read_text()
    assert '<meta name=viewport content="width=device-width, initial-scale=1">' in page
    assert "<script" not in page and "<link" not in page and "<img" not in page
    # nothing fetched: the only URLs are the SVG namespaces
    urls = set(re.findall(r'(?:src|href)="(https?:[^"]*)"', page))
    assert not urls, urls
    assert page.count("<figure><svg") >= 8  # run (2), run from histograms (1), sweep (4), scenario (1)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "inline SVGs must not share element ids"
    assert "Runs side by side" in page and "target rate (queries/s)" in page


def test_report_html_without_matplotlib_keeps_the_tables(documents, tmp_path):
    _, files = documents
    out = tmp_path / "r.html"
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import importlib.util; importlib.util.find_spec = lambda n, *a: None if n == 'matplotlib' else None\n"
        "from edgebench.agent.cli import main\n"
        f"sys.exit(main(['report', {files[0]!r}, '--html', {str(out)!r}]))\n"
    )
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    page = out.read_text()
    assert "Charts need matplotlib" in page and "<svg" not in page and "stage (ms)" in page
