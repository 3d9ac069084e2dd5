"""`edgebench sweep` on real models run by the real interpreter.

Models: fully-connected stacks built here (tests/tflite_builder.fc_model), one
with a resizable batch and one with a hard-coded Reshape that refuses other batch
sizes; the bundled shapes classifier (an image model with a resizable batch); and
the refdata MobileNets (fixed batch 1) when ../shared/refdata is present.
"""

import csv
import io
import json
import subprocess
import sys

import fastjsonschema
import pytest

from edgebench.agent.errors import UserError
from edgebench.agent.measure.sweep import SweepOptions, sweep, to_csv
from edgebench.agent.options.kinds import parse_grid
from edgebench.agent.wire.protocol import SWEEP_JSON_SCHEMA, SWEEP_SCHEMA
from tests.support.paths import ROOT, SHAPES_MODEL, SHAPES_TESTSET, run_cli
from tests.support.tflite_builder import fc_model

validate_sweep = fastjsonschema.compile(SWEEP_JSON_SCHEMA)


@pytest.fixture(scope="module")
def fc_resizable(tmp_path_factory):
    p = tmp_path_factory.mktemp("models") / "fc512_resizable.tflite"
    p.write_bytes(fc_model(features=512, layers=2, batch_resizable=True))
    return p


@pytest.fixture(scope="module")
def fc_memory_bound(tmp_path_factory):
    # 2 x (2048 x 2048) float32 weights, 32 MB, more than the caches: at batch 1 each
    # invoke streams all of them from memory for one item (matrix-vector); at batch 4,
    # once for four (matrix-matrix). Measured here: ~330, ~640, ~1140 items/s at 1, 2, 4.
    p = tmp_path_factory.mktemp("models") / "fc2048_resizable.tflite"
    p.write_bytes(fc_model(features=2048, layers=2, batch_resizable=True))
    return p


@pytest.fixture(scope="module")
def fc_fixed(tmp_path_factory):
    p = tmp_path_factory.mktemp("models") / "fc256_fixed_batch.tflite"
    p.write_bytes(fc_model(features=256, layers=2, batch_resizable=False, fixed_batch_reshape=True))
    return p


def _by_batch(doc):
    return {p["batch"]: p for p in doc["points"]}


@pytest.mark.serial  # compares throughput between sweeps
def test_throughput_per_item_rises_with_batch_size(fc_memory_bound):
    """Best of up to six sweeps per batch size (the machine is shared, and the suite runs on
    two workers): items/s rises 1 -> 2 -> 4 and the median time per item falls."""
    best_tput: dict[int, float] = {}
    best_item: dict[int, float] = {}
    for _attempt in range(6):
        doc = sweep(SweepOptions(model=str(fc_memory_bound), batch=[1, 2, 4], threads=[1], duration_s=0.6, warmup=5))
        for b, p in _by_batch(doc).items():
            assert p["status"] == "ok", p
            best_tput[b] = max(best_tput.get(b, 0.0), p["throughput_items_per_s"])
            best_item[b] = min(best_item.get(b, float("inf")), p["latency_per_item_ms"]["p50"])
        if best_tput[1] < best_tput[2] < best_tput[4] and best_item[1] > best_item[2] > best_item[4]:
            break
    print(f"best items/s by batch: {best_tput}; best p50 ms per item: {best_item}")
    assert best_tput[1] < best_tput[2] < best_tput[4]
    assert best_item[1] > best_item[2] > best_item[4]
    # and the point's own figures agree with each other
    for p in doc["points"]:
        assert p["items"] == p["batches"] * p["batch"]
        assert p["throughput_items_per_s"] == pytest.approx(p["items"] / p["duration_s"], rel=1e-3)
        assert p["latency_per_item_ms"]["p50"] == pytest.approx(p["latency_ms"]["p50"] / p["batch"], abs=1e-4)


def test_fixed_batch_model_is_unsupported_and_instances_still_run(fc_fixed):
    doc = sweep(SweepOptions(model=str(fc_fixed), batch=[1, 2, 4], instances=[1, 2], frames=30, warmup=2))
    validate_sweep(doc)
    assert len(doc["points"]) == 6  # no point dropped
    for p in doc["points"]:
        if p["batch"] == 1:
            assert p["status"] == "ok" and p["batches"] == 30 * p["instances"]
            assert p["batches_per_instance"] == [30] * p["instances"]
        else:
            assert p["status"] == "unsupported"
            assert "failed to prepare" in p["reason"] and f"batch {p['batch']}" in p["reason"]
    assert doc["counts"] == {"ok": 2, "unsupported": 4, "failed": 0}
    assert doc["model"]["batch_signature"] == [1]
    assert any("unsupported" in n for n in doc["notes"])


