"""The interpreter's thread count: one default (agent/runtime/threads.py), always handed to
the runtime, and recorded in every result, sweep and scenario (issue 16, item 1)."""

from __future__ import annotations

import json
import os

from edgebench.agent.options.build import build_sweep_options
from edgebench.agent.runtime import interpreter as rtmod
from tests.support.paths import SHAPES_MODEL, run_cli

CORES = len(os.sched_getaffinity(0))


def test_the_default_is_every_core_this_process_may_use():
    from edgebench.agent.runtime import threads

    assert threads.default_threads() == CORES
    assert threads.resolve(None) == (CORES, threads.DEFAULT)
    assert threads.resolve(3) == (3, threads.GIVEN)


def test_the_runtime_is_always_given_the_count_and_records_it(monkeypatch):
    seen = []
    _, mod, _ = rtmod.import_runtime("auto")
    real = mod.Interpreter

    def spy(**kw):
        seen.append(kw.get("num_threads"))
        return real(**kw)

    monkeypatch.setattr(mod, "Interpreter", spy)
    rt = rtmod.load(str(SHAPES_MODEL))
    assert seen == [CORES]  # never "let the runtime decide": that count could not be recorded
    d = rt.describe()
    assert d["num_threads"] == CORES and d["num_threads_from"] == "default"
    rt = rtmod.load(str(SHAPES_MODEL), num_threads=1)
    assert seen[-1] == 1 and rt.describe()["num_threads"] == 1 and rt.describe()["num_threads_from"] == "given"


def test_the_run_result_and_its_summary_say_how_many_threads_ran(tmp_path):
    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "20", "--json", str(out), "--no-probes")
    assert p.returncode == 0, p.stderr
    rt = json.loads(out.read_text())["runtime"]
    assert rt["num_threads"] == CORES and rt["num_threads_from"] == "default"
    first = p.stdout.splitlines()[0]
    assert f"{CORES} thread{'' if CORES == 1 else 's'} (all cores, the default)" in first, first
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "20", "--threads", "1", "--no-probes")
    assert ", 1 thread, " in p.stdout.splitlines()[0]


def test_scenarios_record_the_threads_and_sweeps_default_to_every_core(tmp_path):
    out = tmp_path / "s.json"
    p = run_cli(
        "run", "--model", str(SHAPES_MODEL), "--scenario", "single-stream", "--frames", "20",
        "--min-queries", "0", "--min-duration", "0", "--json", str(out), "-q",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["runtime"]["num_threads"] == CORES
    opts = build_sweep_options({}, {"sweep": {"model": str(SHAPES_MODEL)}})
    assert opts.threads == [CORES] and opts.threads_from == "default"
    opts = build_sweep_options({}, {"sweep": {"model": str(SHAPES_MODEL), "threads": [1, 2]}})
    assert opts.threads == [1, 2] and opts.threads_from == "given"
