"""`edgebench-collector plan` over a fleet stored from real runs: a max-QPS search and a
sweep measured here by the real runtime on the bundled model, stored as two simulated
boards (their inventories name the board), and a third board type with no data. The
boards-needed figures are checked against a hand computation from the stored documents."""

import json
import math

import pytest

from edgebench.agent.measure.scenario_run import run_scenario_opts
from edgebench.agent.measure.sweep import SweepOptions, sweep
from edgebench.agent.options.classes import RunOptions
from edgebench.collector.aggregate.plan import capacity_plan
from edgebench.collector.store import SQLiteStore
from tests.support.documents import meta_of, summary_of
from tests.support.fleet import as_message, info
from tests.support.paths import SHAPES_MODEL, run_collector_cli

BOUND_MS = 200.0
BOARDS = {"pi-1": "Raspberry Pi 5 Model B Rev 1.0", "orin-1": "NVIDIA Jetson Orin Nano", "imx-1": "NXP i.MX 8M Plus"}


def _info(dev: str, seq: int) -> dict:
    m = info(dev, 1, seq)
    m["inventory"] = {"model": BOARDS[dev], "machine": "aarch64"}
    return m


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    maxqps = run_scenario_opts(
        RunOptions(
            model=str(SHAPES_MODEL),
            find_max_qps=True,
            latency_bound_ms=BOUND_MS,
            duration_s=0.4,
            min_duration_s=0.2,
            min_queries=20,
            max_qps_steps=5,
            threads=1,
            device_id="pi-1",
        )
    )
    sw = sweep(
        SweepOptions(
            model=str(SHAPES_MODEL),
            batch=[1, 2],
            threads=[1, 2],
            duration_s=0.4,
            min_duration_s=0.2,
            min_frames=10,
            device_id="orin-1",
        )
    )
    db = tmp_path_factory.mktemp("plan") / "fleet.db"
    store = SQLiteStore(str(db))
    msgs = [as_message(_info(dev, 1)) for dev in BOARDS]
    seq = 2
    for doc in (maxqps, sw):
        msgs += [as_message(meta_of(doc, seq=seq)), as_message(summary_of(doc, seq=seq + 1))]
        seq += 2
    store.apply(msgs)
    yield store, db, maxqps, sw
    store.close()


def _by_hand_maxqps(doc):
    caps = [
        s["completed_qps"] * (doc.get("batch") or 1)
        for s in doc["steps"]
        if s["verdict"] == "VALID" and s["p99_latency_ms"] <= BOUND_MS
    ]
    return max(caps)


def _by_hand_sweep(doc):
    return max(
        p["throughput_items_per_s"]
        for p in doc["points"]
        if p["status"] == "ok" and p["verdict"] == "VALID" and p["latency_ms"]["p99"] <= BOUND_MS
    )


def test_boards_needed_match_a_hand_computation(fleet):
    store, _, maxqps, sw = fleet
    cap_pi, cap_orin = _by_hand_maxqps(maxqps), _by_hand_sweep(sw)
    fps = 5.0
    streams = 120
    plan = capacity_plan(store, "shapes_int8.tflite", streams, fps, BOUND_MS, {BOARDS["pi-1"]: 80.0})
    got = {a["board"]: a for a in plan["boards"]}
    for board, cap, dev, run in (
        (BOARDS["pi-1"], cap_pi, "pi-1", maxqps["run_id"]),
        (BOARDS["orin-1"], cap_orin, "orin-1", sw["run_id"]),
    ):
        a = got[board]
        per_board = math.floor(cap / fps)
        assert a["capacity_inferences_per_s"] == pytest.approx(cap, rel=1e-3)
        assert a["streams_per_board"] == per_board
        assert a["boards_needed"] == math.ceil(streams / per_board)
        assert a["headroom_pct"] == pytest.approx(100 * (1 - streams * fps / (a["boards_needed"] * cap)), abs=0.06)
        assert a["rests_on"]["device_id"] == dev and a["rests_on"]["run_id"] == run
        assert a["rests_on"]["age_s"] is not None and a["rests_on"]["age_s"] < 600
    assert got[BOARDS["pi-1"]]["cost_eur"] == pytest.approx(80.0 * got[BOARDS["pi-1"]]["boards_needed"])
    assert got[BOARDS["orin-1"]]["cost_eur"] is None
    assert got[BOARDS["imx-1"]]["answer"].startswith("not enough data: run `edgebench tune` or a `--find-max-qps`")
    assert "imx-1" in got[BOARDS["imx-1"]]["answer"]


def test_a_bound_no_measurement_holds_is_not_enough_data(fleet):
    store = fleet[0]
    plan = capacity_plan(store, "shapes_int8.tflite", 10, 5.0, 1e-6)
    assert all(a["answer"].startswith("not enough data") for a in plan["boards"])
    assert len(plan["boards"]) == 3


def test_plan_command_text_and_json(fleet):
    _, db, maxqps, _ = fleet
    r = run_collector_cli(
        "plan", "--db", str(db), "--model", "shapes_int8.tflite", "--streams", "120", "--fps", "5",
        "--p99-ms", str(BOUND_MS), "--price", f"{BOARDS['pi-1']}=80", "--format", "json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert {a["board"] for a in plan["boards"]} == set(BOARDS.values())
    r = run_collector_cli(
        "plan", "--db", str(db), "--model", "shapes_int8.tflite", "--streams", "120", "--fps", "5",
        "--p99-ms", str(BOUND_MS),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"rests on pi-1 run {maxqps['run_id']}" in r.stdout
    assert "not enough data" in r.stdout


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--streams", "0", "--fps", "5", "--p99-ms", "100"], "--streams must be above 0"),
        (["--streams", "ten", "--fps", "5", "--p99-ms", "100"], "--streams must be a whole number"),
        (["--streams", "4", "--fps", "5", "--p99-ms", "100", "--price", "pi"], "--price takes BOARD=EUR"),
    ],
)
def test_bad_input_is_one_line(fleet, extra, words):
    r = run_collector_cli("plan", "--db", str(fleet[1]), "--model", "m.tflite", *extra)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
