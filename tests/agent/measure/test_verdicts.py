"""Which rules a verdict applies, MLPerf's run lengths (--mlperf) and --strict's exit
status (issue 16, items 4 and 5)."""

from __future__ import annotations

import json

from edgebench.agent.measure.scenarios import VirtualClock, run_scenario
from edgebench.agent.options.build import build_run_options
from edgebench.agent.options.scenario import settings
from tests.support.paths import SHAPES_MODEL, run_cli

MS = 1_000_000


def _opts(**run):
    return build_run_options({}, {"run": {"model": str(SHAPES_MODEL), **run}})


def test_a_scenario_verdict_names_its_rules_and_mlperf_raises_the_run_lengths():
    s = settings(_opts(scenario="single-stream", duration_s=2.0))
    assert (s.min_duration_s, s.min_queries, s.rules) == (1.0, 64, "edgebench")
    clock = VirtualClock()

    def svc(n):
        clock.advance(5 * MS)

    doc = run_scenario(svc, s, clock)
    assert doc["verdict"] == "VALID"
    assert doc["rules"].startswith("edgebench's run lengths: at least 1 s and 64 queries")
    assert "not an MLPerf verdict" in doc["rules"]

    s = settings(_opts(scenario="single-stream", duration_s=2.0, mlperf="loadgen"))
    assert (s.duration_s, s.min_duration_s, s.min_queries, s.rules) == (10.0, 10.0, 100, "loadgen")
    clock = VirtualClock()
    doc = run_scenario(svc, s, clock)
    assert doc["duration_s"] >= 10.0 and doc["verdict"] == "VALID"
    assert doc["rules"].startswith("MLPerf LoadGen's default run lengths (TestSettings): at least 10 s and 100")
    sub = settings(_opts(scenario="multi-stream", mlperf="submission"))
    assert (sub.min_duration_s, sub.min_queries, sub.duration_s) == (600.0, 662, 600.0)
    off = settings(_opts(scenario="offline", mlperf="submission", min_queries=30000))
    assert off.min_queries == 30000  # never lowered


def test_the_per_frame_verdict_says_it_is_not_mlperfs(tmp_path):
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "60", "--min-duration", "0", "--json", str(out))
    assert p.returncode == 0, p.stderr
    v = json.loads(out.read_text())["validity"]
    assert v["verdict"] == "VALID" and "not an MLPerf verdict" in v["rules"]
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("verdict:"))
    assert line.startswith("verdict: valid by edgebench's check: at least 50 frames over at least 0 s")
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--mlperf", "loadgen")
    assert p.returncode == 2 and "--mlperf judges a LoadGen scenario" in p.stderr


def test_strict_exits_8_on_an_invalid_result_after_writing_it(tmp_path):
    out = tmp_path / "r.json"
    args = ["run", "--model", str(SHAPES_MODEL), "--frames", "10", "--no-probes", "--json", str(out), "-q"]
    p = run_cli(*args)
    assert p.returncode == 0  # INVALID, but not asked to be strict
    p = run_cli(*args, "--strict")
    assert p.returncode == 8, p.stderr
    assert p.stderr.strip().splitlines() == [
        "edgebench: error: --strict: the result is INVALID: only 10 frames measured; at least 50 needed"
        + "; "
        + json.loads(out.read_text())["validity"]["reasons"][1]
    ]
    assert json.loads(out.read_text())["validity"]["verdict"] == "INVALID"  # written all the same
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "60", "--min-duration", "0", "--strict", "-q")
    assert p.returncode == 0, p.stderr


def test_strict_exits_8_on_a_missed_bound_and_on_an_invalid_sweep_point(tmp_path):
    p = run_cli(
        "run", "--model", str(SHAPES_MODEL), "--scenario", "single-stream", "--frames", "80", "--min-queries", "0",
        "--min-duration", "0", "--latency-bound-ms", "0.000001", "--strict", "-q", "--no-probes",
    )  # fmt: skip
    assert p.returncode == 8, p.stderr
    assert "--strict: the result is INVALID: bound missed: p90 latency" in p.stderr
    p = run_cli("sweep", "--model", str(SHAPES_MODEL), "--frames", "3", "--strict", "-q", "--power", "none")
    assert p.returncode == 8, p.stderr
    assert "--strict: the sweep has points that are not ok and VALID: batch 1 threads" in p.stderr
    assert "only 3 batches measured" in p.stderr