def test_refdata_mobilenet_hard_codes_batch_one(refdata):
    model = refdata / "mobilenet_v2_1.0_224_quant.tflite"
    doc = sweep(
        SweepOptions(
            model=str(model),
            batch=[1, 2],
            instances=[1, 2],
            threads=[1],
            duration_s=1.0,
            warmup=2,
            source=str(refdata / "cat.bmp"),
        )
    )
    pts = {(p["batch"], p["instances"]): p for p in doc["points"]}
    assert pts[(2, 1)]["status"] == pts[(2, 2)]["status"] == "unsupported"
    assert "failed to prepare" in pts[(2, 1)]["reason"]
    for i in (1, 2):
        assert pts[(1, i)]["status"] == "ok" and pts[(1, i)]["throughput_items_per_s"] > 0
    assert doc["source"]["kind"] == "image" and doc["source"]["samples"] >= 1
    print("mobilenet_v2 batch 1 items/s by instances:", {i: pts[(1, i)]["throughput_items_per_s"] for i in (1, 2)})


def test_image_model_with_resizable_batch_on_real_images():
    doc = sweep(
        SweepOptions(
            model=str(SHAPES_MODEL), batch=[1, 4], frames=25, warmup=2, source=str(SHAPES_TESTSET), min_duration_s=0
        )
    )
    for p in doc["points"]:
        assert p["status"] == "ok" and p["verdict"] == "VALID"
    assert doc["source"]["samples"] == 8  # a pool of preprocessed frames, like LoadGen's sample library
    assert doc["model"]["batch_signature"] == [-1]


