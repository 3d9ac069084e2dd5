"""`edgebench run --scenario sustained`: the analysis on a scripted board (a temperature ramp,
a throttle event at 95 s that slows every frame from then on), then a real short run here
that produces the per-interval series, the result section and the picture."""

import json

import numpy as np
import pytest

from edgebench.agent.measure.sustained import analyze
from tests.support.paths import SHAPES_MODEL, run_cli

THROTTLE_S = 95.0


def scripted(duration_s=300.0, before_ms=10.0, after_ms=14.0, seed=1):
    """Frames back to back: 10 ms each until the throttle, 14 ms after; 5 % noise."""
    rng = np.random.default_rng(seed)
    ends, lats, t = [], [], 0.0
    while True:
        ms = (before_ms if t < THROTTLE_S else after_ms) * (1 + 0.05 * rng.standard_normal())
        t += ms / 1000
        if t >= duration_s:
            break
        ends.append(t)
        lats.append(ms)
    ts = np.arange(0.0, duration_s, 1.0)
    timeline = {
        "t_s": ts.tolist(),
        "temps_c": {"cpu-thermal": [min(50 + 30 * t / THROTTLE_S, 80.0) for t in ts]},
        "cpu_mhz": {"cpu0": [2400.0 if t < THROTTLE_S else 1500.0 for t in ts]},
        "throttled": [1 if t >= THROTTLE_S else 0 for t in ts],
    }
    return np.asarray(ends), np.asarray(lats), timeline


def test_a_throttle_event_and_the_steady_state_after_it():
    end_s, e2e, tl = scripted()
    s = analyze(end_s, e2e, tl, 300.0, 30.0)
    assert len(s["intervals"]) == 10
    assert s["time_to_first_throttle_s"] == THROTTLE_S
    first, last = s["intervals"][0], s["intervals"][-1]
    assert first["fps"] == pytest.approx(100, rel=0.03) and not first["throttled"]
    assert last["fps"] == pytest.approx(1000 / 14, rel=0.03) and last["throttled"]
    assert first["temp_max_c"] < 60 and last["temp_max_c"] == 80.0
    assert first["cpu_mhz_mean"] == 2400.0 and last["cpu_mhz_mean"] == 1500.0
    # the interval holding the throttle (90-120 s) differs from the next; steady from 120 s
    assert s["steady_since_s"] == 120.0
    assert s["steady"]["fps"] == pytest.approx(1000 / 14, rel=0.03)
    assert s["steady"]["p99_ms"] == pytest.approx(14 * 1.12, rel=0.05)
    assert s["minute1_vs_steady"] == pytest.approx(14 / 10, rel=0.04)


def test_a_board_still_slowing_down_has_no_steady_state():
    rng = np.random.default_rng(2)
    t, ends, lats = 0.0, [], []
    while t < 150:
        ms = 10 * (1 + t / 50) * (1 + 0.02 * rng.standard_normal())  # every frame slower than the last
        t += ms / 1000
        ends.append(t)
        lats.append(ms)
    s = analyze(np.asarray(ends), np.asarray(lats), None, 150.0, 30.0)
    assert s["steady"] is None and "still differ" in s["steady_note"]
    assert s["time_to_first_throttle_s"] is None and "does not report" in s["throttle_note"]


def test_a_real_sustained_run_gives_the_series_and_the_picture(tmp_path):
    out, plots = tmp_path / "r.json", tmp_path / "plots"
    r = run_cli(
        "run", "--model", str(SHAPES_MODEL), "--scenario", "sustained", "--duration", "6", "--interval", "1",
        "--threads", "1", "--json", str(out), "--plot", str(plots),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    s = res["sustained"]
    assert [iv["index"] for iv in s["intervals"]] == list(range(6))
    assert sum(iv["frames"] for iv in s["intervals"]) == res["frames"]
    assert all(iv["fps"] > 0 for iv in s["intervals"])
    assert "sustained, per 1 s:" in r.stdout and "first throttle:" in r.stdout
    assert (plots / "run_sustained.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "args, words",
    [
        (["--frames", "10"], "not --frames"),
        (["--batch", "2"], "--batch applies to LoadGen scenarios"),
        (["--interval", "0"], "--interval"),
    ],
)
def test_bad_input_is_one_line(args, words):
    r = run_cli("run", "--model", str(SHAPES_MODEL), "--scenario", "sustained", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