def test_sweep_cli_json_csv_and_plots(tmp_path, fc_fixed):
    out, out_csv, plots = tmp_path / "s.json", tmp_path / "s.csv", tmp_path / "plots"
    p = run_cli(
        "sweep",
        "--model",
        str(fc_fixed),
        "--batch",
        "1,2",
        "--instances",
        "1,2",
        "--threads",
        "1",
        "--frames",
        "25",
        "--json",
        str(out),
        "--csv",
        str(out_csv),
        "--plot",
        str(plots),
        "--device-id",
        "bench-2",
        "--power",
        "none",
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    doc = json.loads(out.read_text())
    validate_sweep(doc)
    assert doc["schema"] == SWEEP_SCHEMA and doc["device_id"] == "bench-2"
    assert doc["grid"] == {"batch": [1, 2], "threads": [1], "instances": [1, 2], "instance_mode": "threads"}
    ok = [pt for pt in doc["points"] if pt["status"] == "ok"]
    for pt in ok:
        assert pt["power"] is None and "turned off (--power none)" in pt["power_reason"]
        assert pt["cpu_pct"] is not None and pt["cpu_pct"] > 0
        lat = pt["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [(r["batch"], r["instances"], r["status"]) for r in rows] == [
        ("1", "1", "ok"),
        ("1", "2", "ok"),
        ("2", "1", "unsupported"),
        ("2", "2", "unsupported"),
    ]
    assert "failed to prepare" in rows[2]["reason"]
    assert float(rows[0]["throughput_items_per_s"]) == ok[0]["throughput_items_per_s"]
    assert "unsupported" in p.stdout and "best throughput" in p.stdout
    _check_pngs(
        plots, ["sweep_latency_vs_batch", "sweep_throughput_vs_batch", "sweep_frontier", "sweep_latency_distribution"]
    )


def _check_pngs(folder, names):
    from PIL import Image

    for name in names:
        path = folder / f"{name}.png"
        assert path.exists(), path
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
            text = im.text
        assert text["x_label"] and text["y_label"], text
        for label in (text["x_label"], text["y_label"]):
            assert "(" in label and label.endswith(")"), f"{name}: axis {label!r} has no unit"


def test_sweep_figures_name_their_axes_with_units(fc_resizable):
    from edgebench.agent.report.plots import sweep_figures

    doc = sweep(SweepOptions(model=str(fc_resizable), batch=[1, 2], threads=[1, 2], frames=10, warmup=1, min_frames=5))
    figs = dict(sweep_figures(doc))
    labels = {
        name: (f.axes[0].get_xlabel(), f.axes[0].get_ylabel(), f.axes[0].get_xscale(), f.axes[0].get_yscale())
        for name, f in figs.items()
    }
    assert labels["latency_vs_batch"] == ("batch size (items per invoke)", "latency per batch (ms)", "log", "log")
    assert labels["throughput_vs_batch"] == ("batch size (items per invoke)", "throughput (items/s)", "log", "log")
    assert labels["frontier"][:2] == ("p99 latency per batch (ms)", "throughput (items/s)")
    assert labels["latency_distribution"][:2] == ("latency per batch (ms)", "fraction of batches (cumulative)")
    # one line per (threads, instances) series in the throughput plot, and a CDF per point
    assert len(figs["throughput_vs_batch"].axes[0].get_lines()) == 2
    assert len(figs["latency_distribution"].axes[0].get_lines()) == 4
    import matplotlib.pyplot as plt

    plt.close("all")


def test_instances_as_processes(tmp_path, fc_fixed):
    out = tmp_path / "p.json"
    p = run_cli(
        "sweep",
        "--model",
        str(fc_fixed),
        "--batch",
        "1,2",
        "--instances",
        "2",
        "--processes",
        "--frames",
        "30",
        "--json",
        str(out),
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    ok, unsup = doc["points"]
    assert doc["grid"]["instance_mode"] == "processes" and ok["instance_mode"] == "processes"
    assert ok["status"] == "ok" and ok["batches_per_instance"] == [30, 30] and ok["cpu_pct"] > 0
    assert unsup["status"] == "unsupported" and "failed to prepare" in unsup["reason"]


def test_csv_has_a_row_for_every_point():
    doc = {
        "points": [
            {
                "batch": 1,
                "threads": 1,
                "instances": 1,
                "instance_mode": "threads",
                "status": "failed",
                "reason": "boom",
            },
        ]
    }
    rows = list(csv.DictReader(io.StringIO(to_csv(doc))))
    assert len(rows) == 1 and rows[0]["status"] == "failed" and rows[0]["reason"] == "boom"


def test_power_hook_gives_energy_per_item(fc_fixed):
    windows = []

    def power_window(t0, t1):
        windows.append((t0, t1))
        return {"energy_j": 2.0 * (t1 - t0) / 1e9, "mean_w": 2.0, "source": "test: a constant 2 W"}

    doc = sweep(SweepOptions(model=str(fc_fixed), batch=[1], frames=20, warmup=1), power_window=power_window)
    p = doc["points"][0]
    assert len(windows) == 1 and windows[0][1] > windows[0][0]
    assert p["power"]["energy_j"] == pytest.approx(2.0 * p["duration_s"], rel=1e-3, abs=1e-5)
    assert p["power"]["energy_per_item_mj"] == pytest.approx(p["power"]["energy_j"] / p["items"] * 1000, abs=1e-6)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "--batch is empty"),
        ("1,,2", "has an empty entry"),
        ("0", "must be at least 1"),
        ("a", "'a' is not a whole number"),
        ("1,2,2", "lists 2 more than once"),
        ("8..2", "runs backwards"),
    ],
)
def test_invalid_grids_are_one_clear_line(text, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_grid(text, "batch", [1], 1024)
    p = run_cli("sweep", "--model", str(SHAPES_MODEL), "--batch", text)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in p.stderr


def test_grid_ranges_double():
    assert parse_grid("1..64", "batch", [1], 1024) == [1, 2, 4, 8, 16, 32, 64]
    assert parse_grid("3,1..4", "batch", [1], 1024) == [3, 1, 2, 4]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--model", "/nonexistent.tflite"], 3, "model file not found"),
        (["--model", str(SHAPES_MODEL), "--instances", "100"], 2, "--instances 100 is too large"),
        (["--model", str(SHAPES_MODEL), "--frames", "5", "--duration", "1"], 2, "not both"),
        (
            ["--model", str(SHAPES_MODEL), "--batch", "1..4096", "--threads", "1..64", "--instances", "1,2,3,4,5,6"],
            2,
            "at most 512",
        ),
    ],
)
def test_sweep_bad_input(args, code, words):
    p = run_cli("sweep", *args)
    assert p.returncode == code, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], p.stderr


def test_no_plotting_stack_is_imported_without_plot(tmp_path):
    """The agent stays light: `edgebench run`, a scenario and a sweep never load matplotlib."""
    code = f"""
import sys
from edgebench.agent.cli import main
assert "matplotlib" not in sys.modules
assert main(["run", "--model", {str(SHAPES_MODEL)!r}, "--frames", "5", "-q"]) == 0
assert main(["run", "--model", {str(SHAPES_MODEL)!r}, "--scenario", "single-stream", "--duration", "0.2", "-q"]) == 0
assert main(["sweep", "--model", {str(SHAPES_MODEL)!r}, "--frames", "3", "-q"]) == 0
import edgebench.agent.report.plots
import edgebench.agent.measure.sweep
import edgebench.agent.measure.scenarios
import edgebench.agent.measure.scenario_run
assert "matplotlib" not in sys.modules, "matplotlib was imported"
print("light")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "light"


def test_a_grid_where_no_point_runs_keeps_the_result_and_says_so(tmp_path, fc_fixed):
    out = tmp_path / "none.json"
    p = run_cli("sweep", "--model", str(fc_fixed), "--batch", "2,4", "--frames", "5", "--json", str(out), "-q")
    assert p.returncode == 3
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no point of the grid ran (2 unsupported, 0 failed" in lines[0]
    doc = json.loads(out.read_text())
    assert [pt["status"] for pt in doc["points"]] == ["unsupported", "unsupported"]
    assert doc["best"] == {"throughput": None, "latency": None}


def test_plot_without_matplotlib_is_one_clear_line(tmp_path):
    code = f"""
import sys
sys.modules["matplotlib"] = None  # as if the plot extra were not installed
from edgebench.agent.cli import main
sys.exit(main(["sweep", "--model", {str(SHAPES_MODEL)!r}, "--frames", "3", "--plot", {str(tmp_path)!r}]))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--plot needs matplotlib: pip install 'edgebench[plot]'" in lines[0], p.stderr


def test_sweep_energy_per_item_from_a_power_meter_command(tmp_path, fc_fixed):
    """The board's power source (edgebench.agent.probes) feeds each point: a meter command reading 2.5 W."""
    out = tmp_path / "pw.json"
    p = run_cli(
        "sweep",
        "--model",
        str(fc_fixed),
        "--batch",
        "1,2",
        "--frames",
        "400",
        "--json",
        str(out),
        "-q",
        "--power",
        "cmd:echo 2500 mW",
        "--sample-hz",
        "20",
    )
    assert p.returncode == 0, p.stderr
    ok, unsup = json.loads(out.read_text())["points"]
    pw = ok["power"]
    assert pw["source"] == "cmd" and pw["mean_w"] == pytest.approx(2.5)
    assert pw["energy_j"] == pytest.approx(2.5 * ok["duration_s"], rel=0.01, abs=1e-5)
    assert pw["energy_per_item_mj"] == pytest.approx(pw["energy_j"] / ok["items"] * 1000, rel=1e-3, abs=1e-6)
    assert unsup["status"] == "unsupported" and "power" not in unsup


def test_sweep_without_a_power_source_says_why(tmp_path, fc_fixed):
    root = tmp_path / "emptyroot"
    (root / "etc").mkdir(parents=True)
    out = tmp_path / "np.json"
    p = run_cli(
        "sweep",
        "--model",
        str(fc_fixed),
        "--frames",
        "20",
        "--json",
        str(out),
        "-q",
        env={"EDGEBENCH_SYSFS_ROOT": str(root)},
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    pt = doc["points"][0]
    assert pt["power"] is None and "no power source on this board" in pt["power_reason"]
    assert any(n.startswith("power not measured: no power source") for n in doc["notes"])


MODELS = ROOT / "models"


def test_bundled_fixed_batch_model_is_unsupported_and_instances_still_run():
    """models/shapes_int8_fixed_batch.tflite: the batch signature says -1 but a Reshape hard-codes 1."""
    doc = sweep(
        SweepOptions(
            model=str(MODELS / "shapes_int8_fixed_batch.tflite"),
            batch=[1, 2],
            instances=[1, 2],
            frames=20,
            warmup=1,
            min_duration_s=0,
        )
    )
    pts = {(p["batch"], p["instances"]): p for p in doc["points"]}
    assert pts[(1, 1)]["status"] == pts[(1, 2)]["status"] == "ok"
    assert pts[(1, 2)]["batches_per_instance"] == [20, 20]
    for i in (1, 2):
        assert pts[(2, i)]["status"] == "unsupported" and "failed to prepare" in pts[(2, i)]["reason"]
    assert doc["model"]["batch_signature"] == [-1]


def test_bundled_int8_mobilenet_takes_every_batch_size():
    """The bundled MobileNetV2 0.35 int8 (96x96) has a resizable batch. Whether batching pays
    off is what the sweep measures (on this 2-core x86 machine XNNPACK's int8 convolutions
    gain little from it: see tests/benchmarks/bench_sweep.py), so only the mechanics are asserted."""
    model = MODELS / "mobilenet_v2_0.35_96_int8_untrained.tflite"
    doc = sweep(SweepOptions(model=str(model), batch=[1, 2, 4], frames=10, warmup=1, min_duration_s=0))
    for p in doc["points"]:
        assert p["status"] == "ok" and p["items"] == 10 * p["batch"]
        assert p["latency_ms"]["p50"] > 0 and p["throughput_items_per_s"] > 0
    assert doc["model"]["batch_signature"] == [-1]
    assert doc["model"]["outputs"][0]["shape"] == [1, 1000]  # the model as loaded (batch 1)
